/// Why an exporter cannot run, in one sentence naming the setting to change.
public struct ExportError: Error, Equatable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}
