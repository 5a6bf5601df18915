/// Why an exporter cannot run, in one sentence naming what to change.
public enum ExportError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case badFilter(flag: String, reason: String)
    case badSetting(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            "Cannot write flow logs to \(path): \(reason); check --export-file-path and that its directory exists and is writable."
        case .badFilter(let flag, let reason):
            "\(flag): \(reason)"
        case .badSetting(let text):
            text
        }
    }
}
