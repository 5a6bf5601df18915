// `make bench`: simulated agents for the relay-at-scale benchmark (scripts/bench-relay.sh). N
// Hubble servers in this one process, each on its own unix socket with its own flow ring, fed
// together RATE flows a second (every 10 ms, a batch per agent, then a progress mark, as a real
// agent's event reader does), for SECONDS.
// Usage: osprey-bench agents N RATE DIRECTORY SECONDS
import FlowTestKit
import Flows
import Foundation
import HubbleObserver
import HubbleServer
import HubbleTransport
import Observer

enum SimulatedAgents {
    static func run(_ arguments: [String]) throws {
        guard arguments.count == 4, let count = Int(arguments[0]), count > 0, let rate = Int(arguments[1]),
            rate > 0, let seconds = Double(arguments[3]), seconds > 0
        else {
            throw BenchError(
                "usage: osprey-bench agents N RATE DIRECTORY SECONDS (e.g. 50 500000 /tmp/osp-relay-bench 30)")
        }
        let directory = arguments[2]
        let observers = try (0..<count).map { _ in try Observer(capacity: Observer.defaultCapacity) }
        let servers = observers.enumerated().map { index, observer in
            HubbleServer.agent(
                observer: observer, nodeName: "osp-sim-\(index)", clusterName: "bench",
                listeners: [
                    .init(address: HubbleAddress(endpoint: .unix(path: "\(directory)/agent-\(index).sock")), tls: nil)
                ], peers: { [] })
        }
        for server in servers { Task { try await server.run() } }

        // The generator: every 10 ms each agent gets its share of the rate, then a mark.
        var template = Fixtures.syn
        var sequence: UInt64 = 0
        let perBatch = max(1, rate / count / 100)
        let end = Date().addingTimeInterval(seconds)
        var next = Date()
        while Date() < end {
            let now = Date()
            for (index, observer) in observers.enumerated() {
                template.nodeName = "osp-sim-\(index)"
                var batch: [Flow] = []
                batch.reserveCapacity(perBatch)
                for _ in 0..<perBatch {
                    sequence += 1
                    template.time = now
                    template.uuid = UUID(uuid: Self.uuid(sequence))
                    batch.append(template)
                }
                observer.append(batch)
                observer.advance(to: now)
            }
            next += 0.01
            let wait = next.timeIntervalSinceNow
            if wait > 0 { Thread.sleep(forTimeInterval: wait) } else { next = Date() }
        }
        let lost = observers.reduce(0) { $0 + ($1.lost.values.reduce(0, +)) }
        print("generated \(sequence) flows in \(seconds) s; \(lost) could not be sent (subscribers behind)")
    }

    static func uuid(_ value: UInt64) -> uuid_t {
        let b = withUnsafeBytes(of: value.bigEndian) { Array($0) }
        return (0, 0, 0, 0, 0, 0, 0x40, 0, 0x80, 0, b[2], b[3], b[4], b[5], b[6], b[7])
    }
}
