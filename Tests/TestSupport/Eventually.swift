import Foundation

/// Waits for what a test expects instead of sleeping a fixed time and hoping: polls `condition`
/// every `poll` seconds until it holds or `timeout` passes, and returns whether it held. The test
/// then asserts the exact values it read, so a slow machine makes it wait, not fail.
@discardableResult
public func eventually(
    within timeout: Double = 15, poll: Double = 0.1, _ condition: () throws -> Bool
) rethrows
    -> Bool
{
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return true }
        if Date() >= deadline { return false }
        Thread.sleep(forTimeInterval: poll)
    }
}

/// The same for async conditions.
@discardableResult
public func eventually(
    within timeout: Double = 15, poll: Double = 0.05, _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try await condition() { return true }
        if Date() >= deadline { return false }
        try? await Task.sleep(for: .seconds(poll))
    }
}

/// Waits until `read` gives the same value twice, `interval` apart (or `timeout` passes), and
/// returns it: the traffic still in flight has been counted.
public func settled<Value: Equatable>(
    within timeout: Double = 15, interval: Double = 0.3, _ read: () throws -> Value
) rethrows -> Value {
    let deadline = Date().addingTimeInterval(timeout)
    var last = try read()
    while Date() < deadline {
        Thread.sleep(forTimeInterval: interval)
        let next = try read()
        if next == last { return next }
        last = next
    }
    return last
}
