import HubbleAPI
import SwiftProtobuf

/// GetFlowsRequest.field_mask applied in binary form. Hubble's CLI sends paths such as `IP`,
/// `Type`, `Summary` and `source.pod_name` — proto field names that protobuf's JSON mapping of
/// FieldMask cannot express — so paths are resolved against Flow's field numbers here and the
/// encoded flow is cut down field by field.
public struct FlowFieldMask: Sendable {
    /// Field number → what to keep inside it (nil: the whole field).
    struct Node: Sendable {
        var children: [Int: Node]?
    }

    let root: Node

    public enum MaskError: Error, CustomStringConvertible {
        case unknownPath(String)
        public var description: String {
            guard case .unknownPath(let path) = self else { return "" }
            return "field_mask path \"\(path)\" is not a field of flow.Flow; use proto field names such as "
                + "\"source.pod_name\", \"IP\" or \"l4\"."
        }
    }

    /// nil when the mask is empty (keep everything).
    public init?(paths: [String]) throws(MaskError) {
        guard !paths.isEmpty else { return nil }
        var root = Node(children: [:])
        for path in paths {
            let names = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !names.contains(where: \.isEmpty) else { throw .unknownPath(path) }
            var numbers: [Int] = []
            var schema: Schema? = FlowSchema.flow
            for name in names {
                guard let field = schema?.fields[name] else { throw .unknownPath(path) }
                numbers.append(field.number)
                schema = field.message
            }
            root.insert(numbers[...])
        }
        self.root = root
    }

    /// The flow with only the masked fields set.
    public func apply(_ flow: Flow_Flow) -> Flow_Flow {
        guard let bytes: [UInt8] = try? flow.serializedBytes() else { return flow }
        let kept = Self.filter(bytes[...], keeping: root)
        return (try? Flow_Flow(serializedBytes: kept)) ?? flow
    }

    /// Walks protobuf wire format, copying the fields `node` names and recursing into
    /// length-delimited ones that have a sub-mask.
    static func filter(_ bytes: ArraySlice<UInt8>, keeping node: Node) -> [UInt8] {
        guard let children = node.children else { return Array(bytes) }
        var output: [UInt8] = []
        var reader = WireReader(bytes: bytes)
        while let field = reader.next() {
            guard let child = children[field.number] else { continue }
            if field.wireType == 2, child.children != nil {
                let inner = filter(field.payload, keeping: child)
                WireReader.appendVarint(UInt64(field.number << 3 | 2), to: &output)
                WireReader.appendVarint(UInt64(inner.count), to: &output)
                output += inner
            } else {
                output += field.raw
            }
        }
        return output
    }
}

extension FlowFieldMask.Node {
    mutating func insert(_ numbers: ArraySlice<Int>) {
        guard let first = numbers.first else {
            children = nil  // the whole field
            return
        }
        guard children != nil else { return }  // already kept whole
        var child = children![first] ?? FlowFieldMask.Node(children: [:])
        if numbers.count == 1 { child.children = nil } else { child.insert(numbers.dropFirst()) }
        children![first] = child
    }
}

/// A minimal protobuf wire-format reader: enough to split a message into its fields.
struct WireReader {
    struct Field {
        var number: Int
        var wireType: UInt8
        var raw: ArraySlice<UInt8>
        var payload: ArraySlice<UInt8>
    }

    var bytes: ArraySlice<UInt8>
    private let all: ArraySlice<UInt8>

    init(bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        all = bytes
    }

    mutating func next() -> Field? {
        let start = bytes.startIndex
        guard let tag = readVarint(), tag >> 3 > 0 else { return nil }
        let wireType = UInt8(tag & 7)
        let payloadStart = bytes.startIndex
        switch wireType {
        case 0: guard readVarint() != nil else { return nil }
        case 1: guard skip(8) else { return nil }
        case 5: guard skip(4) else { return nil }
        case 2:
            guard let length = readVarint(), length <= UInt64(bytes.count) else { return nil }
            let from = bytes.startIndex
            _ = skip(Int(length))
            return Field(
                number: Int(tag >> 3), wireType: 2, raw: all[start..<bytes.startIndex],
                payload: all[from..<bytes.startIndex])
        default: return nil
        }
        return Field(
            number: Int(tag >> 3), wireType: wireType, raw: all[start..<bytes.startIndex],
            payload: all[payloadStart..<bytes.startIndex])
    }

    private mutating func readVarint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = bytes.first, shift < 64 {
            bytes = bytes.dropFirst()
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }

    private mutating func skip(_ count: Int) -> Bool {
        guard bytes.count >= count else { return false }
        bytes = bytes.dropFirst(count)
        return true
    }

    static func appendVarint(_ value: UInt64, to output: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            output.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        output.append(UInt8(value))
    }
}

/// Field names and numbers of the flow messages a mask can reach into.
final class Schema: Sendable {
    struct Field: Sendable {
        var number: Int
        var message: Schema?
    }
    let fields: [String: Field]

    init(_ fields: [String: Field]) { self.fields = fields }

    static func scalars(_ names: [String: Int]) -> Schema { Schema(names.mapValues { Field(number: $0) }) }
}

enum FlowSchema {
    static let endpoint = Schema(
        [
            "ID": .init(number: 1), "identity": .init(number: 2), "cluster_name": .init(number: 7),
            "namespace": .init(number: 3), "labels": .init(number: 4), "pod_name": .init(number: 5),
            "workloads": .init(number: 6, message: .scalars(["name": 1, "kind": 2])),
        ])
    static let ip = Schema.scalars([
        "source": 1, "source_xlated": 5, "destination": 2, "ipVersion": 3, "encrypted": 4,
    ])
    static let ports = Schema.scalars(["source_port": 1, "destination_port": 2])
    static let icmp = Schema.scalars(["type": 1, "code": 2])
    static let tcpFlags = Schema.scalars([
        "FIN": 1, "SYN": 2, "RST": 3, "PSH": 4, "ACK": 5, "URG": 6, "ECE": 7, "CWR": 8, "NS": 9,
    ])
    static let layer4 = Schema(
        [
            "TCP": .init(
                number: 1,
                message: Schema([
                    "source_port": .init(number: 1), "destination_port": .init(number: 2),
                    "flags": .init(number: 3, message: tcpFlags),
                ])),
            "UDP": .init(number: 2, message: ports), "ICMPv4": .init(number: 3, message: icmp),
            "ICMPv6": .init(number: 4, message: icmp), "SCTP": .init(number: 5, message: ports),
            "VRRP": .init(number: 6, message: .scalars(["type": 1, "vrid": 2, "priority": 3])),
            "IGMP": .init(number: 7, message: .scalars(["type": 1, "group_address": 2])),
        ])
    static let dns = Schema.scalars([
        "query": 1, "ips": 2, "ttl": 3, "cnames": 4, "observation_source": 5, "rcode": 6, "qtypes": 7, "rrtypes": 8,
    ])
    static let layer7 = Schema(
        [
            "type": .init(number: 1), "latency_ns": .init(number: 2), "dns": .init(number: 100, message: dns),
            "http": .init(number: 101), "kafka": .init(number: 102),
        ])
    static let nameAndNamespace = Schema.scalars(["name": 1, "namespace": 2])

    static let flow = Schema(
        [
            "time": .init(number: 1), "uuid": .init(number: 34),
            "emitter": .init(number: 41, message: .scalars(["name": 1, "version": 2])),
            "verdict": .init(number: 2), "drop_reason": .init(number: 3), "auth_type": .init(number: 35),
            "ethernet": .init(number: 4, message: .scalars(["source": 1, "destination": 2])),
            "IP": .init(number: 5, message: ip), "l4": .init(number: 6, message: layer4),
            "tunnel": .init(number: 39), "source": .init(number: 8, message: endpoint),
            "destination": .init(number: 9, message: endpoint), "Type": .init(number: 10),
            "node_name": .init(number: 11), "node_labels": .init(number: 37), "source_names": .init(number: 13),
            "destination_names": .init(number: 14), "l7": .init(number: 15, message: layer7),
            "reply": .init(number: 16),
            "event_type": .init(number: 19, message: .scalars(["type": 1, "sub_type": 2])),
            "source_service": .init(number: 20, message: nameAndNamespace),
            "destination_service": .init(number: 21, message: nameAndNamespace),
            "traffic_direction": .init(number: 22), "policy_match_type": .init(number: 23),
            "trace_observation_point": .init(number: 24), "trace_reason": .init(number: 36),
            "file": .init(number: 38), "drop_reason_desc": .init(number: 25), "is_reply": .init(number: 26),
            "debug_capture_point": .init(number: 27),
            "interface": .init(number: 28, message: .scalars(["index": 1, "name": 2])),
            "proxy_port": .init(number: 29), "trace_context": .init(number: 30),
            "sock_xlate_point": .init(number: 31), "socket_cookie": .init(number: 32),
            "cgroup_id": .init(number: 33), "Summary": .init(number: 100000), "extensions": .init(number: 150000),
            "egress_allowed_by": .init(number: 21001), "ingress_allowed_by": .init(number: 21002),
            "egress_denied_by": .init(number: 21004), "ingress_denied_by": .init(number: 21005),
            "policy_log": .init(number: 21006), "aggregate": .init(number: 21007),
            "ip_trace_id": .init(number: 40, message: .scalars(["trace_id": 1, "ip_option_type": 2])),
        ])
}
