import Foundation

/// Runs programs on this machine: the lab's only way of changing it.
///
/// Synchronous by design: lab commands are short sequences of `ip`, `nft` and `sysctl` calls
/// whose order matters. Safe to use from any thread.
public struct Host: Sendable {
    /// Directories searched for programs; `sbin` is included because sudo often drops it.
    static let searchPath = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

    public init() {}

    /// The absolute path of `program`, or nil when it is not installed.
    public func which(_ program: String) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        return (dirs + Self.searchPath).lazy.map { "\($0)/\(program)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `argv` to completion and returns its standard output; a non-zero exit is an error
    /// carrying the command line and what it printed.
    @discardableResult
    public func run(_ argv: [String], input: String? = nil) throws(LabError) -> String {
        let result = try execute(argv, input: input)
        guard result.status == 0 else {
            throw .commandFailed(
                command: argv.joined(separator: " "), status: result.status,
                output: result.stderr.isEmpty ? result.stdout : result.stderr)
        }
        return result.stdout
    }

    /// Runs `argv` and returns its exit status and output, whatever the status.
    public func execute(
        _ argv: [String], input: String? = nil
    ) throws(LabError) -> (
        status: Int32, stdout: String, stderr: String
    ) {
        guard let program = argv.first, let path = program.hasPrefix("/") ? program : which(program) else {
            throw .missingTool(tool: argv.first ?? "", package: LabTools.package(of: argv.first ?? ""))
        }
        return try Subprocess.run(path: path, argv: argv, input: input)
    }

    /// Starts `argv` detached from this process (own session, stdin from /dev/null, output to
    /// `logPath`) and returns its PID once it has written it to `pidPath`.
    ///
    /// The lab's workloads must outlive `osprey lab up`; `lab down` ends them.
    public func launchDetached(_ argv: [String], logPath: String, pidPath: String) throws(LabError) -> Int32 {
        try? FileManager.default.removeItem(atPath: pidPath)
        // `sh` records its own PID, then becomes the program: the PID stays the workload's.
        let wrapper = "echo $$ > \"$0\"; exec \"$@\""
        guard let setsid = which("setsid") else { throw .missingTool(tool: "setsid", package: "util-linux") }
        let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard log >= 0 else { throw .fileFailed(path: logPath, reason: String(cString: strerror(errno))) }
        defer { close(log) }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devNull) }
        // `setsid --fork` leaves a grandchild in its own session: init adopts it, not us.
        let pid = try Subprocess.spawn(
            path: setsid, argv: ["setsid", "--fork", "sh", "-c", wrapper, pidPath] + argv, stdin: devNull,
            stdout: log, stderr: log)
        _ = Subprocess.wait(pid)
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: pidPath, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return pid
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        throw .commandFailed(
            command: argv.joined(separator: " "), status: -1, output: "it did not start within 5 s; see \(logPath)")
    }
}

/// The programs the lab runs and the Debian packages that provide them.
public enum LabTools {
    public static let required: [(tool: String, package: String)] = [
        ("ip", "iproute2"), ("nft", "nftables"), ("sysctl", "procps"), ("nginx", "nginx-light"),
        ("dnsmasq", "dnsmasq-base"), ("curl", "curl"), ("setsid", "util-linux"), ("getent", "libc-bin"),
        ("openssl", "openssl"), ("socat", "socat"),
    ]

    public static func package(of tool: String) -> String {
        required.first { $0.tool == tool }?.package ?? tool
    }
}
