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
        case .lostEvents(let lost)?:
            return "\(time(lost.hasLast ? lost.last : response.time)) EVENTS LOST: \(lost.source.name) "
                + "CPU(\(lost.cpu.value)) \(lost.numEventsLost)"
        case .nodeStatus?, nil: return nil
        }
    }

    mutating func render(_ flow: Flow_Flow) -> String? {
        let (source, destination, arrow) = sides(flow)
        let verdict = paint(flow.verdict.name, flow.verdict == .forwarded ? 32 : (flow.verdict == .dropped ? 31 : 33))
        switch options.format {
        case .dict:
            defer { records += 1 }
            var lines = records == 0 ? [] : ["------------"]
            lines.append("  TIMESTAMP: \(time(flow.time))")
            if options.printNodeName { lines.append("       NODE: \(flow.nodeName)") }
            lines += [
                "     SOURCE: \(source.text(identity: false))", "DESTINATION: \(destination.text(identity: false))",
                "       TYPE: \(typeText(flow))", "    VERDICT: \(verdict)", "    SUMMARY: \(flow.summary)",
            ]
            return lines.joined(separator: "\n")
        case .table:
            if table.isEmpty {
                table.append(
                    (options.printNodeName ? ["TIMESTAMP", "NODE"] : ["TIMESTAMP"])
                        + ["SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY"])
            }
            table.append(
                (options.printNodeName ? [time(flow.time), flow.nodeName] : [time(flow.time)])
                    + [
                        source.text(identity: false), destination.text(identity: false), typeText(flow), verdict,
                        flow.summary,
                    ])
            return nil
        default:
            let node = options.printNodeName ? " [\(flow.nodeName)]" : ""
            return "\(time(flow.time))\(node): \(source.text(identity: true)) \(arrow) "
                + "\(destination.text(identity: true)) \(typeText(flow)) \(verdict) (\(flow.summary))"
        }
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
            if port != 0 { text += ":" + printer.paint(String(port), 33) }
            if withIdentity { text += " " + printer.paint("(\(identity))", 35) }
            return text
        }
    }

    /// Source and destination as printed: a reply is shown from the initiator's side.
    func sides(_ flow: Flow_Flow) -> (Side, Side, String) {
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
        guard flow.hasIsReply else { return (source, destination, "<>") }
        return flow.isReply.value ? (destination, source, "<-") : (source, destination, "->")
    }

    func host(_ endpoint: Flow_Endpoint, service: Flow_Service?, names: [String], ip: String) -> String {
        if !endpoint.podName.isEmpty { return "\(endpoint.namespace)/\(endpoint.podName)" }
        if let service, !service.name.isEmpty { return "\(service.namespace)/\(service.name)" }
        if !names.isEmpty { return names.joined(separator: ",") }
        return ip
    }

    func identity(_ endpoint: Flow_Endpoint) -> String {
        if let name = HubbleVocabulary.reservedIdentities[endpoint.identity] { return name }
        return "ID:\(endpoint.identity)"
    }

    /// `to-endpoint`, `dns-request`, `Policy denied`, …
    func typeText(_ flow: Flow_Flow) -> String {
        if flow.type == .l7, case let record? = flow.l7.record {
            let kind: String
            let source: String
            switch record {
            case .dns(let dns):
                kind = "dns"
                source = dns.observationSource
            case .http: (kind, source) = ("http", "")
            case .kafka: (kind, source) = ("kafka", "")
            }
            let direction = flow.l7.type == .response ? "response" : (flow.l7.type == .request ? "request" : "sample")
            return source.isEmpty ? "\(kind)-\(direction)" : "\(kind)-\(direction) \(source)"
        }
        let subType = Int(flow.eventType.subType)
        switch flow.eventType.type {
        case 1:
            // As hubble prints it: Cilium's text for the code, else the number.
            return HubbleVocabulary.dropReasonTexts[subType] ?? "\(subType), 0"
        case 4: return HubbleVocabulary.traceSubTypeNames[subType] ?? "trace"
        default: return "unknown"
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
