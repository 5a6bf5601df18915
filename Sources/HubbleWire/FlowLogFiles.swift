import Foundation

/// How Hubble's exporter names a flow log's rotated files (lumberjack's scheme): `events.log`
/// becomes `events-2026-11-30T09-45-00.000.log`, in UTC, `.gz` appended when compressed. The
/// exporter writes these names; `osprey observe --input-file … --include-rotated` reads them.
public enum FlowLogFiles {
    /// The name `path` is moved to when it rotates at `time`.
    public static func backupPath(for path: String, at time: Date) -> String {
        let (directory, stem, ext) = parts(of: path)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH-mm-ss.SSS"
        let name = "\(stem)-\(formatter.string(from: time))" + (ext.isEmpty ? "" : ".\(ext)")
        return directory + "/" + name
    }

    /// `dir/events.log` → (`dir`, `events`, `log`).
    public static func parts(of path: String) -> (directory: String, stem: String, ext: String) {
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension
        let stem = ext.isEmpty ? url.lastPathComponent : String(url.lastPathComponent.dropLast(ext.count + 1))
        return (url.deletingLastPathComponent().path, stem, ext)
    }

    /// The rotated files of `path` that exist, oldest first (their names sort by time); another
    /// flow log in the same directory (`events-denied.log`) is not one of them.
    public static func backups(of path: String) -> [String] {
        let (directory, stem, ext) = parts(of: path)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let suffix = ext.isEmpty ? "" : "." + ext
        return names.filter { name in
            var rest = Substring(name)
            guard rest.hasPrefix(stem + "-") else { return false }
            rest = rest.dropFirst(stem.count + 1)
            if rest.hasSuffix(".gz") { rest = rest.dropLast(3) }
            guard rest.hasSuffix(suffix) else { return false }
            rest = rest.dropLast(suffix.count)
            return rest.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}/) != nil
        }.sorted().map { directory + "/" + $0 }
    }
}
