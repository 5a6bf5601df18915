import ArgumentParser
import Foundation
import Yams

/// The agent's configuration file (`--config`, `OSPREY_CONFIG`): YAML whose keys are the
/// agent's flag names without dashes (`metrics-flavour: both`, `uplink: [eth0, eth1]`,
/// `pod-level-metrics: true`), plus the keys of Retina's `retina-config` a Retina user already
/// has (`enablePodLevel`, `remoteContext`). A ConfigMap mounted as a file is the usual source.
///
/// Precedence: the command line, then the file, then `OSPREY_*` variables, then defaults — the
/// file becomes arguments placed before the command line's, so a flag given there wins.
public enum AgentConfigFile {
    /// Retina's keys this file takes.
    static let retinaKeys: Set<String> = ["enablePodLevel", "remoteContext"]

    /// A Retina key as the flags it means; nil when its value is not a boolean.
    static func retina(_ key: String, _ value: Any) -> [String]? {
        guard let on = value as? Bool else { return nil }
        switch key {
        case "enablePodLevel": return on ? ["--pod-level-metrics"] : []
        default: return ["--pod-level-context", on ? "remote" : "local"]  // remoteContext
        }
    }

    /// The command line with the configuration file's settings in front of it (unchanged when
    /// there is no file).
    public static func arguments(
        _ commandLine: [String], environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(AgentConfigError) -> [String] {
        var path = environment["OSPREY_CONFIG"]
        var rest: [String] = []
        var index = 0
        while index < commandLine.count {
            let argument = commandLine[index]
            if argument == "--config" {
                guard index + 1 < commandLine.count else {
                    throw AgentConfigError(message: "--config needs a file path.")
                }
                path = commandLine[index + 1]
                index += 2
                continue
            }
            if argument.hasPrefix("--config=") {
                path = String(argument.dropFirst("--config=".count))
            } else {
                rest.append(argument)
            }
            index += 1
        }
        guard let path, !path.isEmpty else { return rest }
        return try settings(path: path) + rest
    }

    /// The file's settings as arguments; each problem is one sentence naming the file.
    static func settings(path: String) throws(AgentConfigError) -> [String] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw AgentConfigError(message: "Cannot read the configuration file \(path); check --config.")
        }
        let document: Any?
        do { document = try Yams.load(yaml: text) } catch {
            throw AgentConfigError(message: "The configuration file \(path) is not YAML: \(Self.firstLine(error)).")
        }
        guard let document else { return [] }
        guard let settings = document as? [String: Any] else {
            throw AgentConfigError(
                message:
                    "The configuration file \(path) must be a mapping of flag names to values (e.g. metrics-flavour: both)."
            )
        }
        var arguments: [String] = []
        for key in settings.keys.sorted() {
            let value = settings[key]!
            if retinaKeys.contains(key) {
                guard let translated = retina(key, value) else {
                    throw AgentConfigError(message: "In \(path), \(key) must be true or false.")
                }
                arguments += translated
                continue
            }
            guard key != "config", key.range(of: #"^[a-z0-9]+(-[a-z0-9]+)*$"#, options: .regularExpression) != nil
            else {
                throw AgentConfigError(message: "In \(path), `\(key)` is not a setting of osprey-agent; \(Self.hint).")
            }
            let translated: [String]
            switch value {
            case let flag as Bool:
                // `false` is the flag's `--no-` or `--disable-` form (`enable-tcx: false`); a flag
                // with neither is off already.
                let offForms =
                    ["--no-\(key)"] + (key.hasPrefix("enable-") ? ["--disable-\(key.dropFirst("enable-".count))"] : [])
                let off = offForms.first { (try? AgentCommand.parseAsRoot([$0])) != nil }.map { [$0] } ?? []
                translated = flag ? ["--\(key)"] : off
                if !flag && off.isEmpty {
                    try check(["--\(key)"], key: key, path: path)
                    continue
                }
            case let list as [Any]:
                translated = list.flatMap { ["--\(key)", "\($0)"] }
            case is [String: Any]:
                throw AgentConfigError(message: "In \(path), \(key) must be a value or a list, not a mapping.")
            default:
                translated = ["--\(key)", "\(value)"]
            }
            try check(translated, key: key, path: path)
            arguments += translated
        }
        return arguments
    }

    static let hint =
        "use the flag names of `osprey-agent --help` without dashes, or Retina's enablePodLevel/remoteContext"

    /// Parses one setting alone, so a wrong key or value is named with its file.
    static func check(_ arguments: [String], key: String, path: String) throws(AgentConfigError) {
        do {
            _ = try AgentCommand.parseAsRoot(arguments)
        } catch {
            let message = AgentCommand.message(for: error)
            if message.contains("Unknown option") {
                throw AgentConfigError(message: "In \(path), `\(key)` is not a setting of osprey-agent; \(hint).")
            }
            throw AgentConfigError(message: "In \(path), \(key): \(firstLine(message))")
        }
    }

    static func firstLine(_ value: Any) -> String {
        String("\(value)".split(separator: "\n").first ?? "")
    }
}

/// A configuration file that cannot be used, in one sentence.
public struct AgentConfigError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
