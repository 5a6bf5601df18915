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
    /// How long a miss (the table did not hold the connection) is believed: the connection may
    /// be confirmed a moment later, and retransmitted SYNs that a policy drops each get a new
    /// choice. A flow held for its translation (`again`) asks the table once more all the same:
    /// its first lookup may have come before the node confirmed the connection. "Not
    /// translated" is believed as long: it is final for the connection, but a Service without
    /// endpoints may have some a moment later, and a client whose connection was refused may
    /// open the next from the same port.
    static let missLifetime: Double = 1

    private let state: Lock<State>

    /// Opens ctnetlink in the calling thread's network namespace (the node's).
    init() throws(NetlinkError) {
        state = Lock(State(conntrack: try Conntrack()))
    }

    /// Remembers translations the datapath read from the packets' own conntrack entries (see
    /// `osp_nat`), and connections dropped while still addressed to their Service: the
    /// connection may be gone from the table by the time its flows are enriched — a connection
    /// refused with a RST is removed at once, a dropped first packet never enters it.
    func learn(_ translations: [ObservedTranslation]) {
        guard !translations.isEmpty else { return }
        let now = Date()
        state.withLock { state in
            for observed in translations {
                let answer = observed.backend.map(TranslationAnswer.backend) ?? .untranslated
                state.answers.remember(observed.connection, answer, until: Self.until(answer, now: now), now: now)
            }
        }
    }

    /// Until when an answer is believed.
    static func until(_ answer: TranslationAnswer, now: Date) -> Date {
        now.addingTimeInterval(answer.backend == nil ? missLifetime : answerLifetime)
    }

    /// Lookups made and lookups that failed (not counting connections the table did not hold).
    var counts: (lookups: UInt64, failures: UInt64) { state.withLock { ($0.lookups, $0.failures) } }

    func answer(
        client: String, clientPort: UInt16, service: String, servicePort: UInt16, protocolNumber: UInt8,
        again: Bool
    )
        -> TranslationAnswer
    {
        let key = ServiceConnection(
            protocolNumber: protocolNumber, client: client, clientPort: clientPort, service: service,
            servicePort: servicePort)
        let now = Date()
        return state.withLock { state in
            if let answer = state.answers.answer(key, now: now, again: again) { return answer }
            let answer = Self.lookup(key, &state)
            state.answers.remember(key, answer, until: Self.until(answer, now: now), now: now)
            return answer
        }
    }

    static func lookup(_ key: ServiceConnection, _ state: inout State) -> TranslationAnswer {
        guard key.protocolNumber == 6 || key.protocolNumber == 17, let conntrack = state.conntrack,
            let client = IPText.bytes(key.client), let service = IPText.bytes(key.service),
            client.count == service.count
        else { return .unknown }
        state.lookups += 1
        let original = ConntrackTuple(
            family: client.count == 16 ? 6 : 4, protocolNumber: key.protocolNumber, source: client,
            destination: service, sourcePort: key.clientPort, destinationPort: key.servicePort)
        do {
            guard let entry = try conntrack.entry(original: original) else { return .unknown }
            // The reply's source is where the NAT sent the connection; equal to the Service
            // address when the node did not translate it (an entry is confirmed after its NAT
            // ran, so that is final).
            guard entry.reply.source != service || entry.reply.sourcePort != key.servicePort else {
                return .untranslated
            }
            guard let backend = IPText.text(entry.reply.source) else { return .unknown }
            return .backend(ServiceBackend(ip: backend, port: entry.reply.sourcePort))
        } catch {
            state.failures += 1
            return .unknown
        }
    }
}
