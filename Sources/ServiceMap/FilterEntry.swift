import Foundation
import HubbleAPI
import HubbleWire

/// One entry of Hubble UI's filter bar: `[!][from:|to:|both:]kind=value` (a bare value is a
/// label on either side), e.g. `from:label=app=loadgen`, `!to:port=53`, `dns=example.com`.
public struct FilterEntry: Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        case label, ip, dns, identity, workload, pod, port
        case tcpFlag = "tcp-flag"
    }

    public enum Direction: String, Sendable, CaseIterable {
        case from, to, both
    }

    public var kind: Kind
    public var direction: Direction
    public var value: String
    public var negative: Bool

    public init(kind: Kind, direction: Direction = .both, value: String, negative: Bool = false) {
        self.kind = kind
        self.direction = direction
        self.value = value
        self.negative = negative
    }

    /// The canonical text (what the URL keeps): `!from:label=app=loadgen`.
    public var description: String { "\(negative ? "!" : "")\(direction.rawValue):\(kind.rawValue)=\(value)" }

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Parses one entry; one sentence when it cannot be used.
    public init(parsing text: String) throws(ParseError) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        negative = rest.hasPrefix("!")
        if negative { rest = rest.dropFirst() }
        direction = .both
        if let colon = rest.firstIndex(of: ":"), let parsed = Direction(rawValue: String(rest[..<colon])) {
            direction = parsed
            rest = rest[rest.index(after: colon)...]
        }
        kind = .label
        if let equals = rest.firstIndex(of: "="), let parsed = Kind(rawValue: String(rest[..<equals])) {
            kind = parsed
            rest = rest[rest.index(after: equals)...]
        }
        value = String(rest).trimmingCharacters(in: .whitespaces)
        guard !value.isEmpty else {
            throw ParseError(
                description:
                    "Filter \"\(text)\" has no value; write kind=value, e.g. from:label=app=loadgen, to:port=80 or dns=example.com."
            )
        }
        switch kind {
        case .port:
            guard let port = Int(value), (0...65535).contains(port) else {
                throw ParseError(description: "Filter \"\(text)\": \(value) is not a port number (0–65535).")
            }
        case .identity:
            guard UInt32(value) != nil || HubbleVocabulary.reservedIdentityNumbers[value] != nil else {
                throw ParseError(
                    description:
                        "Filter \"\(text)\": \(value) is not an identity number or a reserved name such as world.")
            }
        case .tcpFlag:
            guard Self.tcpFlags.contains(value.uppercased()) else {
                throw ParseError(
                    description:
                        "Filter \"\(text)\": \(value) is not a TCP flag (\(Self.tcpFlags.joined(separator: ", "))).")
            }
        default: break
        }
    }

    static let tcpFlags = ["SYN", "ACK", "FIN", "RST", "PSH", "URG", "ECE", "CWR", "NS"]

    /// The FlowFilter fields this entry sets for one side of a flow.
    func apply(to filter: inout Flow_FlowFilter, source: Bool) {
        switch kind {
        case .label:
            let label = value.contains(":") ? value : "k8s:" + value
            if source { filter.sourceLabel.append(label) } else { filter.destinationLabel.append(label) }
        case .ip: if source { filter.sourceIp.append(value) } else { filter.destinationIp.append(value) }
        case .dns: if source { filter.sourceFqdn.append(value) } else { filter.destinationFqdn.append(value) }
        case .identity:
            let number = UInt32(value) ?? HubbleVocabulary.reservedIdentityNumbers[value] ?? 0
            if source { filter.sourceIdentity.append(number) } else { filter.destinationIdentity.append(number) }
        case .workload:
            let parts = value.split(separator: "/", maxSplits: 1).map(String.init)
            let workload = Flow_Workload.with {
                $0.name = parts.count == 2 ? parts[1] : value
            }
            if source { filter.sourceWorkload.append(workload) } else { filter.destinationWorkload.append(workload) }
        case .pod: if source { filter.sourcePod.append(value) } else { filter.destinationPod.append(value) }
        case .port: if source { filter.sourcePort.append(value) } else { filter.destinationPort.append(value) }
        case .tcpFlag:
            // Flags belong to the flow, not to a side.
            filter.tcpFlags.append(
                Flow_TCPFlags.with {
                    switch value.uppercased() {
                    case "SYN": $0.syn = true
                    case "ACK": $0.ack = true
                    case "FIN": $0.fin = true
                    case "RST": $0.rst = true
                    case "PSH": $0.psh = true
                    case "URG": $0.urg = true
                    case "ECE": $0.ece = true
                    case "CWR": $0.cwr = true
                    default: $0.ns = true
                    }
                })
        }
    }

    /// The sides an entry asks about: `both` means either side.
    var sides: [Bool] {
        if kind == .tcpFlag { return [true] }
        switch direction {
        case .from: return [true]
        case .to: return [false]
        case .both: return [true, false]
        }
    }
}

/// What a view of the map asks its Hubble server for: a namespace (or all), verdicts and the
/// filter bar's entries, as GetFlows' allow and deny lists (FlowFilters: inside one filter every
/// field must match, any filter of a list may).
public struct ViewQuery: Sendable, Equatable, Hashable {
    /// nil: every namespace.
    public var namespace: String?
    /// Empty: every verdict.
    public var verdicts: [Flow_Verdict]
    public var filters: [FilterEntry]

    public init(namespace: String? = nil, verdicts: [Flow_Verdict] = [], filters: [FilterEntry] = []) {
        self.namespace = namespace
        self.verdicts = verdicts
        self.filters = filters
    }

    /// The allow list: the namespace on either side, and each positive entry on its side(s);
    /// entries are all required, so the list is every combination of their sides.
    public var allowlist: [Flow_FlowFilter] {
        var combinations: [Flow_FlowFilter] = [Flow_FlowFilter()]
        func expand(_ sides: [(inout Flow_FlowFilter) -> Void]) {
            combinations = combinations.flatMap { filter in
                sides.map { side in
                    var next = filter
                    side(&next)
                    return next
                }
            }
        }
        if let namespace {
            expand([{ $0.sourcePod.append(namespace + "/") }, { $0.destinationPod.append(namespace + "/") }])
        }
        for entry in filters where !entry.negative {
            expand(entry.sides.map { source in { entry.apply(to: &$0, source: source) } })
        }
        if !verdicts.isEmpty {
            combinations = combinations.map { filter in
                var filter = filter
                filter.verdict = verdicts
                return filter
            }
        }
        return combinations == [Flow_FlowFilter()] ? [] : combinations
    }

    /// The deny list: a negative entry excludes a flow that matches it on any of its sides.
    public var denylist: [Flow_FlowFilter] {
        filters.filter(\.negative).flatMap { entry in
            entry.sides.map { source in
                var filter = Flow_FlowFilter()
                entry.apply(to: &filter, source: source)
                return filter
            }
        }
    }
}
