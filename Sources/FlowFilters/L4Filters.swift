import Foundation
import HubbleAPI
import HubbleWire

/// Filters on layer 3/4: protocol, ports, TCP flags, IP version.
enum L4Filters {
    static func add(_ filter: Flow_FlowFilter, to checks: inout CheckList) throws(FilterError) {
        let protocols = try filter.protocol.map { name throws(FilterError) in try ProtocolName(name) }
        checks.add(protocols) { flow in protocols.contains { $0.matches(flow) } }
        let sourcePorts = try filter.sourcePort.map { text throws(FilterError) in try Self.port(text) }
        checks.add(sourcePorts) { flow in flow.ports.map { sourcePorts.contains($0.source) } ?? false }
        let destinationPorts = try filter.destinationPort.map { text throws(FilterError) in try Self.port(text) }
        checks.add(destinationPorts) { flow in flow.ports.map { destinationPorts.contains($0.destination) } ?? false }

        let tcpFlags = filter.tcpFlags
        checks.add(tcpFlags) { flow in
            guard case .tcp(let tcp)? = flow.l4.protocol else { return false }
            return tcpFlags.contains { Self.flags(tcp.flags, include: $0) }
        }

        let versions = Set(filter.ipVersion)
        checks.add(versions) { versions.contains($0.ip.ipVersion) }
    }

    static func port(_ text: String) throws(FilterError) -> UInt32 {
        guard let port = UInt16(text) else {
            throw FilterError("Port \"\(text)\" is not a number between 0 and 65535.")
        }
        return UInt32(port)
    }

    /// Every flag set in `filter` is set in `flags`.
    static func flags(_ flags: Flow_TCPFlags, include filter: Flow_TCPFlags) -> Bool {
        (!filter.syn || flags.syn) && (!filter.ack || flags.ack) && (!filter.fin || flags.fin)
            && (!filter.rst || flags.rst) && (!filter.psh || flags.psh) && (!filter.urg || flags.urg)
            && (!filter.ece || flags.ece) && (!filter.cwr || flags.cwr) && (!filter.ns || flags.ns)
    }
}
