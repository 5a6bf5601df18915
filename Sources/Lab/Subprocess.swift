import CSpawn
import Foundation

/// Starts programs with posix_spawn and waits for them with waitpid.
///
/// Foundation's `Process` was seen to hang in `waitUntilExit` here when children leave
/// grandchildren behind; this is the small, predictable subset the lab needs.
enum Subprocess {
    /// Spawns `path` with `argv`, the given descriptors as its stdin/stdout/stderr, default
    /// signal dispositions (we ignore SIGPIPE; children must not inherit that) and an empty
    /// signal mask. Returns the child's PID.
    static func spawn(
        path: String, argv: [String], stdin: Int32, stdout: Int32, stderr: Int32
    ) throws(LabError)
        -> pid_t
    {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The three descriptors, and nothing else: a descriptor this process opened without
        // close-on-exec (a socket a test holds, another thread's pipe) must not live on in the
        // child — a detached workload would keep it open, a connection the test closed among
        // them, long after. An action that cannot be recorded (out of memory, a bad
        // descriptor) fails the spawn rather than start a child without it.
        let recorded = [
            posix_spawn_file_actions_adddup2(&actions, stdin, 0),
            posix_spawn_file_actions_adddup2(&actions, stdout, 1),
            posix_spawn_file_actions_adddup2(&actions, stderr, 2),
            osp_spawn_close_from(&actions, 3),
        ]
        if let failed = recorded.first(where: { $0 != 0 }) {
            throw .commandFailed(
                command: argv.joined(separator: " "), status: -1,
                output: "posix_spawn's file actions: \(String(cString: strerror(failed)))")
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, &attributes, cArgs, environ)
        guard status == 0 else {
            throw .commandFailed(
                command: argv.joined(separator: " "), status: -1, output: String(cString: strerror(status)))
        }
        return pid
    }

    /// Waits for `pid` and returns its exit status (128 + signal number if a signal ended it).
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return -1 }
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Runs a program to completion, feeding `input` and collecting stdout and stderr.
    static func run(
        path: String, argv: [String], input: String?
    ) throws(LabError) -> (
        status: Int32, stdout: String, stderr: String
    ) {
        // A child that exits without reading its input must not kill us with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let stdinPipe = try makePipe()
        let stdoutPipe = try makePipe()
        let stderrPipe = try makePipe()
        let pid: pid_t
        do {
            pid = try spawn(
                path: path, argv: argv, stdin: stdinPipe.read, stdout: stdoutPipe.write, stderr: stderrPipe.write)
        } catch {
            [stdinPipe.read, stdinPipe.write, stdoutPipe.read, stdoutPipe.write, stderrPipe.read, stderrPipe.write]
                .forEach { close($0) }
            throw error
        }
        close(stdinPipe.read)
        close(stdoutPipe.write)
        close(stderrPipe.write)
        if let input {
            input.utf8CString.withUnsafeBufferPointer { buffer in
                writeAll(stdinPipe.write, buffer.baseAddress!, buffer.count - 1)  // without the NUL
            }
        }
        close(stdinPipe.write)
        let (out, err) = readBoth(stdoutPipe.read, stderrPipe.read)
        close(stdoutPipe.read)
        close(stderrPipe.read)
        return (wait(pid), String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    private static func makePipe() throws(LabError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw .commandFailed(command: "pipe", status: -1, output: String(cString: strerror(errno)))
        }
        // Only the intended child gets these ends (as its 0/1/2, via dup2).
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }

    private static func writeAll(_ fd: Int32, _ base: UnsafePointer<CChar>, _ count: Int) {
        var offset = 0
        while offset < count {
            let written = write(fd, base + offset, count - offset)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }  // the child stopped reading; its exit status tells why
            offset += written
        }
    }

    /// Reads two descriptors to EOF together, so neither pipe can fill up and stall the child.
    private static func readBoth(_ first: Int32, _ second: Int32) -> ([UInt8], [UInt8]) {
        var data: [[UInt8]] = [[], []]
        var fds = [
            pollfd(fd: first, events: Int16(POLLIN), revents: 0), pollfd(fd: second, events: Int16(POLLIN), revents: 0),
        ]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while fds.contains(where: { $0.fd >= 0 }) {
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in fds.indices where fds[index].fd >= 0 && fds[index].revents != 0 {
                let count = read(fds[index].fd, &buffer, buffer.count)
                if count > 0 {
                    data[index].append(contentsOf: buffer[0..<count])
                } else if count == 0 || errno != EINTR {
                    fds[index].fd = -1  // EOF: poll ignores negative descriptors
                }
            }
        }
        return (data[0], data[1])
    }
}
