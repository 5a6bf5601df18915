import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOPosix

/// Makes client transports to Hubble servers: plaintext or TLS with the configured files, each
/// server's certificate checked against the name it should carry.
public struct HubbleDialer: Sendable {
    public let tls: ClientTLS?
    let eventLoopGroup: MultiThreadedEventLoopGroup

    public init(tls: ClientTLS?, eventLoopGroup: MultiThreadedEventLoopGroup = .singleton) {
        self.tls = tls
        self.eventLoopGroup = eventLoopGroup
    }

    /// A transport to `address`, verifying `serverName` when TLS is on (else the configured
    /// name, else the host).
    public func transport(
        to address: HubbleAddress, serverName: String? = nil
    ) throws -> HTTP2ClientTransport.Posix {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        // Reconnect quickly: an agent that restarts should be back within seconds.
        config.backoff = .init(initial: .milliseconds(250), max: .seconds(5), multiplier: 2, jitter: 0.1)
        // What a server may send before the reader takes it: the memory a stalled or slower
        // reader costs (the relay: per agent, and a flow takes several times its wire size once
        // decoded). The transport's default, 8 MiB per stream, let a relay behind a client that
        // stopped reading grow by 8 MiB per agent; with 1 MiB, a relay merging 50 agents that
        // sent faster than it could merge grew past 500 MiB (scripts/bench-relay.sh). 256 KiB
        // still carries ~500 MB/s per stream at a LAN's round trip.
        config.http2.targetWindowSize = 256 << 10
        var security = HTTP2ClientTransport.Posix.TransportSecurity.plaintext
        // A `tls://` address without configured files trusts the system's CAs.
        if let tls = tls ?? (address.tls ? ClientTLS.systemTrust : nil) {
            let verified = tls.verifying(serverName: serverName)
            security = verified.transportSecurity
            config.http2.authority = verified.serverName
        }
        return try HTTP2ClientTransport.Posix(
            target: address.dialTarget, transportSecurity: security, config: config, eventLoopGroup: eventLoopGroup)
    }
}
