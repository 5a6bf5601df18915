import Foundation

/// Why osprey-agent cannot start, each as one sentence naming what to do.
public enum AgentError: Error, Equatable, CustomStringConvertible {
    case missingCapabilities([String])
    case noBTF
    case invalidListenAddress(String)
    case cannotListen(address: String, reason: String, flag: String)
    case noUplink
    case unknownUplink(String)

    public var description: String {
        switch self {
        case .missingCapabilities(let names):
            "osprey-agent needs \(names.joined(separator: ", ")) to load and attach eBPF programs; run it as root or grant the missing capabilities."
        case .noBTF:
            "This kernel does not expose BTF (/sys/kernel/btf/vmlinux); Osprey needs a kernel built with CONFIG_DEBUG_INFO_BTF."
        case .invalidListenAddress(let text):
            "Listen address '\(text)' is not host:port (e.g. 0.0.0.0:9965 or [::]:9965)."
        case .cannotListen(let address, let reason, let flag):
            "Cannot listen on \(address): \(reason); choose another \(flag)."
        case .noUplink:
            "No uplink interface found (no default route in this namespace); name it with --uplink."
        case .unknownUplink(let name):
            "Uplink interface '\(name)' does not exist in this network namespace; check --uplink."
        }
    }
}
