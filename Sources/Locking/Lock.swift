import CSanitizerHooks
import Synchronization

/// `Synchronization.Mutex` that ThreadSanitizer can see: the value it guards, and the same
/// `withLock`.
///
/// On Linux, Mutex waits with futex system calls inside the standard library, which is not
/// instrumented, so ThreadSanitizer never learns that one thread's critical section ended before
/// another's began and reports every contended access as a race (a 10-line program of two
/// threads incrementing a counter under one Mutex shows it). Each critical section here tells it
/// (`__tsan_acquire`/`__tsan_release` on the lock's address); outside a ThreadSanitizer build
/// those hooks are null and cost one predictable branch each.
public struct Lock<Value: ~Copyable>: ~Copyable, @unchecked Sendable {
    @usableFromInline let mutex: Mutex<Value>
    /// The address ThreadSanitizer synchronizes on: one per lock, for its whole life.
    @usableFromInline let token = Token()

    public init(_ initialValue: consuming sending Value) {
        mutex = Mutex(initialValue)
    }

    /// Runs `body` with the value, holding the lock.
    @inlinable
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            let address = token.address
            osp_sanitizer_acquire(address)
            defer { osp_sanitizer_release(address) }
            return try body(&value)
        }
    }
}

/// A heap object whose address stands for one lock.
@usableFromInline
final class Token: Sendable {
    @usableFromInline
    var address: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    init() {}
}
