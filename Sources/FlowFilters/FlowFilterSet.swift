import Foundation
import HubbleAPI
import HubbleWire

/// Hubble's filter semantics: a flow passes when it matches any allow-list filter (or the
/// allow list is empty) and no deny-list filter. Inside one FlowFilter every set field must
/// match; inside one field any value may match.
public struct FlowFilterSet: Sendable {
    let allow: [CompiledFilter]
    let deny: [CompiledFilter]

    public init(allow: [Flow_FlowFilter], deny: [Flow_FlowFilter]) throws(FilterError) {
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
}

/// A filter that cannot be applied, in one sentence saying what to change.
public struct FilterError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One FlowFilter turned into a list of checks, all of which must pass.
struct CompiledFilter: Sendable {
    typealias Check = @Sendable (Flow_Flow) -> Bool
    let checks: [Check]

    func matches(_ flow: Flow_Flow) -> Bool { checks.allSatisfy { $0(flow) } }

    init(_ filter: Flow_FlowFilter) throws(FilterError) {
        var checks: [Check] = []
        func add(_ values: some Collection, _ check: @escaping Check) {
            if !values.isEmpty { checks.append(check) }
        }

        let uuids = Set(filter.uuid.map { $0.lowercased() })
        add(uuids) { uuids.contains($0.uuid.lowercased()) }

        let sourceIPs = try filter.sourceIp.map { text throws(FilterError) in try IPMatcher(text) }
        add(sourceIPs) { flow in sourceIPs.contains { $0.matches(flow.ip.source) } }
        let sourceXlated = try filter.sourceIpXlated.map { text throws(FilterError) in try IPMatcher(text) }
        add(sourceXlated) { flow in sourceXlated.contains { $0.matches(flow.ip.sourceXlated) } }
        let destinationIPs = try filter.destinationIp.map { text throws(FilterError) in try IPMatcher(text) }
        add(destinationIPs) { flow in destinationIPs.contains { $0.matches(flow.ip.destination) } }

        let sourcePods = try filter.sourcePod.map { text throws(FilterError) in
            try NamePrefix(text, field: "source_pod")
        }
        add(sourcePods) { flow in sourcePods.contains { $0.matches(flow.source.namespace, flow.source.podName) } }
        let destinationPods = try filter.destinationPod.map { text throws(FilterError) in
            try NamePrefix(text, field: "destination_pod")
        }
        add(destinationPods) { flow in
            destinationPods.contains { $0.matches(flow.destination.namespace, flow.destination.podName) }
        }
        let sourceServices = try filter.sourceService.map { text throws(FilterError) in
            try NamePrefix(text, field: "source_service")
        }
        add(sourceServices) { flow in
            flow.hasSourceService
                && sourceServices.contains { $0.matches(flow.sourceService.namespace, flow.sourceService.name) }
        }
        let destinationServices = try filter.destinationService.map { text throws(FilterError) in
            try NamePrefix(text, field: "destination_service")
        }
        add(destinationServices) { flow in
            flow.hasDestinationService
                && destinationServices.contains {
                    $0.matches(flow.destinationService.namespace, flow.destinationService.name)
                }
        }

        let sourceFQDNs = try filter.sourceFqdn.map { text throws(FilterError) in try FQDNPattern(text) }
        add(sourceFQDNs) { flow in flow.sourceNames.contains { name in sourceFQDNs.contains { $0.matches(name) } } }
        let destinationFQDNs = try filter.destinationFqdn.map { text throws(FilterError) in try FQDNPattern(text) }
        add(destinationFQDNs) { flow in
            flow.destinationNames.contains { name in destinationFQDNs.contains { $0.matches(name) } }
        }

        let sourceLabels = try filter.sourceLabel.map { text throws(FilterError) in try LabelSelector(text) }
        add(sourceLabels) { flow in sourceLabels.contains { $0.matches(flow.source.labels) } }
        let destinationLabels = try filter.destinationLabel.map { text throws(FilterError) in
            try LabelSelector(text)
        }
        add(destinationLabels) { flow in destinationLabels.contains { $0.matches(flow.destination.labels) } }
        let nodeLabels = try filter.nodeLabels.map { text throws(FilterError) in try LabelSelector(text) }
        add(nodeLabels) { flow in nodeLabels.contains { $0.matches(flow.nodeLabels) } }

        let sourceWorkloads = filter.sourceWorkload
        add(sourceWorkloads) { flow in Self.workloads(flow.source.workloads, match: sourceWorkloads) }
        let destinationWorkloads = filter.destinationWorkload
        add(destinationWorkloads) { flow in Self.workloads(flow.destination.workloads, match: destinationWorkloads) }

        let sourceClusters = Set(filter.sourceClusterName)
        add(sourceClusters) { sourceClusters.contains($0.source.clusterName) }
        let destinationClusters = Set(filter.destinationClusterName)
        add(destinationClusters) { destinationClusters.contains($0.destination.clusterName) }

        let directions = Set(filter.trafficDirection)
        add(directions) { directions.contains($0.trafficDirection) }
        let verdicts = Set(filter.verdict)
        add(verdicts) { verdicts.contains($0.verdict) }
        let dropReasons = Set(filter.dropReasonDesc)
        add(dropReasons) { $0.verdict == .dropped && dropReasons.contains($0.dropReasonDesc) }
        let interfaces = filter.interface
        add(interfaces) { flow in
            flow.hasInterface
                && interfaces.contains {
                    ($0.index == 0 || $0.index == flow.interface.index)
                        && ($0.name.isEmpty || $0.name == flow.interface.name)
                }
        }
        let eventTypes = filter.eventType
        add(eventTypes) { flow in
            eventTypes.contains {
                $0.type == flow.eventType.type && (!$0.matchSubType || $0.subType == flow.eventType.subType)
            }
        }

        let protocols = try filter.protocol.map { name throws(FilterError) in try ProtocolName(name) }
        add(protocols) { flow in protocols.contains { $0.matches(flow) } }
        let sourcePorts = try filter.sourcePort.map { text throws(FilterError) in try Self.port(text) }
        add(sourcePorts) { flow in flow.ports.map { sourcePorts.contains($0.source) } ?? false }
        let destinationPorts = try filter.destinationPort.map { text throws(FilterError) in try Self.port(text) }
        add(destinationPorts) { flow in flow.ports.map { destinationPorts.contains($0.destination) } ?? false }

        let replies = Set(filter.reply)
        add(replies) { $0.hasIsReply && replies.contains($0.isReply.value) }

        let queries = try filter.dnsQuery.map { pattern throws(FilterError) in
            try Pattern(regex: pattern, what: "DNS query")
        }
        add(queries) { flow in
            guard case .dns(let dns)? = flow.l7.record else { return false }
            return queries.contains { $0.matches(dns.query) }
        }

        let sourceIdentities = Set(filter.sourceIdentity)
        add(sourceIdentities) { sourceIdentities.contains($0.source.identity) }
        let destinationIdentities = Set(filter.destinationIdentity)
        add(destinationIdentities) { destinationIdentities.contains($0.destination.identity) }

        let tcpFlags = filter.tcpFlags
        add(tcpFlags) { flow in
            guard case .tcp(let tcp)? = flow.l4.protocol else { return false }
            return tcpFlags.contains { Self.flags(tcp.flags, include: $0) }
        }

        let nodes = try filter.nodeName.map { text throws(FilterError) in try NodePattern(text) }
        add(nodes) { flow in nodes.contains { $0.matches(flow) } }
        let versions = Set(filter.ipVersion)
        add(versions) { versions.contains($0.ip.ipVersion) }
        let traceIDs = Set(filter.traceID)
        add(traceIDs) { traceIDs.contains($0.traceContext.parent.traceID) }
        let ipTraceIDs = Set(filter.ipTraceID)
        add(ipTraceIDs) { ipTraceIDs.contains($0.ipTraceID.traceID) }
        let encrypted = Set(filter.encrypted)
        add(encrypted) { encrypted.contains($0.ip.encrypted) }

        // HTTP fields: Osprey's flows carry no HTTP records, so such a filter matches nothing —
        // but its values are still checked so that a typo is reported, as Hubble does.
        for code in filter.httpStatusCode {
            guard code.range(of: #"^[1-5]([0-9][0-9]|\+)?$"#, options: .regularExpression) != nil else {
                throw FilterError(
                    "HTTP status code \"\(code)\" is not valid; use a code such as 404 or a class such as 5+.")
            }
        }
        for pattern in filter.httpPath + filter.httpURL {
            _ = try Pattern(regex: pattern, what: "HTTP path/URL")
        }
        let http =
            !filter.httpStatusCode.isEmpty || !filter.httpMethod.isEmpty || !filter.httpPath.isEmpty
            || !filter.httpURL.isEmpty || !filter.httpHeader.isEmpty
        if http {
            checks.append { flow in
                if case .http? = flow.l7.record { return true }
                return false
            }
        }
        if filter.hasExperimental, !filter.experimental.celExpression.isEmpty {
            throw FilterError(
                "CEL expressions (experimental.cel_expression) are not supported by Osprey; "
                    + "use the other filter fields.")
        }
        self.checks = checks
    }

    static func workloads(_ workloads: [Flow_Workload], match filters: [Flow_Workload]) -> Bool {
        workloads.contains { workload in
            filters.contains {
                ($0.kind.isEmpty || $0.kind.caseInsensitiveCompare(workload.kind) == .orderedSame)
                    && ($0.name.isEmpty || $0.name == workload.name)
            }
        }
    }

    static func port(_ text: String) throws(FilterError) -> UInt32 {
        guard let port = UInt16(text) else {
            throw FilterError("Port \"\(text)\" is not a number between 0 and 65535.")
        }
        return UInt32(port)
    }

    /// Every flag set in `filter` is set in `flags`.
    static func flags(_ flags: Flow_TCPFlags, include filter: Flow_TCPFlags) -> Bool {
        (!filter.syn || flags.syn) && (!filter.ack || flags.ack) && (!filter.fin || flags.fin)
            && (!filter.rst || flags.rst) && (!filter.psh || flags.psh) && (!filter.urg || flags.urg)
            && (!filter.ece || flags.ece) && (!filter.cwr || flags.cwr) && (!filter.ns || flags.ns)
    }
}
