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

    func run() async throws {
        try await reportingErrors {
            let status = try await server.withObserver { observer, options in
                try await observer.serverStatus(Observer_ServerStatusRequest(), options: options)
            }
            print(Self.render(status, server: server.server))
        }
    }

    static func render(_ status: Observer_ServerStatusResponse, server: String) -> String {
        var lines = ["Healthcheck (via \(server)): Ok"]
        let percent = status.maxFlows == 0 ? 0 : Double(status.numFlows) / Double(status.maxFlows) * 100
        lines.append(
            "Current/Max Flows: \(grouped(status.numFlows))/\(grouped(status.maxFlows)) "
                + "(\(String(format: "%.2f", percent))%)")
        var rate = status.flowsRate
        if rate == 0, status.uptimeNs > 0 { rate = Double(status.seenFlows) / (Double(status.uptimeNs) / 1e9) }
        lines.append("Flows/s: \(String(format: "%.2f", rate))")
        if status.hasNumConnectedNodes {
            let connected = status.numConnectedNodes.value
            let total = connected + (status.hasNumUnavailableNodes ? status.numUnavailableNodes.value : 0)
            lines.append("Connected Nodes: \(connected)/\(total)")
        }
        if status.hasNumUnavailableNodes, status.numUnavailableNodes.value > 0 {
            lines.append("Unavailable Nodes: \(status.numUnavailableNodes.value)")
            lines += status.unavailableNodes.map { "  - \($0)" }
        }
        return lines.joined(separator: "\n")
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

struct ListNodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes", abstract: "List nodes with their state, uptime and flow figures.",
        aliases: ["node"])

    @OptionGroup var server: ServerOptions
    @Option(name: [.short, .long], help: "Output: table, wide, json.") var output = "table"

    func validate() throws {
        guard ["table", "wide", "json"].contains(output) else {
            throw ValidationError("--output must be table, wide or json.")
        }
    }

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
    static func render(_ response: Observer_GetNodesResponse, output: String) -> String {
        let nodes = response.nodes.sorted(by: { $0.name < $1.name })
        if output == "json" { return GoJSON.array(nodes) }
        var rows = [["NAME", "STATUS", "AGE", "FLOWS/S", "CURRENT/MAX-FLOWS"]]
        if output == "wide" { rows[0] += ["VERSION", "ADDRESS", "TLS"] }
        for node in nodes {
            let seconds = (Double(node.uptimeNs) / 1e9).rounded()
            var row = [
                node.name, state(node.state), seconds > 0 ? age(seconds) : "N/A",
                seconds > 0 ? String(format: "%.2f", Double(node.seenFlows) / seconds) : "N/A",
                node.maxFlows > 0
                    ? "\(node.numFlows)/\(node.maxFlows) (\(String(format: "%6.2f", Double(node.numFlows) / Double(node.maxFlows) * 100))%)"
                    : "N/A",
            ]
            if output == "wide" {
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
    @Option(name: [.short, .long], help: "Output: table, wide, json.") var output = "table"

    func validate() throws {
        guard ["table", "wide", "json"].contains(output) else {
            throw ValidationError("--output must be table, wide or json.")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let namespaces = try await server.withObserver { observer, options in
                try await observer.getNamespaces(Observer_GetNamespacesRequest(), options: options)
            }
            print(Self.render(namespaces, output: output))
        }
    }

    /// hubble's layout: a cluster only where the server named one; `json` as Go encodes the list.
    static func render(_ response: Observer_GetNamespacesResponse, output: String) -> String {
        if output == "json" { return GoJSON.array(response.namespaces) }
        let rows = response.namespaces.map {
            output == "wide" && !$0.cluster.isEmpty ? [$0.namespace, $0.cluster] : [$0.namespace]
        }
        return Table.render([output == "wide" ? ["NAMESPACE", "CLUSTER"] : ["NAMESPACE"]] + rows)
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
