import Foundation
import HubbleWire

/// The CLI's settings with hubble's precedence — flag, then environment (`OSPREY_SERVER`,
/// `OSPREY_TLS_ALLOW_INSECURE`: `OSPREY_` and the key in capitals, dashes as underscores), then
/// the config file (`~/.config/osprey/config.yaml`, or `--config`/`OSPREY_CONFIG`), then the
/// default. `osprey config` views and edits the file; flags read their defaults from here.
enum CLIConfig {
    /// A setting's kind, which decides how a value is checked and written.
    enum Kind { case string, bool, duration, list }

    struct Key {
        let name: String
        let kind: Kind
        let defaultValue: Value
    }

    /// A setting's value, as YAML writes it.
    enum Value: Equatable {
        case text(String)
        case list([String])

        var yaml: String {
            switch self {
            case .text(let text): CLIConfig.scalar(text)
            case .list(let items): items.isEmpty ? "[]" : items.map { "\n    - \(CLIConfig.scalar($0))" }.joined()
            }
        }
    }

    static let keys: [Key] = [
        Key(name: "config", kind: .string, defaultValue: .text(defaultPath)),
        Key(name: "request-timeout", kind: .duration, defaultValue: .text("12s")),
        Key(name: "server", kind: .string, defaultValue: .text("localhost:4245")),
        Key(name: "timeout", kind: .duration, defaultValue: .text("5s")),
        Key(name: "tls", kind: .bool, defaultValue: .text("false")),
        Key(name: "tls-allow-insecure", kind: .bool, defaultValue: .text("false")),
        Key(name: "tls-ca-cert-files", kind: .list, defaultValue: .list([])),
        Key(name: "tls-client-cert-file", kind: .string, defaultValue: .text("")),
        Key(name: "tls-client-key-file", kind: .string, defaultValue: .text("")),
        Key(name: "tls-server-name", kind: .string, defaultValue: .text("")),
    ]

    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    static func environmentName(_ key: String) -> String {
        "OSPREY_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    static var defaultPath: String {
        let xdg = environment["XDG_CONFIG_HOME"] ?? ""
        let base = xdg.isEmpty ? (environment["HOME"] ?? NSHomeDirectory()) + "/.config" : xdg
        return base + "/osprey/config.yaml"
    }

    /// The config file in use: `--config PATH` on the command line, else `OSPREY_CONFIG`, else the default.
    static var path: String {
        let arguments = CommandLine.arguments
        if let index = arguments.firstIndex(of: "--config"), index + 1 < arguments.count { return arguments[index + 1] }
        if let inline = arguments.first(where: { $0.hasPrefix("--config=") }) { return String(inline.dropFirst(9)) }
        return environment["OSPREY_CONFIG"] ?? defaultPath
    }

    /// The file's settings (missing file: none).
    static func file(at path: String = path) throws(CLIError) -> [String: Value] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CLIError("Cannot read the config file \(path); check its permissions.")
        }
        return try parse(text, path: path)
    }

    /// The config file in use, read once per run (every flag's default asks it).
    static let current: [String: Value]? = try? file()

    /// A key's value: environment, else file, else default (flags are applied by the parser).
    static func value(_ name: String) -> Value? {
        guard let key = keys.first(where: { $0.name == name }) else { return nil }
        if let text = environment[environmentName(name)] {
            return key.kind == .list ? .list(text.split(separator: ",").map(String.init)) : .text(text)
        }
        if name != "config", let value = current?[name] { return value }
        if name == "config" { return .text(path) }
        return key.defaultValue
    }

    static func string(_ name: String) -> String {
        if case .text(let text)? = value(name) { return text }
        return ""
    }

    static func bool(_ name: String) -> Bool { ["true", "1", "yes"].contains(string(name).lowercased()) }

    static func list(_ name: String) -> [String] {
        if case .list(let items)? = value(name) { return items }
        return []
    }

    /// Checks `text` as a value of `key`'s kind.
    static func checked(_ text: String, for key: Key) throws(CLIError) -> Value {
        switch key.kind {
        case .string: return .text(text)
        case .bool:
            guard ["true", "false", "1", "0"].contains(text.lowercased()) else {
                throw CLIError("\(key.name) takes true or false, not \"\(text)\".")
            }
            return .text(["true", "1"].contains(text.lowercased()) ? "true" : "false")
        case .duration:
            guard Durations.parse(text) != nil else {
                throw CLIError("\(key.name) takes a duration such as 5s or 1m, not \"\(text)\".")
            }
            return .text(text)
        case .list:
            let inner = text.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            return .list(
                inner.isEmpty ? [] : inner.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
    }

    // MARK: - The file's YAML: `key: value` lines, lists inline (`[a, b]`) or as `- item` lines.

    static func parse(_ text: String, path: String) throws(CLIError) -> [String: Value] {
        var values: [String: Value] = [:]
        var listKey: String?
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line =
                raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
                ?? ""
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            if trimmed.hasPrefix("- "), let key = listKey, case .list(let items)? = values[key] {
                values[key] = .list(items + [unquoted(String(trimmed.dropFirst(2)))])
                continue
            }
            guard let colon = trimmed.firstIndex(of: ":"), !line.hasPrefix(" ") else {
                throw CLIError("The config file \(path) line \(number + 1) is not `key: value`: \(trimmed)")
            }
            let key = String(trimmed[..<colon]).trimmingCharacters(in: .whitespaces)
            let rest = String(trimmed[trimmed.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            guard let known = keys.first(where: { $0.name == key }) else {
                throw CLIError("The config file \(path) line \(number + 1) names an unknown key: \(key)")
            }
            listKey = nil
            if known.kind == .list {
                if rest.isEmpty {
                    values[key] = .list([])
                    listKey = key
                } else {
                    values[key] = try checked(rest, for: known)
                }
            } else {
                values[key] = .text(unquoted(rest))
            }
        }
        return values
    }

    static func render(_ values: [String: Value]) -> String {
        values.keys.sorted().map { key in
            let value = values[key]!.yaml
            return value.hasPrefix("\n") ? "\(key):\(value)" : "\(key): \(value)"
        }.joined(separator: "\n") + "\n"
    }

    static func unquoted(_ text: String) -> String {
        if text.count >= 2, let first = text.first, first == "\"" || first == "'", text.last == first {
            return String(text.dropFirst().dropLast())
        }
        return text
    }

    /// A scalar as YAML needs it: quoted when empty or when it could be read as something else.
    static func scalar(_ text: String) -> String {
        let special =
            text.isEmpty || text.contains(": ") || text.hasPrefix(" ") || text.hasSuffix(" ")
            || "[]{}#&*!|>'\"%@`,".contains(text.first!) || text.contains(" #")
        return special
            ? "\"\(text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
            : text
    }
}
