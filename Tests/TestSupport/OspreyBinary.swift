import Foundation
import Lab

/// The built `osprey`, `osprey-agent` and `osprey-relay` executables, run the way a user runs them.
public struct OspreyBinary: Sendable {
    public static let cli = OspreyBinary(name: "osprey")
    public static let agent = OspreyBinary(name: "osprey-agent")
    public static let relay = OspreyBinary(name: "osprey-relay")

    public let name: String

    /// The build directory holding the executables: `$OSPREY_BUILD_DIR`, or the one next to
    /// the test bundle, or `.build/debug`.
    public static var buildDirectory: String {
        if let path = ProcessInfo.processInfo.environment["OSPREY_BUILD_DIR"] { return path }
        let bundleDirectory = Bundle.main.bundleURL.deletingLastPathComponent().path
        if FileManager.default.isExecutableFile(atPath: bundleDirectory + "/osprey") { return bundleDirectory }
        return packageRoot + "/.build/debug"
    }

    public var path: String { Self.buildDirectory + "/" + name }

    public init(name: String) { self.name = name }

    /// The repository's root directory (for shipped files such as deploy/).
    public static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// Runs the binary with `arguments`; with `asUser`, as that unprivileged UID (via `setpriv`), from a
    /// copy of the binary that user can read.
    public func run(
        _ arguments: [String], asUser uid: Int? = nil
    ) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        guard let uid else { return try Host().execute([path] + arguments) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osp-bin-\(getpid())-\(UUID())")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        chmod(directory, 0o755)
        let copy = directory + "/" + name
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // O_CLOEXEC: children other tests spawn meanwhile must not inherit the write descriptor,
        // or exec would fail with ETXTBSY.
        let fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw POSIXError(.EACCES) }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        let argv = ["setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", copy] + arguments
        var result = try Host().execute(argv)
        // A child forked at the very moment of the copy may still hold it open briefly.
        for _ in 0..<20 where result.status == 126 && result.stderr.contains("Text file busy") {
            Thread.sleep(forTimeInterval: 0.05)
            result = try Host().execute(argv)
        }
        return result
    }
}

/// Kills a process and every process it started (children first found through
/// /proc/<pid>/task/<tid>/children), by pid — never by matching command lines, which can hit
/// another test's processes.
public func killProcessTree(_ pid: Int32) {
    var pending = [pid]
    var all: [Int32] = []
    while let next = pending.popLast() {
        all.append(next)
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(next)/task")) ?? []
        for task in tasks {
            let text = (try? String(contentsOfFile: "/proc/\(next)/task/\(task)/children", encoding: .utf8)) ?? ""
            pending += text.split(separator: " ").compactMap { Int32($0) }
        }
    }
    // Stop them all first so none starts another meanwhile, then kill.
    for process in all { kill(process, SIGSTOP) }
    for process in all { kill(process, SIGKILL) }
}
