import Foundation

/// Where an exporter's lines go: a rotating file, or the agent's standard output.
protocol LineOutput: AnyObject {
    /// Bytes in the current file (0 for a stream, which never rotates).
    var size: Int { get }
    /// The size at which the next line rotates the file (`Int.max` for a stream).
    var maxBytes: Int { get }
    /// Most bytes the exporter gathers into one write.
    var batchBytes: Int { get }
    var rotations: UInt64 { get }
    /// Appends whole lines; false when they could not all be written.
    func write(_ lines: ArraySlice<UInt8>) -> Bool
    func close()
}

/// An exporter's lines on the agent's standard output: Hubble's `stdout` as the export file
/// path, for a container runtime to collect with the pod's log. Nothing rotates. Lines go out in
/// writes of at most `PIPE_BUF` bytes of whole lines (a longer line alone), which a pipe keeps
/// whole among other writers: the agent's log is on stderr, but several flow logs may share
/// stdout. A write that has begun is finished whatever it takes (a pipe may take part of it, a
/// signal may cut it short, a non-blocking stream may be full for a while), so a line never
/// stops half-way and is never written twice; one that a full stream does not take within a
/// second, or that a stream which is gone refuses, is lost and counted.
final class StandardOutput: LineOutput {
    /// The export path that means the agent's standard output, as in Hubble.
    static let path = "stdout"

    let descriptor: Int32
    let size = 0
    let maxBytes = Int.max
    let batchBytes = Int(PIPE_BUF)
    let rotations: UInt64 = 0

    /// `descriptor`: the stream to write (tests pass a pipe); it is not closed.
    init(descriptor: Int32 = STDOUT_FILENO) {
        self.descriptor = descriptor
    }

    func write(_ lines: ArraySlice<UInt8>) -> Bool {
        lines.withUnsafeBytes { bytes in
            var done = 0
            while done < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
                if written > 0 {
                    done += written
                } else if written < 0, errno == EINTR {
                    continue
                } else if written < 0, errno == EAGAIN {
                    // A non-blocking stream that is full: wait until it takes more; give up only
                    // while nothing of these lines is out.
                    var ready = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                    guard poll(&ready, 1, done == 0 ? 1000 : -1) > 0 || done > 0 else { return false }
                } else {
                    return false
                }
            }
            return true
        }
    }

    func close() {}
}
