import Foundation
import HubbleWire
import Yams

/// Hubble's dynamic exporter configuration (`hubble-flowlogs-config-path`): a YAML file with a
/// list of named flow logs, each with its own file, filters, field mask and optional end time.
///
///     flowLogs:
///     - name: denied
///       filePath: /var/log/osprey/denied.log
///       fieldMask: [time, source, destination, verdict, drop_reason_desc]
///       includeFilters:
///       - verdict: [DROPPED]
///       excludeFilters: []
///       fileMaxSizeMb: 10        # 0 or absent: 10
///       fileMaxBackups: 5        # 0 or absent: 5
///       fileCompress: false
///       end: "2026-12-31T23:59:59Z"
public enum FlowLogsConfig {
    /// The exporters `text` describes, by name; one sentence when it is not a valid config.
    public static func parse(_ text: String, path: String) throws(ExportError) -> [String: ExportSettings] {
        func refuse(_ reason: String) -> ExportError { ExportError("\(path): \(reason)") }
        let document: Any?
        do { document = try Yams.load(yaml: text) } catch {
            throw refuse("not valid YAML (\(Self.firstLine(of: error))); fix the file, the running flow logs are kept.")
        }
        guard let document else { return [:] }  // an empty file: no dynamic flow logs
        guard let top = document as? [String: Any] else {
            throw refuse("expected a mapping with a flowLogs list at the top.")
        }
        if let unknown = top.keys.first(where: { $0 != "flowLogs" }) {
            throw refuse("unknown key \"\(unknown)\" at the top; only flowLogs is read.")
        }
        let entries = top["flowLogs"]
        if entries == nil || entries is NSNull { return [:] }
        guard let list = entries as? [Any] else { throw refuse("flowLogs must be a list of flow logs.") }
        var exporters: [String: ExportSettings] = [:]
        var paths: Set<String> = []
        for (index, entry) in list.enumerated() {
            guard let fields = entry as? [String: Any] else {
                throw refuse("flowLogs[\(index)] is not a mapping of settings.")
            }
            let settings = try Self.exporter(fields, index: index, path: path)
            guard exporters[settings.name] == nil else {
                throw refuse("two flow logs are named \"\(settings.name)\"; names must be unique.")
            }
            // Several may share standard output: each writes whole lines.
            guard settings.settings.path == StandardOutput.path || paths.insert(settings.settings.path).inserted else {
                throw refuse("two flow logs write to \(settings.settings.path); each needs a file of its own.")
            }
            _ = try FlowExporter.compile(settings.settings, name: settings.name)
            exporters[settings.name] = settings.settings
        }
        return exporters
    }

    static let keys: Set<String> = [
        "name", "filePath", "fieldMask", "includeFilters", "excludeFilters", "fileMaxSizeMb", "fileMaxBackups",
        "fileCompress", "end", "fieldAggregate", "aggregationInterval",
    ]

    private static func exporter(
        _ fields: [String: Any], index: Int, path: String
    ) throws(ExportError) -> (name: String, settings: ExportSettings) {
        let label = (fields["name"] as? String).map { "flow log \"\($0)\"" } ?? "flowLogs[\(index)]"
        func refuse(_ reason: String) -> ExportError { ExportError("\(path): \(label): \(reason)") }
        if let unknown = fields.keys.sorted().first(where: { !keys.contains($0) }) {
            throw refuse("unknown setting \"\(unknown)\".")
        }
        guard let name = fields["name"] as? String, !name.isEmpty else { throw refuse("name is required.") }
        guard name != FlowLogs.staticName else {
            throw refuse("the name \"static\" belongs to the agent's --export-file-path flow log; choose another.")
        }
        guard let file = fields["filePath"] as? String, !file.isEmpty else { throw refuse("filePath is required.") }
        guard file.hasPrefix("/") || file == StandardOutput.path else {
            throw refuse("filePath must be absolute (\(file)), or stdout for the agent's standard output.")
        }
        func strings(_ key: String) throws(ExportError) -> [String] {
            switch fields[key] {
            case nil, is NSNull: return []
            case let list as [Any]:
                var texts: [String] = []
                for item in list {
                    guard let text = item as? String else { throw refuse("\(key) must be a list of field names.") }
                    texts.append(text)
                }
                return texts
            default: throw refuse("\(key) must be a list of field names.")
            }
        }
        func filters(_ key: String) throws(ExportError) -> [String] {
            switch fields[key] {
            case nil, is NSNull: return []
            case let list as [Any]:
                var texts: [String] = []
                for item in list {
                    guard JSONSerialization.isValidJSONObject(item),
                        let data = try? JSONSerialization.data(withJSONObject: item, options: [.sortedKeys])
                    else { throw refuse("\(key) must be a list of FlowFilters (e.g. - verdict: [DROPPED]).") }
                    texts.append(String(decoding: data, as: UTF8.self))
                }
                return texts
            default: throw refuse("\(key) must be a list of FlowFilters (e.g. - verdict: [DROPPED]).")
            }
        }
        func count(_ key: String, default value: Int) throws(ExportError) -> Int {
            switch fields[key] {
            case nil, is NSNull: return value
            case let number as Int where number >= 0: return number == 0 ? value : number
            default: throw refuse("\(key) must be a whole number of at least 0 (0: \(value)).")
            }
        }
        var end: Date?
        switch fields["end"] {
        case nil, is NSNull: break
        case let date as Date: end = date
        case let text as String:
            guard let date = Self.rfc3339(text) else {
                throw refuse("end \"\(text)\" is not an RFC 3339 time (e.g. 2026-12-31T23:59:59Z).")
            }
            end = date
        default: throw refuse("end must be an RFC 3339 time (e.g. 2026-12-31T23:59:59Z).")
        }
        var interval = Duration.zero
        switch fields["aggregationInterval"] {
        case nil, is NSNull: break
        case let number as Int where number == 0: break  // Go's "0"
        case let text as String:
            guard let duration = Durations.parse(text) else {
                throw refuse("aggregationInterval \"\(text)\" is not a duration (e.g. 30s, 1m or 500ms).")
            }
            interval = duration
        default: throw refuse("aggregationInterval must be a duration (e.g. 30s, 1m or 500ms).")
        }
        let compress: Bool
        switch fields["fileCompress"] {
        case nil, is NSNull: compress = false
        case let flag as Bool: compress = flag
        default: throw refuse("fileCompress must be true or false.")
        }
        return (
            name,
            ExportSettings(
                path: file, maxSizeMB: try count("fileMaxSizeMb", default: 10),
                maxBackups: try count("fileMaxBackups", default: 5), compress: compress,
                allowlist: try filters("includeFilters"), denylist: try filters("excludeFilters"),
                fieldMask: try strings("fieldMask"), fieldAggregate: try strings("fieldAggregate"),
                aggregationInterval: interval, end: end, origin: .config(path))
        )
    }

    static func rfc3339(_ text: String) -> Date? {
        for options: ISO8601DateFormatter.Options in [
            [.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime],
        ] {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    static func firstLine(of error: any Error) -> String {
        String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    }
}
