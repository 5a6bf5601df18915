import FlowTestKit
import Flows
import Foundation
import HubbleAPI
import HubbleWire
import Locking
import Logging
import Observer
import Testing

@testable import FlowExport

/// Dynamic flow logs: Hubble's flowlogs config read, validated, and followed as it changes —
/// the way a mounted ConfigMap changes (a symlink swap) — while the observer keeps appending.
@Suite("Dynamic flow logs")
struct FlowLogsTests {
    /// Log lines, kept for the test to read.
    final class Captured: LogHandler, @unchecked Sendable {
        let lines = Lock<[(Logger.Level, String)]>([])
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { lines.withLock { $0.append((event.level, event.message.description)) } }
        var errors: [String] { lines.withLock { $0.filter { $0.0 >= .error }.map(\.1) } }
    }

    /// A ConfigMap's layout: `flowlogs.yaml` → `..data/flowlogs.yaml`, `..data` → a versioned
    /// directory; `publish` swaps `..data` atomically, as the kubelet does.
    struct ConfigMapVolume {
        let directory: String
        var path: String { directory + "/flowlogs.yaml" }

        func publish(_ yaml: String, version: Int) throws {
            let versioned = directory + "/..2026_11_30_\(version)"
            try FileManager.default.createDirectory(atPath: versioned, withIntermediateDirectories: true)
            try yaml.write(toFile: versioned + "/flowlogs.yaml", atomically: false, encoding: .utf8)
            try? FileManager.default.removeItem(atPath: directory + "/..data_tmp")
            try FileManager.default.createSymbolicLink(
                atPath: directory + "/..data_tmp", withDestinationPath: "..2026_11_30_\(version)")
            #expect(rename(directory + "/..data_tmp", directory + "/..data") == 0)
            if !FileManager.default.fileExists(atPath: path) {
                try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "..data/flowlogs.yaml")
            }
        }
    }

    static func lines(_ path: String) -> [Observer_GetFlowsResponse] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? FlowJSONLines.parse(String($0)) }
    }

    /// Waits (up to 10 s) for the exporters' writer threads to put `count` lines in `path`.
    static func waitForLines(_ path: String, _ count: Int) -> [Observer_GetFlowsResponse] {
        for _ in 0..<200 {
            let lines = lines(path)
            if lines.count >= count { return lines }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return lines(path)
    }

    @Test(
        "add, change and remove flow logs by swapping the ConfigMap; a bad config is one sentence and changes nothing")
    func lifecycle() async throws {
        try await FlowExportTests.withDirectory { directory in
            let captured = Captured()
            let logger = Logger(label: "test") { _ in captured }
            let observer = try Observer(capacity: 4095)
            let flowLogs = FlowLogs(observer: observer, nodeName: "osp-node-1", logger: logger)
            let volume = ConfigMapVolume(directory: directory + "/config")
            let watcher = FlowLogsConfigWatcher(path: volume.path, flowLogs: flowLogs, logger: logger)
            let (all, denied) = (directory + "/all.log", directory + "/denied.log")

            // No file yet: no flow logs, nothing to complain about.
            #expect(await watcher.reload()?.isEmpty == true && flowLogs.exporters.isEmpty)
            try volume.publish(
                """
                flowLogs:
                - name: all
                  filePath: \(all)
                """, version: 1)
            #expect(await watcher.reload()?.added == ["all"])
            observer.append(Fixtures.all)
            #expect(Self.waitForLines(all, 6).count == 6)

            // Changed: "all" now keeps only drops and two fields; "denied" is new.
            try volume.publish(
                """
                flowLogs:
                - name: all
                  filePath: \(all)
                  fieldMask: [verdict, drop_reason_desc]
                  includeFilters:
                  - verdict: [DROPPED]
                - name: denied
                  filePath: \(denied)
                  excludeFilters:
                  - verdict: [FORWARDED]
                  fileMaxSizeMb: 1
                """, version: 2)
            let changes = await watcher.reload()
            #expect(changes?.changed == ["all"] && changes?.added == ["denied"])
            #expect(await watcher.reload() == nil, "the same content again changes nothing")
            observer.append(Fixtures.all)
            let allLines = Self.waitForLines(all, 7)
            #expect(allLines.count == 7, "six from before, one drop since")
            #expect(allLines.last?.flow.verdict == .dropped && allLines.last?.flow.hasSource == false)
            #expect(Self.waitForLines(denied, 1).map(\.flow.verdict) == [.dropped])

            // A bad config: one sentence naming the file, and both flow logs keep writing.
            try volume.publish(
                "flowLogs:\n- name: all\n  filePath: \(all)\n- name: all\n  filePath: /tmp/x.log\n", version: 3)
            #expect(await watcher.reload() == nil)
            #expect(captured.errors == ["\(volume.path): two flow logs are named \"all\"; names must be unique."])
            observer.append([Fixtures.drop])
            #expect(Self.waitForLines(denied, 2).count == 2 && Self.waitForLines(all, 8).count == 8)

            // Removed: "all" stops and closes; "denied" goes on.
            try volume.publish(
                "flowLogs:\n- name: denied\n  filePath: \(denied)\n  excludeFilters:\n  - verdict: [FORWARDED]\n  fileMaxSizeMb: 1\n",
                version: 4)
            #expect(await watcher.reload()?.removed == ["all"])
            observer.append([Fixtures.drop])
            #expect(Self.waitForLines(denied, 3).count == 3)
            #expect(Self.lines(all).count == 8, "a removed flow log gets nothing more")
            #expect(flowLogs.exporters.map(\.name) == ["denied"])
            #expect(flowLogs.lostBySource == ["exporter_denied": 0, "exporter_all": 0])
            await flowLogs.stopAll()
            #expect(flowLogs.exporters.isEmpty && observer.attachedSinks == 0)
        }
    }

    @Test("a flow log whose file cannot be opened is named in one sentence; the others start")
    func permissionDenied() async throws {
        try await FlowExportTests.withDirectory { directory in
            let captured = Captured()
            let flowLogs = FlowLogs(
                observer: try Observer(capacity: 15), nodeName: "n", logger: Logger(label: "test") { _ in captured })
            // sysfs refuses to create files, even for root.
            let configs = try FlowLogsConfig.parse(
                "flowLogs:\n- name: sys\n  filePath: /sys/osp-flows.log\n- name: ok\n  filePath: \(directory)/ok.log\n",
                path: "/etc/osprey/flowlogs.yaml")
            let changes = await flowLogs.apply(configs)
            #expect(changes.added == ["ok"] && changes.failed == ["sys"])
            #expect(
                captured.errors == [
                    "/etc/osprey/flowlogs.yaml: flow log \"sys\": cannot write flow logs to /sys/osp-flows.log: Permission denied; check filePath and that its directory exists and is writable."
                ])
            await flowLogs.stopAll()
        }
    }

    @Test("an end time in the past starts nothing; one in the future stops the flow log when it comes")
    func endTime() async throws {
        try await FlowExportTests.withDirectory { directory in
            let observer = try Observer(capacity: 15)
            let flowLogs = FlowLogs(observer: observer, nodeName: "n", logger: Logger(label: "test"))
            let soon = Date().addingTimeInterval(60)
            let configs = try FlowLogsConfig.parse(
                """
                flowLogs:
                - name: past
                  filePath: \(directory)/past.log
                  end: "2023-10-09T23:59:59-07:00"
                - name: future
                  filePath: \(directory)/future.log
                  end: \(ISO8601DateFormatter().string(from: soon))
                """, path: "flowlogs.yaml")
            #expect(await flowLogs.apply(configs).added == ["future"])
            await flowLogs.expire(now: soon.addingTimeInterval(1))
            #expect(flowLogs.exporters.isEmpty)
            #expect(!FileManager.default.fileExists(atPath: directory + "/past.log"))
        }
    }

    @Test(
        "a config that is not valid is refused in one sentence naming the file and what to fix",
        arguments: [
            ("flowLogs: [", "not valid YAML"),
            ("flowLogs:\n- filePath: /tmp/a.log\n", "flowLogs[0]: name is required."),
            ("flowLogs:\n- name: a\n", "flow log \"a\": filePath is required."),
            (
                "flowLogs:\n- name: a\n  filePath: flows.log\n",
                "filePath must be absolute (flows.log), or stdout for the agent's standard output."
            ),
            ("flowLogs:\n- name: a\n  filePath: /tmp/a.log\n  filepath: /tmp/b.log\n", "unknown setting \"filepath\"."),
            ("flowlogs: []\n", "unknown key \"flowlogs\" at the top"),
            (
                "flowLogs:\n- name: a\n  filePath: /tmp/a.log\n- name: b\n  filePath: /tmp/a.log\n",
                "two flow logs write to /tmp/a.log"
            ),
            (
                "flowLogs:\n- name: a\n  filePath: /tmp/a.log\n  includeFilters:\n  - verdict: [MAYBE]\n",
                "includeFilters: '"
            ),
            (
                "flowLogs:\n- name: a\n  filePath: /tmp/a.log\n  fieldMask: [sources]\n",
                "fieldMask: field_mask path \"sources\""
            ),
            (
                "flowLogs:\n- name: a\n  filePath: /tmp/a.log\n  end: tomorrow\n",
                "end \"tomorrow\" is not an RFC 3339 time"
            ),
            (
                "flowLogs:\n- name: a\n  filePath: /tmp/a.log\n  fieldAggregate: [source]\n",
                "aggregationInterval is needed with fieldAggregate"
            ),
            (
                "flowLogs:\n- name: a\n  filePath: /tmp/a.log\n  fieldAggregate: [source]\n  aggregationInterval: soon\n",
                "aggregationInterval \"soon\" is not a duration"
            ),
            (
                "flowLogs:\n- name: a\n  filePath: /tmp/a.log\n  fieldAggregate: [sources]\n  aggregationInterval: 1m\n",
                "fieldAggregate: field_mask path \"sources\""
            ),
            ("flowLogs:\n- name: static\n  filePath: /tmp/a.log\n", "belongs to the agent's --export-file-path"),
            (
                "flowLogs:\n- name: a\n  filePath: /tmp/a.log\n  fileMaxSizeMb: -1\n",
                "fileMaxSizeMb must be a whole number"
            ),
        ])
    func badConfig(_ yaml: String, _ expected: String) {
        #expect {
            _ = try FlowLogsConfig.parse(yaml, path: "/etc/osprey/flowlogs.yaml")
        } throws: { error in
            let sentence = "\(error)"
            return sentence.hasPrefix("/etc/osprey/flowlogs.yaml: ") && sentence.contains(expected)
                && !sentence.contains("\n")
        }
    }

    @Test("stdout as a flow log's filePath: the agent's standard output, which several flow logs may share")
    func standardOutput() throws {
        let configs = try FlowLogsConfig.parse(
            """
            flowLogs:
            - name: denied
              filePath: stdout
              includeFilters: [{verdict: [DROPPED]}]
            - name: dns
              filePath: stdout
              includeFilters: [{protocol: [dns]}]
            """, path: "flowlogs.yaml")
        #expect(configs.keys.sorted() == ["denied", "dns"])
        #expect(configs.values.allSatisfy { $0.path == "stdout" })
    }

    @Test("aggregation as Hubble writes it: the fields to group by and a Go duration; an interval alone groups nothing")
    func aggregation() throws {
        let configs = try FlowLogsConfig.parse(
            """
            flowLogs:
            - name: pairs
              filePath: /var/log/osprey/pairs.log
              fieldAggregate: [source.namespace, source.pod_name, destination.pod_name, verdict]
              aggregationInterval: 1m30s
            - name: plain
              filePath: /var/log/osprey/plain.log
              aggregationInterval: 500ms
            """, path: "flowlogs.yaml")
        let pairs = try #require(configs["pairs"])
        #expect(pairs.fieldAggregate == ["source.namespace", "source.pod_name", "destination.pod_name", "verdict"])
        #expect(pairs.aggregationInterval == .seconds(90))
        let plain = try #require(configs["plain"])
        #expect(plain.fieldAggregate.isEmpty && plain.aggregationInterval == .milliseconds(500))
        #expect(try FlowExporter.compile(plain, name: "plain").aggregator == nil, "nothing to group by")
        #expect(try FlowExporter.compile(pairs, name: "pairs").aggregator?.interval == .seconds(90))
    }

    @Test("Hubble's own example config parses: names, files, masks, filters, sizes, end times")
    func hubbleExample() throws {
        let configs = try FlowLogsConfig.parse(
            """
            flowLogs:
            - name: "test001"
              filePath: "/var/log/network/flow-log/pa/test001.log"
              fieldMask: []
              fieldAggregate: []
              aggregationInterval: 0s
              includeFilters: []
              excludeFilters: []
              fileMaxSizeMb: 0
              fileMaxBackups: 0
              fileCompress: false
              end: "2023-10-09T23:59:59-07:00"
            - name: "test002"
              filePath: "/var/log/network/flow-log/pa/test002.log"
              fieldMask: ["source.namespace", "source.pod_name", "destination.namespace", "destination.pod_name", "verdict"]
              includeFilters:
              - source_pod: ["default/"]
                event_type:
                - type: 1
              - destination_pod: ["frontend/nginx-975996d4c-7hhgt"]
              fileMaxSizeMb: 10
              fileMaxBackups: 3
              fileCompress: true
            """, path: "flowlogs.yaml")
        #expect(configs.keys.sorted() == ["test001", "test002"])
        let first = try #require(configs["test001"])
        #expect(first.maxSizeMB == 10 && first.maxBackups == 5, "0 means Hubble's defaults")
        #expect(first.end == Date(timeIntervalSince1970: 1_696_921_199))
        let second = try #require(configs["test002"])
        #expect(second.fieldMask.count == 5 && second.compress && second.maxBackups == 3)
        #expect(second.allowlist.count == 2)
        let filter = try Flow_FlowFilter(jsonString: second.allowlist[0])
        #expect(filter.sourcePod == ["default/"] && filter.eventType.first?.type == 1)
    }
}
