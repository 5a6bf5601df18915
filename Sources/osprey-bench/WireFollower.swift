// `make bench`: a follow client that speaks HTTP/2 and gRPC's framing itself, on one thread,
// for measuring what a relay can send rather than what a gRPC library can receive. grpc-swift's
// streaming reader costs a few microseconds per message (task hops, generic async sequences),
// which on this 2-core machine caps one follower near 240,000 messages/s; this reader costs a
// fraction of that, so the relay becomes the limit. It sends one GetFlows request (follow) and
// reads each response's kind and time from its bytes, as the relay does. h2c over a unix socket
// only (the relay's in the benchmarks).
import Foundation
import HubbleAPI
import HubbleWire
import SwiftProtobuf

struct WireFollower {
    let path: String
    private var socket: Int32 = -1
    private var buffer: [UInt8] = []
    private var start = 0
    private var chunk = [UInt8](repeating: 0, count: 256 << 10)

    init(path: String) { self.path = path }

    struct WireError: Error, CustomStringConvertible {
        let description: String
    }

    /// Follows until `deadline`, handing each flow's time (ns since the epoch) to `flow`.
    mutating func follow(until deadline: Date, _ flow: (Int64) -> Void) throws {
        try connect()
        defer { close(socket) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let window: UInt32 = 16 << 20
        // The preface; SETTINGS: INITIAL_WINDOW_SIZE (4) for the stream; the connection's window.
        var out = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        out += Self.frame(type: 4, flags: 0, stream: 0, payload: [0, 4] + Self.be32(window))
        out += Self.frame(type: 8, flags: 0, stream: 0, payload: Self.be32(window - 65535))
        // HEADERS (END_HEADERS), each a literal without indexing, with a new name.
        var headers: [UInt8] = []
        for (name, value) in [
            (":method", "POST"), (":scheme", "http"), (":path", "/observer.Observer/GetFlows"),
            (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers"),
        ] {
            headers += [0] + Self.hpackString(name) + Self.hpackString(value)
        }
        out += Self.frame(type: 1, flags: 0x4, stream: 1, payload: headers)
        let request: [UInt8] = try Observer_GetFlowsRequest.with { $0.follow = true }.serializedBytes()
        out += Self.frame(type: 0, flags: 0x1, stream: 1, payload: [0] + Self.be32(UInt32(request.count)) + request)
        try write(out)

        var message: [UInt8] = []  // the gRPC stream, as DATA frames deliver it
        var consumed = 0  // bytes read since the last WINDOW_UPDATE
        while Date() < deadline {
            guard let (type, flags, stream, payload) = try readFrame() else { continue }
            switch type {
            case 0:  // DATA
                var data = payload
                if flags & 0x8 != 0, let padding = data.first {  // PADDED
                    data = data.dropFirst().dropLast(Int(padding))
                }
                message += data
                var offset = 0
                while message.count - offset >= 5 {
                    let length = Int(Self.readBE32(message, offset + 1))
                    guard message.count - offset - 5 >= length else { break }
                    let response = try RawFlowResponse(bytes: message[(offset + 5)..<(offset + 5 + length)])
                    if response.kind == .flow { flow(response.time) }
                    offset += 5 + length
                }
                message.removeFirst(offset)
                consumed += payload.count
                if consumed >= 1 << 20 {
                    try write(
                        Self.frame(type: 8, flags: 0, stream: 0, payload: Self.be32(UInt32(consumed)))
                            + Self.frame(type: 8, flags: 0, stream: 1, payload: Self.be32(UInt32(consumed))))
                    consumed = 0
                }
            case 1 where flags & 0x1 != 0 && stream == 1:  // trailers: the call ended
                return
            case 3 where stream == 1:  // RST_STREAM
                throw WireError(description: "the server reset the stream")
            case 4 where flags & 0x1 == 0:  // SETTINGS: acknowledge
                try write(Self.frame(type: 4, flags: 0x1, stream: 0, payload: []))
            case 6 where flags & 0x1 == 0:  // PING: answer
                try write(Self.frame(type: 6, flags: 0x1, stream: 0, payload: Array(payload)))
            case 7:  // GOAWAY
                throw WireError(description: "the server sent GOAWAY")
            default:
                break
            }
        }
    }

    private mutating func connect() throws {
        socket = Foundation.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw WireError(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw WireError(description: "socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Foundation.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else { throw WireError(description: "connect \(path): \(String(cString: strerror(errno)))") }
    }

    private func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Foundation.send(socket, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw WireError(description: "send: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    /// The next frame, or nil when nothing arrived within the socket's timeout.
    private mutating func readFrame() throws -> (UInt8, UInt8, UInt32, ArraySlice<UInt8>)? {
        guard try fill(9) else { return nil }
        let length = Int(buffer[start]) << 16 | Int(buffer[start + 1]) << 8 | Int(buffer[start + 2])
        guard try fill(9 + length) else { return nil }
        let type = buffer[start + 3]
        let flags = buffer[start + 4]
        let stream = Self.readBE32(buffer, start + 5) & 0x7fff_ffff
        let payload = buffer[(start + 9)..<(start + 9 + length)]
        start += 9 + length
        return (type, flags, stream, payload)
    }

    /// Reads until `count` bytes are buffered; false on a timeout.
    private mutating func fill(_ count: Int) throws -> Bool {
        if start > 0, buffer.count - start < count {
            buffer.removeFirst(start)
            start = 0
        }
        while buffer.count - start < count {
            let n = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EAGAIN || errno == EINTR { return false }
            guard n > 0 else {
                throw WireError(
                    description: n == 0
                        ? "the server closed the connection" : "recv: \(String(cString: strerror(errno)))")
            }
            buffer += chunk[..<n]
        }
        return true
    }

    static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let length = UInt32(payload.count)
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags]
            + be32(stream) + payload
    }

    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    static func readBE32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }

    /// An HPACK string literal, not Huffman-coded (lengths under 127 here).
    static func hpackString(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        return [UInt8(bytes.count)] + bytes
    }
}
