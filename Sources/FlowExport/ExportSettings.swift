import Foundation

/// What one exporter writes where: Hubble's `hubble-export-*` settings, or one entry of its
/// flowlogs config.
public struct ExportSettings: Sendable, Equatable {
    public var path: String
    public var maxSizeMB: Int
    public var maxBackups: Int
    public var compress: Bool
    /// FlowFilters (JSON, as `osprey observe --allowlist`): a flow is written when it passes them.
    public var allowlist: [String]
    public var denylist: [String]
    /// Flow fields to keep (`time`, `source.pod_name`, `IP`…); empty: every field.
    public var fieldMask: [String]
    /// Hubble's flow-log aggregation: flows alike in these fields (paths as in `fieldMask`) are
    /// written as one line per `aggregationInterval`, with their count per traffic direction.
    /// Aggregation needs both; empty or zero: every flow is written.
    public var fieldAggregate: [String]
    public var aggregationInterval: Duration
    /// When the exporter stops writing (a dynamic exporter's `end`); nil: never.
    public var end: Date?
    /// Where the settings came from, so that a refusal names what to change.
    public var origin: Origin

    public init(
        path: String, maxSizeMB: Int = 10, maxBackups: Int = 5, compress: Bool = false, allowlist: [String] = [],
        denylist: [String] = [], fieldMask: [String] = [], fieldAggregate: [String] = [],
        aggregationInterval: Duration = .zero, end: Date? = nil, origin: Origin = .flags
    ) {
        self.path = path
        self.maxSizeMB = maxSizeMB
        self.maxBackups = maxBackups
        self.compress = compress
        self.allowlist = allowlist
        self.denylist = denylist
        self.fieldMask = fieldMask
        self.fieldAggregate = fieldAggregate
        self.aggregationInterval = aggregationInterval
        self.end = end
        self.origin = origin
    }

    public enum Origin: Sendable, Equatable {
        /// The agent's `--export-*` flags (the static exporter).
        case flags
        /// An entry of the flowlogs config file at this path.
        case config(String)

        /// What each setting is called where it was set.
        var names: Names {
            switch self {
            case .flags:
                Names(
                    path: "--export-file-path", maxSize: "--export-file-max-size-mb",
                    maxBackups: "--export-file-max-backups", allow: "--export-allowlist", deny: "--export-denylist",
                    fieldMask: "--export-fieldmask", fieldAggregate: "--export-fieldaggregate",
                    aggregationInterval: "--export-aggregation-interval")
            case .config:
                Names(
                    path: "filePath", maxSize: "fileMaxSizeMb", maxBackups: "fileMaxBackups", allow: "includeFilters",
                    deny: "excludeFilters", fieldMask: "fieldMask", fieldAggregate: "fieldAggregate",
                    aggregationInterval: "aggregationInterval")
            }
        }

        struct Names {
            var path, maxSize, maxBackups, allow, deny, fieldMask, fieldAggregate, aggregationInterval: String
        }

        /// How a sentence about exporter `name` starts.
        func prefix(_ name: String) -> String {
            switch self {
            case .flags: ""
            case .config(let path): "\(path): flow log \"\(name)\": "
            }
        }
    }
}
