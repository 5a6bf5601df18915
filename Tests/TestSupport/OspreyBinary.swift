import Foundation
import Lab

/// The built `osprey` executable, run the way a user runs it.
public enum OspreyBinary {
    /// `$OSPREY_BIN`, or the debug build next to the test bundle.
    public static var path: String {
        if let path = ProcessInfo.processInfo.environment["OSPREY_BIN"] { return path }
        let bundleDirectory = Bundle.main.bundleURL.deletingLastPathComponent().path
        for candidate in [bundleDirectory + "/osprey", packageRoot + "/.build/debug/osprey"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return packageRoot + "/.build/debug/osprey"
    }

    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// Runs `osprey arguments…`; with `asUser`, as that unprivileged UID (via `setpriv`), from a
    /// copy of the binary that user can read.
    public static func run(
        _ arguments: [String], asUser uid: Int? = nil
    ) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        guard let uid else { return try Host().execute([path] + arguments) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osp-cli-\(getpid())-\(UUID())")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        chmod(directory, 0o755)
        let copy = directory + "/osprey"
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
