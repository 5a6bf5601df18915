import CBPFGlue
import Foundation

/// Packets and bytes.
public struct Counter: Sendable, Equatable {
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0

    public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
    }

    public mutating func add(packets: UInt64, bytes: UInt64) {
        self.packets &+= packets
        self.bytes &+= bytes
    }
}

/// TCP flags as `networkobservability_tcp_flag_counters` names them (enum osp_tcp_flag order).
public enum TCPFlag: Int, CaseIterable, Sendable {
    case syn, synack, ack, fin, rst, psh, urg, ece, cwr

    public var label: String {
        switch self {
        case .syn: "SYN"
        case .synack: "SYNACK"
        case .ack: "ACK"
        case .fin: "FIN"
        case .rst: "RST"
        case .psh: "PSH"
        case .urg: "URG"
        case .ece: "ECE"
        case .cwr: "CWR"
        }
    }
}

public struct TCPFlagKey: Hashable, Sendable {
    public var flag: TCPFlag
    public var direction: TrafficDirection

    public init(flag: TCPFlag, direction: TrafficDirection) {
        self.flag = flag
        self.direction = direction
    }
}

public struct DropKey: Hashable, Sendable {
    /// The kernel's drop reason name without `SKB_DROP_REASON_`, e.g. `NETFILTER_DROP`.
    public var reason: String
    public var direction: TrafficDirection

    public init(reason: String, direction: TrafficDirection) {
        self.reason = reason
        self.direction = direction
    }
}

/// Failures of the eBPF programs themselves (enum osp_error); they never affect traffic.
public enum ProgramError: Int, CaseIterable, Sendable {
    case tcHeader = 1, dropMapFull = 2, conntrackFull = 3, tailCall = 4

    /// The program the error belongs to, and a label for it.
    public var labels: (program: String, error: String) {
        switch self {
        case .tcHeader: ("pod", "header_read")
        case .dropMapFull: ("drops", "drop_map_full")
        case .conntrackFull: ("pod", "conntrack_full")
        case .tailCall: ("pod", "tail_call")
        }
    }
}

/// Every counter of the datapath at one instant; monotonic while the agent runs.
public struct DatapathSnapshot: Sendable {
    /// Packets and bytes through the uplink(s): from their interface counters, which the node
    /// metrics fill in (`Datapath.snapshot()` leaves it empty; no program counts them).
    public var forward: [TrafficDirection: Counter] = [:]
    public var tcpFlags: [TCPFlagKey: UInt64] = [:]
    public var drops: [DropKey: Counter] = [:]
    public var errors: [ProgramError: UInt64] = [:]
    public var connections = ConnectionTable()
    /// By program name (`osp_tc_pod_ingress`, ...): what the kernel counted of its runs.
    public var programs: [String: ProgramRuns] = [:]

    public init() {}
}

/// How often the kernel ran one program and for how long in all. The kernel counts only while
/// the `kernel.bpf_stats_enabled` sysctl is 1 (each run then costs two clock reads more).
public struct ProgramRuns: Sendable, Equatable {
    public var runs: UInt64 = 0
    public var nanoseconds: UInt64 = 0
}

/// The connection table's size and traffic: connections the programs added, removed when they
/// ended, and evicted to make room for new ones in a full set.
public struct ConnectionTable: Sendable, Equatable {
    public var size = 0
    public var inserted: UInt64 = 0
    public var deleted: UInt64 = 0
    public var evicted: UInt64 = 0

    public init(size: Int = 0, inserted: UInt64 = 0, deleted: UInt64 = 0, evicted: UInt64 = 0) {
        (self.size, self.inserted, self.deleted, self.evicted) = (size, inserted, deleted, evicted)
    }
}

/// The kernel counting every eBPF program's runs and run time (`ProgramRuns`) for as long as
/// this is open, as `sysctl kernel.bpf_stats_enabled=1` does, without changing the sysctl.
public final class RunStatistics: Sendable {
    private let fd: Int32

    public init() throws(DatapathError) {
        let fd = osp_enable_run_stats()
        guard fd >= 0 else { throw .statistics(errno: -fd) }
        self.fd = fd
    }

    deinit { close(fd) }
}
