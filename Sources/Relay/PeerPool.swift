import Flows
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HubbleAPI
import HubbleServer
import HubbleTransport
import Locking
import Logging
import Synchronization

/// The agents a relay knows, one gRPC client each, and whether each answers right now.
///
/// Agents come from `peer.Peer/Notify` of a peer service (an agent's: it lists every node) or
/// from a fixed list. Each agent's client reconnects by itself with a short backoff and is
/// health-checked every `checkInterval`; a peer that comes back is used again, whenever that is.
/// When the peer service itself fails, the known peers stay and the relay asks again after
/// `retryInterval`.
public final class PeerPool: Sendable {
    public enum Discovery: Sendable {
        /// Follow `peer.Peer/Notify` of this Hubble server (whose TLS certificate, if any,
        /// carries `serverName`).
        case peerService(HubbleAddress, serverName: String?)
        /// These peers (name, address), for standalone use.
        case fixed([(name: String, address: String)])
        /// Every address `host` resolves to, at `port`, looked up again every `retryInterval`:
        /// a headless Kubernetes Service over the agents' DaemonSet. Peers are named by address.
        case dns(host: String, port: Int)
    }

    /// What the relay knows of one agent.
    public struct Peer: Sendable {
        public let name: String
        /// The address as announced (`ip:port` or `unix:///path`).
        public let address: String
        public let tlsServerName: String?
        public fileprivate(set) var state: Relay_NodeState
        /// Why the peer is unavailable or in error.
        public fileprivate(set) var lastError: String?
        let client: GRPCClient<HTTP2ClientTransport.Posix>?
        /// The relay reaches this peer over TLS.
        public let tlsEnabled: Bool
        public var isConnected: Bool { state == .nodeConnected }
    }

    private struct Entry {
        var peer: Peer
        /// Which `add` made this entry: a watcher of an older one stops.
        var generation: UInt64
    }

    /// A peer's client to run and health-check, from `add` to the task group of `run`.
    private struct Watch: Sendable {
        let name: String
        let generation: UInt64
        let client: GRPCClient<HTTP2ClientTransport.Posix>
    }

    let discovery: Discovery
    let dialer: HubbleDialer
    let checkInterval: Duration
    let retryInterval: Duration
    let logger: Logger
    private let entries = Lock<[String: Entry]>([:])
    private let generations = Atomic<UInt64>(0)
    private let watches = AsyncStream<Watch>.makeStream()

    public init(
        discovery: Discovery, dialer: HubbleDialer, checkInterval: Duration = .seconds(1),
        retryInterval: Duration = .seconds(5), logger: Logger
    ) {
        self.discovery = discovery
        self.dialer = dialer
        self.checkInterval = checkInterval
        self.retryInterval = retryInterval
        self.logger = logger
    }

    /// Every known peer, by name.
    public var peers: [Peer] { entries.withLock { $0.values.map(\.peer) }.sorted { $0.name < $1.name } }

    public func peer(named name: String) -> Peer? { entries.withLock { $0[name]?.peer } }

    /// Discovers and watches peers until cancelled; then closes every client. Discovery and
    /// every peer's watcher are child tasks of one task group: nothing outlives the call.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.discover() }
            for await watch in watches.stream {
                group.addTask { await self.watch(watch) }
            }
        }
        entries.withLock { $0 = [:] }
    }

    /// Keeps the set of peers current, the way `discovery` says.
    private func discover() async {
        switch discovery {
        case .fixed(let list):
            for (name, address) in list { add(name: name, address: address, tlsServerName: nil) }
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        case .dns(let host, let port):
            while !Task.isCancelled {
                let wanted = Set(
                    Self.resolve(host).map { $0.contains(":") ? "[\($0)]:\(port)" : "\($0):\(port)" })
                if wanted.isEmpty {
                    logger.warning("no agent address found; keeping the known peers", metadata: ["dns": "\(host)"])
                } else {
                    for address in wanted.sorted() { add(name: address, address: address, tlsServerName: nil) }
                    for peer in peers where !wanted.contains(peer.address) { remove(name: peer.name) }
                }
                try? await Task.sleep(for: retryInterval)
            }
        case .peerService(let service, let serverName):
            while !Task.isCancelled {
                do {
                    try await follow(service, serverName: serverName)
                    logger.warning("peer service closed its stream", metadata: ["peer-service": "\(service)"])
                } catch  where !Task.isCancelled {
                    logger.warning(
                        "peer service unreachable; keeping the known peers",
                        metadata: ["peer-service": "\(service)", "error": "\(Self.describe(error))"])
                } catch {}
                try? await Task.sleep(for: retryInterval)
            }
        }
    }

    private func follow(_ service: HubbleAddress, serverName: String?) async throws {
        let transport = try dialer.transport(to: service, serverName: serverName)
        try await withGRPCClient(transport: transport) { client in
            try await Peer_Peer.Client(wrapping: client).notify(Peer_NotifyRequest()) { response in
                for try await change in response.messages {
                    let serverName = change.hasTls && !change.tls.serverName.isEmpty ? change.tls.serverName : nil
                    switch change.type {
                    case .peerAdded, .peerUpdated:
                        self.add(name: change.name, address: change.address, tlsServerName: serverName)
                    case .peerDeleted:
                        self.remove(name: change.name)
                    default:
                        break
                    }
                }
            }
        }
    }

    /// Adds a peer or, when its address changed, replaces it.
    func add(name: String, address: String, tlsServerName: String?) {
        if let known = peer(named: name), known.address == address, known.tlsServerName == tlsServerName { return }
        remove(name: name)
        var client: GRPCClient<HTTP2ClientTransport.Posix>?
        var problem: String?
        do {
            let parsed = try HubbleAddress(parsing: address, defaultPort: 4244)
            client = GRPCClient(transport: try dialer.transport(to: parsed, serverName: tlsServerName))
        } catch {
            problem = "cannot dial \(address): \(error)"
        }
        let peer = Peer(
            name: name, address: address, tlsServerName: tlsServerName,
            state: problem == nil ? .nodeUnavailable : .nodeError,
            lastError: problem ?? "not checked yet", client: client,
            tlsEnabled: client != nil && dialer.tls != nil)
        logger.info("peer added", metadata: ["peer": "\(name)", "address": "\(address)"])
        let generation = generations.add(1, ordering: .relaxed).newValue
        entries.withLock { $0[name] = Entry(peer: peer, generation: generation) }
        if let client { watches.continuation.yield(Watch(name: name, generation: generation, client: client)) }
    }

    func remove(name: String) {
        guard entries.withLock({ $0.removeValue(forKey: name) }) != nil else { return }
        logger.info("peer deleted", metadata: ["peer": "\(name)"])
    }

    /// A stream to this peer failed: it is unavailable until its next health check passes.
    func reportOffline(name: String, reason: String) {
        update(name: name, state: .nodeUnavailable, error: reason)
    }

    /// Runs the peer's connections and checks its health until the peer is removed or replaced
    /// (noticed within a check interval) or the pool stops.
    private func watch(_ watch: Watch) async {
        let (name, client) = (watch.name, watch.client)
        func current() -> Bool { entries.withLock { $0[name]?.generation == watch.generation } }
        await withDiscardingTaskGroup { group in
            group.addTask { try? await client.runConnections() }
            let health = Grpc_Health_V1_Health.Client(wrapping: client)
            var options = CallOptions.defaults
            options.timeout = .seconds(2)
            // A lost connection counts at once; a busy agent that answers late, after 3 misses.
            var slowAnswers = 0
            while !Task.isCancelled, current() {
                do {
                    let answer = try await health.check(
                        .with { $0.service = HealthService.observerServiceName }, options: options)
                    slowAnswers = 0
                    if answer.status == .serving {
                        update(name: name, state: .nodeConnected, error: nil)
                    } else {
                        update(name: name, state: .nodeUnavailable, error: "health check answered \(answer.status)")
                    }
                } catch let error as RPCError where error.code == .deadlineExceeded {
                    slowAnswers += 1
                    if slowAnswers >= 3 { update(name: name, state: .nodeUnavailable, error: Self.describe(error)) }
                } catch {
                    update(name: name, state: .nodeUnavailable, error: Self.describe(error))
                }
                try? await Task.sleep(for: checkInterval)
            }
            client.beginGracefulShutdown()
        }
    }

    private func update(name: String, state: Relay_NodeState, error: String?) {
        let changed: Bool = entries.withLock { entries in
            guard var entry = entries[name] else { return false }
            let changed = entry.peer.state != state
            entry.peer.state = state
            entry.peer.lastError = error
            entries[name] = entry
            return changed
        }
        guard changed else { return }
        if state == .nodeConnected {
            logger.info("peer connected", metadata: ["peer": "\(name)"])
        } else {
            logger.warning("peer unavailable", metadata: ["peer": "\(name)", "error": "\(error ?? "")"])
        }
    }

    /// The IPv4 and IPv6 addresses of `host` (empty when it does not resolve).
    static func resolve(_ host: String) -> [String] { IPText.addresses(ofHost: host) }

    /// An error as one phrase (gRPC errors by their message).
    static func describe(_ error: any Error) -> String {
        if let error = error as? RPCError { return "\(error.code): \(error.message)" }
        return "\(error)"
    }
}
