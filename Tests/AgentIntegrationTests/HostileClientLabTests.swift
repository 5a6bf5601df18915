import Foundation
import Lab
import TestSupport
import Testing

extension AgentIntegration {
    /// Clients that do not play by the rules, from inside the cluster: the agent keeps serving
    /// everyone else.
    @Suite("Hostile clients on a lab")
    struct HostileClients {
        @Test("1,000 idle connections to /metrics and garbage on both ports: scrapes and the Hubble API still answer")
        func idleAndGarbage() async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName("h"), nodeCount: 1, agentPath: OspreyBinary.agent.path)
            try await LabFixture.withLab(config) { plan, _ in
                let node = plan.nodes[0]
                let pod = try #require(plan.pods(of: "untrusted", in: "shop").first)
                var sockets: [Int32] = []
                defer { for fd in sockets { close(fd) } }
                // A slowloris: connections that are opened and never say anything.
                for _ in 0..<1000 {
                    if let fd = try PodSockets.connectTCP(
                        from: pod.netns, to: node.ipv4, port: LabConfig.agentMetricsPort, timeout: 2)
                    {
                        sockets.append(fd)
                    }
                }
                #expect(sockets.count == 1000)
                let metrics = try LabFixture.scrape(node.netns)
                #expect(metrics.value("osprey_agent_programs_attached") > 0)

                // Garbage instead of HTTP/1.1 and instead of HTTP/2 gRPC frames.
                var generator = SystemRandomNumberGenerator()
                for port in [LabConfig.hubblePort, LabConfig.agentMetricsPort] {
                    for _ in 0..<20 {
                        guard
                            let fd = try PodSockets.connectTCP(from: pod.netns, to: node.ipv4, port: port, timeout: 2)
                        else { continue }
                        let garbage = (0..<65536).map { _ in UInt8.random(in: 0...255, using: &generator) }
                        _ = garbage.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                        close(fd)
                    }
                }
                let socket = "unix://\(config.nodeDirectory(node.name))/hubble.sock"
                let status = try OspreyBinary.cli.run(["status", "--server", socket])
                #expect(status.status == 0, "\(status.stderr)")
                #expect(status.stdout.contains("Healthcheck") && status.stdout.contains("Ok"))
                #expect(try LabFixture.scrape(node.netns).value("osprey_agent_programs_attached") > 0)
                let agent = try #require(LabFixture.agentPID(config, node: node.name))
                #expect(LabController.isRunning(agent))
            }
        }
    }
}
