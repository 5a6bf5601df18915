import Foundation

/// Runs blocking work — building a lab, waiting on processes and sockets, sleeping between
/// polls — on a thread of its own, as part of the calling test's task.
///
/// swift-testing runs every test on Swift's cooperative pool, which has one thread per core:
/// two here. A synchronous test body holds its pool thread for as long as it runs, and two lab
/// tests at once held both for minutes, so every async test (gRPC servers, the relay, the
/// Kubernetes source) waited for a thread: short unit tests took 100 s, and once a relay test
/// saw no peer connect within 60 s. Lab tests run their bodies here instead; the pool stays free.
///
/// The body runs in the same task (its executor preference is the new thread), so the test's
/// task-local context goes with it: an `#expect` that fails in it fails that test.
public func onOwnThread<T>(_ body: () throws -> T) async throws -> T {
    let executor = ThreadExecutor()
    defer { executor.finish() }
    return try await withTaskExecutorPreference(executor) { try body() }
}

/// A task executor with one thread of its own, which runs the jobs given to it in order until
/// it is told to finish.
private final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var jobs: [UnownedJob] = []
    private var finishing = false
    /// The thread has ended.
    private var ended = false

    init() {
        let thread = Thread { [self] in runJobs() }
        thread.stackSize = 8 << 20
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        // A job given after the thread ended (the runtime owes this executor nothing once the
        // preference is gone, but a lost job would hang its test) runs on a thread of its own.
        guard !ended else {
            condition.unlock()
            Thread { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }.start()
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// The thread ends once the jobs already given have run.
    func finish() {
        condition.lock()
        finishing = true
        condition.signal()
        condition.unlock()
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty && !finishing { condition.wait() }
            guard !jobs.isEmpty else {
                ended = true
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
