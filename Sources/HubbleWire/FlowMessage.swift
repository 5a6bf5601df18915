import Flows
import Foundation
import HubbleAPI
import SwiftProtobuf

/// The agent's flows as Hubble's protobuf messages: built only where a flow leaves the
/// process (gRPC, JSON lines), so the pipeline never pays for them.
public enum FlowMessage {
    /// Osprey's name in `Flow.emitter`.
    public static let emitterName = "Osprey"

    /// `l7.dns.observation_source` of DNS flows: where the message was read. Cilium's DNS proxy
    /// says `proxy`; Osprey reads DNS in its datapath (tc programs on the pod's veth), and says so.
    public static let dnsObservationSource = "datapath"

    public static func make(_ flow: Flow, version: String = OspreyVersion.current) -> Flow_Flow {
        var message = Flow_Flow()
        message.time = timestamp(flow.time)
        message.uuid = flow.uuid.lowercaseText
        message.emitter = .with {
            $0.name = emitterName
            $0.version = version
        }
        message.verdict = Flow_Verdict(rawValue: flow.verdict.rawValue) ?? .unknown
        if flow.verdict == .dropped {
            message.dropReason = UInt32(truncatingIfNeeded: flow.dropReason)
            message.dropReasonDesc = Flow_DropReason(rawValue: flow.dropReason) ?? .unknown
        }
        if let extensions = FlowExtensions.make(flow) { message.extensions = extensions }
        if let ethernet = flow.ethernet {
            message.ethernet = .with {
                $0.source = ethernet.source.description
                $0.destination = ethernet.destination.description
            }
        }
        message.ip = .with {
            $0.source = flow.sourceIP
            $0.destination = flow.destinationIP
            $0.ipVersion = flow.ipVersion == 2 ? .ipv6 : .ipv4
        }
        message.l4 = layer4(flow.l4)
        message.source = endpoint(flow.source)
        message.destination = endpoint(flow.destination)
        message.sourceNames = flow.sourceNames
        message.destinationNames = flow.destinationNames
        if let service = flow.sourceService { message.sourceService = self.service(service) }
        if let service = flow.destinationService { message.destinationService = self.service(service) }
        message.type = flow.isL7 ? .l7 : .l3L4
        message.nodeName = flow.nodeName
        message.eventType = .with {
            $0.type = Int32(flow.eventType)
            $0.subType = Int32(truncatingIfNeeded: flow.eventSubType)
        }
        message.trafficDirection = Flow_TrafficDirection(rawValue: flow.trafficDirection.rawValue) ?? .unknown
        if flow.isTrace {
            message.traceObservationPoint =
                Flow_TraceObservationPoint(rawValue: flow.observationPoint.rawValue) ?? .unknownPoint
        }
        if let isReply = flow.isReply {
            message.isReply = Google_Protobuf_BoolValue(isReply)
            message.reply = isReply
            message.traceReason = flow.traceReason.flatMap { Flow_TraceReason(rawValue: $0.rawValue) } ?? .unknown
        }
        if let interface = flow.interface {
            message.interface = .with {
                $0.index = UInt32(bitPattern: interface.index)
                $0.name = interface.name
            }
        }
        if let dns = flow.dns {
            message.l7 = .with {
                $0.type = dns.isResponse ? .response : .request
                $0.latencyNs = flow.latencyNanoseconds
                $0.dns = .with { record in
                    record.query = dns.query
                    record.observationSource = FlowMessage.dnsObservationSource
                    record.qtypes = dns.qtypes
                    if dns.isResponse {
                        record.ips = dns.ips
                        record.ttl = dns.ttl
                        record.cnames = dns.cnames
                        record.rcode = UInt32(dns.rcode)
                        record.rrtypes = dns.rrtypes
                    }
                }
            }
        }
        message.summary = flow.summary
        return message
    }

    static func endpoint(_ endpoint: Endpoint) -> Flow_Endpoint {
        var message = Flow_Endpoint()
        guard !endpoint.namespace.isEmpty else {
            // No pod: a reserved identity (host, remote-node, kube-apiserver), else world.
            let reserved = endpoint.reservedIdentity ?? .world
            message.identity = reserved.rawValue
            message.labels = [reserved.label]
            return message
        }
        message.identity = endpoint.identity
        message.namespace = endpoint.namespace
        message.podName = endpoint.podName
        message.labels = endpoint.labels
        message.clusterName = endpoint.clusterName
        message.workloads = endpoint.workloads.map { workload in
            .with {
                $0.kind = workload.kind
                $0.name = workload.name
            }
        }
        return message
    }

    static func service(_ service: ServiceRef) -> Flow_Service {
        .with {
            $0.name = service.name
            $0.namespace = service.namespace
        }
    }

    static func layer4(_ l4: Layer4) -> Flow_Layer4 {
        var message = Flow_Layer4()
        switch l4 {
        case .tcp(let source, let destination, let flags):
            message.tcp = .with {
                $0.sourcePort = UInt32(source)
                $0.destinationPort = UInt32(destination)
                $0.flags = .with {
                    $0.fin = flags.contains(.fin)
                    $0.syn = flags.contains(.syn)
                    $0.rst = flags.contains(.rst)
                    $0.psh = flags.contains(.psh)
                    $0.ack = flags.contains(.ack)
                    $0.urg = flags.contains(.urg)
                    $0.ece = flags.contains(.ece)
                    $0.cwr = flags.contains(.cwr)
                }
            }
        case .udp(let source, let destination):
            message.udp = .with {
                $0.sourcePort = UInt32(source)
                $0.destinationPort = UInt32(destination)
            }
        case .icmpv4(let type, let code):
            message.icmpv4 = .with {
                $0.type = UInt32(type)
                $0.code = UInt32(code)
            }
        case .icmpv6(let type, let code):
            message.icmpv6 = .with {
                $0.type = UInt32(type)
                $0.code = UInt32(code)
            }
        case .other: break
        }
        return message
    }

    public static func lostEvent(_ lost: LostEvents) -> Flow_LostEvent {
        .with {
            $0.source = Flow_LostEventSource(rawValue: lost.source.rawValue) ?? .unknownLostEventSource
            $0.numEventsLost = lost.count
            $0.first = timestamp(lost.first)
            $0.last = timestamp(lost.last)
        }
    }

    public static func timestamp(_ date: Date) -> Google_Protobuf_Timestamp {
        let seconds = (date.timeIntervalSince1970).rounded(.down)
        // A Date holds about 0.2 µs at today's epoch: round to the microsecond, so that .251 does
        // not come out as .250999928.
        let nanos = Int32(((date.timeIntervalSince1970 - seconds) * 1e6).rounded()) * 1000
        return Google_Protobuf_Timestamp(seconds: Int64(seconds), nanos: min(nanos, 999_999_999))
    }

    public static func date(_ timestamp: Google_Protobuf_Timestamp) -> Date {
        Date(timeIntervalSince1970: TimeInterval(timestamp.seconds) + TimeInterval(timestamp.nanos) / 1e9)
    }
}
