import Foundation
import Gzip
import HubbleWire

/// A file of whole lines that rotates by size the way Hubble's exporter (lumberjack) does: when
/// the next line would take it past `maxBytes`, `events.log` becomes
/// `events-2026-11-30T09-45-00.000.log` (gzipped to `….log.gz` with `compress`), a new
/// `events.log` starts, and only the newest `maxBackups` rotated files are kept.
///
/// A line is written with one append or not at all: a write cut short (a full disk) is undone,
/// so readers never see a partial line. A rotated file is gzipped under a temporary name and
/// renamed, so a process killed mid-rotation leaves no truncated `.gz`; what such a kill leaves
/// (a temporary gzip, a rotated file not yet compressed or not yet removed) is put right when
/// the file is opened again, and so is a last line a kill cut short inside its write (the kernel
/// may stop a large write at a fatal signal): the file is cut back to its last whole line, so
/// the next line does not join it. Not thread-safe: one exporter task owns it.
final class RotatingFile: LineOutput {
    let path: String
    let maxBytes: Int
    let maxBackups: Int
    let compress: Bool
    private var descriptor: Int32 = -1
    private(set) var size = 0
    private(set) var rotations: UInt64 = 0
    /// Lines are gathered into writes of up to 64 KiB (never across a rotation).
    let batchBytes = 64 * 1024

    /// Why the file could not be opened (strerror's text).
    struct OpenError: Error {
        let reason: String
    }

    init(path: String, maxBytes: Int, maxBackups: Int, compress: Bool) throws(OpenError) {
        self.path = path
        self.maxBytes = maxBytes
        self.maxBackups = maxBackups
        self.compress = compress
        try open()
        recoverBackups()
    }

    deinit { close() }

    private func open() throws(OpenError) {
        descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw OpenError(reason: String(cString: strerror(errno))) }
        var status = stat()
        size = fstat(descriptor, &status) == 0 ? Int(status.st_size) : 0
        let whole = Self.endOfLastWholeLine(descriptor, size: size)
        if whole < size, ftruncate(descriptor, off_t(whole)) == 0 { size = whole }
    }

    /// Where the file's last whole line ends (0 when it has none; `size` when it cannot tell).
    static func endOfLastWholeLine(_ descriptor: Int32, size: Int) -> Int {
        var chunk = [UInt8](repeating: 0, count: 4096)
        var end = size
        while end > 0 {
            let start = max(0, end - chunk.count)
            let count = end - start
            let read = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, off_t(start)) }
            guard read == count else { return size }
            if let newline = chunk[..<count].lastIndex(of: UInt8(ascii: "\n")) { return start + newline + 1 }
            end = start
        }
        return 0
    }

    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    /// Appends one line (with its newline). False when it could not be written; the file is as
    /// it was before.
    func write(_ line: ArraySlice<UInt8>) -> Bool {
        if size > 0, size + line.count > maxBytes { rotate() }
        if descriptor < 0 { try? open() }
        guard descriptor >= 0 else { return false }
        let written = line.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        if written == line.count {
            size += written
            return true
        }
        // Cut short or failed: take back whatever part of the line got in.
        if written > 0 { _ = ftruncate(descriptor, off_t(size)) }
        return false
    }

    /// Moves the current file aside (compressing it when asked) and starts a new one.
    func rotate() {
        close()
        let backup = FlowLogFiles.backupPath(for: path, at: Date())
        if rename(path, backup) == 0 {
            rotations += 1
            if compress { Self.compressRotated(backup) }
            pruneBackups()
        }
        try? open()
    }

    /// The suffix of a gzip being written; renamed to `.gz` once whole.
    static let partialSuffix = ".gz.partial"

    /// Replaces the rotated file `backup` by `backup.gz`, which appears whole or not at all.
    @discardableResult
    static func compressRotated(_ backup: String) -> Bool {
        let partial = backup + partialSuffix
        guard let data = FileManager.default.contents(atPath: backup), let packed = try? Gzip.compress(data),
            FileManager.default.createFile(atPath: partial, contents: packed), rename(partial, backup + ".gz") == 0
        else {
            unlink(partial)
            return false
        }
        unlink(backup)
        return true
    }

    /// Puts right what a process killed mid-rotation left of this file's rotations: gzips being
    /// written are removed, and rotated files still uncompressed (or both compressed and not)
    /// are compressed now when compressing.
    private func recoverBackups() {
        let (directory, stem, _) = FlowLogFiles.parts(of: path)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix(stem + "-") && name.hasSuffix(Self.partialSuffix) {
            unlink(directory + "/" + name)
        }
        guard compress else { return }
        for backup in FlowLogFiles.backups(of: path) where !backup.hasSuffix(".gz") { Self.compressRotated(backup) }
    }

    private func pruneBackups() {
        guard maxBackups > 0 else { return }
        let all = FlowLogFiles.backups(of: path)
        for old in all.dropLast(maxBackups) { unlink(old) }
    }
}
