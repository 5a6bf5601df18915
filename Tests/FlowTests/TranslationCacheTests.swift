import Enricher
import Foundation
import Testing

/// The agent's memory of which backend each connection to a Service went to. A soak found it
/// holding every connection since start (a DNS query is a connection of its own): node 1's agent
/// grew ~5 MiB an hour under the lab's traffic.
@Suite("Service translation cache")
struct TranslationCacheTests {
    static func key(_ port: Int) -> ServiceConnection {
        .init(
            protocolNumber: 17, client: "10.244.1.\(2 + port % 200)", clientPort: UInt16(30000 + port % 30000),
            service: "10.96.0.10", servicePort: 53)
    }

    static let coredns = ServiceBackend(ip: "10.244.2.3", port: 53)

    @Test("an hour of 20 new connections a second holds about a lifetime's worth, each answered while it holds")
    func steadyTraffic() {
        var cache = TranslationCache()
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var largest = 0
        for index in 0..<72_000 {
            let now = start.addingTimeInterval(Double(index) / 20)
            cache.remember(Self.key(index), .backend(Self.coredns), until: now.addingTimeInterval(30), now: now)
            largest = max(largest, cache.count)
            if index >= 20 {
                let earlier = Self.key(index - 20)
                #expect(cache.answer(earlier, now: now) == .backend(Self.coredns), "answered within its lifetime")
            }
        }
        // 30 s of answers plus at most one sweep interval (10 s) of lapsed ones: 800 at 20/s.
        #expect(largest <= 800, "held \(largest) answers")
        let end = start.addingTimeInterval(3600)
        #expect(cache.answer(Self.key(0), now: end) == nil, "a lapsed answer is not given")
    }

    @Test(
        "a miss and \"not translated\" are answers too, until they lapse; a held flow asking again gets only the latter"
    )
    func untranslated() {
        var cache = TranslationCache()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        cache.remember(Self.key(1), .unknown, until: now.addingTimeInterval(1), now: now)
        #expect(cache.answer(Self.key(1), now: now) == .unknown)
        #expect(cache.answer(Self.key(1), now: now.addingTimeInterval(2)) == nil)
        #expect(cache.answer(Self.key(2), now: now) == nil)
        // A flow held for its translation asks again: a miss is worth looking up once more.
        #expect(cache.answer(Self.key(1), now: now, again: true) == nil)
        cache.remember(Self.key(3), .backend(Self.coredns), until: now.addingTimeInterval(30), now: now)
        #expect(cache.answer(Self.key(3), now: now, again: true) == .backend(Self.coredns))
        // The NAT ran and chose no backend: final, also for a held flow.
        cache.remember(Self.key(4), .untranslated, until: now.addingTimeInterval(1), now: now)
        #expect(cache.answer(Self.key(4), now: now, again: true) == .untranslated)
        #expect(cache.answer(Self.key(4), now: now.addingTimeInterval(2), again: true) == nil)
    }

    @Test("a flood of new connections, each still current, stays within the limit")
    func flood() {
        var cache = TranslationCache(sweepInterval: 10, limit: 1000)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<10_000 {
            cache.remember(Self.key(index), .backend(Self.coredns), until: now.addingTimeInterval(30), now: now)
            #expect(cache.count <= 1000)
        }
        #expect(cache.answer(Self.key(9_999), now: now) == .backend(Self.coredns), "the newest is kept")
    }
}
