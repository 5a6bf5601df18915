import Flows
import Foundation

/// A backend a Service address was translated to.
public struct ServiceBackend: Sendable, Equatable {
    public var ip: String
    public var port: UInt16

    public init(ip: String, port: UInt16) {
        self.ip = ip
        self.port = port
    }
}

/// What the node's NAT did with a connection a client opened to a Service address, as far as is
/// known.
public enum TranslationAnswer: Sendable, Equatable {
    /// It sent the connection to this backend.
    case backend(ServiceBackend)
    /// It did not translate the connection, and will not: the NAT ran without choosing a backend
    /// (the Service had none), or netfilter dropped the connection's packet while it was still
    /// addressed to the Service (kube-proxy rejecting a Service without endpoints).
    case untranslated
    /// Nothing is known (yet): the table does not hold the connection, and no packet carried
    /// its translation.
    case unknown

    /// The backend, when there is one.
    public var backend: ServiceBackend? {
        if case .backend(let backend) = self { return backend }
        return nil
    }
}

/// Where the node's NAT (kube-proxy's DNAT) sent a connection that a client opened to a
/// Service address: the narrow question the enricher asks about flows to and from ClusterIPs.
public protocol ServiceTranslation: Sendable {
    /// What the node's NAT did with the connection `client:clientPort → service:servicePort`
    /// (`.unknown` also for a first packet dropped before its conntrack entry was confirmed,
    /// until the drop's own event tells). `again`: the flow asking was held because this
    /// question had no answer a poll ago; a source that remembers "unknown" asks its table once
    /// more rather than repeat it.
    func answer(
        client: String, clientPort: UInt16, service: String, servicePort: UInt16, protocolNumber: UInt8,
        again: Bool
    )
        -> TranslationAnswer
    /// Translations the packets themselves carried, told before their flows are enriched (the
    /// connection may be gone from the table by then).
    func learn(_ translations: [ObservedTranslation])
}

/// A connection a client opened to a Service address: `client:clientPort → service:servicePort`.
public struct ServiceConnection: Hashable, Sendable {
    public var protocolNumber: UInt8
    public var client: String
    public var clientPort: UInt16
    public var service: String
    public var servicePort: UInt16

    public init(protocolNumber: UInt8, client: String, clientPort: UInt16, service: String, servicePort: UInt16) {
        self.protocolNumber = protocolNumber
        self.client = client
        self.clientPort = clientPort
        self.service = service
        self.servicePort = servicePort
    }
}

/// A translation the datapath saw on a packet (the conntrack entry it carried): the connection
/// went to `backend`; nil: netfilter dropped the packet while it was still addressed to the
/// Service, so the connection was not translated.
public struct ObservedTranslation: Sendable, Equatable {
    public var connection: ServiceConnection
    public var backend: ServiceBackend?

    public init(connection: ServiceConnection, backend: ServiceBackend?) {
        self.connection = connection
        self.backend = backend
    }
}

extension ObservedTranslation {
    /// What a drop that carried no translation says: netfilter dropped the packet while it was
    /// still addressed to its destination, so if that is a Service address, the connection was
    /// not translated (nil for other drops). A first packet is translated before any filter
    /// sees it, and a translated connection's drops carry their NAT: such a drop is kube-proxy
    /// rejecting a Service without endpoints. Whether the destination is a Service address is
    /// the enricher's to know; an answer for a connection to a pod is never asked for.
    public static func untranslated(dropped flow: Flow) -> ObservedTranslation? {
        guard flow.verdict == .dropped, flow.kernelDropReason == Enricher.netfilterDrop,
            flow.l4.protocolNumber == 6 || flow.l4.protocolNumber == 17
        else { return nil }
        let ports = flow.l4.ports
        return ObservedTranslation(
            connection: ServiceConnection(
                protocolNumber: flow.l4.protocolNumber, client: flow.sourceIP, clientPort: ports.source,
                service: flow.destinationIP, servicePort: ports.destination),
            backend: nil)
    }
}

extension ServiceTranslation {
    /// Sources that only look up ignore what the packets carried.
    public func learn(_ translations: [ObservedTranslation]) {}
}
