import HubbleAPI
import HubbleWire

/// Every filter flag of `osprey observe`, declared once: what it is called, its help, and which
/// FlowFilter field it fills. The builder reads them in the order typed (`--not` applies to the
/// next one), and `osprey observe --help` lists them from this table.
struct FilterFlag: Sendable {
    enum Field: Sendable {
        /// `--X` (either side: a source filter and a destination filter, OR'ed), `--from-X`,
        /// `--to-X`: `set(&filter, value, source, namespace)` fills the source or destination
        /// field (`namespace` is `-n`'s, for names given without one).
        case endpoint(
            @Sendable (inout Flow_FlowFilter, _ value: String, _ source: Bool, _ namespace: String?) throws -> Void)
        /// One field for both sides.
        case common(@Sendable (inout Flow_FlowFilter, _ value: String) throws -> Void)
    }

    let name: String
    let short: Character?
    /// The value's placeholder in help; nil for a flag without a value.
    let value: String?
    let help: String
    let field: Field

    /// Every spelling: `--name`, `-s`, and for endpoint flags `--from-name`, `--to-name`.
    var spellings: [String] {
        var all = ["--\(name)"]
        if let short { all.append("-\(short)") }
        if case .endpoint = field { all += ["--from-\(name)", "--to-\(name)"] }
        return all
    }

    static func endpoint(
        _ name: String, short: Character? = nil, value: String? = nil, _ help: String,
        _ set: @escaping @Sendable (inout Flow_FlowFilter, String, Bool, String?) throws -> Void
    ) -> FilterFlag {
        FilterFlag(name: name, short: short, value: value, help: help, field: .endpoint(set))
    }

    static func common(
        _ name: String, short: Character? = nil, value: String? = nil, _ help: String,
        _ set: @escaping @Sendable (inout Flow_FlowFilter, String) throws -> Void
    ) -> FilterFlag {
        FilterFlag(name: name, short: short, value: value, help: help, field: .common(set))
    }

    /// A name given without a namespace, scoped by `-n` (else sent as is: the server reads a bare
    /// name as `default/NAME`).
    static func scoped(_ value: String, _ namespace: String?) -> String {
        guard !value.contains("/"), let namespace else { return value }
        return "\(namespace)/\(value)"
    }

    static let all: [FilterFlag] = [
        .endpoint("pod", value: "pod", "Pod: [namespace/]name prefix.") { filter, value, source, namespace in
            if source {
                filter.sourcePod.append(scoped(value, namespace))
            } else {
                filter.destinationPod.append(scoped(value, namespace))
            }
        },
        .endpoint("namespace", short: "n", value: "namespace", "Namespace (also scopes --pod and --service).") {
            filter, value, source, _ in
            if source { filter.sourcePod.append("\(value)/") } else { filter.destinationPod.append("\(value)/") }
        },
        .endpoint("all-namespaces", short: "A", "Every namespace (the default).") { _, _, _, _ in },
        .endpoint("ip", value: "ip", "IP address or CIDR.") { filter, value, source, _ in
            if source { filter.sourceIp.append(value) } else { filter.destinationIp.append(value) }
        },
        .endpoint("label", short: "l", value: "selector", "Label selector (app=web, tier in (a,b)).") {
            filter, value, source, _ in
            if source { filter.sourceLabel.append(value) } else { filter.destinationLabel.append(value) }
        },
        .endpoint("service", value: "service", "Service: [namespace/]name prefix.") {
            filter, value, source, namespace in
            if source {
                filter.sourceService.append(scoped(value, namespace))
            } else {
                filter.destinationService.append(scoped(value, namespace))
            }
        },
        .endpoint("workload", value: "workload", "Workload: [Kind/]name (Deployment/frontend).") {
            filter, value, source, _ in
            let workload = FilterBuilder.workload(value)
            if source { filter.sourceWorkload.append(workload) } else { filter.destinationWorkload.append(workload) }
        },
        .endpoint("fqdn", value: "pattern", "DNS name pattern (*.svc.cluster.local).") { filter, value, source, _ in
            if source { filter.sourceFqdn.append(value) } else { filter.destinationFqdn.append(value) }
        },
        .endpoint("port", value: "port", "Port number.") { filter, value, source, _ in
            guard UInt16(value) != nil else { throw CLIError("\"\(value)\" is not a port number (0–65535).") }
            if source { filter.sourcePort.append(value) } else { filter.destinationPort.append(value) }
        },
        .endpoint("identity", value: "identity", "Identity: a number or a reserved name such as world.") {
            filter, value, source, _ in
            let identity = try FilterBuilder.identity(value)
            if source { filter.sourceIdentity.append(identity) } else { filter.destinationIdentity.append(identity) }
        },
        .endpoint("cluster", value: "name", "Cluster name.") { filter, value, source, _ in
            if source { filter.sourceClusterName.append(value) } else { filter.destinationClusterName.append(value) }
        },
        .common("protocol", value: "name", "Protocol: tcp, udp, icmp, icmpv4, icmpv6, sctp, dns, http, …") {
            $0.protocol.append($1.lowercased())
        },
        .common("verdict", value: "verdict", "FORWARDED, DROPPED, AUDIT, REDIRECTED, ERROR, TRACED, TRANSLATED.") {
            filter, value in
            guard let verdict = ProtoNames.verdicts.value(value), verdict != .unknown else {
                throw CLIError(
                    "--verdict \"\(value)\" is not a verdict; use one of FORWARDED, DROPPED, AUDIT, REDIRECTED, "
                        + "ERROR, TRACED, TRANSLATED.")
            }
            filter.verdict.append(verdict)
        },
        .common("drop-reason-desc", value: "reason", "Drop reason, as Hubble names it (POLICY_DENIED).") {
            filter, value in
            guard let reason = ProtoNames.dropReasons.value(value) else {
                throw CLIError("--drop-reason-desc \"\(value)\" is not a Hubble drop reason (e.g. POLICY_DENIED).")
            }
            filter.dropReasonDesc.append(reason)
        },
        .common("tcp-flags", value: "flags", "TCP flags that must all be set, comma-separated (SYN,ACK).") {
            $0.tcpFlags.append(try FilterBuilder.tcpFlags($1))
        },
        .common("type", short: "t", value: "type", "Event type: drop, trace[:to-endpoint|from-endpoint|…], l7, …") {
            $0.eventType.append(try FilterBuilder.eventType($1))
        },
        .common("traffic-direction", value: "direction", "Traffic direction: ingress or egress.") { filter, value in
            switch value.lowercased() {
            case "ingress": filter.trafficDirection.append(.ingress)
            case "egress": filter.trafficDirection.append(.egress)
            default: throw CLIError("--traffic-direction \"\(value)\" must be ingress or egress.")
            }
        },
        .common("node-name", value: "glob", "Node name glob (node-*, cluster/node-*, cluster/).") {
            $0.nodeName.append($1)
        },
        .common("node-label", value: "selector", "Label selector of the node that saw the flow.") {
            $0.nodeLabels.append($1)
        },
        .common("uuid", value: "uuid", "Flow UUID.") { $0.uuid.append($1) },
        .common("ip-version", value: "version", "IP version: 4 or 6.") { filter, value in
            switch value.lowercased() {
            case "4", "v4", "ipv4": filter.ipVersion.append(.ipv4)
            case "6", "v6", "ipv6": filter.ipVersion.append(.ipv6)
            default: throw CLIError("--ip-version \"\(value)\" must be 4 or 6.")
            }
        },
        .common("ipv4", short: "4", "Only IPv4 flows.") { filter, _ in filter.ipVersion.append(.ipv4) },
        .common("ipv6", short: "6", "Only IPv6 flows.") { filter, _ in filter.ipVersion.append(.ipv6) },
        .common("http-status", value: "code", "HTTP status code or class (404, 5+).") { $0.httpStatusCode.append($1) },
        .common("http-method", value: "method", "HTTP method.") { $0.httpMethod.append($1) },
        .common("http-path", value: "regex", "HTTP path regular expression.") { $0.httpPath.append($1) },
        .common("http-url", value: "regex", "HTTP URL regular expression.") { $0.httpURL.append($1) },
        .common("http-header", value: "name:value", "HTTP header and its value (foo:bar).") { filter, value in
            guard let colon = value.firstIndex(of: ":") else {
                throw CLIError("--http-header \"\(value)\" must be name:value (e.g. foo:bar).")
            }
            filter.httpHeader.append(
                .with {
                    $0.key = String(value[..<colon])
                    $0.value = String(value[value.index(after: colon)...])
                })
        },
        .common("trace-id", value: "id", "Trace ID (of servers that read trace contexts).") { $0.traceID.append($1) },
        .common("ip-trace-id", value: "id", "IP trace ID (of servers that read IP trace options).") {
            filter, value in
            guard let id = UInt64(value), id > 0 else {
                throw CLIError("--ip-trace-id \"\(value)\" must be a number greater than 0.")
            }
            filter.ipTraceID.append(id)
        },
        .common("interface", value: "name", "Network interface the flow was seen on.") {
            filter, value in filter.interface.append(.with { $0.name = value })
        },
        .common("snat-ip", value: "ip", "Source IP after SNAT (servers that translate addresses report it).") {
            $0.sourceIpXlated.append($1)
        },
        .common("encrypted", "Only encrypted flows (WireGuard/IPsec).") { filter, _ in filter.encrypted.append(true) },
        .common("unencrypted", "Only unencrypted flows.") { filter, _ in filter.encrypted.append(false) },
        .common("cel-expression", value: "expression", "A CEL expression (refused by servers without CEL, Osprey's).") {
            $0.experimental.celExpression.append($1)
        },
    ]

    /// Each spelling → its flag.
    static let bySpelling: [String: FilterFlag] = {
        var table: [String: FilterFlag] = [:]
        for flag in all { for spelling in flag.spellings { table[spelling] = flag } }
        return table
    }()

    /// The flags as `osprey observe --help` lists them.
    static var helpText: String {
        var lines = [
            "FILTER FLAGS, applied in the order given: --X matches either side, --from-X",
            "the source, --to-X the destination; flags of different kinds must all match.",
        ]
        for flag in all {
            // Short spelling first, then the long ones in `spellings`' order (--X, --from-X, --to-X).
            let short = flag.short.map { ["-\($0)"] } ?? []
            var head = (short + flag.spellings.filter { !short.contains($0) }).joined(separator: ", ")
            if let value = flag.value { head += " <\(value)>" }
            lines.append("  \(head)")
            lines.append("        \(flag.help)")
        }
        lines.append("  --not")
        lines.append("        Negate the next filter flag: it goes to the deny list.")
        return lines.joined(separator: "\n")
    }
}
