import Foundation
import HubbleAPI
import HubbleWire

/// Turns `osprey observe` filter flags, in the order given, into Hubble FlowFilters the way
/// the hubble CLI does: `--from-X` fills source fields, `--to-X` destination fields, a bare
/// `--X` makes two filters (source side, destination side) that are OR'ed, other flags apply
/// to both; `--not` sends the next filter flag to the deny list.
struct FilterBuilder {
    /// Flags hubble refuses to combine in one list (allow or deny), by name without dashes:
    /// `filters --X and --Y cannot be combined`.
    static let conflicts: [[String]] = [
        ["from-fqdn", "from-ip", "ip", "fqdn", "from-namespace", "namespace", "from-all-namespaces", "all-namespaces"],
        ["from-fqdn", "from-ip", "ip", "fqdn", "from-pod", "pod"],
        ["to-fqdn", "to-ip", "ip", "fqdn", "to-namespace", "namespace", "to-all-namespaces", "all-namespaces"],
        ["to-fqdn", "to-ip", "ip", "fqdn", "to-pod", "pod"],
        ["to-pod", "namespace", "all-namespaces"], ["from-pod", "namespace", "all-namespaces"],
        ["to-service", "namespace", "all-namespaces"], ["from-service", "namespace", "all-namespaces"],
        ["label", "from-label"], ["label", "to-label"], ["service", "from-service"], ["service", "to-service"],
        ["port", "to-port"], ["port", "from-port"], ["identity", "to-identity"], ["identity", "from-identity"],
        ["workload", "to-workload"], ["workload", "from-workload"], ["encrypted", "unencrypted"],
    ]

    /// A flag's long name without dashes (`-n` → `namespace`).
    static func canonical(_ flag: String) -> String {
        switch flag {
        case "-n": "namespace"
        case "-l": "label"
        case "-t": "type"
        case "-A": "all-namespaces"
        case "-4": "ipv4"
        case "-6": "ipv6"
        default: String(flag.drop(while: { $0 == "-" }))
        }
    }

    /// hubble's check: within the allow list and within the deny list, no two flags of a
    /// conflict group.
    static func checkConflicts(_ tokens: [(flag: String, value: String?, negated: Bool)]) throws(CLIError) {
        for negated in [false, true] {
            var seen: [String] = []
            for token in tokens where token.negated == negated {
                let name = canonical(token.flag)
                for group in conflicts where group.contains(name) {
                    if let other = seen.first(where: { $0 != name && group.contains($0) }) {
                        throw CLIError("filters --\(other) and --\(name) cannot be combined")
                    }
                }
                if !seen.contains(name) { seen.append(name) }
            }
        }
    }

    struct Side {
        var source = Flow_FlowFilter()
        var destination = Flow_FlowFilter()
        var common = Flow_FlowFilter()
        var bareUsed = false
        var used = false
    }

    var allow = Side()
    var deny = Side()
    var namespace: String?

    /// Reads the filter flags of `arguments`, in order; anything else is an error.
    static func build(_ arguments: [String]) throws(CLIError) -> (allow: [Flow_FlowFilter], deny: [Flow_FlowFilter]) {
        var builder = FilterBuilder()
        var tokens: [(flag: String, value: String?, negated: Bool)] = []
        var negateNext = false
        var index = 0
        while index < arguments.count {
            var flag = arguments[index]
            var value: String?
            if flag.hasPrefix("--"), let equals = flag.firstIndex(of: "=") {
                value = String(flag[flag.index(after: equals)...])
                flag = String(flag[..<equals])
            }
            index += 1
            if flag == "--not" {
                negateNext = true
                continue
            }
            guard let known = FilterFlag.bySpelling[flag] else {
                throw CLIError("\(flag) is not an option of osprey observe; see `osprey observe --help`.")
            }
            if known.value != nil, value == nil {
                guard index < arguments.count else { throw CLIError("\(flag) needs a value.") }
                value = arguments[index]
                index += 1
            }
            tokens.append((flag, value, negateNext))
            negateNext = false
        }
        if negateNext { throw CLIError("--not must be followed by a filter flag, e.g. --not --protocol udp.") }
        try checkConflicts(tokens)
        // -n applies to every --pod given without a namespace, wherever it appears.
        for token in tokens where (token.flag == "-n" || token.flag == "--namespace") && !token.negated {
            builder.namespace = token.value
        }
        // …and every --service; it then selects nothing on its own, as in hubble.
        let named: Set<String> = [
            "--pod", "--from-pod", "--to-pod", "--service", "--from-service", "--to-service",
        ]
        let namespaceOnlyScopesPods = tokens.contains { named.contains($0.flag) }
        for token in tokens {
            if namespaceOnlyScopesPods, token.flag == "-n" || token.flag == "--namespace" { continue }
            try builder.apply(token.flag, token.value ?? "", negated: token.negated)
        }
        return (builder.allow.filters, builder.deny.filters)
    }

    mutating func apply(_ spelling: String, _ value: String, negated: Bool) throws(CLIError) {
        guard let flag = FilterFlag.bySpelling[spelling] else { throw CLIError("\(spelling) is not a filter flag.") }
        var side = negated ? deny : allow
        defer { if negated { deny = side } else { allow = side } }
        side.used = true
        do {
            switch flag.field {
            case .endpoint(let set):
                let direction: Direction =
                    spelling.hasPrefix("--from-") ? .source : spelling.hasPrefix("--to-") ? .destination : .both
                // An endpoint flag's value errors name no flag: the spelling given does.
                do {
                    try side.set(direction) {
                        try set(&$0, value, true, namespace)
                    } dst: {
                        try set(&$0, value, false, namespace)
                    }
                } catch let error as CLIError {
                    throw CLIError("\(spelling) \(error.description)")
                }
            case .common(let set):
                try set(&side.common, value)
            }
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(spelling): \(error)")
        }
    }

    enum Direction { case source, destination, both }

    static func workload(_ value: String) -> Flow_Workload {
        let parts = value.split(separator: "/", maxSplits: 1).map(String.init)
        return .with {
            if parts.count == 2 {
                $0.kind = parts[0]
                $0.name = parts[1]
            } else {
                $0.name = value
            }
        }
    }

    static func identity(_ value: String) throws(CLIError) -> UInt32 {
        if let number = UInt32(value) { return number }
        let name = value.replacingOccurrences(of: "reserved:", with: "")
        if let reserved = HubbleVocabulary.reservedIdentities.first(where: { $0.value == name })?.key {
            return reserved
        }
        throw CLIError("\"\(value)\" is neither a number nor a reserved identity such as world or host.")
    }

    static func tcpFlags(_ value: String) throws(CLIError) -> Flow_TCPFlags {
        var flags = Flow_TCPFlags()
        for name in value.split(separator: ",") {
            switch name.trimmingCharacters(in: .whitespaces).uppercased() {
            case "SYN": flags.syn = true
            case "ACK": flags.ack = true
            case "FIN": flags.fin = true
            case "RST": flags.rst = true
            case "PSH": flags.psh = true
            case "URG": flags.urg = true
            case "ECE": flags.ece = true
            case "CWR": flags.cwr = true
            case "NS": flags.ns = true
            default:
                throw CLIError(
                    "--tcp-flags \"\(value)\": \(name) is not a TCP flag (SYN, ACK, FIN, RST, PSH, URG, ECE, CWR, NS).")
            }
        }
        return flags
    }

    static let eventTypes: [String: Int32] = [
        "drop": 1, "debug": 2, "capture": 3, "trace": 4, "policy-verdict": 5, "trace-sock": 7, "l7": 129, "agent": 130,
    ]

    static func eventType(_ value: String) throws(CLIError) -> Flow_EventTypeFilter {
        let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
        guard let type = eventTypes[parts[0]] else {
            throw CLIError(
                "--type \"\(value)\" is not an event type; use drop, trace[:to-endpoint|from-endpoint|…], l7, "
                    + "capture, policy-verdict or trace-sock.")
        }
        var filter = Flow_EventTypeFilter.with { $0.type = type }
        if parts.count == 2 {
            guard type == 4,
                let sub = HubbleVocabulary.traceSubTypeNames.first(where: { $0.value == parts[1] })?.key
            else {
                throw CLIError("--type \"\(value)\": \(parts[1]) is not a trace observation point (e.g. to-endpoint).")
            }
            filter.matchSubType = true
            filter.subType = Int32(sub)
        }
        return filter
    }
}

extension FilterBuilder.Side {
    /// Puts a from/to value on its side; a bare value on both (two filters).
    mutating func set(
        _ direction: FilterBuilder.Direction, src: (inout Flow_FlowFilter) throws -> Void,
        dst: (inout Flow_FlowFilter) throws -> Void
    ) throws {
        switch direction {
        case .source: try src(&common)
        case .destination: try dst(&common)
        case .both:
            try src(&source)
            try dst(&destination)
            bareUsed = true
        }
    }

    var filters: [Flow_FlowFilter] {
        guard used else { return [] }
        guard bareUsed else { return common == Flow_FlowFilter() ? [] : [common] }
        var left = common
        var right = common
        try? left.merge(serializedBytes: source.serializedBytes() as [UInt8])
        try? right.merge(serializedBytes: destination.serializedBytes() as [UInt8])
        return [left, right]
    }
}
