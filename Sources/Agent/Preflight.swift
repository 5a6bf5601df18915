import Foundation
import HubbleTransport

/// Start-up checks: privileges, kernel features, the listen address. Each failure names exactly
/// what is missing.
public enum Preflight {
    /// Capabilities the agent uses, by bit number (linux/capability.h).
    static let requiredCapabilities: [(name: String, bit: Int)] = [
        ("CAP_NET_ADMIN", 12), ("CAP_SYS_ADMIN", 21), ("CAP_PERFMON", 38), ("CAP_BPF", 39),
    ]

    /// No tracefs is needed: the tracepoint programs attach through BTF (tp_btf).
    public static func run(metricsAddress: ListenAddress) throws(AgentError) {
        let missing = missingCapabilities()
        guard missing.isEmpty else { throw .missingCapabilities(missing) }
        guard FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") else { throw .noBTF }
        try metricsAddress.checkBindable(flag: "--metrics-address")
    }

    /// Names of required capabilities missing from the effective set (/proc/self/status CapEff).
    static func missingCapabilities() -> [String] {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
            let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return requiredCapabilities.map(\.name) }
        return requiredCapabilities.filter { mask & (1 << UInt64($0.bit)) == 0 }.map(\.name)
    }
}

/// `host:port` for a listening socket.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    /// `host:port`, `:port` (every interface) or `[v6]:port`; the port is required.
    public init(parsing text: String) throws(AgentError) {
        guard let parsed = try? HubbleAddress(parsing: text, defaultPort: 0), !parsed.tls,
            case .tcp(let host, let port) = parsed.endpoint
        else { throw .invalidListenAddress(text) }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Binds a throwaway socket to see whether the server will be able to, so a bad address is
    /// reported in one sentence before anything is loaded.
    func checkBindable(flag: String) throws(AgentError) {
        do { try HubbleAddress(endpoint: .tcp(host: host, port: port)).checkBindable() } catch {
            throw .cannotListen(address: description, reason: error.reason, flag: flag)
        }
    }
}
