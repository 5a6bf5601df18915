import Flows
import Foundation
import HubbleAPI

/// An exact address or a CIDR range (`10.0.0.1`, `10.0.0.0/8`, `fd00::/64`).
struct IPMatcher: Sendable {
    let network: [UInt8]
    let prefixLength: Int

    init(_ text: String) throws(FilterError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPMatcher.bytes(String(parts[0])) else {
            throw FilterError("\"\(text)\" is not an IP address or CIDR (e.g. 10.0.0.1, 10.0.0.0/24, fd00::/64).")
        }
        var length = address.count * 8
        if parts.count == 2 {
            guard let value = Int(parts[1]), value >= 0, value <= length else {
                throw FilterError("\"\(text)\" has an invalid prefix length; it must be 0–\(length).")
            }
            length = value
        }
        network = address
        prefixLength = length
    }

    func matches(_ text: String) -> Bool {
        guard let address = IPMatcher.bytes(text), address.count == network.count else { return false }
        var bits = prefixLength
        for index in network.indices where bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xff : ~(0xff >> UInt8(bits))
            if address[index] & mask != network[index] & mask { return false }
            bits -= 8
        }
        return true
    }

    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// `[namespace/]prefix` as Hubble's pod and service filters take it: a bare name is in the
/// `default` namespace (upstream's rule), `shop/` is the whole namespace, `shop/front` a name
/// prefix there, and `/front` a name prefix in any namespace (what `--all-namespaces` sends).
struct NamePrefix: Sendable {
    /// nil: any namespace.
    let namespace: String?
    let prefix: String

    init(_ text: String, field: String) throws(FilterError) {
        guard !text.isEmpty, text != "/" else {
            throw FilterError("Invalid \(field) filter \"\(text)\": it must be [namespace/][name].")
        }
        if let slash = text.firstIndex(of: "/") {
            let namespace = String(text[..<slash])
            self.namespace = namespace.isEmpty ? nil : namespace
            prefix = String(text[text.index(after: slash)...])
        } else {
            namespace = "default"
            prefix = text
        }
    }

    func matches(_ namespace: String, _ name: String) -> Bool {
        if namespace.isEmpty && name.isEmpty { return false }
        if let wanted = self.namespace, wanted != namespace { return false }
        if self.namespace == nil, namespace.isEmpty { return false }
        return name.hasPrefix(prefix)
    }

    /// The pipeline's endpoint as its message names it: no pod (no namespace), no name.
    func matches(_ endpoint: Endpoint) -> Bool {
        !endpoint.namespace.isEmpty && matches(endpoint.namespace, endpoint.podName)
    }
}

/// A compiled regular expression (RE2-style syntax as far as ICU shares it).
struct Pattern: @unchecked Sendable {
    // NSRegularExpression is immutable once built and safe to use from several threads.
    let regex: NSRegularExpression

    /// The longest pattern compiled (bytes): longer ones cost compile time and memory for nothing.
    static let maxLength = 4096

    init(regex pattern: String, what: String, caseInsensitive: Bool = false) throws(FilterError) {
        guard pattern.utf8.count <= Self.maxLength else {
            throw FilterError(
                "\(what) pattern is \(pattern.utf8.count) bytes, longer than the \(Self.maxLength) allowed; use a shorter pattern."
            )
        }
        do {
            regex = try NSRegularExpression(pattern: pattern, options: caseInsensitive ? [.caseInsensitive] : [])
        } catch {
            throw FilterError("\(what) pattern \"\(pattern)\" is not a valid regular expression.")
        }
    }

    func matches(_ text: String) -> Bool {
        regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}

/// A DNS name pattern with `*` wildcards (`*.svc.cluster.local`), case-insensitive, trailing
/// dots ignored.
struct FQDNPattern: Sendable {
    let pattern: Pattern

    init(_ text: String) throws(FilterError) {
        let trimmed = text.hasSuffix(".") ? String(text.dropLast()) : text
        guard !trimmed.isEmpty, trimmed.allSatisfy({ $0.isLetter || $0.isNumber || "-_.*".contains($0) }) else {
            throw FilterError("\"\(text)\" is not a DNS name pattern (letters, digits, '-', '.', '*').")
        }
        let body = trimmed.split(separator: "*", omittingEmptySubsequences: false)
            .map { NSRegularExpression.escapedPattern(for: String($0)) }
            .joined(separator: "[-a-zA-Z0-9_.]*")
        pattern = try Pattern(regex: "^\(body)\\.?$", what: "FQDN", caseInsensitive: true)
    }

    func matches(_ name: String) -> Bool { pattern.matches(name) }
}

/// A Kubernetes label selector (`app=web`, `app!=web`, `tier in (a,b)`, `tier notin (a)`,
/// `app`, `!app`, comma-separated = all must hold) over Hubble labels (`k8s:app=web`). A key
/// without a source prefix matches labels of any source; `k8s:app` only `k8s:` labels.
struct LabelSelector: Sendable {
    enum Operation: Sendable {
        case exists, notExists, equals(Set<String>), notEquals(Set<String>)
    }
    struct Requirement: Sendable {
        var source: String?
        var key: String
        var operation: Operation
    }
    let requirements: [Requirement]

    init(_ text: String) throws(FilterError) {
        var requirements: [Requirement] = []
        for clause in LabelSelector.clauses(text) {
            let clause = clause.trimmingCharacters(in: .whitespaces)
            guard !clause.isEmpty else { continue }
            guard let requirement = LabelSelector.requirement(clause) else {
                throw FilterError(
                    "Label selector \"\(text)\" is not valid; use e.g. app=web, app!=web, "
                        + "tier in (a,b), app or !app.")
            }
            requirements.append(requirement)
        }
        guard !requirements.isEmpty else { throw FilterError("Label selector is empty; use e.g. app=web.") }
        self.requirements = requirements
    }

    /// Splits on commas outside parentheses.
    static func clauses(_ text: String) -> [String] {
        var clauses: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character == ",", depth == 0 {
                clauses.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        clauses.append(current)
        return clauses
    }

    static func requirement(_ clause: String) -> Requirement? {
        func key(_ text: Substring) -> (String?, String)? {
            let text = text.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty, !text.contains(" ") else { return nil }
            if let colon = text.firstIndex(of: ":") {
                let source = String(text[..<colon])
                return (source == "any" ? nil : source, String(text[text.index(after: colon)...]))
            }
            return (nil, text)
        }
        func values(_ text: Substring) -> Set<String>? {
            let text = text.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("("), text.hasSuffix(")") else { return nil }
            return Set(
                text.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
        for (word, negated) in [(" notin ", true), (" in ", false)] {
            if let range = clause.range(of: word), let (source, name) = key(clause[..<range.lowerBound]),
                let set = values(clause[range.upperBound...])
            {
                return Requirement(source: source, key: name, operation: negated ? .notEquals(set) : .equals(set))
            }
        }
        for (symbol, negated) in [("!=", true), ("==", false), ("=", false)] {
            if let range = clause.range(of: symbol), let (source, name) = key(clause[..<range.lowerBound]) {
                let value = clause[range.upperBound...].trimmingCharacters(in: .whitespaces)
                return Requirement(
                    source: source, key: name, operation: negated ? .notEquals([value]) : .equals([value]))
            }
        }
        if clause.hasPrefix("!"), let (source, name) = key(clause.dropFirst()) {
            return Requirement(source: source, key: name, operation: .notExists)
        }
        if let (source, name) = key(clause[...]) { return Requirement(source: source, key: name, operation: .exists) }
        return nil
    }

    func matches(_ labels: [String]) -> Bool {
        requirements.allSatisfy { requirement in
            let values = labels.compactMap { label -> String? in
                let (source, key, value) = LabelSelector.split(label)
                guard key == requirement.key, requirement.source == nil || requirement.source == source else {
                    return nil
                }
                return value
            }
            switch requirement.operation {
            case .exists: return !values.isEmpty
            case .notExists: return values.isEmpty
            case .equals(let wanted): return values.contains { wanted.contains($0) }
            case .notEquals(let unwanted): return !values.contains { unwanted.contains($0) }
            }
        }
    }

    /// `k8s:app=web` → (`k8s`, `app`, `web`); `reserved:world` → (`reserved`, `world`, ``).
    static func split(_ label: String) -> (source: String, key: String, value: String) {
        let equals = label.firstIndex(of: "=") ?? label.endIndex
        let head = label[..<equals]
        let value = equals < label.endIndex ? String(label[label.index(after: equals)...]) : ""
        if let colon = head.firstIndex(of: ":") {
            return (String(head[..<colon]), String(head[head.index(after: colon)...]), value)
        }
        return ("", String(head), value)
    }
}

/// Hubble's protocol filter names.
enum ProtocolName: Sendable {
    case tcp, udp, icmp, icmpv4, icmpv6, sctp, vrrp, igmp, dns, http, kafka

    init(_ text: String) throws(FilterError) {
        switch text.lowercased() {
        case "tcp": self = .tcp
        case "udp": self = .udp
        case "icmp": self = .icmp
        case "icmpv4": self = .icmpv4
        case "icmpv6": self = .icmpv6
        case "sctp": self = .sctp
        case "vrrp": self = .vrrp
        case "igmp": self = .igmp
        case "dns": self = .dns
        case "http": self = .http
        case "kafka": self = .kafka
        default:
            throw FilterError(
                "Protocol \"\(text)\" is not known; use tcp, udp, icmp, icmpv4, icmpv6, sctp, vrrp, igmp, dns, "
                    + "http or kafka.")
        }
    }

    func matches(_ flow: Flow_Flow) -> Bool {
        switch (self, flow.l4.protocol, flow.l7.record) {
        case (.tcp, .tcp?, _), (.udp, .udp?, _), (.icmpv4, .icmpv4?, _), (.icmpv6, .icmpv6?, _), (.sctp, .sctp?, _),
            (.vrrp, .vrrp?, _), (.igmp, .igmp?, _), (.icmp, .icmpv4?, _), (.icmp, .icmpv6?, _), (.dns, _, .dns?),
            (.http, _, .http?), (.kafka, _, .kafka?):
            true
        default: false
        }
    }
}

/// A node name glob: `node-*`, `cluster/node-*`, or `cluster/` for every node of a cluster.
struct NodePattern: Sendable {
    let cluster: Pattern?
    let node: Pattern?

    init(_ text: String) throws(FilterError) {
        func glob(_ text: Substring) throws(FilterError) -> Pattern? {
            guard !text.isEmpty else { return nil }
            guard text.allSatisfy({ $0.isLetter || $0.isNumber || "-_.*".contains($0) }) else {
                throw FilterError("Node name pattern \"\(text)\" may contain only letters, digits, '-', '_', '.', '*'.")
            }
            let body = text.split(separator: "*", omittingEmptySubsequences: false)
                .map { NSRegularExpression.escapedPattern(for: String($0)) }.joined(separator: ".*")
            return try Pattern(regex: "^\(body)$", what: "Node name")
        }
        if let slash = text.firstIndex(of: "/") {
            let any = try glob("*")
            cluster = try glob(text[..<slash]) ?? any
            node = try glob(text[text.index(after: slash)...])
        } else {
            cluster = nil
            guard let node = try glob(text[...]) else { throw FilterError("Node name pattern is empty.") }
            self.node = node
        }
    }

    func matches(_ flow: Flow_Flow) -> Bool {
        var name = Substring(flow.nodeName)
        var cluster = [flow.source.clusterName, flow.destination.clusterName].first { !$0.isEmpty } ?? "default"
        if let slash = name.firstIndex(of: "/") {
            cluster = String(name[..<slash])
            name = name[name.index(after: slash)...]
        }
        if let pattern = self.cluster, !pattern.matches(cluster) { return false }
        return node?.matches(String(name)) ?? true
    }
}
