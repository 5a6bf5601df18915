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

/// Where the node's NAT (kube-proxy's DNAT) sent a connection that a client opened to a
/// Service address: the narrow question the enricher asks about flows to and from ClusterIPs.
public protocol ServiceTranslation: Sendable {
    /// The backend of the connection `client:clientPort → service:servicePort`, or nil when the
    /// node did not translate it (yet, or ever: a first packet dropped before NAT was confirmed).
    /// `again`: the flow asking was held because this question had no answer a poll ago; a
    /// source that remembers "not translated" asks its table once more rather than repeat it.
    func backend(
        client: String, clientPort: UInt16, service: String, servicePort: UInt16, protocolNumber: UInt8,
        again: Bool
    )
        -> ServiceBackend?
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
/// went to `backend`.
public struct ObservedTranslation: Sendable, Equatable {
    public var connection: ServiceConnection
    public var backend: ServiceBackend

    public init(connection: ServiceConnection, backend: ServiceBackend) {
        self.connection = connection
        self.backend = backend
    }
}

extension ServiceTranslation {
    /// Sources that only look up ignore what the packets carried.
    public func learn(_ translations: [ObservedTranslation]) {}
}
