import Foundation
import Lab
import TestSupport
import Testing

/// `make soak-ui` (not part of `make test`): the all-namespaces view open in headless Chromium
/// for OSPREY_UI_SOAK_SECONDS (default 600) on a 2-node lab. Every 30 s it samples the page's
/// JavaScript heap, its DOM size and the relay's resident memory (printed as CSV); after a
/// 2-minute warm-up neither the heap nor the relay may keep growing.
@Suite("web UI soak", .serialized)
struct WebUISoakTests {
    @Test("the page's heap and the relay's memory stay flat while the map and table stream")
    func soak() async throws {
        let seconds = Double(ProcessInfo.processInfo.environment["OSPREY_UI_SOAK_SECONDS"] ?? "") ?? 600
        let config = try AgentIntegration.WebUILabTests.labConfig("s")
        try await LabFixture.withLab(config) { _, _ in
            let browser = try Browser()
            defer { browser.close() }
            try browser.open("http://127.0.0.1:\(config.uiPort!)/")
            let relayPID = try String(
                contentsOfFile: "\(config.stateDirectory)/relay/osprey-relay.pid.osprey", encoding: .utf8
            )
            .trimmingCharacters(in: .whitespacesAndNewlines)
            func relayMiB() -> Double {
                let status = (try? String(contentsOfFile: "/proc/\(relayPID)/status", encoding: .utf8)) ?? ""
                let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
                return (Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
            }
            print("seconds,js_heap_mib,dom_nodes,rows,relay_rss_mib")
            var samples: [(at: Double, heap: Double, relay: Double)] = []
            let began = Date()
            while Date().timeIntervalSince(began) < seconds {
                Thread.sleep(forTimeInterval: min(30, seconds / 4))
                let page =
                    (try? browser.run(
                        "return [performance.memory.usedJSHeapSize, document.getElementsByTagName('*').length, document.querySelectorAll('[data-test=flow-row]').length]"
                    )) as? [Any] ?? []
                let heap = ((page.first as? NSNumber)?.doubleValue ?? 0) / 1_048_576
                let at = Date().timeIntervalSince(began)
                samples.append((at, heap, relayMiB()))
                print(
                    String(
                        format: "%.0f,%.1f,%@,%@,%.1f", at, heap, "\(page.dropFirst().first ?? 0)", "\(page.last ?? 0)",
                        relayMiB()))
            }
            let warm = samples.filter { $0.at >= min(120, seconds / 2) }
            guard let first = warm.first, let last = warm.last else {
                Issue.record("no samples after the warm-up")
                return
            }
            #expect(last.heap <= first.heap * 1.5 + 4, "the page's heap grew from \(first.heap) to \(last.heap) MiB")
            #expect(last.relay <= first.relay * 1.25 + 8, "the relay grew from \(first.relay) to \(last.relay) MiB")
        }
    }
}
