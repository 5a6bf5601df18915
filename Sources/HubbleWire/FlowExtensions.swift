import Flows
import Foundation
import HubbleAPI
import SwiftProtobuf

/// What Osprey knows about a flow that Hubble's schema has no field for, carried in
/// `Flow.extensions` as a `google.protobuf.Struct`: a well-known type that every protobuf
/// runtime resolves, so a client built from the upstream protos alone prints it
/// (`{"@type":"type.googleapis.com/google.protobuf.Struct","value":{…}}`) instead of failing
/// on a type it does not know.
public enum FlowExtensions {
    /// The kernel's drop reason without `SKB_DROP_REASON_` (`NETFILTER_DROP`), on drops.
    public static let kernelDropReason = "kernel_drop_reason"
    /// Where the kernel freed a dropped packet (`nf_hook_slow+0x9c/0x120`), on drops.
    public static let kernelDropLocation = "kernel_drop_location"
    /// The Service address the client used (`10.96.0.11:80`) on a flow that names the backend.
    public static let serviceAddress = "service_address"

    /// The TCP handshake's round trip (SYN to SYN-ACK) on a SYN-ACK flow, in nanoseconds: an
    /// L3/L4 flow carries no `l7` (Hubble's CLIs would print it as an L7 flow of unknown type).
    public static let handshakeLatency = "tcp_handshake_latency_ns"

    /// The extension of a flow, nil when Osprey has nothing to add.
    static func make(_ flow: Flow) -> Google_Protobuf_Any? {
        var fields: [String: Google_Protobuf_Value] = [:]
        if let kernel = flow.kernelDropReason { fields[kernelDropReason] = Google_Protobuf_Value(stringValue: kernel) }
        if let location = flow.kernelDropLocation {
            fields[kernelDropLocation] = Google_Protobuf_Value(stringValue: location)
        }
        if let address = flow.serviceAddress { fields[serviceAddress] = Google_Protobuf_Value(stringValue: address) }
        if flow.dns == nil, flow.latencyNanoseconds > 0 {
            fields[handshakeLatency] = Google_Protobuf_Value(numberValue: Double(flow.latencyNanoseconds))
        }
        guard !fields.isEmpty else { return nil }
        // The Struct's bytes with its fields in key order: a dictionary's own order differs
        // from one instance to the next, and the same flow must make the same message.
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        guard let value: Data = try? Google_Protobuf_Struct(fields: fields).serializedBytes(options: options)
        else { return nil }
        var any = Google_Protobuf_Any()
        any.typeURL = "type.googleapis.com/" + Google_Protobuf_Struct.protoMessageName
        any.value = value
        return any
    }

    /// The fields of a flow's extension as text, numbers as integers (also the kernel reason
    /// of older Osprey's `osprey.v1.KernelDrop`); empty when it has none.
    public static func fields(of flow: Flow_Flow) -> [String: String] {
        guard flow.hasExtensions else { return [:] }
        if let structure = try? Google_Protobuf_Struct(unpackingAny: flow.extensions) {
            return structure.fields.compactMapValues {
                switch $0.kind {
                case .stringValue(let text): text
                case .numberValue(let number): String(Int64(number))
                default: nil
                }
            }
        }
        if let kernel = try? Osprey_V1_KernelDrop(unpackingAny: flow.extensions) {
            return [kernelDropReason: kernel.reason]
        }
        return [:]
    }
}
