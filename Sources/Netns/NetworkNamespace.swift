import CNetns
import Foundation

/// Errors entering a network namespace.
public enum NetnsError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, errno: Int32)
    case cannotEnter(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let code):
            "Cannot open network namespace \(path): \(String(cString: strerror(code)))."
        case .cannotEnter(let path, let code):
            "Cannot enter network namespace \(path): \(String(cString: strerror(code))); this needs CAP_SYS_ADMIN."
        }
    }
}

/// Runs code inside another network namespace.
///
/// A namespace switch is per thread, so `run` does its work on a fresh thread that enters the
/// namespace and dies afterwards: the caller's thread, and Swift's cooperative pool, never
/// change namespace. Sockets created inside stay in that namespace after the thread ends.
public enum NetworkNamespace {
    /// The file of a namespace named with `ip netns add`.
    public static func path(named name: String) -> String { "/run/netns/\(name)" }

    /// Runs `body` on a dedicated thread inside the namespace at `path` and returns its result.
    public static func run<T: Sendable>(
        inNamespaceAt path: String, _ body: @escaping @Sendable () throws -> T
    ) throws -> T {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NetnsError.cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            let status = osp_setns_net(fd)
            guard status == 0 else {
                box.result = .failure(NetnsError.cannotEnter(path: path, errno: -status))
                return
            }
            box.result = Result { try body() }
        }
        thread.start()
        done.wait()
        return try box.result!.get()
    }
}

/// Hands a result from the namespace thread to the waiting caller.
private final class ResultBox<T>: @unchecked Sendable {
    // Written by the namespace thread before it signals; read by the caller after the wait.
    var result: Result<T, any Error>?
}
