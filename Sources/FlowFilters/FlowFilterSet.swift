import Flows
import Foundation
import HubbleAPI
import HubbleWire

/// Hubble's filter semantics: a flow passes when it matches any allow-list filter (or the
/// allow list is empty) and no deny-list filter. Inside one FlowFilter every set field must
/// match; inside one field any value may match.
public struct FlowFilterSet: Sendable {
    let allow: [CompiledFilter]
    let deny: [CompiledFilter]

    /// The most filters a request may carry (allow and deny together): every flow is matched
    /// against each, so a hostile list would cost every follower's flows.
    public static let maxFilters = 1_000

    public init(allow: [Flow_FlowFilter], deny: [Flow_FlowFilter]) throws(FilterError) {
        guard allow.count + deny.count <= Self.maxFilters else {
            throw FilterError(
                "A request may carry at most \(Self.maxFilters) filters, not \(allow.count + deny.count); combine values into fewer filters."
            )
        }
        self.allow = try allow.map { filter throws(FilterError) in try CompiledFilter(filter) }
        self.deny = try deny.map { filter throws(FilterError) in try CompiledFilter(filter) }
    }

    /// Everything passes.
    public init() {
        allow = []
        deny = []
    }

    public var isEmpty: Bool { allow.isEmpty && deny.isEmpty }

    public func matches(_ flow: Flow_Flow) -> Bool {
        if !allow.isEmpty, !allow.contains(where: { $0.matches(flow) }) { return false }
        return !deny.contains(where: { $0.matches(flow) })
    }

    /// False when the pipeline's own `flow` cannot pass, decided without making its message: no
    /// allow-list filter's addresses, pods or verdicts fit it. True says only that the message
    /// must be made and matched. A follower filtering a busy node (`--namespace`, `--pod`, `--ip`,
    /// `--verdict`) then skips making a message for each flow it drops — which was most of what
    /// such a follower cost the agent.
    public func mayMatch(_ flow: Flow) -> Bool {
        allow.isEmpty || allow.contains { filter in filter.quickChecks.allSatisfy { $0(flow) } }
    }

    /// The pipeline's `flow` as its Hubble message when the filters pass it, else nil: the quick
    /// check first (`mayMatch`), so a flow it rejects never becomes a message. Every caller that
    /// filters the pipeline's flows goes through here (GetFlows, flow logs).
    public func message(for flow: Flow) -> Flow_Flow? {
        guard mayMatch(flow) else { return nil }
        let message = FlowMessage.make(flow)
        return matches(message) ? message : nil
    }
}

/// A filter that cannot be applied, in one sentence saying what to change.
public struct FilterError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One FlowFilter turned into a list of checks, all of which must pass: one check per field
/// that is set, built by the filters of its kind.
struct CompiledFilter: Sendable {
    typealias Check = @Sendable (Flow_Flow) -> Bool
    /// A check on the pipeline's flow that every flow whose message passes the field's `Check`
    /// also passes (the fields the message copies unchanged: addresses, pods, verdict).
    typealias QuickCheck = @Sendable (Flow) -> Bool
    let checks: [Check]
    let quickChecks: [QuickCheck]

    func matches(_ flow: Flow_Flow) -> Bool { checks.allSatisfy { $0(flow) } }

    init(_ filter: Flow_FlowFilter) throws(FilterError) {
        var checks = CheckList()
        try EndpointFilters.add(filter, to: &checks)
        try EventFilters.add(filter, to: &checks)
        try L4Filters.add(filter, to: &checks)
        try L7Filters.add(filter, to: &checks)
        self.checks = checks.list
        quickChecks = checks.quick
    }
}

/// The checks of a filter: a field adds its check only when it has values.
struct CheckList {
    private(set) var list: [CompiledFilter.Check] = []
    private(set) var quick: [CompiledFilter.QuickCheck] = []

    mutating func add(_ values: some Collection, _ check: @escaping CompiledFilter.Check) {
        if !values.isEmpty { list.append(check) }
    }

    /// A field's check and the quick check it implies on the pipeline's flow.
    mutating func add(
        _ values: some Collection, quick: @escaping CompiledFilter.QuickCheck, _ check: @escaping CompiledFilter.Check
    ) {
        guard !values.isEmpty else { return }
        list.append(check)
        self.quick.append(quick)
    }

    mutating func add(_ check: @escaping CompiledFilter.Check) { list.append(check) }
}
