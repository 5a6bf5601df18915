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
    /// When the exporter stops writing (a dynamic exporter's `end`); nil: never.
    public var end: Date?
    /// Where the settings came from, so that a refusal names what to change.
    public var origin: Origin

    public init(
        path: String, maxSizeMB: Int = 10, maxBackups: Int = 5, compress: Bool = false, allowlist: [String] = [],
        denylist: [String] = [], fieldMask: [String] = [], end: Date? = nil, origin: Origin = .flags
    ) {
        self.path = path
        self.maxSizeMB = maxSizeMB
        self.maxBackups = maxBackups
        self.compress = compress
        self.allowlist = allowlist
        self.denylist = denylist
        self.fieldMask = fieldMask
        self.end = end
        self.origin = origin
    }

    public enum Origin: Sendable, Equatable {
        /// The agent's `--export-*` flags (the static exporter).
        case flags
        /// An entry of the flowlogs config file at this path.
        case config(String)

        /// What each setting is called where it was set.
        var names: (path: String, maxSize: String, maxBackups: String, allow: String, deny: String, fieldMask: String) {
            switch self {
            case .flags:
                (
                    "--export-file-path", "--export-file-max-size-mb", "--export-file-max-backups",
                    "--export-allowlist",
                    "--export-denylist", "--export-fieldmask"
                )
            case .config:
                ("filePath", "fileMaxSizeMb", "fileMaxBackups", "includeFilters", "excludeFilters", "fieldMask")
            }
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
