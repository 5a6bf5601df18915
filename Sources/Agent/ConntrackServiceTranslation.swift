import Enricher
import Flows
import Foundation
import Locking
import Netlink

/// The enricher's `ServiceTranslation` answered from the node's netfilter connection table:
/// kube-proxy's DNAT (iptables or nftables) records there which backend it chose for each
/// connection to a Service address. One ctnetlink lookup per connection; the answer is
/// remembered for the rest of its flows (both directions, every report).
final class ConntrackServiceTranslation: ServiceTranslation {
    struct State {
        var conntrack: Conntrack?
        var answers = TranslationCache()
        var lookups: UInt64 = 0
        var failures: UInt64 = 0
    }

    /// How long an answer is reused: a client port is not reused for another connection to the
    /// same Service address within this (TIME_WAIT alone holds it 60 s).
    static let answerLifetime: Double = 30
    /// How long "not translated" is believed: the connection may be confirmed a moment later,
    /// and retransmitted SYNs that a policy drops each get a new choice. A flow held for its
    /// translation (`again`) asks the table once more all the same: its first lookup may have
    /// come before the node confirmed the connection, and a reply that never comes (a backend
    /// that does not answer) brings no translation of its own.
    static let missLifetime: Double = 1

    private let state: Lock<State>

    /// Opens ctnetlink in the calling thread's network namespace (the node's).
    init() throws(NetlinkError) {
        state = Lock(State(conntrack: try Conntrack()))
    }

    /// Remembers translations the datapath read from the packets' own conntrack entries (see
    /// `osp_nat`): the connection may be gone from the table by the time its flows are
    /// enriched — a connection refused with a RST is removed at once.
    func learn(_ translations: [ObservedTranslation]) {
        guard !translations.isEmpty else { return }
        let now = Date()
        let until = now.addingTimeInterval(Self.answerLifetime)
        state.withLock { state in
            for observed in translations {
                state.answers.remember(observed.connection, backend: observed.backend, until: until, now: now)
            }
        }
    }

    /// Lookups made and lookups that failed (not counting connections the table did not hold).
    var counts: (lookups: UInt64, failures: UInt64) { state.withLock { ($0.lookups, $0.failures) } }

    func backend(
        client: String, clientPort: UInt16, service: String, servicePort: UInt16, protocolNumber: UInt8,
        again: Bool
    )
        -> ServiceBackend?
    {
        let key = ServiceConnection(
            protocolNumber: protocolNumber, client: client, clientPort: clientPort, service: service,
            servicePort: servicePort)
        let now = Date()
        return state.withLock { state in
            if let answer = state.answers.answer(key, now: now, again: again) { return answer }
            let backend = Self.lookup(key, &state)
            state.answers.remember(
                key, backend: backend,
                until: now.addingTimeInterval(backend == nil ? Self.missLifetime : Self.answerLifetime), now: now)
            return backend
        }
    }

    static func lookup(_ key: ServiceConnection, _ state: inout State) -> ServiceBackend? {
        guard key.protocolNumber == 6 || key.protocolNumber == 17, let conntrack = state.conntrack,
            let client = IPText.bytes(key.client), let service = IPText.bytes(key.service),
            client.count == service.count
        else { return nil }
        state.lookups += 1
        let original = ConntrackTuple(
            family: client.count == 16 ? 6 : 4, protocolNumber: key.protocolNumber, source: client,
            destination: service, sourcePort: key.clientPort, destinationPort: key.servicePort)
        do {
            // The reply's source is where the NAT sent the connection; equal to the Service
            // address when the node did not translate it.
            guard let entry = try conntrack.entry(original: original),
                entry.reply.source != service || entry.reply.sourcePort != key.servicePort,
                let backend = IPText.text(entry.reply.source)
            else { return nil }
            return ServiceBackend(ip: backend, port: entry.reply.sourcePort)
        } catch {
            state.failures += 1
            return nil
        }
    }
}
