import Flows
import Foundation
import HubbleAPI
import HubbleWire

/// Filters on the two ends of a flow: addresses, pods, services, names, labels, workloads,
/// clusters, identities.
enum EndpointFilters {
    static func add(_ filter: Flow_FlowFilter, to checks: inout CheckList) throws(FilterError) {
        let sourceIPs = try filter.sourceIp.map { text throws(FilterError) in try IPMatcher(text) }
        checks.add(sourceIPs, quick: { flow in sourceIPs.contains { $0.matches(flow.sourceIP) } }) { flow in
            sourceIPs.contains { $0.matches(flow.ip.source) }
        }
        let sourceXlated = try filter.sourceIpXlated.map { text throws(FilterError) in try IPMatcher(text) }
        checks.add(sourceXlated) { flow in sourceXlated.contains { $0.matches(flow.ip.sourceXlated) } }
        let destinationIPs = try filter.destinationIp.map { text throws(FilterError) in try IPMatcher(text) }
        checks.add(destinationIPs, quick: { flow in destinationIPs.contains { $0.matches(flow.destinationIP) } }) {
            flow in destinationIPs.contains { $0.matches(flow.ip.destination) }
        }

        let sourcePods = try filter.sourcePod.map { text throws(FilterError) in
            try NamePrefix(text, field: "source_pod")
        }
        checks.add(sourcePods, quick: { flow in sourcePods.contains { $0.matches(flow.source) } }) { flow in
            sourcePods.contains { $0.matches(flow.source.namespace, flow.source.podName) }
        }
        let destinationPods = try filter.destinationPod.map { text throws(FilterError) in
            try NamePrefix(text, field: "destination_pod")
        }
        checks.add(destinationPods, quick: { flow in destinationPods.contains { $0.matches(flow.destination) } }) {
            flow in destinationPods.contains { $0.matches(flow.destination.namespace, flow.destination.podName) }
        }
        let sourceServices = try filter.sourceService.map { text throws(FilterError) in
            try NamePrefix(text, field: "source_service")
        }
        checks.add(sourceServices) { flow in
            flow.hasSourceService
                && sourceServices.contains { $0.matches(flow.sourceService.namespace, flow.sourceService.name) }
        }
        let destinationServices = try filter.destinationService.map { text throws(FilterError) in
            try NamePrefix(text, field: "destination_service")
        }
        checks.add(destinationServices) { flow in
            flow.hasDestinationService
                && destinationServices.contains {
                    $0.matches(flow.destinationService.namespace, flow.destinationService.name)
                }
        }

        let sourceFQDNs = try filter.sourceFqdn.map { text throws(FilterError) in try FQDNPattern(text) }
        checks.add(sourceFQDNs) { flow in
            flow.sourceNames.contains { name in sourceFQDNs.contains { $0.matches(name) } }
        }
        let destinationFQDNs = try filter.destinationFqdn.map { text throws(FilterError) in try FQDNPattern(text) }
        checks.add(destinationFQDNs) { flow in
            flow.destinationNames.contains { name in destinationFQDNs.contains { $0.matches(name) } }
        }

        let sourceLabels = try filter.sourceLabel.map { text throws(FilterError) in try LabelSelector(text) }
        checks.add(sourceLabels) { flow in sourceLabels.contains { $0.matches(flow.source.labels) } }
        let destinationLabels = try filter.destinationLabel.map { text throws(FilterError) in
            try LabelSelector(text)
        }
        checks.add(destinationLabels) { flow in destinationLabels.contains { $0.matches(flow.destination.labels) } }
        let sourceWorkloads = filter.sourceWorkload
        checks.add(sourceWorkloads) { flow in Self.workloads(flow.source.workloads, match: sourceWorkloads) }
        let destinationWorkloads = filter.destinationWorkload
        checks.add(destinationWorkloads) { flow in
            Self.workloads(flow.destination.workloads, match: destinationWorkloads)
        }

        let sourceClusters = Set(filter.sourceClusterName)
        checks.add(sourceClusters) { sourceClusters.contains($0.source.clusterName) }
        let destinationClusters = Set(filter.destinationClusterName)
        checks.add(destinationClusters) { destinationClusters.contains($0.destination.clusterName) }

        let sourceIdentities = Set(filter.sourceIdentity)
        checks.add(sourceIdentities) { sourceIdentities.contains($0.source.identity) }
        let destinationIdentities = Set(filter.destinationIdentity)
        checks.add(destinationIdentities) { destinationIdentities.contains($0.destination.identity) }
    }

    static func workloads(_ workloads: [Flow_Workload], match filters: [Flow_Workload]) -> Bool {
        workloads.contains { workload in
            filters.contains {
                ($0.kind.isEmpty || $0.kind.caseInsensitiveCompare(workload.kind) == .orderedSame)
                    && ($0.name.isEmpty || $0.name == workload.name)
            }
        }
    }
}
