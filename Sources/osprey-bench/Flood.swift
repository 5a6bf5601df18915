import Foundation
import Netns

/// `osprey-bench flood <netns> <ip> <port> <packets per second> <seconds>`: sends UDP datagrams
/// of 64 bytes from inside a network namespace at a steady rate, to drive the kernel → user
/// event path at a known event rate. Prints how many it sent.
enum Flood {
    static func run(_ arguments: [String]) throws {
        guard arguments.count == 5, let port = UInt16(arguments[2]), let rate = Double(arguments[3]),
            let seconds = Double(arguments[4])
        else {
            FileHandle.standardError.write(Data("usage: osprey-bench flood <netns> <ip> <port> <pps> <seconds>\n".utf8))
            exit(2)
        }
        let fd = try NetworkNamespace.run(inNamespaceAt: NetworkNamespace.path(named: arguments[0])) {
            socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        }
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, arguments[1], &address.sin_addr)
        let payload = [UInt8](repeating: 0x42, count: 64)
        let start = Date()
        var sent = 0
        // Pace in 1 ms slices: send what the rate allows so far, then sleep the rest of the slice.
        while true {
            let elapsed = Date().timeIntervalSince(start)
            if elapsed >= seconds { break }
            let due = Int(elapsed * rate)
            while sent < due {
                let result = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, payload, payload.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                if result < 0 { break }
                sent += 1
            }
            usleep(1000)
        }
        print(sent)
    }
}
