import Foundation

/// What can go wrong loading, attaching or reading the eBPF datapath, in operator's words.
public enum DatapathError: Error, Equatable, CustomStringConvertible {
    case open(object: String, errno: Int32)
    case load(object: String, errno: Int32)
    case missing(what: String, object: String)
    case attachTracepoint(program: String, errno: Int32)
    case attachTC(interface: String, hook: String, errno: Int32)
    case map(name: String, operation: String, errno: Int32)
    case btf(String)
    case statistics(errno: Int32)
    case testRun(program: String, errno: Int32)
    case flush(errno: Int32)

    public var description: String {
        switch self {
        case .open(let object, let code):
            "Cannot open the eBPF object \(object): \(Self.text(code))."
        case .load(let object, let code):
            "The kernel refused the eBPF object \(object) (\(Self.text(code))); it needs BTF and CAP_BPF; run with OSPREY_LIBBPF_LOG=debug for the verifier log."
        case .missing(let what, let object):
            "The eBPF object \(object) has no \(what); the build is inconsistent, rebuild Osprey."
        case .attachTracepoint(let program, let code):
            "Cannot attach \(program) to its tracepoint (\(Self.text(code))); it needs BTF and CAP_PERFMON."
        case .attachTC(let interface, let hook, let code):
            "Cannot attach the tc \(hook) program to \(interface): \(Self.text(code))."
        case .map(let name, let operation, let code):
            "eBPF map \(name): \(operation) failed: \(Self.text(code))."
        case .btf(let detail):
            "Cannot read the kernel's BTF: \(detail)."
        case .statistics(let code):
            "Cannot turn on the kernel's eBPF run statistics (\(Self.text(code))); it needs Linux 5.8 and CAP_SYS_ADMIN."
        case .testRun(let program, let code):
            "Cannot run \(program) on a test packet (\(Self.text(code))); it needs CAP_BPF."
        case .flush(let code):
            "Cannot run the flush of silent connections (osp_flush_idle: \(Self.text(code))); it needs CAP_BPF."
        }
    }

    static func text(_ code: Int32) -> String { String(cString: strerror(code)) }
}
