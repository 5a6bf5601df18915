import Foundation

/// Start-up checks: privileges, kernel features, the listen address. Each failure names exactly
/// what is missing.
public enum Preflight {
    /// Capabilities the agent uses, by bit number (linux/capability.h).
    static let requiredCapabilities: [(name: String, bit: Int)] = [
        ("CAP_NET_ADMIN", 12), ("CAP_SYS_ADMIN", 21), ("CAP_PERFMON", 38), ("CAP_BPF", 39),
    ]

    public static func run(
        metricsAddress: ListenAddress, tracefsRoots: [String] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
    )
        throws(AgentError)
    {
        let missing = missingCapabilities()
        guard missing.isEmpty else { throw .missingCapabilities(missing) }
        guard FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") else { throw .noBTF }
        guard tracefsRoots.contains(where: { FileManager.default.fileExists(atPath: "\($0)/events/skb/kfree_skb") })
        else { throw .tracefsNotMounted }
        try metricsAddress.checkBindable()
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

    public init(parsing text: String) throws(AgentError) {
        var host: Substring
        let portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(after: close)...].drop { $0 == ":" }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            throw .invalidListenAddress(text)
        }
        if host.isEmpty { host = "0.0.0.0" }
        guard let port = Int(portText), (1...65535).contains(port) else { throw .invalidListenAddress(text) }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Binds a throwaway socket to see whether the server will be able to, so a bad address is
    /// reported in one sentence before anything is loaded.
    func checkBindable() throws(AgentError) {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let info = result else {
            throw .cannotListen(address: description, reason: "'\(host)' is not an IP address")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .cannotListen(address: description, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            throw .cannotListen(address: description, reason: String(cString: strerror(errno)))
        }
    }
}
