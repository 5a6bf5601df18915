import Flows
import Foundation
import HubbleAPI
import HubbleWire
import SwiftProtobuf

/// `osprey observe` output, laid out as the hubble CLI prints it: `compact` (default), `dict`,
/// `table`, `json`/`jsonpb` (one GetFlowsResponse per line).
public struct FlowPrinter: Sendable {
    public enum Format: String, CaseIterable, Sendable {
        case compact, dict, table, json, jsonpb
    }

    public struct Options: Sendable {
        public var format: Format = .compact
        public var timeFormat: TimeFormat = .stampMilli
        public var timeZone: TimeZone = .current
        public var color = false
        public var printNodeName = false
        /// Pod, service and DNS names for addresses (hubble's `--ip-translation`); false: IPs.
        public var ipTranslation = true
        /// hubble's `--debug`: every node status event, also nodes connected or gone.
        public var debug = false
        public init() {}
    }

    let options: Options
    private var records = 0
    private var table: [[String]] = []

    public init(options: Options) { self.options = options }

    /// The text for one response (no trailing newline), or nil for what this format does not
    /// show (`table` collects rows until `finish`).
    public mutating func render(_ response: Observer_GetFlowsResponse) -> String? {
        switch options.format {
        case .json, .jsonpb: return FlowJSONLines.line(response)
        default: break
        }
        switch response.responseTypes {
        case .flow(let flow)?: return render(flow)
        case .lostEvents(let lost)?: return render(lost, response: response)
        case .nodeStatus?, nil: return nil
        }
    }

    /// Lost events in the stream's own layout, as hubble prints them: a compact line, a dict
    /// record, a table row (source in SOURCE, `EVENTS LOST` as TYPE, `CPU(n) - count` as
    /// SUMMARY). Where hubble leaves the time out, Osprey prints the last lost event's time.
    mutating func render(_ lost: Flow_LostEvent, response: Observer_GetFlowsResponse) -> String? {
        let stamp = time(lost.hasLast ? lost.last : response.time)
        switch options.format {
        case .dict:
            return dictRecord(
                ["  TIMESTAMP: \(stamp)"] + (options.printNodeName ? ["       NODE: \(response.nodeName)"] : []) + [
                    "     SOURCE: \(lost.source.name)", "       TYPE: EVENTS LOST", "    VERDICT: ",
                    "    SUMMARY: CPU(\(lost.cpu.value)) - \(lost.numEventsLost)",
                ])
        case .table:
            addTableHeader()
            table.append(
                (options.printNodeName ? [stamp, response.nodeName] : [stamp])
                    + [lost.source.name, "", "EVENTS LOST", "", "CPU(\(lost.cpu.value)) - \(lost.numEventsLost)"])
            return nil
        default:
            return "\(stamp) EVENTS LOST: \(lost.source.name) CPU(\(lost.cpu.value)) \(lost.numEventsLost)"
        }
    }

    /// A relay's node status event as hubble writes it to stderr, or nil for the ones hubble
    /// shows only with `--debug` (nodes connected or gone): `<time> [<relay>]: 2 nodes are
    /// unavailable: a, b`, `Error "<message>" on 1 nodes: a`, `Receiving flows from 2 nodes: a,
    /// b`, `1 nodes removed from cluster: a` (compact, table), a dict record (STATE, NODES,
    /// MESSAGE), or the response as a jsonpb line. Long node lists are cut after about 50
    /// characters with ` (and N more)`.
    public mutating func renderStatus(_ response: Observer_GetFlowsResponse) -> String? {
        guard case .nodeStatus(let status)? = response.responseTypes,
            options.debug || status.stateChange == .nodeUnavailable || status.stateChange == .nodeError
        else { return nil }
        let nodes = Self.joinCutOff(status.nodeNames)
        switch options.format {
        case .json, .jsonpb: return FlowJSONLines.line(response)
        case .dict:
            return dictRecord([
                "  TIMESTAMP: \(time(response.time))", "      STATE: \(status.stateChange.name)",
                "      NODES: \(nodes)", "    MESSAGE: \(status.message.isEmpty ? "N/A" : goQuoted(status.message))",
            ])
        case .compact, .table:
            let (prefix, count) = ("\(time(response.time)) [\(response.nodeName)]", status.nodeNames.count)
            switch status.stateChange {
            case .nodeConnected: return "\(prefix): Receiving flows from \(count) nodes: \(nodes)"
            case .nodeUnavailable: return "\(prefix): \(count) nodes are unavailable: \(nodes)"
            case .nodeGone: return "\(prefix): \(count) nodes removed from cluster: \(nodes)"
            case .nodeError: return "\(prefix): Error \(goQuoted(status.message)) on \(count) nodes: \(nodes)"
            default: return "\(prefix): unknown node status event: \(status.stateChange.name) \(nodes)"
            }
        }
    }

    /// One dict record: its lines, after hubble's separator when any record came before it
    /// (on stdout or stderr alike, as hubble counts them).
    mutating func dictRecord(_ lines: [String]) -> String {
        defer { records += 1 }
        return ((records == 0 ? [] : ["------------"]) + lines).joined(separator: "\n")
    }

    /// The names joined by `, `, as many as fit in `limit` characters (at least one), then
    /// ` (and N more)` for the rest: hubble's cut for node lists.
    static func joinCutOff(_ names: [String], limit: Int = 50) -> String {
        var length = 0
        var end = names.count
        for (index, name) in names.enumerated() {
            length += name.count + 2
            if length > limit, index > 0 {
                end = index
                break
            }
        }
        let joined = names[..<end].joined(separator: ", ")
        return end == names.count ? joined : "\(joined) (and \(names.count - end) more)"
    }

    mutating func render(_ flow: Flow_Flow) -> String? {
        // As hubble: only the compact line turns a reply around (initiator on the left).
        let (source, destination) = sides(flow)
        let verdict = paint(flow.verdict.name, flow.verdict == .forwarded ? 32 : (flow.verdict == .dropped ? 31 : 33))
        switch options.format {
        case .dict:
            return dictRecord(
                ["  TIMESTAMP: \(time(flow.time))"] + (options.printNodeName ? ["       NODE: \(flow.nodeName)"] : [])
                    + [
                        "     SOURCE: \(source.text(identity: false))",
                        "DESTINATION: \(destination.text(identity: false))",
                        "       TYPE: \(typeText(flow))", "    VERDICT: \(verdict)", "    SUMMARY: \(flow.summary)",
                    ])
        case .table:
            addTableHeader()
            table.append(
                (options.printNodeName ? [time(flow.time), flow.nodeName] : [time(flow.time)])
                    + [
                        source.text(identity: false), destination.text(identity: false), typeText(flow), verdict,
                        flow.summary,
                    ])
            return nil
        default:
            let node = options.printNodeName ? " [\(flow.nodeName)]" : ""
            let reply = flow.hasIsReply ? flow.isReply.value : nil
            let (left, right) = reply == true ? (destination, source) : (source, destination)
            let arrow = reply.map { $0 ? "<-" : "->" } ?? "<>"
            return "\(time(flow.time))\(node): \(left.text(identity: true)) \(arrow) "
                + "\(right.text(identity: true)) \(typeText(flow)) \(verdict) (\(flow.summary))"
        }
    }

    mutating func addTableHeader() {
        guard table.isEmpty else { return }
        table.append(
            (options.printNodeName ? ["TIMESTAMP", "NODE"] : ["TIMESTAMP"])
                + ["SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY"])
    }

    /// What is left to print at the end of the stream (the aligned `table`).
    public mutating func finish() -> String? {
        guard options.format == .table, !table.isEmpty else { return nil }
        defer { table = [] }
        let widths = (0..<table[0].count).map { column in table.map { visibleWidth($0[column]) }.max() ?? 0 }
        return table.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1
                    ? cell : cell + String(repeating: " ", count: widths[column] - visibleWidth(cell) + 3)
            }.joined()
        }.joined(separator: "\n")
    }

    // MARK: - Parts of a line

    struct Side {
        var host: String
        var port: UInt32
        var identity: String
        let printer: FlowPrinter

        func text(identity withIdentity: Bool) -> String {
            var text = printer.paint(host, 36)
            // Go's net.JoinHostPort: an IPv6 address goes in brackets.
            if port != 0 { text = (host.contains(":") ? "[\(text)]" : text) + ":" + printer.paint(String(port), 33) }
            if withIdentity { text += " " + printer.paint("(\(identity))", 35) }
            return text
        }
    }

    /// Source and destination as printed.
    func sides(_ flow: Flow_Flow) -> (Side, Side) {
        let ports = flow.ports ?? (0, 0)
        let source = Side(
            host: host(
                flow.source, service: flow.hasSourceService ? flow.sourceService : nil,
                names: flow.sourceNames, ip: flow.ip.source),
            port: ports.source, identity: identity(flow.source), printer: self)
        let destination = Side(
            host: host(
                flow.destination, service: flow.hasDestinationService ? flow.destinationService : nil,
                names: flow.destinationNames, ip: flow.ip.destination),
            port: ports.destination, identity: identity(flow.destination), printer: self)
        return (source, destination)
    }

    /// hubble's rule: `namespace/pod`, else `namespace/service`, else the DNS names, else the
    /// IP — where a Service is named, its namespace is the one printed.
    func host(_ endpoint: Flow_Endpoint, service: Flow_Service?, names: [String], ip: String) -> String {
        guard options.ipTranslation else { return ip }
        let namespace = service?.namespace ?? endpoint.namespace
        func joined(_ name: String) -> String { namespace.isEmpty ? name : "\(namespace)/\(name)" }
        if !endpoint.podName.isEmpty { return joined(endpoint.podName) }
        if let service, !service.name.isEmpty { return joined(service.name) }
        if !names.isEmpty { return names.joined(separator: ",") }
        return ip
    }

    func identity(_ endpoint: Flow_Endpoint) -> String {
        if let name = HubbleVocabulary.reservedIdentities[endpoint.identity] { return name }
        return "ID:\(endpoint.identity)"
    }

    /// `to-endpoint`, `dns-request datapath`, `Policy denied`, … as hubble names them: any flow
    /// with an `l7` record is `<protocol>-<type>` (DNS adds its observation source, even an
    /// empty one), else by event type and sub-type.
    func typeText(_ flow: Flow_Flow) -> String {
        if flow.hasL7 {
            var type = flow.l7.type.name.lowercased()
            let kind: String
            switch flow.l7.record {
            case .dns(let dns)?:
                kind = "dns"
                type += " " + dns.observationSource
            case .http?: kind = "http"
            case .kafka?: kind = "kafka"
            case nil: kind = "l7"
            }
            return "\(kind)-\(type)"
        }
        let subType = Int(flow.eventType.subType & 0xff)
        switch flow.eventType.type {
        case 4: return HubbleVocabulary.traceSubTypeNames[subType] ?? "\(subType)"
        case 1: return HubbleVocabulary.dropReasonTexts[subType] ?? "\(subType), 0"
        case 5:
            let match = HubbleVocabulary.policyMatchTypes[Int(flow.policyMatchType)] ?? "unknown"
            return "policy-verdict:\(match) \(flow.trafficDirection.name)"
        case 3: return flow.debugCapturePoint.name
        case 7:
            switch flow.sockXlatePoint {
            case .sockXlatePointPostDirectionFwd: return "post-xlate-fwd"
            case .sockXlatePointPostDirectionRev: return "post-xlate-rev"
            case .sockXlatePointPreDirectionFwd: return "pre-xlate-fwd"
            case .sockXlatePointPreDirectionRev: return "pre-xlate-rev"
            default: return flow.sockXlatePoint.name
            }
        default: return "UNKNOWN"
        }
    }

    func time(_ timestamp: Google_Protobuf_Timestamp) -> String {
        options.timeFormat.format(seconds: timestamp.seconds, nanos: Int(timestamp.nanos), timeZone: options.timeZone)
    }

    func paint(_ text: String, _ code: Int) -> String { options.color ? "\u{1b}[\(code)m\(text)\u{1b}[0m" : text }

    func visibleWidth(_ text: String) -> Int {
        text.replacingOccurrences(of: "\u{1b}\\[[0-9]+m", with: "", options: .regularExpression).count
    }
}
