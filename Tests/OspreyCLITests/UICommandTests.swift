import Foundation
import Lab
import TestSupport
import Testing

/// `osprey ui` as a user runs it: the page and its API on the chosen address, the server it
/// shows away (the UI still answers, and says so), bad addresses in one sentence.
@Suite("osprey ui")
struct UICommandTests {
    @Test("serves the page and its API; a Hubble server that is not there is a 502 sentence, not a crash")
    func servesAgainstAnAbsentServer() throws {
        let port = try Browser.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: OspreyBinary.cli.path)
        process.arguments = ["ui", "--server", "127.0.0.1:1", "--listen", "127.0.0.1:\(port)"]
        let banner = FileManager.default.temporaryDirectory.appendingPathComponent("osp-ui-\(UUID()).out")
        _ = FileManager.default.createFile(atPath: banner.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: banner) }
        process.standardOutput = try FileHandle(forWritingTo: banner)
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            killProcessTree(process.processIdentifier)
            process.waitUntilExit()
        }
        func get(_ path: String) throws -> (status: Int32, body: String) {
            let result = try Host().execute([
                "curl", "-s", "-m", "5", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)",
            ])
            let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            return (Int32(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }
        var page = (status: Int32(0), body: "")
        for _ in 0..<100 {
            page = try get("/")
            if page.status == 200 { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(page.status == 200 && page.body.contains("<title>Osprey</title>"))
        let script = try get("/app.js")
        #expect(script.status == 200 && script.body.contains("EventSource"))
        let namespaces = try get("/api/namespaces")
        #expect(namespaces.status == 502 && namespaces.body.hasPrefix("The Hubble server did not list namespaces"))
        let map = try get("/api/map?namespace=shop")
        #expect(map.status == 200 && map.body.contains("\"cards\":[]"))
        let bad = try get("/api/map?window=7")
        #expect(bad.status == 400 && bad.body == "window 7 is not one of 60, 300, 900, 3600 seconds.\n")
        #expect(
            (try? String(contentsOf: banner, encoding: .utf8))
                == "Osprey UI for 127.0.0.1:1 on http://127.0.0.1:\(port)/\n")
        // Ctrl-C stops it.
        kill(process.processIdentifier, SIGINT)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!process.isRunning, "osprey ui stops on SIGINT")
    }

    @Test("HTTPS needs both the certificate and its key, in one sentence")
    func badTLS() throws {
        let result = try OspreyBinary.cli.run(["ui", "--listen-tls-cert-file", "/etc/hostname"])
        #expect(result.status != 0)
        #expect(
            result.stderr.contains("TLS needs both --listen-tls-cert-file and --listen-tls-key-file."),
            "\(result.stderr)")
    }

    @Test("a listen address it cannot use is one sentence")
    func badListen() throws {
        let result = try OspreyBinary.cli.run(["ui", "--listen", "203.0.113.7:12000"])
        #expect(result.status != 0)
        #expect(
            result.stderr.contains(
                "Cannot listen on 203.0.113.7:12000: Cannot assign requested address; choose another --listen."),
            "\(result.stderr)")
    }
}
