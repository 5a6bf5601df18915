import ArgumentParser
import Foundation
import GRPCCore
import HubbleAPI
import HubbleWire
import SwiftProtobuf

/// `osprey status`: the server's health and flow figures, laid out as `hubble status`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show a Hubble API server's health, flow buffer and connected nodes.")

    @OptionGroup var server: ServerOptions
    @Option(name: [.short, .long], help: "Output: compact, dict, json (jsonpb), table (tab).") var output = "compact"

    func validate() throws {
        guard Self.outputs.contains(output) else {
            throw ValidationError("--output \"\(output)\" must be one of compact, dict, json, table.")
        }
    }

    /// The spellings hubble's `status -o` takes.
    static let outputs = ["compact", "dict", "json", "JSON", "jsonpb", "table", "tab"]

    func run() async throws {
        try await reportingErrors {
            let status = try await server.withObserver { observer, options in
                try await observer.serverStatus(Observer_ServerStatusRequest(), options: options)
            }
            print(Self.render(status, server: server.server, output: output))
        }
    }

    /// hubble's layouts: `compact` (the health check's line, then the figures; flows/s over the
    /// uptime when the server gives no rate), `dict` and `table` (the figures as the server
    /// gave them, `N/A` for what it did not), `json` (the response as one jsonpb line).
    static func render(_ status: Observer_ServerStatusResponse, server: String, output: String = "compact") -> String {
        let rate = status.flowsRate > 0 ? String(format: "%.2f", status.flowsRate) : "N/A"
        let connected = status.hasNumConnectedNodes ? "\(status.numConnectedNodes.value)" : "N/A"
        let unavailable = status.hasNumUnavailableNodes ? "\(status.numUnavailableNodes.value)" : "N/A"
        let (flows, max, seen) = (grouped(status.numFlows), grouped(status.maxFlows), grouped(status.seenFlows))
        let uptime = Durations.goString(nanoseconds: status.uptimeNs)
        switch output {
        case "json", "JSON", "jsonpb": return FlowJSONLines.json(status)
        case "dict":
            return [
                "          NUM FLOWS: \(flows)", "          MAX FLOWS: \(max)", "         SEEN FLOWS: \(seen)",
                "   FLOWS PER SECOND: \(rate)", "             UPTIME: \(uptime)",
                "NUM CONNECTED NODES: \(connected)", " NUM UNAVAIL. NODES: \(unavailable)",
                "            VERSION: \(status.version)",
            ].joined(separator: "\n")
        case "table", "tab":
            return Table.render([
                [
                    "NUM FLOWS", "MAX FLOWS", "SEEN FLOWS", "FLOWS PER SECOND", "UPTIME", "NUM CONNECTED NODES",
                    "NUM UNAVAILABLE NODES", "VERSION",
                ],
                [flows, max, seen, rate, uptime, connected, unavailable, status.version],
            ])
        default:
            let ratio =
                status.maxFlows > 0
                ? " (\(String(format: "%.2f", Double(status.numFlows) / Double(status.maxFlows) * 100))%)" : ""
            var lines = ["Healthcheck (via \(server)): Ok", "Current/Max Flows: \(flows)/\(max)\(ratio)"]
            let seconds = Double(status.uptimeNs) / 1e9
            let perSecond =
                status.flowsRate <= 0 && seconds > 0
                ? String(format: "%.2f", Double(status.seenFlows) / seconds) : rate
            lines.append("Flows/s: \(perSecond)")
            if status.hasNumConnectedNodes {
                let total =
                    status.hasNumUnavailableNodes
                    ? "/\(status.numConnectedNodes.value + status.numUnavailableNodes.value)" : ""
                lines.append("Connected Nodes: \(connected)\(total)")
            }
            if status.hasNumUnavailableNodes, status.numUnavailableNodes.value > 0 {
                lines.append("Unavailable Nodes: \(unavailable)")
                // Sorted; a server that names fewer than it counts gets `and N more...`.
                var names = status.unavailableNodes.sorted()
                let unnamed = Int(status.numUnavailableNodes.value) - names.count
                if !names.isEmpty, unnamed > 0 { names.append("and \(unnamed) more...") }
                lines += names.map { "  - \($0)" }
            }
            return lines.joined(separator: "\n")
        }
    }

    /// 4095 → "4,095".
    static func grouped(_ value: UInt64) -> String {
        var digits = Array(String(value))
        var index = digits.count - 3
        while index > 0 {
            digits.insert(",", at: index)
            index -= 3
        }
        return String(digits)
    }
}

/// `osprey list nodes|namespaces`.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the nodes or namespaces a Hubble API server knows.",
        subcommands: [ListNodes.self, ListNamespaces.self])
}

/// The outputs of `list nodes` and `list namespaces`, as hubble's.
enum ListOutput: String, ExpressibleByArgument, CaseIterable {
    case table, wide, json
}

struct ListNodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes", abstract: "List nodes with their state, uptime and flow figures.",
        aliases: ["node"])

    @OptionGroup var server: ServerOptions
    @Option(name: [.short, .long], help: "Output: table, wide, json.") var output = ListOutput.table

    func run() async throws {
        try await reportingErrors {
            let nodes = try await server.withObserver { observer, options in
                try await observer.getNodes(Observer_GetNodesRequest(), options: options)
            }
            print(Self.render(nodes, output: output))
        }
    }

    /// hubble's layout: uptime rounded to the second, flows/s over it, the ring's fill with the
    /// percentage in six characters (`( 42.78%)`), `N/A` for what a node did not report; `json`
    /// as hubble encodes the node list.
    static func render(_ response: Observer_GetNodesResponse, output: ListOutput) -> String {
        let nodes = response.nodes.sorted(by: { $0.name < $1.name })
        if output == .json { return GoJSON.array(nodes) }
        var rows = [["NAME", "STATUS", "AGE", "FLOWS/S", "CURRENT/MAX-FLOWS"]]
        if output == .wide { rows[0] += ["VERSION", "ADDRESS", "TLS"] }
        for node in nodes {
            let seconds = (Double(node.uptimeNs) / 1e9).rounded()
            var row = [
                node.name, state(node.state), seconds > 0 ? age(seconds) : "N/A",
                seconds > 0 ? String(format: "%.2f", Double(node.seenFlows) / seconds) : "N/A",
                node.maxFlows > 0
                    ? "\(node.numFlows)/\(node.maxFlows) (\(String(format: "%6.2f", Double(node.numFlows) / Double(node.maxFlows) * 100))%)"
                    : "N/A",
            ]
            if output == .wide {
                row += [
                    node.version.isEmpty ? "N/A" : node.version, node.address,
                    node.hasTls ? (node.tls.enabled ? "Enabled" : "Disabled") : "N/A",
                ]
            }
            rows.append(row)
        }
        return Table.render(rows)
    }

    static func state(_ state: Relay_NodeState) -> String {
        switch state {
        case .nodeConnected: "Connected"
        case .nodeUnavailable: "Unavailable"
        case .nodeGone: "Gone"
        case .nodeError: "Error"
        default: "Unknown"
        }
    }

    /// Go-style: 1h0m0s, 5m3s, 42s.
    static func age(_ seconds: Double) -> String {
        let total = Int(seconds)
        let (hours, minutes, rest) = (total / 3600, total % 3600 / 60, total % 60)
        if hours > 0 { return "\(hours)h\(minutes)m\(rest)s" }
        if minutes > 0 { return "\(minutes)m\(rest)s" }
        return "\(rest)s"
    }
}

struct ListNamespaces: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "namespaces", abstract: "List namespaces that had flows in the last hour.")

    @OptionGroup var server: ServerOptions
    @Option(name: [.short, .long], help: "Output: table, wide, json.") var output = ListOutput.table

    func run() async throws {
        try await reportingErrors {
            let namespaces = try await server.withObserver { observer, options in
                try await observer.getNamespaces(Observer_GetNamespacesRequest(), options: options)
            }
            print(Self.render(namespaces, output: output))
        }
    }

    /// hubble's layout: a cluster only where the server named one; `json` as Go encodes the list.
    static func render(_ response: Observer_GetNamespacesResponse, output: ListOutput) -> String {
        if output == .json { return GoJSON.array(response.namespaces) }
        let rows = response.namespaces.map {
            output == .wide && !$0.cluster.isEmpty ? [$0.namespace, $0.cluster] : [$0.namespace]
        }
        return Table.render([output == .wide ? ["NAMESPACE", "CLUSTER"] : ["NAMESPACE"]] + rows)
    }
}

/// What hubble's `list … -o json` prints: Go's `json.MarshalIndent` over messages whose
/// `MarshalJSON` is protojson with proto field names — so enum names, 64-bit numbers as
/// strings, zero values left out, in declaration order — indented by two spaces, `<`, `>` and
/// `&` escaped as Go's encoder does.
enum GoJSON {
    static func array<M: SwiftProtobuf.Message>(_ messages: [M]) -> String {
        indent("[" + messages.map { compact($0) }.joined(separator: ",") + "]")
    }

    /// One message as Go's `json.Marshal` gives it: protojson with proto names, compact, in
    /// Go's layout (declaration order, HTML characters escaped).
    static func compact<M: SwiftProtobuf.Message>(_ message: M) -> String {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        let json = (try? message.jsonString(options: options)) ?? "{}"
        return GoJSONLayout.relayout(json, as: M.protoMessageName)
    }

    /// Re-indents compact JSON the way Go's `json.Indent` does (empty objects and arrays stay
    /// `{}`/`[]`).
    static func indent(_ compact: String) -> String {
        var out = ""
        var depth = 0
        var inString = false
        var escaped = false
        let characters = Array(compact.unicodeScalars)
        func newline() { out += "\n" + String(repeating: "  ", count: depth) }
        for (index, character) in characters.enumerated() {
            if inString {
                if escaped {
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    inString = false
                }
                out.unicodeScalars.append(character)
                continue
            }
            switch character {
            case "\"":
                inString = true
                out += "\""
            case "{", "[":
                out.unicodeScalars.append(character)
                let next = index + 1 < characters.count ? characters[index + 1] : " "
                if next == "}" || next == "]" { continue }
                depth += 1
                newline()
            case "}", "]":
                let previous = index > 0 ? characters[index - 1] : " "
                if previous != "{" && previous != "[" {
                    depth -= 1
                    newline()
                }
                out.unicodeScalars.append(character)
            case ",":
                out += ","
                newline()
            case ":": out += ": "
            case " ", "\n", "\t", "\r": continue
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }
}

/// Columns padded like Go's tabwriter with padding 3.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let columns = rows.map(\.count).max() else { return "" }
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count + 3)
            }.joined()
        }.joined(separator: "\n")
    }
}
