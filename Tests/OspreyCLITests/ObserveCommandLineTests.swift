import FlowPrinter
import Foundation
import TestSupport
import Testing

/// What a user sees when `osprey observe|status|list` is given something it cannot use.
@Suite("osprey observe/status/list: bad input")
struct ObserveCommandLineTests {
    @Test("a server that is not there: one sentence naming the address, exit 1")
    func noServer() throws {
        for command in [["status"], ["observe"], ["list", "nodes"]] {
            let result = try OspreyBinary.cli.run(command + ["--server", "127.0.0.1:1", "--timeout", "1s"])
            #expect(result.status == 1)
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
            #expect(result.stderr.contains("Cannot reach a Hubble server at 127.0.0.1:1"))
            #expect(result.stdout.isEmpty)
        }
        let socket = try OspreyBinary.cli.run([
            "status", "--server", "unix:///nonexistent/hubble.sock", "--timeout", "1s",
        ])
        #expect(socket.status == 1)
        #expect(socket.stderr.contains("unix:///nonexistent/hubble.sock"))
    }

    @Test(
        "invalid flag combinations and values are rejected before connecting",
        arguments: [
            (["--first", "5", "--follow"], "cannot set both --first and --follow"),
            (["--first", "5", "--last", "3"], "--first and --last cannot be used together"),
            (["--last", "3", "--all"], "--last and --all cannot be used together"),
            (["-o", "table", "--follow"], "--output table cannot be used with --follow"),
            (["-o", "yaml"], "must be one of compact, dict, json, jsonpb, table"),
            (["--since", "yesterday"], "--since \"yesterday\" is not a time"),
            // A value that starts with a dash is the flag's value, not a flag of its own.
            (["--until", "-5m"], "--until \"-5m\" is not a time"),
            (["--last", "-5"], "The value '-5' is invalid for '--last <last>'"),
            (["--first", "-1"], "The value '-1' is invalid for '--first <first>'"),
            (["--ip", "10.0.0.300"], "is not an IP address or CIDR"),
            (["--verdict", "SOMETIMES"], "is not a verdict"),
            (["--server", "no-port-here:xyz"], "is not host:port"),
            (["--allowlist", "{not json"], "is not a FlowFilter in JSON"),
            (["--fqdn", "a.example.", "--ip", "10.0.0.1"], "filters --fqdn and --ip cannot be combined"),
            (["--field-mask", "time"], "compact output format is not compatible with custom field mask"),
            (["--bogus", "1"], "--bogus is not an option of osprey observe"),
            (["--not"], "--not must be followed by a filter flag"),
        ])
    func badFlags(arguments: [String], message: String) throws {
        let result = try OspreyBinary.cli.run(["observe", "--timeout", "1s"] + arguments)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!result.stderr.contains("Cannot reach"), "rejected before connecting")
    }

    @Test("status -o: a layout hubble does not have is one sentence, before connecting")
    func statusOutput() throws {
        let result = try OspreyBinary.cli.run(["status", "--timeout", "1s", "-o", "yaml"])
        #expect(result.status != 0)
        #expect(
            result.stderr.contains("--output \"yaml\" must be one of compact, dict, json, table."), "\(result.stderr)")
        #expect(!result.stderr.contains("Cannot reach"), "rejected before connecting")
    }

    @Test("list -o: a layout hubble does not have is one sentence naming the ones it has, before connecting")
    func listOutput() throws {
        for what in ["nodes", "namespaces"] {
            let result = try OspreyBinary.cli.run(["list", what, "--timeout", "1s", "-o", "yaml"])
            #expect(result.status != 0)
            #expect(
                result.stderr.contains("Please provide one of 'table', 'wide' or 'json'."), "\(what): \(result.stderr)")
            #expect(!result.stderr.contains("Cannot reach"), "rejected before connecting")
        }
    }

    @Test("--print-raw-filters prints hubble's filter lists without a server")
    func printRawFilters() throws {
        let result = try OspreyBinary.cli.run([
            "observe", "--server", "127.0.0.1:1", "--from-pod", "shop/loadgen", "--not", "--protocol", "udp",
            "--print-raw-filters",
        ])
        #expect(result.status == 0)
        #expect(
            result.stdout == """
                allowlist:
                    - '{"source_pod":["shop/loadgen"]}'
                denylist:
                    - '{"protocol":["udp"]}'

                """)
    }

    @Test("hubble's spellings: observe flows, observe agent-events|debug-events, watch peers")
    func subcommands() throws {
        let flows = try OspreyBinary.cli.run([
            "observe", "flows", "--server", "127.0.0.1:1", "--verdict", "DROPPED", "--print-raw-filters",
        ])
        #expect(flows.status == 0)
        #expect(flows.stdout == "allowlist:\n    - '{\"verdict\":[\"DROPPED\"]}'\n")
        for command in [["observe", "agent-events"], ["observe", "debug-events"], ["watch", "peers"]] {
            let result = try OspreyBinary.cli.run(command + ["--server", "127.0.0.1:1", "--timeout", "1s"])
            #expect(result.status == 1, "\(command)")
            #expect(result.stderr.contains("Cannot reach a Hubble server at 127.0.0.1:1"), "\(result.stderr)")
        }
    }

    @Test("osprey version: hubble's version line (name, version, compiler, platform); --version the bare version")
    func version() throws {
        let bare = try OspreyBinary.cli.run(["--version"])
        #expect(bare.status == 0 && bare.stdout.split(separator: ".").count == 3, "\(bare.stdout)")
        let detailed = try OspreyBinary.cli.run(["version"])
        #expect(detailed.status == 0 && detailed.stderr.isEmpty)
        let expected = /osprey (\d+\.\d+\.\d+) compiled with Swift 6\.\d( or later)? on linux\/(amd64|arm64)\n/
        let match = try #require(detailed.stdout.wholeMatch(of: expected), "\(detailed.stdout)")
        #expect(String(match.1) + "\n" == bare.stdout)
        let extra = try OspreyBinary.cli.run(["version", "--server", "localhost:4245"])
        #expect(extra.status != 0 && extra.stdout.isEmpty && !extra.stderr.isEmpty)
    }

    /// One flow log line from pod `pod` of namespace shop.
    static func line(_ pod: String, _ verdict: String, time: String = "2027-01-15T08:00:00.250Z") -> String {
        #"{"flow":{"time":"\#(time)","verdict":"\#(verdict)","IP":{"source":"10.0.0.1","destination":"10.0.0.2","ipVersion":"IPv4"},"l4":{"UDP":{"source_port":5000,"destination_port":53}},"source":{"namespace":"shop","pod_name":"\#(pod)"},"destination":{"identity":2},"Type":"L3_L4","node_name":"osp-node-1","is_reply":false,"event_type":{"type":4,"sub_type":5},"Summary":"UDP"},"node_name":"osp-node-1","time":"\#(time)"}"#
    }

    @Test("--input-file with --include-rotated reads a flow log's rotated files, gzipped too, oldest first")
    func inputFileWithRotated() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osp-rotated-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = [
            ("flows-2026-11-30T09-00-00.000.log", "oldest"), ("flows-2026-11-30T10-00-00.000.log", "older"),
            ("flows.log", "current"), ("flows-denied.log", "another-log"),
        ]
        for (name, pod) in files {
            try (Self.line(pod, "FORWARDED") + "\n").write(
                toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
        }
        let gzip = try Process.run(
            URL(fileURLWithPath: "/bin/gzip"), arguments: ["\(directory)/flows-2026-11-30T09-00-00.000.log"])
        gzip.waitUntilExit()
        #expect(gzip.terminationStatus == 0)
        // Caught while being compressed: the gzip is whole, the plain file not yet removed.
        let both = try Process.run(
            URL(fileURLWithPath: "/bin/gzip"), arguments: ["-k", "\(directory)/flows-2026-11-30T10-00-00.000.log"])
        both.waitUntilExit()
        #expect(both.terminationStatus == 0)
        func pods(_ arguments: [String]) throws -> [String] {
            let result = try OspreyBinary.cli.run(
                ["observe", "--input-file", "\(directory)/flows.log", "-o", "json"] + arguments)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout.split(separator: "\n").compactMap {
                let object = try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                return ((object?["flow"] as? [String: Any])?["source"] as? [String: Any])?["pod_name"] as? String
            }
        }
        #expect(try pods([]) == ["current"])
        #expect(try pods(["--include-rotated"]) == ["oldest", "older", "current"])
        #expect(try pods(["--include-rotated", "--last", "2"]) == ["older", "current"])
        let stdin = try OspreyBinary.cli.run(["observe", "--input-file", "-", "--include-rotated"])
        #expect(stdin.status != 0 && stdin.stderr.contains("--include-rotated needs --input-file naming a flow log"))
        // Caught mid-rotation (the current file renamed, the new one not open yet): the rotated
        // files are read, each once; without them, or without --include-rotated, a missing file
        // is an error.
        try FileManager.default.removeItem(atPath: "\(directory)/flows.log")
        #expect(try pods(["--include-rotated"]) == ["oldest", "older"])
        let missing = try OspreyBinary.cli.run(["observe", "--input-file", "\(directory)/flows.log"])
        #expect(missing.status != 0 && missing.stderr.contains("Cannot read --input-file"))
        let none = try OspreyBinary.cli.run([
            "observe", "--input-file", "\(directory)/nothing.log", "--include-rotated",
        ])
        #expect(none.status != 0 && none.stderr.contains("Cannot read --input-file \(directory)/nothing.log"))
    }

    @Test(
        "a relay's unavailable nodes go to stderr as hubble writes them, -s/--silent-errors leaves them out, -D/--debug adds the connected ones"
    )
    func silentErrors() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("osp-status-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let connected =
            #"{"node_status":{"state_change":"NODE_CONNECTED","node_names":["osp-node-1"]},"node_name":"osp-relay","time":"2027-01-15T08:00:00.250Z"}"#
        let status =
            #"{"node_status":{"state_change":"NODE_UNAVAILABLE","node_names":["osp-node-2","osp-node-3"]},"node_name":"osp-relay","time":"2027-01-15T08:00:00.250Z"}"#
        let cut = String(Self.line("cut", "FORWARDED").prefix(90))
        try [connected, Self.line("a", "FORWARDED"), status, Self.line("b", "FORWARDED"), cut]
            .joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        for flag in ["-D", "--debug"] {
            let debug = try OspreyBinary.cli.run(["observe", "--input-file", path, "--all", flag])
            #expect(debug.status == 0 && debug.stdout.split(separator: "\n").count == 2, "\(flag): \(debug.stderr)")
            #expect(debug.stderr.contains("[osp-relay]: Receiving flows from 1 nodes: osp-node-1\n"), "\(flag)")
            #expect(debug.stderr.contains("[osp-relay]: 2 nodes are unavailable: osp-node-2, osp-node-3\n"), "\(flag)")
        }
        for format in ["compact", "json"] {
            let loud = try OspreyBinary.cli.run(["observe", "--input-file", path, "-o", format])
            #expect(loud.status == 0, "\(loud.stderr)")
            #expect(loud.stdout.split(separator: "\n").count == 2 && !loud.stdout.contains("osp-node-3"), "\(format)")
            let expected =
                format == "compact"
                ? "[osp-relay]: 2 nodes are unavailable: osp-node-2, osp-node-3\n" : String(status.prefix(40))
            #expect(loud.stderr.contains(expected), "\(format): \(loud.stderr)")
            #expect(loud.stderr.contains("is cut short") && !loud.stderr.contains("osp-node-1"), "\(format)")
            for flag in ["-s", "--silent-errors"] {
                let quiet = try OspreyBinary.cli.run(["observe", "--input-file", path, "-o", format, flag])
                #expect(quiet.status == 0 && quiet.stdout == loud.stdout, "\(format) \(flag)")
                #expect(quiet.stderr.isEmpty, "\(format) \(flag): \(quiet.stderr)")
            }
        }
    }

    @Test(
        "--input-file: a last line cut short (a log read or copied while written) is skipped with a note; a bad line before it is an error"
    )
    func inputFileCutShort() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osp-cut-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let whole = Self.line("whole", "FORWARDED")
        let cut = String(Self.line("cut", "FORWARDED").prefix(90))
        try (whole + "\n" + cut).write(toFile: "\(directory)/flows.log", atomically: true, encoding: .utf8)
        let gzip = try Process.run(URL(fileURLWithPath: "/bin/gzip"), arguments: ["-k", "\(directory)/flows.log"])
        gzip.waitUntilExit()
        for file in ["flows.log", "flows.log.gz"] {
            let result = try OspreyBinary.cli.run(["observe", "--input-file", "\(directory)/\(file)", "-o", "json"])
            #expect(result.status == 0, "\(file): \(result.stderr)")
            #expect(result.stdout.contains("\"whole\"") && !result.stdout.contains("\"cut\""), "\(file)")
            #expect(result.stderr.contains("the last line of \(directory)/\(file) is cut short"), "\(file)")
        }
        try (cut + "\n" + whole + "\n").write(toFile: "\(directory)/bad.log", atomically: true, encoding: .utf8)
        let bad = try OspreyBinary.cli.run(["observe", "--input-file", "\(directory)/bad.log"])
        #expect(bad.status != 0 && bad.stderr.contains("Line 1 of \(directory)/bad.log is not a jsonpb flow"))
    }

    @Test(
        "--input-file selects as hubble does: with --since/--until only the lines of that span (both ends included), before --first/--last; a relative time counts from now; no selector: the last 20"
    )
    func inputFileSpan() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("osp-span-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let now = Date()
        let recent = TimeFormat.rfc3339Nano.format(now.addingTimeInterval(-30), timeZone: TimeZone(identifier: "UTC")!)
        try [
            Self.line("a", "FORWARDED", time: "2026-01-15T07:59:59.999Z"),
            Self.line("b", "FORWARDED", time: "2026-01-15T08:00:00Z"),
            Self.line("c", "DROPPED", time: "2026-01-15T08:00:30.5Z"),
            Self.line("d", "FORWARDED", time: "2026-01-15T08:01:00Z"),
            Self.line("e", "FORWARDED", time: "2026-01-15T08:01:00.000000001Z"),
            Self.line("f", "FORWARDED", time: recent),
        ].joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        func pods(_ arguments: [String]) throws -> [String] {
            let result = try OspreyBinary.cli.run(["observe", "--input-file", path, "-o", "json"] + arguments)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout.split(separator: "\n").compactMap {
                let object = try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                return ((object?["flow"] as? [String: Any])?["source"] as? [String: Any])?["pod_name"] as? String
            }
        }
        let span = ["--since", "2026-01-15T08:00Z", "--until", "2026-01-15T08:01:00Z"]
        #expect(try pods(span) == ["b", "c", "d"])
        #expect(try pods(span + ["--last", "1"]) == ["d"])
        #expect(try pods(span + ["--first", "1", "--verdict", "FORWARDED"]) == ["b"])
        #expect(try pods(["--since", "Thu, 15 Jan 2026 09:00:30 +0100"]) == ["c", "d", "e", "f"])
        #expect(try pods(["--until", "2026-01-15T07:59:59.999Z"]) == ["a"])
        #expect(try pods(["--since", "1m"]) == ["f"])
        #expect(try pods(["--since", "2026-01-15"]) == ["a", "b", "c", "d", "e", "f"])

        // No selector: the last 20, as hubble sends and reads a file; --all: every line.
        try (0..<25).map { Self.line("p\($0)", "FORWARDED") }.joined(separator: "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try pods([]) == (5..<25).map { "p\($0)" })
        #expect(try pods(["--all"]).count == 25)
        #expect(try pods(["--first", "2"]) == ["p0", "p1"])
    }

    @Test("--input-file reads jsonpb lines and filters them locally")
    func inputFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("osp-flows-\(UUID()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try [Self.line("a", "FORWARDED"), Self.line("b", "DROPPED"), Self.line("c", "FORWARDED")].joined(
            separator: "\n"
        )
        .write(toFile: path, atomically: true, encoding: .utf8)
        // In UTC whatever the machine's zone, as a user would set TZ.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: OspreyBinary.cli.path)
        process.arguments = [
            "observe", "--input-file", path, "--verdict", "FORWARDED", "--time-format", "RFC3339Milli", "--color",
            "never",
        ]
        process.environment = ProcessInfo.processInfo.environment.merging(["TZ": "UTC"]) { _, utc in utc }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let stdout = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(
            stdout == """
                2027-01-15T08:00:00.25Z: shop/a:5000 (ID:0) -> 10.0.0.2:53 (world) from-endpoint FORWARDED (UDP)
                2027-01-15T08:00:00.25Z: shop/c:5000 (ID:0) -> 10.0.0.2:53 (world) from-endpoint FORWARDED (UDP)

                """)
    }
}

/// `osprey config`: hubble's view/get/set/reset over the CLI's settings, and their precedence.
@Suite("osprey config")
struct ConfigCommandTests {
    @Test("set writes the file, get and view read flag > environment > file > default, bad input is a sentence")
    func configFile() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("osp-config-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: home) }
        let file = home + "/.config/osprey/config.yaml"
        func osprey(_ arguments: [String], _ environment: [String: String] = [:]) throws -> (Int32, String, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: OspreyBinary.cli.path)
            process.arguments = arguments
            var variables = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OSPREY_") }
            variables["XDG_CONFIG_HOME"] = nil
            variables["HOME"] = home
            process.environment = variables.merging(environment) { _, new in new }
            let (stdout, stderr) = (Pipe(), Pipe())
            process.standardOutput = stdout
            process.standardError = stderr
            try process.run()
            let out = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, out, err)
        }
        #expect(try osprey(["config", "get", "server"]).1 == "localhost:4245\n")
        #expect(try osprey(["config", "set", "server", "relay.example:4245"]).0 == 0)
        #expect(try osprey(["config", "set", "tls-ca-cert-files", "a.pem,b.pem"]).0 == 0)
        #expect(
            try String(contentsOfFile: file, encoding: .utf8)
                == "server: relay.example:4245\ntls-ca-cert-files:\n    - a.pem\n    - b.pem\n")
        #expect(try osprey(["config", "get", "server"]).1 == "relay.example:4245\n")
        #expect(try osprey(["config", "get", "tls-ca-cert-files"]).1 == "- a.pem\n- b.pem\n")
        #expect(try osprey(["config", "get", "server"], ["OSPREY_SERVER": "env.example:1"]).1 == "env.example:1\n")
        let view = try osprey(["config", "view"]).1
        #expect(view.contains("server: relay.example:4245\n") && view.contains("timeout: 5s\n"))
        // The file's server is what a command dials when no flag says otherwise.
        let status = try osprey(["status", "--timeout", "1s", "--tls-ca-cert-files", ""])
        #expect(status.2.contains("relay.example:4245"), "\(status.2)")
        let unknown = try osprey(["config", "get", "nope"])
        #expect(unknown.0 == 1 && unknown.2 == "osprey: unknown key: nope\n")
        let bad = try osprey(["config", "set", "timeout", "soon"])
        #expect(bad.0 == 1 && bad.2.contains("timeout takes a duration"))
        #expect(try osprey(["config", "reset", "server"]).0 == 0)
        #expect(try osprey(["config", "get", "server"]).1 == "localhost:4245\n")
    }

    @Test("the filter flags are declared once: --help lists every one, and `observe flows` is `observe`")
    func filterFlagsOnce() throws {
        let help = try OspreyBinary.cli.run(["observe", "--help"])
        #expect(help.status == 0)
        for flag in ["--from-pod", "--to-namespace", "-A", "--drop-reason-desc", "--tcp-flags", "-4", "--snat-ip"] {
            #expect(help.stdout.contains(flag), "\(flag) missing from observe --help")
        }
        #expect(help.stdout.split(separator: "\n").allSatisfy { $0.count <= 80 }, "help fits 80 columns")
        let filters = ["--pod", "shop/x", "--not", "--protocol", "udp", "--to-port", "80", "--print-raw-filters"]
        let bare = try OspreyBinary.cli.run(["observe"] + filters)
        let long = try OspreyBinary.cli.run(["observe", "flows"] + filters)
        #expect(bare.status == 0 && long.status == 0)
        #expect(bare.stdout == long.stdout)
        #expect(bare.stdout.contains(#"{"protocol":["udp"]}"#))
        let events = try OspreyBinary.cli.run(["observe", "agent-events", "--help"])
        #expect(events.status == 0 && events.stdout.contains("agent events"))
    }
}
