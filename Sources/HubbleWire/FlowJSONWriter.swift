import Flows
import Foundation
import HubbleAPI
import SwiftProtobuf

/// Writes a flow as one jsonpb `GetFlowsResponse` line straight from the agent's `Flow`, with
/// no protobuf message in between: what flow logs write at volume. The bytes are the ones
/// `FlowJSONLines.unorderedLine(FlowMessage.make(flow))` gives (fields by number, proto names,
/// 64-bit integers as strings, enum names), which the tests check field for field; a field mask
/// is applied while writing, so a masked line costs less than a full one.
public struct FlowJSONWriter: Sendable {
    let mask: FlowFieldMask.Node?

    public init(mask: FlowFieldMask? = nil) { self.mask = mask?.root }

    /// Appends `{"flow":{…},"node_name":…,"time":…}` and a newline.
    public func appendLine(_ flow: Flow, to out: inout [UInt8]) {
        appendLine(flow, aggregate: nil, nodeName: !flow.nodeName.isEmpty, to: &out)
    }

    /// Appends the line of an aggregate, as Hubble's aggregating exporter writes it: the flow
    /// under the mask (the fields flows were grouped by, and the time of the first) with
    /// `aggregate`, the counts by traffic direction; the line's `node_name` only when the mask
    /// keeps the flow's.
    public func appendAggregateLine(_ flow: Flow, counts: FlowAggregateCounts, to out: inout [UInt8]) {
        appendLine(flow, aggregate: counts, nodeName: !flow.nodeName.isEmpty && Self.keeps(mask, 11), to: &out)
    }

    /// Appends the flow object alone, `{…}` under the mask: what aggregation groups flows by.
    public func appendFlowObject(_ flow: Flow, to out: inout [UInt8]) {
        var json = JSONBytes()
        defer { json.free() }
        writeFlow(flow, time: Self.keeps(mask, 1) ? Self.timestamp(flow.time) : [], mask: mask, into: &json)
        out.append(contentsOf: UnsafeBufferPointer(start: json.base, count: json.count))
    }

    private func appendLine(_ flow: Flow, aggregate: FlowAggregateCounts?, nodeName: Bool, to out: inout [UInt8]) {
        var json = JSONBytes()
        defer { json.free() }
        let time = Self.timestamp(flow.time)
        json.raw("{\"flow\":")
        writeFlow(flow, time: time, mask: mask, aggregate: aggregate, into: &json)
        if nodeName {
            json.raw(",\"node_name\":")
            json.string(flow.nodeName)
        }
        json.raw(",\"time\":")
        json.put(time)
        json.raw("}\n")
        out.append(contentsOf: UnsafeBufferPointer(start: json.base, count: json.count))
    }

    // MARK: - flow.Flow, fields in number order as swift-protobuf writes them

    private func writeFlow(
        _ flow: Flow, time: [UInt8], mask: FlowFieldMask.Node?, aggregate: FlowAggregateCounts? = nil,
        into json: inout JSONBytes
    ) {
        var object = json.object()
        defer { json.close(object) }
        let dropped = flow.verdict == .dropped
        if Self.keeps(mask, 1) {
            object.key("time", &json)
            json.put(time)
        }
        if Self.keeps(mask, 2), let name = Names.verdicts[flow.verdict.rawValue] {
            object.key("verdict", &json)
            json.put(name)
        }
        if dropped, flow.dropReason != 0 {
            if Self.keeps(mask, 3) {
                object.key("drop_reason", &json)
                json.uint(UInt64(UInt32(truncatingIfNeeded: flow.dropReason)))
            }
        }
        if let ethernet = flow.ethernet, Self.keeps(mask, 4) {
            let inner = Self.inner(mask, 4)
            object.key("ethernet", &json)
            var fields = json.object()
            if Self.keeps(inner, 1) { fields.string("source", ethernet.source.description, &json) }
            if Self.keeps(inner, 2) { fields.string("destination", ethernet.destination.description, &json) }
            json.close(fields)
        }
        if Self.keeps(mask, 5) {
            let inner = Self.inner(mask, 5)
            object.key("IP", &json)
            var fields = json.object()
            if Self.keeps(inner, 1) { fields.string("source", flow.sourceIP, &json) }
            if Self.keeps(inner, 2) { fields.string("destination", flow.destinationIP, &json) }
            if Self.keeps(inner, 3) {
                fields.key("ipVersion", &json)
                json.raw(flow.ipVersion == 2 ? "\"IPv6\"" : "\"IPv4\"")
            }
            json.close(fields)
        }
        if Self.keeps(mask, 6) {
            object.key("l4", &json)
            writeLayer4(flow.l4, mask: Self.inner(mask, 6), into: &json)
        }
        if Self.keeps(mask, 8) {
            object.key("source", &json)
            writeEndpoint(flow.source, mask: Self.inner(mask, 8), into: &json)
        }
        if Self.keeps(mask, 9) {
            object.key("destination", &json)
            writeEndpoint(flow.destination, mask: Self.inner(mask, 9), into: &json)
        }
        if Self.keeps(mask, 10) {
            object.key("Type", &json)
            json.raw(flow.isL7 ? "\"L7\"" : "\"L3_L4\"")
        }
        if !flow.nodeName.isEmpty, Self.keeps(mask, 11) { object.string("node_name", flow.nodeName, &json) }
        if !flow.sourceNames.isEmpty, Self.keeps(mask, 13) { object.strings("source_names", flow.sourceNames, &json) }
        if !flow.destinationNames.isEmpty, Self.keeps(mask, 14) {
            object.strings("destination_names", flow.destinationNames, &json)
        }
        if let dns = flow.dns, Self.keeps(mask, 15) {
            object.key("l7", &json)
            writeLayer7(dns, latency: flow.latencyNanoseconds, mask: Self.inner(mask, 15), into: &json)
        }
        if flow.isReply == true, Self.keeps(mask, 16) {
            object.key("reply", &json)
            json.raw("true")
        }
        if Self.keeps(mask, 19) {
            let inner = Self.inner(mask, 19)
            object.key("event_type", &json)
            var fields = json.object()
            if flow.eventType != 0, Self.keeps(inner, 1) {
                fields.key("type", &json)
                json.int(Int64(Int32(truncatingIfNeeded: flow.eventType)))
            }
            let subType = Int32(truncatingIfNeeded: flow.eventSubType)
            if subType != 0, Self.keeps(inner, 2) {
                fields.key("sub_type", &json)
                json.int(Int64(subType))
            }
            json.close(fields)
        }
        if let service = flow.sourceService, Self.keeps(mask, 20) {
            object.key("source_service", &json)
            writeService(service, mask: Self.inner(mask, 20), into: &json)
        }
        if let service = flow.destinationService, Self.keeps(mask, 21) {
            object.key("destination_service", &json)
            writeService(service, mask: Self.inner(mask, 21), into: &json)
        }
        if Self.keeps(mask, 22), let name = Names.trafficDirections[flow.trafficDirection.rawValue] {
            object.key("traffic_direction", &json)
            json.put(name)
        }
        if flow.isTrace, Self.keeps(mask, 24), let name = Names.observationPoints[flow.observationPoint.rawValue] {
            object.key("trace_observation_point", &json)
            json.put(name)
        }
        if dropped, flow.dropReason != 0, Self.keeps(mask, 25) {
            object.key("drop_reason_desc", &json)
            // A value the proto does not name is written as its number, as swift-protobuf does.
            if let name = Names.dropReasons[flow.dropReason] {
                json.put(name)
            } else {
                json.int(Int64(Int32(truncatingIfNeeded: flow.dropReason)))
            }
        }
        if let isReply = flow.isReply, Self.keeps(mask, 26) {
            object.key("is_reply", &json)
            json.raw(isReply ? "true" : "false")
        }
        if let interface = flow.interface, Self.keeps(mask, 28) {
            let inner = Self.inner(mask, 28)
            object.key("interface", &json)
            var fields = json.object()
            if interface.index != 0, Self.keeps(inner, 1) {
                fields.key("index", &json)
                json.uint(UInt64(UInt32(bitPattern: interface.index)))
            }
            if !interface.name.isEmpty, Self.keeps(inner, 2) { fields.string("name", interface.name, &json) }
            json.close(fields)
        }
        if Self.keeps(mask, 34) {
            object.key("uuid", &json)
            json.uuid(flow.uuid)
        }
        if let reason = flow.traceReason, Self.keeps(mask, 36), let name = Names.traceReasons[reason.rawValue] {
            object.key("trace_reason", &json)
            json.put(name)
        }
        if Self.keeps(mask, 41) {
            let inner = Self.inner(mask, 41)
            object.key("emitter", &json)
            var fields = json.object()
            if Self.keeps(inner, 1) { fields.string("name", FlowMessage.emitterName, &json) }
            if Self.keeps(inner, 2), !OspreyVersion.current.isEmpty {
                fields.string("version", OspreyVersion.current, &json)
            }
            json.close(fields)
        }
        if let aggregate {  // field 21007, not a field a mask names
            object.key("aggregate", &json)
            var fields = json.object()
            let counts: [(StaticString, UInt32)] = [
                ("ingress_flow_count", aggregate.ingress), ("egress_flow_count", aggregate.egress),
                ("unknown_direction_flow_count", aggregate.unknown),
            ]
            for (name, count) in counts where count != 0 {
                fields.key(name, &json)
                json.uint(UInt64(count))
            }
            json.close(fields)
        }
        if Self.keeps(mask, 100_000) {
            let summary = flow.summary
            if !summary.isEmpty { object.string("Summary", summary, &json) }
        }
        if Self.keeps(mask, 150_000) { writeExtensions(flow, into: &object, &json) }
    }

    /// `FlowExtensions.make(flow)` as an Any holding a Struct, its keys in sorted order.
    private func writeExtensions(_ flow: Flow, into object: inout JSONBytes.Object, _ json: inout JSONBytes) {
        let kernel = flow.kernelDropReason
        let location = flow.kernelDropLocation
        let address = flow.serviceAddress
        let latency = flow.dns == nil && flow.latencyNanoseconds > 0 ? flow.latencyNanoseconds : nil
        guard kernel != nil || location != nil || address != nil || latency != nil else { return }
        object.key("extensions", &json)
        json.raw("{\"@type\":\"type.googleapis.com/google.protobuf.Struct\",\"value\":")
        var fields = json.object()
        if let location { fields.string("kernel_drop_location", location, &json) }
        if let kernel { fields.string("kernel_drop_reason", kernel, &json) }
        if let address { fields.string("service_address", address, &json) }
        if let latency {
            // A Struct holds numbers as doubles, written as swift-protobuf does (`250000.0`).
            fields.key("tcp_handshake_latency_ns", &json)
            json.rawText("\(Double(latency))")
        }
        json.close(fields)
        json.put(UInt8(ascii: "}"))
    }

    private func writeLayer4(_ l4: Layer4, mask: FlowFieldMask.Node?, into json: inout JSONBytes) {
        var object = json.object()
        defer { json.close(object) }
        switch l4 {
        case .tcp(let source, let destination, let flags):
            guard Self.keeps(mask, 1) else { return }
            let inner = Self.inner(mask, 1)
            object.key("TCP", &json)
            var fields = json.object()
            fields.ports(source, destination, mask: inner, &json)
            if Self.keeps(inner, 3) {
                let kept = Self.inner(inner, 3)
                fields.key("flags", &json)
                var bits = json.object()
                for (index, (flag, name)) in Self.tcpFlagNames.enumerated()
                where flags.contains(flag) && Self.keeps(kept, index + 1) {
                    bits.key(name, &json)
                    json.raw("true")
                }
                json.close(bits)
            }
            json.close(fields)
        case .udp(let source, let destination):
            guard Self.keeps(mask, 2) else { return }
            object.key("UDP", &json)
            var fields = json.object()
            fields.ports(source, destination, mask: Self.inner(mask, 2), &json)
            json.close(fields)
        case .icmpv4(let type, let code):
            guard Self.keeps(mask, 3) else { return }
            object.key("ICMPv4", &json)
            writeICMP(type, code, mask: Self.inner(mask, 3), into: &json)
        case .icmpv6(let type, let code):
            guard Self.keeps(mask, 4) else { return }
            object.key("ICMPv6", &json)
            writeICMP(type, code, mask: Self.inner(mask, 4), into: &json)
        case .other: break
        }
    }

    static let tcpFlagNames: [(TCPFlags, StaticString)] = [
        (.fin, "FIN"), (.syn, "SYN"), (.rst, "RST"), (.psh, "PSH"), (.ack, "ACK"), (.urg, "URG"), (.ece, "ECE"),
        (.cwr, "CWR"),
    ]

    private func writeICMP(_ type: UInt8, _ code: UInt8, mask: FlowFieldMask.Node?, into json: inout JSONBytes) {
        var fields = json.object()
        if type != 0, Self.keeps(mask, 1) {
            fields.key("type", &json)
            json.uint(UInt64(type))
        }
        if code != 0, Self.keeps(mask, 2) {
            fields.key("code", &json)
            json.uint(UInt64(code))
        }
        json.close(fields)
    }

    private func writeEndpoint(_ endpoint: Endpoint, mask: FlowFieldMask.Node?, into json: inout JSONBytes) {
        var object = json.object()
        defer { json.close(object) }
        guard !endpoint.namespace.isEmpty else {
            let reserved = endpoint.reservedIdentity ?? .world
            if Self.keeps(mask, 2) {
                object.key("identity", &json)
                json.uint(UInt64(reserved.rawValue))
            }
            if Self.keeps(mask, 4) { object.strings("labels", [reserved.label], &json) }
            return
        }
        if endpoint.identity != 0, Self.keeps(mask, 2) {
            object.key("identity", &json)
            json.uint(UInt64(endpoint.identity))
        }
        if Self.keeps(mask, 3) { object.string("namespace", endpoint.namespace, &json) }
        let labels = endpoint.labels
        if !labels.isEmpty, Self.keeps(mask, 4) { object.strings("labels", labels, &json) }
        if !endpoint.podName.isEmpty, Self.keeps(mask, 5) { object.string("pod_name", endpoint.podName, &json) }
        let workloads = endpoint.workloads
        if !workloads.isEmpty, Self.keeps(mask, 6) {
            let inner = Self.inner(mask, 6)
            object.key("workloads", &json)
            json.put(UInt8(ascii: "["))
            for (index, workload) in workloads.enumerated() {
                if index > 0 { json.put(UInt8(ascii: ",")) }
                var fields = json.object()
                if !workload.name.isEmpty, Self.keeps(inner, 1) { fields.string("name", workload.name, &json) }
                if !workload.kind.isEmpty, Self.keeps(inner, 2) { fields.string("kind", workload.kind, &json) }
                json.close(fields)
            }
            json.put(UInt8(ascii: "]"))
        }
        if !endpoint.clusterName.isEmpty, Self.keeps(mask, 7) {
            object.string("cluster_name", endpoint.clusterName, &json)
        }
    }

    private func writeService(_ service: ServiceRef, mask: FlowFieldMask.Node?, into json: inout JSONBytes) {
        var fields = json.object()
        if !service.name.isEmpty, Self.keeps(mask, 1) { fields.string("name", service.name, &json) }
        if !service.namespace.isEmpty, Self.keeps(mask, 2) { fields.string("namespace", service.namespace, &json) }
        json.close(fields)
    }

    private func writeLayer7(_ dns: DNSInfo, latency: UInt64, mask: FlowFieldMask.Node?, into json: inout JSONBytes) {
        var object = json.object()
        defer { json.close(object) }
        if Self.keeps(mask, 1) {
            object.key("type", &json)
            json.raw(dns.isResponse ? "\"RESPONSE\"" : "\"REQUEST\"")
        }
        if latency != 0, Self.keeps(mask, 2) {
            object.key("latency_ns", &json)
            json.put(UInt8(ascii: "\""))
            json.uint(latency)
            json.put(UInt8(ascii: "\""))
        }
        guard Self.keeps(mask, 100) else { return }
        let inner = Self.inner(mask, 100)
        object.key("dns", &json)
        var fields = json.object()
        if !dns.query.isEmpty, Self.keeps(inner, 1) { fields.string("query", dns.query, &json) }
        if dns.isResponse {
            if !dns.ips.isEmpty, Self.keeps(inner, 2) { fields.strings("ips", dns.ips, &json) }
            if dns.ttl != 0, Self.keeps(inner, 3) {
                fields.key("ttl", &json)
                json.uint(UInt64(dns.ttl))
            }
            if !dns.cnames.isEmpty, Self.keeps(inner, 4) { fields.strings("cnames", dns.cnames, &json) }
        }
        if Self.keeps(inner, 5) { fields.string("observation_source", FlowMessage.dnsObservationSource, &json) }
        if dns.isResponse, dns.rcode != 0, Self.keeps(inner, 6) {
            fields.key("rcode", &json)
            json.uint(UInt64(UInt32(truncatingIfNeeded: dns.rcode)))
        }
        if !dns.qtypes.isEmpty, Self.keeps(inner, 7) { fields.strings("qtypes", dns.qtypes, &json) }
        if dns.isResponse, !dns.rrtypes.isEmpty, Self.keeps(inner, 8) {
            fields.strings("rrtypes", dns.rrtypes, &json)
        }
        json.close(fields)
    }

    // MARK: - the mask

    /// Whether the field numbered `number` is written under `mask` (nil: everything is).
    @inline(__always)
    static func keeps(_ mask: FlowFieldMask.Node?, _ number: Int) -> Bool {
        guard let children = mask?.children else { return true }
        return children[number] != nil
    }

    /// The mask inside a kept message field (nil: all of it).
    @inline(__always)
    static func inner(_ mask: FlowFieldMask.Node?, _ number: Int) -> FlowFieldMask.Node? {
        guard let child = mask?.children?[number], child.children != nil else { return nil }
        return child
    }

    // MARK: - values

    /// `"2026-11-30T11:11:22.123456Z"` as swift-protobuf writes a Timestamp (0, 3, 6 or 9
    /// fractional digits), from the microsecond-rounded time `FlowMessage.timestamp` keeps.
    static func timestamp(_ date: Date) -> [UInt8] {
        let stamp = FlowMessage.timestamp(date)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        out.append(UInt8(ascii: "\""))
        let days = Int(stamp.seconds >= 0 ? stamp.seconds / 86400 : (stamp.seconds - 86399) / 86400)
        let secondOfDay = Int(stamp.seconds - Int64(days) * 86400)
        // Days since 1970-01-01 to a civil date (proleptic Gregorian).
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var value = value
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(value / divisor))
                value %= divisor
                divisor /= 10
            }
        }
        digits(year, 4)
        out.append(UInt8(ascii: "-"))
        digits(month, 2)
        out.append(UInt8(ascii: "-"))
        digits(day, 2)
        out.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2)
        out.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2)
        out.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2)
        let nanos = Int(stamp.nanos)
        if nanos != 0 {
            out.append(UInt8(ascii: "."))
            if nanos % 1_000_000 == 0 {
                digits(nanos / 1_000_000, 3)
            } else if nanos % 1000 == 0 {
                digits(nanos / 1000, 6)
            } else {
                digits(nanos, 9)
            }
        }
        out.append(UInt8(ascii: "Z"))
        out.append(UInt8(ascii: "\""))
        return out
    }

    /// Enum names as quoted JSON, by raw value (the zero value is absent: it is not written).
    enum Names {
        static let verdicts = quoted(ProtoNames.verdicts.names.map { ($0.key.rawValue, $0.value) })
        static let dropReasons = quoted(ProtoNames.dropReasons.names.map { ($0.key.rawValue, $0.value) })
        static let trafficDirections = quoted(ProtoNames.trafficDirections.names.map { ($0.key.rawValue, $0.value) })
        static let observationPoints = quoted(
            ProtoNames.table(Flow_TraceObservationPoint.allCases, "trace_observation_point") { value in
                Flow_Flow.with { $0.traceObservationPoint = value }
            }.names.map { ($0.key.rawValue, $0.value) })

        static let traceReasons = quoted(
            ProtoNames.table(Flow_TraceReason.allCases, "trace_reason") { value in
                Flow_Flow.with { $0.traceReason = value }
            }.names.map { ($0.key.rawValue, $0.value) })

        /// Looked up per flow: an array by raw value rather than a dictionary.
        struct Table: Sendable {
            let names: [[UInt8]?]
            subscript(_ value: Int) -> [UInt8]? { names.indices.contains(value) ? names[value] : nil }
        }

        static func quoted(_ names: [(Int, String)]) -> Table {
            var table = [[UInt8]?](repeating: nil, count: (names.map(\.0).max() ?? 0) + 1)
            for (value, name) in names where value > 0 { table[value] = Array("\"\(name)\"".utf8) }
            return Table(names: table)
        }
    }
}

/// How many flows one aggregated flow-log line stands for, by traffic direction (`flow.Aggregate`).
public struct FlowAggregateCounts: Sendable, Equatable {
    public var ingress: UInt32 = 0
    public var egress: UInt32 = 0
    public var unknown: UInt32 = 0

    public init() {}

    /// Counts one more flow; false (nothing counted) when its direction's count is full.
    public mutating func count(_ direction: TrafficDirection) -> Bool {
        func add(_ count: inout UInt32) -> Bool {
            guard count < .max else { return false }
            count += 1
            return true
        }
        switch direction {
        case .ingress: return add(&ingress)
        case .egress: return add(&egress)
        case .unknown: return add(&unknown)
        }
    }

    public var total: UInt64 { UInt64(ingress) + UInt64(egress) + UInt64(unknown) }
}

/// A JSON byte buffer with the few writes a flow needs.
struct JSONBytes {
    /// The line so far, in memory of its own: a store per byte, no array bookkeeping.
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    func free() { base.deallocate() }

    private mutating func reserve(_ more: Int) {
        guard count + more > capacity else { return }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: max(capacity * 2, count + more))
        grown.initialize(from: base, count: count)
        base.deallocate()
        base = grown
        capacity = max(capacity * 2, count + more)
    }

    @inline(__always)
    mutating func put(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    mutating func put(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        (base + count).initialize(from: source, count: bytes.count)
        count += bytes.count
    }

    mutating func put(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { self.put($0) } }

    /// An object being written: whether a field needs a comma before it.
    struct Object {
        var empty = true

        mutating func key(_ name: StaticString, _ json: inout JSONBytes) {
            let opening = empty ? UInt8(ascii: "{") : UInt8(ascii: ",")
            empty = false
            name.withUTF8Buffer { name in
                json.put(opening)
                json.put(UInt8(ascii: "\""))
                json.put(name)
                json.put(UInt8(ascii: "\""))
                json.put(UInt8(ascii: ":"))
            }
        }

        mutating func string(_ name: StaticString, _ value: String, _ json: inout JSONBytes) {
            key(name, &json)
            json.string(value)
        }

        mutating func strings(_ name: StaticString, _ values: [String], _ json: inout JSONBytes) {
            key(name, &json)
            json.put(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { json.put(UInt8(ascii: ",")) }
                json.string(value)
            }
            json.put(UInt8(ascii: "]"))
        }

        mutating func ports(_ source: UInt16, _ destination: UInt16, mask: FlowFieldMask.Node?, _ json: inout JSONBytes)
        {
            if source != 0, FlowJSONWriter.keeps(mask, 1) {
                key("source_port", &json)
                json.uint(UInt64(source))
            }
            if destination != 0, FlowJSONWriter.keeps(mask, 2) {
                key("destination_port", &json)
                json.uint(UInt64(destination))
            }
        }
    }

    /// Starts an object; its `{` is written with the first field (or by `close` when it has none).
    func object() -> Object { Object() }

    mutating func close(_ object: Object) {
        if object.empty { put(UInt8(ascii: "{")) }
        put(UInt8(ascii: "}"))
    }

    mutating func raw(_ text: StaticString) { text.withUTF8Buffer { put($0) } }

    mutating func rawText(_ text: String) { put(Array(text.utf8)) }

    mutating func uint(_ value: UInt64) {
        var value = value
        var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for UInt64.max's 20 digits
        withUnsafeMutableBytes(of: &buffer) { raw in
            let digits = raw.bindMemory(to: UInt8.self)
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            } while value > 0
            put(UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }

    mutating func int(_ value: Int64) {
        if value < 0 { put(UInt8(ascii: "-")) }
        uint(value.magnitude)
    }

    /// A UUID in lower case, as `uuidString.lowercased()`.
    mutating func uuid(_ uuid: UUID) {
        put(UInt8(ascii: "\""))
        uuid.withLowercaseText { put($0) }
        put(UInt8(ascii: "\""))
    }

    /// A quoted string escaped as swift-protobuf does: `\"`, `\\`, the short escapes, and
    /// `\u00XX` for C0 and C1 control characters; everything else as UTF-8.
    mutating func string(_ value: String) {
        put(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { bytes in
            // Runs of bytes that need no escape go in with one append.
            var runStart = 0
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == 34 || byte == 92 || byte == 127 || byte == 0xC2 else {
                    index += 1
                    continue
                }
                if byte == 0xC2, index + 1 >= bytes.count || !(0x80...0x9F).contains(bytes[index + 1]) {
                    index += 1
                    continue
                }
                put(UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                switch byte {
                case 8: raw("\\b")
                case 9: raw("\\t")
                case 10: raw("\\n")
                case 12: raw("\\f")
                case 13: raw("\\r")
                case 34: raw("\\\"")
                case 92: raw("\\\\")
                case 0xC2:  // U+0080…U+009F, C1 controls
                    index += 1
                    hexEscape(bytes[index])
                default: hexEscape(byte)
                }
                index += 1
                runStart = index
            }
            put(UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        put(UInt8(ascii: "\""))
    }

    static let upperHex = Array("0123456789ABCDEF".utf8)

    private mutating func hexEscape(_ byte: UInt8) {
        let hex = Self.upperHex
        raw("\\u00")
        put(hex[Int(byte >> 4)])
        put(hex[Int(byte & 15)])
    }
}
