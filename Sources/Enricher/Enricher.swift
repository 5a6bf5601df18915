import ClusterInventory
import Flows
import Foundation
import Synchronization

/// Fills in a flow's source and destination endpoints and services, and, knowing them, leaves a
/// DNS message's L7 record on the querier's side only (`oneRecordPerDNSMessage`).
///
/// A pod's packets to a Service carry its ClusterIP where Osprey sees them leave the pod (the
/// node translates them later); with a `ServiceTranslation` the enricher names the backend the
/// node chose instead — its address, port and pod — keeps the Service in `destination_service`
/// (`source_service` on replies) and the ClusterIP in `serviceAddress`, as Hubble shows a
/// Service's traffic on a Cilium cluster. A flow to a Service address the node had not
/// translated yet keeps the ClusterIP and is marked `awaitsTranslation`; enriching it again once
/// the reply's translation is known names the backend.
public struct Enricher: Sendable {
    let metadata: any MetadataSource
    let translation: (any ServiceTranslation)?
    let nodeName: String
    let clusterName: String

    /// The kernel's drop reason for a netfilter rule's drop (`SKB_DROP_REASON_NETFILTER_DROP`).
    static let netfilterDrop = "NETFILTER_DROP"
    /// Hubble's DropReason for a packet to a Service that has no backend (Cilium's
    /// `SERVICE_BACKEND_NOT_FOUND`, "Service backend not found").
    static let serviceBackendNotFound = 158

    public init(
        metadata: any MetadataSource, nodeName: String, clusterName: String,
        translation: (any ServiceTranslation)? = nil
    ) {
        self.metadata = metadata
        self.translation = translation
        self.nodeName = nodeName
        self.clusterName = clusterName
    }

    /// Enriches one flow. False: the flow is a report that a DNS query went unanswered which
    /// the querier's side makes on its own (`oneRecordPerDNSMessage`); drop it.
    @discardableResult
    public func enrich(_ flow: inout Flow) -> Bool {
        metadata.withLookups { lookup in apply(lookup, to: &flow) }
        return Self.oneRecordPerDNSMessage(&flow)
    }

    /// Enriches a whole batch (the metadata source's lock is taken once), dropping the flows
    /// `enrich` says to drop.
    public func enrich(_ flows: inout [Flow]) {
        metadata.withLookups { lookup in
            for index in flows.indices { apply(lookup, to: &flows[index]) }
        }
        var redundant: [Int] = []
        for index in flows.indices where !Self.oneRecordPerDNSMessage(&flows[index]) { redundant.append(index) }
        for index in redundant.reversed() { flows.remove(at: index) }
    }

    /// One L7 record per DNS message, as Hubble shows a message once (from Cilium's DNS proxy,
    /// on the querier's side). The datapath reports a message at the pod veths it crosses: where
    /// a pod queries a pod, at the querier's veth (query leaving, answer arriving) and at the
    /// server's (query arriving, answer leaving) — on one node (unless each veth reports only
    /// what enters its pod, monitor aggregation), or on two through the relay. The
    /// querier's side keeps the record, as the DNS metrics count it there; at the server's, when
    /// the querier is a pod (whose agent reports it), the flow stays a trace of its packet
    /// (`to-endpoint` / `from-endpoint`, `UDP`) with its connection's direction. A querier that is
    /// no pod (the node itself, outside the cluster) has only the server's side: it keeps the
    /// record there, as does a querier on the server's node whose interface did not report the
    /// query leaving (monitor aggregation: `Flow.departureUnreported`). False for a report that
    /// the query went unanswered at the server's side of a pod querier: the querier's side
    /// reports it.
    static func oneRecordPerDNSMessage(_ flow: inout Flow) -> Bool {
        guard flow.hasDNS, let dns = flow.dns else { return true }
        // The server's side: a query entering a pod, an answer leaving one.
        guard flow.observationPoint == (dns.isResponse ? .fromEndpoint : .toEndpoint) else { return true }
        // Its querier's interface did not report the query leaving: the record is here.
        if flow.departureUnreported { return true }
        let querier = dns.isResponse ? flow.destination : flow.source
        guard !querier.podName.isEmpty else { return true }
        if dns.unanswered { return false }
        flow.dns = nil
        flow.latencyNanoseconds = 0
        flow.trafficDirection = .ofConnection(at: flow.observationPoint, isReply: flow.isReply)
        return true
    }

    private func apply(_ lookup: (String, Date) -> AddressIdentity, to flow: inout Flow) {
        let time = flow.time
        var sourceAddress = lookup(flow.sourceIP, time)
        var destinationAddress = lookup(flow.destinationIP, time)
        let sourceService = sourceAddress.service
        let destinationService = destinationAddress.service
        let toService = destinationAddress.isServiceAddress
        var answer = TranslationAnswer.unknown
        if let translation, toService || sourceAddress.isServiceAddress {
            let ports = flow.l4.ports
            if toService {
                answer = translation.answer(
                    client: flow.sourceIP, clientPort: ports.source, service: flow.destinationIP,
                    servicePort: ports.destination, protocolNumber: flow.l4.protocolNumber,
                    again: flow.awaitsTranslation)
            }
            // A drop waits for nothing: its own event carried the translation, if there was one.
            flow.awaitsTranslation = toService && answer == .unknown && flow.verdict != .dropped
            if let backend = answer.backend {
                flow.serviceAddress = Self.hostPort(flow.destinationIP, ports.destination)
                flow.destinationIP = backend.ip
                flow.l4 = flow.l4.withPorts(source: ports.source, destination: backend.port)
                destinationAddress = lookup(backend.ip, time)
            } else if sourceAddress.isServiceAddress,
                let backend = translation.answer(
                    client: flow.destinationIP, clientPort: ports.destination, service: flow.sourceIP,
                    servicePort: ports.source, protocolNumber: flow.l4.protocolNumber, again: false
                ).backend
            {
                flow.serviceAddress = Self.hostPort(flow.sourceIP, ports.source)
                flow.sourceIP = backend.ip
                flow.l4 = flow.l4.withPorts(source: backend.port, destination: ports.destination)
                sourceAddress = lookup(backend.ip, time)
            }
        }
        if toService, flow.verdict == .dropped, answer.backend == nil, flow.kernelDropReason == Self.netfilterDrop {
            // Dropped by netfilter while still addressed to the Service: kube-proxy's rejection
            // of a Service without endpoints. A connection's first packet meets the NAT before
            // any filter, so a drop after it is addressed to the backend; a drop that still names
            // the Service while the node translated its connection came before the NAT (a raw or
            // mangle rule), which only Service naming can tell.
            flow.dropReason = Self.serviceBackendNotFound
        }
        flow.setIdentities(
            source: endpoint(sourceAddress), destination: endpoint(destinationAddress),
            sourceService: sourceService, destinationService: destinationService)
        // A drop has no observation point; its direction follows the pod of this node it concerns.
        if flow.trafficDirection == .unknown {
            if sourceAddress.pod?.node == nodeName {
                flow.trafficDirection = .egress
            } else if destinationAddress.pod?.node == nodeName {
                flow.trafficDirection = .ingress
            }
        }
    }

    /// The flow endpoint of an address: its pod (named with this cluster when the source did
    /// not), a reserved identity for node and API server addresses, or what a Service's
    /// backends share; nil (world) for an address outside the cluster.
    func endpoint(_ address: AddressIdentity) -> Endpoint? {
        if let ready = address.endpoint { return ready }
        if var endpoint = address.pod?.endpoint {
            endpoint.clusterName = clusterName
            return endpoint
        }
        if let node = address.node, node == nodeName { return .host }
        if address.isKubeAPIServer { return .kubeAPIServer }
        if address.node != nil { return .remoteNode }
        return address.serviceBackends
    }

    /// `ip:port`, with brackets around an IPv6 address.
    static func hostPort(_ ip: String, _ port: UInt16) -> String {
        ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
