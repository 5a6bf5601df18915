import Foundation
import Lab
import TestSupport
import Testing

/// The layers as the built executables show them: the CLI and the relay speak the Hubble API and
/// never carry the agent's datapath, flow ring or pipeline (README, "Layers").
@Suite("Layering of the executables")
struct LayeringTests {
    /// Which of `modules` have Swift symbols in the binary (mangled names start `$s<length><module>`).
    static func modules(_ modules: [String], in binary: OspreyBinary) throws -> [String] {
        try modules.filter { module in
            let prefix = "$s\(module.utf8.count)\(module)"
            let result = try Host().execute(["sh", "-c", "nm '\(binary.path)' | grep -c -F '\(prefix)'"])
            return (Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0
        }
    }

    static func linksLibbpf(_ binary: OspreyBinary) throws -> Bool {
        try Host().execute(["ldd", binary.path]).stdout.contains("libbpf")
    }

    @Test("osprey and osprey-relay link neither libbpf nor the Datapath, Observer or FlowPipeline modules")
    func clientsStayLight() throws {
        let agentOnly = ["Datapath", "Observer", "FlowPipeline", "FlowDecoder", "NodeMetrics"]
        for binary in [OspreyBinary.cli, .relay] {
            #expect(try !Self.linksLibbpf(binary), "\(binary.name) links libbpf")
            #expect(try Self.modules(agentOnly, in: binary) == [], "\(binary.name) carries agent modules")
        }
        // The check itself works: the agent does carry them.
        #expect(try Self.linksLibbpf(.agent))
        #expect(try Self.modules(agentOnly, in: .agent) == agentOnly)
    }
}
