import ArgumentParser
import Foundation

/// `osprey config view|get|set|reset`: the CLI's settings as hubble's `config` shows and edits
/// them. Precedence: flag, environment (`OSPREY_*`), config file, default.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "View or change osprey's settings (flag > OSPREY_* > config file > default).",
        discussion: """
            The config file is ~/.config/osprey/config.yaml (or --config, OSPREY_CONFIG). Keys: \
            \(CLIConfig.keys.map(\.name).joined(separator: ", ")).
            """,
        subcommands: [ConfigView.self, ConfigGet.self, ConfigSet.self, ConfigReset.self])
}

/// The option every config subcommand takes (read by `CLIConfig.path` from the command line).
struct ConfigFileOption: ParsableArguments {
    @Option(help: "The config file (Env: OSPREY_CONFIG).") var config: String = CLIConfig.path
}

struct ConfigView: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "view", abstract: "Print the merged settings.")
    @OptionGroup var file: ConfigFileOption

    func run() throws {
        try reportingErrors { print(try Self.merged(), terminator: "") }
    }

    /// Every key with the value in effect, as YAML (keys sorted, as hubble's view prints them).
    static func merged() throws(CLIError) -> String {
        _ = try CLIConfig.file()  // a broken file is one sentence, not a silent default
        var values: [String: CLIConfig.Value] = [:]
        for key in CLIConfig.keys { values[key.name] = CLIConfig.value(key.name) }
        return CLIConfig.render(values)
    }
}

struct ConfigGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Print one setting in effect (no key: like view).")
    @OptionGroup var file: ConfigFileOption
    @Argument(help: "The key, e.g. server.") var key: String?

    func run() throws {
        try reportingErrors {
            guard let key else { return print(try ConfigView.merged(), terminator: "") }
            guard CLIConfig.keys.contains(where: { $0.name == key }) else { throw CLIError("unknown key: \(key)") }
            _ = try CLIConfig.file()
            // As hubble: the value alone, as YAML (a list one `- item` per line).
            switch CLIConfig.value(key) ?? .text("") {
            case .list(let items) where !items.isEmpty:
                print(items.map { "- \(CLIConfig.scalar($0))" }.joined(separator: "\n"))
            case let value: print(value.yaml)
            }
        }
    }
}

struct ConfigSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Write one setting to the config file (no value: its default).")
    @OptionGroup var file: ConfigFileOption
    @Argument(help: "The key, e.g. server.") var key: String
    @Argument(help: "The value, e.g. localhost:4245; lists comma-separated.") var value: String?

    func run() throws {
        try reportingErrors { try Self.write(key, value, to: file.config) }
    }

    /// Changes one key in the file, leaving the others as they are.
    static func write(_ name: String, _ text: String?, to path: String) throws(CLIError) {
        guard let key = CLIConfig.keys.first(where: { $0.name == name }), name != "config" else {
            throw CLIError("unknown key: \(name)")
        }
        var values = try CLIConfig.file(at: path)
        values[name] =
            try text.map { text throws(CLIError) in try CLIConfig.checked(text, for: key) } ?? key.defaultValue
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try CLIConfig.render(values).write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw CLIError("Cannot write the config file \(path): \(error.localizedDescription)")
        }
    }
}

struct ConfigReset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset", abstract: "Reset one setting (or all) in the config file to its default.")
    @OptionGroup var file: ConfigFileOption
    @Argument(help: "The key; none: every key.") var key: String?

    func run() throws {
        try reportingErrors {
            for name in key.map({ [$0] }) ?? CLIConfig.keys.map(\.name).filter({ $0 != "config" }) {
                try ConfigSet.write(name, nil, to: file.config)
            }
        }
    }
}
