import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// A Hubble API endpoint as users write it: `host:port`, `:port` (listen on every interface),
/// `[v6]:port`, `unix:///path`, and, when dialing, an optional `tls://` prefix (as hubble's
/// `--server`). One parser for the agent, the relay and the CLI.
public struct HubbleAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public let endpoint: Endpoint
    /// The address asked for TLS (`tls://`); dialing only.
    public let tls: Bool

    public init(endpoint: Endpoint, tls: Bool = false) {
        self.endpoint = endpoint
        self.tls = tls
    }

    /// Parses `text`; a missing port is `defaultPort`, an empty host is every interface
    /// (listening) or this machine (dialing).
    public init(parsing text: String, defaultPort: Int) throws(AddressError) {
        var rest = Substring(text)
        var tls = false
        if rest.hasPrefix("tls://") {
            tls = true
            rest = rest.dropFirst("tls://".count)
        }
        if rest.hasPrefix("unix://") {
            let path = rest.dropFirst("unix://".count)
            guard path.hasPrefix("/") else {
                throw AddressError(text, "must name an absolute socket path: unix:///path")
            }
            self.init(endpoint: .unix(path: String(path)), tls: tls)
            return
        }
        for scheme in ["dns:///", "http://"] where rest.hasPrefix(scheme) { rest = rest.dropFirst(scheme.count) }
        let host: Substring
        let portText: Substring
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = rest[rest.index(after: rest.startIndex)..<close]
            portText = rest[rest.index(after: close)...].drop { $0 == ":" }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
            portText = ""
        }
        let port = portText.isEmpty ? defaultPort : Int(portText)
        guard let port, (1...65535).contains(port), !host.contains("/"), !(host.isEmpty && portText.isEmpty) else {
            throw AddressError(text, "is not host:port, :port or unix:///path (e.g. localhost:\(defaultPort))")
        }
        self.init(endpoint: .tcp(host: String(host), port: port), tls: tls)
    }

    public var description: String {
        let scheme = tls ? "tls://" : ""
        switch endpoint {
        case .unix(let path): return "\(scheme)unix://\(path)"
        case .tcp(let host, let port):
            return host.contains(":") ? "\(scheme)[\(host)]:\(port)" : "\(scheme)\(host):\(port)"
        }
    }

    /// Where a server binds: an empty host is every IPv4 interface, `localhost` the loopback.
    public var bindTarget: GRPCNIOTransportCore.SocketAddress {
        switch endpoint {
        case .unix(let path): return .unixDomainSocket(path: path)
        case .tcp(let host, let port):
            switch host {
            case "": return .ipv4(host: "0.0.0.0", port: port)
            case "localhost": return .ipv4(host: "127.0.0.1", port: port)
            default: return host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
            }
        }
    }

    /// What a client resolves: names through DNS, `localhost` and an empty host as 127.0.0.1.
    public var dialTarget: any ResolvableTarget {
        switch endpoint {
        case .unix(let path): return ResolvableTargets.UnixDomainSocket.unixDomainSocket(path: path)
        case .tcp(let host, let port):
            if host.isEmpty || host == "localhost" {
                return ResolvableTargets.IPv4.ipv4(address: "127.0.0.1", port: port)
            }
            if host.contains(":") { return ResolvableTargets.IPv6.ipv6(address: host, port: port) }
            if host.split(separator: ".").count == 4, host.allSatisfy({ $0.isNumber || $0 == "." }) {
                return ResolvableTargets.IPv4.ipv4(address: host, port: port)
            }
            return ResolvableTargets.DNS.dns(host: host, port: port)
        }
    }
}

/// A malformed address, in one sentence.
public struct AddressError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ text: String, _ problem: String) { description = "\"\(text)\" \(problem)." }
}

extension HubbleAddress {
    /// Why a server could not listen here, as a phrase for "cannot listen on X: <reason>".
    public struct BindError: Error, Sendable {
        public let reason: String
    }

    /// Binds a throwaway socket (TCP) or checks the socket's directory and file (unix) to see
    /// whether a server will be able to listen, so a bad address is one sentence before anything
    /// starts.
    public func checkBindable() throws(BindError) {
        switch endpoint {
        case .unix(let path): _ = try Self.checkUnixSocket(path)
        case .tcp(let name, let port):
            let host = name.isEmpty ? "0.0.0.0" : name == "localhost" ? "127.0.0.1" : name
            var hints = addrinfo()
            hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &result)
            guard status == 0, let info = result else { throw BindError(reason: "'\(host)' is not an IP address") }
            defer { freeaddrinfo(result) }
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw BindError(reason: String(cString: strerror(errno))) }
            defer { close(fd) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
                throw BindError(reason: String(cString: strerror(errno)))
            }
        }
    }

    /// The longest path a unix socket address holds (its terminating zero aside).
    static let unixPathLimit = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// Checks that a server can bind `path`: short enough, its directory writable (made if
    /// missing), nothing there but perhaps a stale socket. Returns whether one is (to replace).
    static func checkUnixSocket(_ path: String) throws(BindError) -> Bool {
        guard path.utf8.count <= unixPathLimit else {
            throw BindError(reason: "the path is longer than a unix socket's \(unixPathLimit) bytes")
        }
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw BindError(reason: "directory \(directory) cannot be written")
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw BindError(reason: "\(path) exists and is not a socket") }
        guard !accepts(path) else { throw BindError(reason: "another process is serving on \(path)") }
        // A socket nobody accepts on, left by a process that died.
        return true
    }

    /// Whether a process accepts connections on the unix socket at `path` (within the limit).
    private static func accepts(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return true }  // cannot tell: assume it is served, remove nothing
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        return connected
    }

    /// Before a server binds a unix socket: makes its directory and removes a stale socket left
    /// by a process that died — never a file that is not a socket, never one that is served.
    public func prepareUnixSocket() throws(BindError) {
        guard case .unix(let path) = endpoint else { return }
        if try Self.checkUnixSocket(path) { unlink(path) }
    }
}
