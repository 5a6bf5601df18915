import Foundation

/// A flow as one line of `hubble observe -o jsonpb`: `{"flow":{…},"node_name":…,"time":…}` with
/// Hubble's protobuf field names and enum names. The kernel's own drop reason, which Hubble's
/// schema has no field for, travels in `extensions`.
public enum FlowJSON {
    public static func line(_ flow: Flow) -> String {
        let time = timestamp(flow.time)
        var object: [String: Any] = [
            "time": time, "uuid": flow.uuid.uuidString.lowercased(), "verdict": flow.verdict.description,
            "IP": [
                "source": flow.sourceIP, "destination": flow.destinationIP,
                "ipVersion": flow.ipVersion == 2 ? "IPv6" : "IPv4",
            ],
            "l4": l4(flow.l4), "Type": flow.isL7 ? "L7" : "L3_L4", "node_name": flow.nodeName,
            "event_type": ["type": flow.eventType, "sub_type": flow.eventSubType],
            "traffic_direction": ["TRAFFIC_DIRECTION_UNKNOWN", "INGRESS", "EGRESS"][flow.trafficDirection.rawValue],
            "trace_observation_point": observation(flow.observationPoint), "Summary": flow.summary,
            "source": endpoint(flow.source), "destination": endpoint(flow.destination),
        ]
        if let isReply = flow.isReply { object["is_reply"] = isReply }
        if let ethernet = flow.ethernet {
            object["ethernet"] = [
                "source": ethernet.source.description, "destination": ethernet.destination.description,
            ]
        }
        if flow.verdict == .dropped {
            object["drop_reason_desc"] = DropReasons.name(flow.dropReason)
            object["drop_reason"] = flow.dropReason
        }
        if let kernel = flow.kernelDropReason {
            object["extensions"] = ["@type": "type.googleapis.com/osprey.v1.KernelDrop", "reason": kernel]
        }
        if let interface = flow.interface { object["interface"] = ["index": interface.index, "name": interface.name] }
        if let service = flow.sourceService {
            object["source_service"] = ["name": service.name, "namespace": service.namespace]
        }
        if let service = flow.destinationService {
            object["destination_service"] = ["name": service.name, "namespace": service.namespace]
        }
        if let dns = flow.dns {
            var record: [String: Any] = ["query": dns.query, "qtypes": dns.qtypes]
            if dns.isResponse {
                record["rcode"] = dns.rcode
                record["ips"] = dns.ips
                record["ttl"] = dns.ttl
                record["cnames"] = dns.cnames
                record["rrtypes"] = dns.rrtypes
            }
            object["l7"] = [
                "type": dns.isResponse ? "RESPONSE" : "REQUEST", "latency_ns": String(flow.latencyNanoseconds),
                "dns": record,
            ]
        } else if flow.latencyNanoseconds > 0 {
            object["l7"] = ["latency_ns": String(flow.latencyNanoseconds)]
        }
        let wrapper: [String: Any] = ["flow": object, "node_name": flow.nodeName, "time": time]
        let data =
            (try? JSONSerialization.data(withJSONObject: wrapper, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func endpoint(_ endpoint: Endpoint) -> [String: Any] {
        var object: [String: Any] = [:]
        if !endpoint.namespace.isEmpty { object["namespace"] = endpoint.namespace }
        if !endpoint.podName.isEmpty { object["pod_name"] = endpoint.podName }
        if !endpoint.labels.isEmpty { object["labels"] = endpoint.labels }
        if !endpoint.clusterName.isEmpty { object["cluster_name"] = endpoint.clusterName }
        if !endpoint.workloads.isEmpty {
            object["workloads"] = endpoint.workloads.map { ["kind": $0.kind, "name": $0.name] }
        }
        return object
    }

    static func l4(_ l4: Layer4) -> [String: Any] {
        switch l4 {
        case .tcp(let s, let d, let flags):
            var names: [String: Bool] = [:]
            for name in flags.names { names[name] = true }
            return ["TCP": ["source_port": s, "destination_port": d, "flags": names]]
        case .udp(let s, let d): return ["UDP": ["source_port": s, "destination_port": d]]
        case .icmpv4(let type, let code): return ["ICMPv4": ["type": type, "code": code]]
        case .icmpv6(let type, let code): return ["ICMPv6": ["type": type, "code": code]]
        case .other: return [:]
        }
    }

    static func observation(_ point: ObservationPoint) -> String {
        switch point {
        case .unknown: "UNKNOWN_POINT"
        case .fromEndpoint: "FROM_ENDPOINT"
        case .toEndpoint: "TO_ENDPOINT"
        }
    }

    /// RFC 3339 with nanoseconds, UTC, as protobuf's JSON mapping writes Timestamps.
    static func timestamp(_ date: Date) -> String {
        let seconds = floor(date.timeIntervalSince1970)
        let nanos = Int((date.timeIntervalSince1970 - seconds) * 1e9)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, nanos)
    }
}
