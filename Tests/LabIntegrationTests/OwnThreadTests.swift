import Foundation
import Synchronization
import TestSupport
import Testing

/// `onOwnThread`, which every lab test's blocking body runs in (`LabFixture.withLab`).
@Suite("Blocking test bodies off the cooperative pool")
struct OwnThreadTests {
    struct Refused: Error {}

    final class Arrivals: Sendable {
        let count = Atomic<Int>(0)
    }

    @Test("the body's value and its error come back; a failed expectation in it fails the test")
    func body() async throws {
        let value = try await onOwnThread { 42 }
        #expect(value == 42)
        await #expect(throws: Refused.self) { try await onOwnThread { throw Refused() } }
        // The body is part of the test's task: an issue it records is this test's. Were it lost
        // (recorded outside any test), `withKnownIssue` would itself fail for seeing none.
        await withKnownIssue {
            try await onOwnThread { #expect(Bool(false), "recorded on the body's thread") }
        }
    }

    @Test("more blocking bodies at once than the pool has threads all run together")
    func moreThanThePool() async throws {
        // Each body waits until all have started. On the pool (one thread per core) the ones
        // beyond its width could not start while the first ones wait, and none would see all.
        let count = ProcessInfo.processInfo.activeProcessorCount + 2
        let started = Arrivals()
        let allMet = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<count {
                group.addTask {
                    try await onOwnThread {
                        started.count.add(1, ordering: .sequentiallyConsistent)
                        let deadline = Date().addingTimeInterval(30)
                        while started.count.load(ordering: .sequentiallyConsistent) < count, Date() < deadline {
                            Thread.sleep(forTimeInterval: 0.01)
                        }
                        return started.count.load(ordering: .sequentiallyConsistent) == count
                    }
                }
            }
            return try await group.reduce(true) { $0 && $1 }
        }
        #expect(allMet, "all \(count) bodies were running at the same time")
    }
}
