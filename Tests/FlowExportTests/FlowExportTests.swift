import FlowTestKit
import Flows
import Foundation
import Gzip
import HubbleAPI
import HubbleWire
import Locking
import Observer
import Testing

@testable import FlowExport

/// Flow logs as a log shipper and `hubble observe --input-file` read them: whole jsonpb lines,
/// rotated by size, filtered and masked, with a record wherever flows were missed.
@Suite("Flow logs on disk")
struct FlowExportTests {
    /// A fresh directory under /tmp, removed afterwards.
    static func withDirectory(_ body: (String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osp-export-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await body(directory)
    }

    /// Every line of every file in `directory` (gzipped ones unpacked), parsed.
    static func responses(in directory: String) throws -> [Observer_GetFlowsResponse] {
        var all: [Observer_GetFlowsResponse] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() {
            var data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
            if Gzip.isCompressed(data) { data = try Gzip.decompress(data) }
            let text = String(decoding: data, as: UTF8.self)
            #expect(text.isEmpty || text.hasSuffix("\n"), "\(name) ends with a whole line")
            for line in text.split(separator: "\n") { all.append(try FlowJSONLines.parse(String(line))) }
        }
        return all
    }

    static func flows(_ count: Int) -> [Flow] {
        (0..<count).map { index in
            var flow = index % 2 == 0 ? Fixtures.syn : Fixtures.drop
            flow.time = Fixtures.start.addingTimeInterval(Double(index) / 1000)
            flow.uuid = UUID()
            return flow
        }
    }

    /// Runs an exporter over `events`, synchronously (the agent feeds it from its subscription
    /// to the ring; tests on a busy machine must not wait for the cooperative pool).
    static func export(_ events: [ObserverEvent], _ settings: ExportSettings) throws -> FlowExporter {
        let exporter = try FlowExporter(name: "test", settings: settings, nodeName: "osp-node-1")
        for event in events { exporter.handle(event) }
        exporter.close()
        return exporter
    }

    static func export(_ flows: [Flow], _ settings: ExportSettings) throws -> FlowExporter {
        try export(flows.map(ObserverEvent.flow), settings)
    }

    @Test("rotation by size: lumberjack names, only the newest backups kept, every line whole and written once")
    func rotation() async throws {
        try await Self.withDirectory { directory in
            let path = directory + "/events.log"
            let exporter = try Self.export(
                Self.flows(6000), ExportSettings(path: path, maxSizeMB: 1, maxBackups: 2))
            let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            #expect(names.count == 3, "\(names)")
            #expect(names.last == "events.log")
            #expect(
                names.dropLast().allSatisfy {
                    $0.wholeMatch(of: /events-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log/) != nil
                })
            let counts = exporter.counts
            #expect(counts.lines == 6000 && counts.errors == 0 && counts.lost == 0)
            #expect(counts.rotations >= 3, "6000 lines of ~1 KB rotate at 1 MB")
            for name in names {
                let size =
                    (try FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.size] as? Int) ?? 0
                #expect(size <= 1024 * 1024, "\(name): \(size) bytes")
            }
            // The kept files hold the newest lines, each once, in order.
            let kept = try Self.responses(in: directory).map(\.flow.time)
            #expect(kept == kept.sorted(by: { ($0.seconds, $0.nanos) < ($1.seconds, $1.nanos) }))
            #expect(Set(try Self.responses(in: directory).map(\.flow.uuid)).count == kept.count)
        }
    }

    /// Follows flow logs the way a log shipper does (Fluent Bit's tail input on `events*.log`):
    /// every file matching the pattern is followed by inode from its start, so lines appended
    /// to the current file and those a rotation moved into a backup are each read once.
    final class Tailer: @unchecked Sendable {
        let directory: String
        private let stopped = Lock(false)
        private let done = DispatchSemaphore(value: 0)
        private(set) var lines: [String] = []

        init(directory: String) { self.directory = directory }

        func start() {
            Thread { [self] in
                defer { done.signal() }
                follow()
            }.start()
        }

        /// Stops once every file is read to its end; returns every line read.
        func stop() -> [String] {
            stopped.withLock { $0 = true }
            done.wait()
            return lines
        }

        private struct Followed {
            var descriptor: Int32
            var partial: [UInt8] = []
        }

        private func follow() {
            var followed: [ino_t: Followed] = [:]
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                // Checked before the pass: the last pass reads what the writer finished.
                let stopping = stopped.withLock { $0 }
                var read = false
                let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
                for name in names where name.hasPrefix("events") && name.hasSuffix(".log") {
                    let descriptor = open(directory + "/" + name, O_RDONLY)
                    guard descriptor >= 0 else { continue }
                    var status = stat()
                    fstat(descriptor, &status)
                    if followed[status.st_ino] == nil {
                        followed[status.st_ino] = Followed(descriptor: descriptor)
                    } else {
                        close(descriptor)
                    }
                    var file = followed[status.st_ino]!
                    while true {
                        let count = Glibc.read(file.descriptor, &chunk, chunk.count)
                        guard count > 0 else { break }
                        read = true
                        file.partial += chunk[..<count]
                        while let end = file.partial.firstIndex(of: UInt8(ascii: "\n")) {
                            lines.append(String(decoding: file.partial[..<end], as: UTF8.self))
                            file.partial.removeSubrange(...end)
                        }
                    }
                    followed[status.st_ino] = file
                }
                if stopping, !read { break }
                if !read { usleep(1000) }
            }
            for file in followed.values { close(file.descriptor) }
        }
    }

    @Test("a reader tailing the files across rotations sees every line once, never a partial one")
    func tailAcrossRotations() async throws {
        try await Self.withDirectory { directory in
            let path = directory + "/events.log"
            let exporter = try FlowExporter(
                name: "test", settings: ExportSettings(path: path, maxSizeMB: 1, maxBackups: 0), nodeName: "n")
            let tailer = Tailer(directory: directory)
            tailer.start()
            exporter.start()
            let flows = Self.flows(6000)
            for batch in stride(from: 0, to: flows.count, by: 250) {
                exporter.receive(Array(flows[batch..<min(batch + 250, flows.count)]))
                try await Task.sleep(for: .milliseconds(5))
            }
            await exporter.finish()
            let lines = tailer.stop()
            #expect(exporter.counts.lost == 0 && exporter.counts.rotations >= 3)
            let read = try lines.map { try FlowJSONLines.parse($0).flow.uuid }
            #expect(read.count == flows.count, "\(read.count) of \(flows.count) lines read")
            #expect(read.sorted() == flows.map { $0.uuid.uuidString.lowercased() }.sorted(), "each line once")
        }
    }

    @Test("gzip: rotated files are compressed and read back whole")
    func compressed() async throws {
        try await Self.withDirectory { directory in
            _ = try Self.export(
                Self.flows(3000),
                ExportSettings(path: directory + "/events.log", maxSizeMB: 1, maxBackups: 0, compress: true))
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(names.contains { $0.hasSuffix(".log.gz") })
            #expect(!names.contains { $0.hasPrefix("events-") && $0.hasSuffix(".log") }, "no uncompressed backup left")
            #expect(try Self.responses(in: directory).count == 3000, "maxBackups 0 keeps every backup")
        }
    }

    @Test(
        "allowlist, denylist and field mask: only the chosen flows, only the chosen fields, node name and time on each line"
    )
    func filtersAndMask() async throws {
        try await Self.withDirectory { directory in
            let exporter = try Self.export(
                Self.flows(100),
                ExportSettings(
                    path: directory + "/events.log", allowlist: [#"{"verdict":["DROPPED","FORWARDED"]}"#],
                    denylist: [#"{"verdict":["FORWARDED"]}"#], fieldMask: ["time", "verdict", "source.pod_name"]))
            let lines = try Self.responses(in: directory)
            #expect(lines.count == 50 && exporter.counts.lines == 50)
            #expect(lines.allSatisfy { $0.flow.verdict == .dropped && $0.nodeName == "osp-node-2" })
            #expect(
                lines.allSatisfy {
                    $0.flow.source.podName == "untrusted-9a8b-pqrst" && $0.flow.source.namespace.isEmpty
                })
            #expect(lines.allSatisfy { $0.hasTime && !$0.flow.hasDestination })
        }
    }

    @Test("what a kill mid-rotation leaves is put right at the next start: no partial gzip, no backup twice")
    func killedMidRotation() async throws {
        try await Self.withDirectory { directory in
            let lines = (0..<4).map { index in
                FlowJSONLines.line(Flow_Flow.with { $0.uuid = "00000000-0000-4000-8000-00000000000\(index)" }) + "\n"
            }
            // Killed before compressing, while writing the gzip, and after it but before the unlink.
            let plain = directory + "/events-2026-11-30T09-45-00.000.log"
            let gzipping = directory + "/events-2026-11-30T09-46-00.000.log"
            let unlinking = directory + "/events-2026-11-30T09-47-00.000.log"
            try lines[0].write(toFile: plain, atomically: false, encoding: .utf8)
            try lines[1].write(toFile: gzipping, atomically: false, encoding: .utf8)
            try Data([0x1f, 0x8b, 0x08]).write(to: URL(fileURLWithPath: gzipping + ".gz.partial"))
            try lines[2].write(toFile: unlinking, atomically: false, encoding: .utf8)
            try Gzip.compress(Data(lines[2].utf8)).write(to: URL(fileURLWithPath: unlinking + ".gz"))
            try lines[3].write(toFile: directory + "/events.log", atomically: false, encoding: .utf8)

            _ = try RotatingFile(path: directory + "/events.log", maxBytes: 1 << 20, maxBackups: 0, compress: true)
            let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            #expect(
                names == [
                    "events-2026-11-30T09-45-00.000.log.gz", "events-2026-11-30T09-46-00.000.log.gz",
                    "events-2026-11-30T09-47-00.000.log.gz", "events.log",
                ])
            #expect(
                try Self.responses(in: directory).map(\.flow.uuid).sorted()
                    == (0..<4).map { "00000000-0000-4000-8000-00000000000\($0)" })
        }
    }

    @Test("a last line a kill cut short is cut off at the next start, so the next line stands alone")
    func partialLastLine() async throws {
        try await Self.withDirectory { directory in
            let line = { (index: Int) in
                FlowJSONLines.line(Flow_Flow.with { $0.uuid = "00000000-0000-4000-8000-00000000000\(index)" }) + "\n"
            }
            let path = directory + "/events.log"
            let cut = String(line(1).prefix(40))
            try (line(0) + cut).write(toFile: path, atomically: false, encoding: .utf8)
            let file = try RotatingFile(path: path, maxBytes: 1 << 20, maxBackups: 0, compress: false)
            #expect(file.size == line(0).utf8.count)
            #expect(file.write(ArraySlice(line(2).utf8)))
            #expect(try String(contentsOfFile: path, encoding: .utf8) == line(0) + line(2))
            // A file with no whole line at all starts empty.
            try cut.write(toFile: path, atomically: false, encoding: .utf8)
            #expect(try RotatingFile(path: path, maxBytes: 1 << 20, maxBackups: 0, compress: false).size == 0)
        }
    }

    @Test("a subscriber that falls behind writes a lost-events record where the gap is")
    func lostEvents() async throws {
        try await Self.withDirectory { directory in
            // What the ring's subscription hands an exporter that fell behind: flows, the record
            // of the 2000 it missed, then flows again.
            let flows = Self.flows(3000)
            let missed = LostEvents(
                source: .hubbleRingBuffer, count: 2000, first: flows[500].time, last: flows[2499].time)
            let events =
                flows[..<500].map(ObserverEvent.flow) + [ObserverEvent.lost(missed)]
                + flows[2500...].map(ObserverEvent.flow)
            let exporter = try Self.export(events, ExportSettings(path: directory + "/events.log"))
            let lines = try Self.responses(in: directory)
            #expect(lines.count == 1001)
            let gap = try #require(lines.firstIndex { !$0.isFlow })
            #expect(gap == 500, "the record sits where the flows are missing")
            guard case .lostEvents(let record)? = lines[gap].responseTypes else { return }
            #expect(record.numEventsLost == 2000 && record.source == .hubbleRingBuffer)
            #expect(exporter.counts.lost == 2000 && exporter.counts.lines == 1001)
        }
    }

    @Test(
        "through its writer thread: every flow is written or counted in a lost-events line, never both, never neither"
    )
    func writerThread() async throws {
        try await Self.withDirectory { directory in
            let exporter = try FlowExporter(
                name: "test", settings: ExportSettings(path: directory + "/events.log", maxSizeMB: 2, maxBackups: 0),
                nodeName: "n")
            let total = 20000
            exporter.start()
            // One batch larger than the queue: what it cannot hold is counted.
            exporter.receive(Self.flows(total))
            await exporter.finish()
            let lines = try Self.responses(in: directory)
            let written = lines.filter(\.isFlow).count
            let lost = lines.reduce(UInt64(0)) { sum, line in
                if case .lostEvents(let record)? = line.responseTypes { sum + record.numEventsLost } else { sum }
            }
            #expect(written + Int(lost) == total, "\(written) written, \(lost) lost")
            #expect(lost > 0 && written >= FlowExporter.queueLimit, "the queue filled, and what it held was written")
            #expect(exporter.counts.lost == lost && exporter.counts.flows == UInt64(written))
        }
    }

    @Test(
        "stdout: whole lines in writes of at most PIPE_BUF bytes, so that they stay whole among other writers; nothing rotates"
    )
    func standardOutput() throws {
        // A socket pair of datagrams keeps each write apart, so the test sees every write.
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &pair) == 0)
        var size = Int32(4 << 20)
        setsockopt(pair[1], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        let writes = Lock<[[UInt8]]>([])
        let receiving = pair[0]
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(receiving, $0.baseAddress, $0.count, 0) }
                if count <= 0 { break }
                writes.withLock { $0.append(Array(buffer[..<count])) }
            }
        }
        reader.start()
        // 3,000 flows are over 2 MB: a file of 1 MB would rotate twice.
        let flows = Self.flows(3000)
        let lost = LostEvents(source: .hubbleRingBuffer, count: 7, first: Fixtures.start, last: Fixtures.start)
        let exporter = try FlowExporter(
            name: "test", settings: ExportSettings(path: "stdout", maxSizeMB: 1), nodeName: "osp-node-1",
            standardOutput: pair[1])
        for event in flows.prefix(1500).map(ObserverEvent.flow) + [.lost(lost)]
            + flows.dropFirst(1500).map(ObserverEvent.flow)
        {
            exporter.handle(event)
        }
        exporter.close()
        close(pair[1])
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        close(pair[0])

        let all = writes.withLock { $0 }
        #expect(all.count > 100, "many writes of a few lines each: \(all.count)")
        for write in all {
            #expect(write.last == UInt8(ascii: "\n"), "each write ends a line")
            let lines = write.split(separator: UInt8(ascii: "\n"))
            #expect(write.count <= Int(PIPE_BUF) || lines.count == 1, "\(write.count) bytes in \(lines.count) lines")
        }
        let responses = try all.flatMap { $0.split(separator: UInt8(ascii: "\n")) }.map {
            try FlowJSONLines.parse(String(decoding: $0, as: UTF8.self))
        }
        #expect(responses.filter(\.isFlow).count == 3000)
        let records = responses.compactMap { response -> UInt64? in
            if case .lostEvents(let record)? = response.responseTypes { record.numEventsLost } else { nil }
        }
        #expect(records == [7], "the lost-events record, in its place")
        #expect(exporter.counts.rotations == 0 && exporter.counts.errors == 0 && exporter.counts.lines == 3001)
    }

    @Test("stdout that is non-blocking and full for a while: the writer waits, and every line arrives whole, once")
    func standardOutputNonBlocking() throws {
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        _ = fcntl(pair[1], F_SETFL, fcntl(pair[1], F_GETFL) | O_NONBLOCK)
        var size = Int32(4096)
        setsockopt(pair[1], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        let received = Lock<[UInt8]>([])
        let receiving = pair[0]
        let reader = Thread {
            // Late, and then slow: the stream is full for most of the export.
            Thread.sleep(forTimeInterval: 0.3)
            var buffer = [UInt8](repeating: 0, count: 2048)
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(receiving, $0.baseAddress, $0.count, 0) }
                if count <= 0 { break }
                received.withLock { $0 += buffer[..<count] }
            }
        }
        reader.start()
        let exporter = try FlowExporter(
            name: "test", settings: ExportSettings(path: "stdout"), nodeName: "n", standardOutput: pair[1])
        exporter.export(Self.flows(500))
        close(pair[1])
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        close(pair[0])
        let text = received.withLock { String(decoding: $0, as: UTF8.self) }
        #expect(text.hasSuffix("\n"))
        let responses = try text.split(separator: "\n").map { try FlowJSONLines.parse(String($0)) }
        #expect(responses.count == 500 && responses.allSatisfy(\.isFlow))
        #expect(Set(responses.map(\.flow.uuid)).count == 500, "each flow once")
        #expect(exporter.counts.lost == 0 && exporter.counts.errors == 0)
    }

    @Test("stdout that is gone: the lines are counted as errors and their flows as lost")
    func standardOutputGone() throws {
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        close(pair[0])
        let exporter = try FlowExporter(
            name: "test", settings: ExportSettings(path: "stdout"), nodeName: "n", standardOutput: pair[1])
        // Writing to a socket whose reader is gone raises SIGPIPE unless it is ignored, as the agent does.
        let previous = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previous) }
        exporter.export(Self.flows(10))
        close(pair[1])
        #expect(exporter.counts.lost == 10 && exporter.counts.errors == 10 && exporter.counts.lines == 0)
    }

    /// Flows as aggregation sees them: loadgen → frontend 3 times egress and twice ingress (other
    /// ports, times and ids each), frontend → loadgen once (a reply entering loadgen: egress),
    /// untrusted → ledger dropped twice.
    static var alike: [Flow] {
        var flows: [Flow] = []
        for index in 0..<5 {
            var flow = Fixtures.syn
            flow.time = Fixtures.start.addingTimeInterval(Double(index))
            flow.uuid = UUID()
            flow.l4 = .tcp(sourcePort: UInt16(40000 + index), destinationPort: 80, flags: .syn)
            flow.trafficDirection = index < 3 ? .egress : .ingress
            flows.append(flow)
        }
        flows.insert(Fixtures.synAck, at: 2)
        flows += [Fixtures.drop, Fixtures.drop]
        return flows
    }

    /// The lines of `text`, each parsed and as written.
    static func lines(_ text: String) throws -> [(response: Observer_GetFlowsResponse, text: String)] {
        try text.split(separator: "\n").map { (try FlowJSONLines.parse(String($0)), String($0)) }
    }

    @Test(
        "aggregation: one line per group of flows alike in the chosen fields, with its counts by direction, the first flow's time and nothing else"
    )
    func aggregation() async throws {
        try await Self.withDirectory { directory in
            let path = directory + "/events.log"
            let lost = LostEvents(source: .hubbleRingBuffer, count: 7, first: Fixtures.start, last: Fixtures.start)
            var events = Self.alike.map(ObserverEvent.flow)
            events.insert(.lost(lost), at: 4)
            let exporter = try Self.export(
                events,
                ExportSettings(
                    path: path, fieldMask: ["IP"],
                    fieldAggregate: ["source.pod_name", "destination.pod_name", "verdict"],
                    aggregationInterval: .seconds(30)))
            let lines = try Self.lines(String(contentsOfFile: path, encoding: .utf8))
            try #require(lines.count == 4, "the lost-events record as it came, then a line per group")
            #expect(!lines[0].response.isFlow, "records of missed flows are not aggregated")
            let groups = lines.dropFirst().map(\.response)
            #expect(
                groups.map { "\($0.flow.source.podName) > \($0.flow.destination.podName)" } == [
                    "loadgen-7d9f-abcde > frontend-5c8b-fghij", "frontend-5c8b-fghij > loadgen-7d9f-abcde",
                    "untrusted-9a8b-pqrst > ledger-4e5f-uvwxy",
                ], "in the order each group's first flow came")
            #expect(groups.map(\.flow.aggregate.egressFlowCount) == [3, 1, 2])
            #expect(groups.map(\.flow.aggregate.ingressFlowCount) == [2, 0, 0])
            #expect(groups.map(\.flow.verdict) == [.forwarded, .forwarded, .dropped])
            #expect(
                groups[0].flow.time == FlowMessage.timestamp(Fixtures.start) && groups[0].time == groups[0].flow.time)
            // Only the chosen fields (the field mask does not apply to aggregates, as in Hubble).
            #expect(groups.allSatisfy { !$0.flow.hasIp && !$0.flow.hasL4 && $0.flow.source.namespace.isEmpty })
            #expect(groups.allSatisfy { $0.nodeName.isEmpty && $0.flow.nodeName.isEmpty }, "not grouped by node")
            #expect(
                lines[1].text.hasPrefix(
                    #"{"flow":{"time":"2027-01-15T08:00:00.250Z","verdict":"FORWARDED","source":{"pod_name":"loadgen-7d9f-abcde"},"destination":{"pod_name":"frontend-5c8b-fghij"},"aggregate":{"ingress_flow_count":2,"egress_flow_count":3}},"time":"#
                ), "Hubble's names; counts of 0 left out")
            #expect(exporter.counts.flows == 8 && exporter.counts.lines == 4 && exporter.counts.lost == 7)

            // Grouped by node: the line carries it.
            let byNode = try Self.export(
                Self.alike,
                ExportSettings(
                    path: directory + "/nodes.log", fieldAggregate: ["node_name"], aggregationInterval: .seconds(1)))
            let nodes = try Self.lines(String(contentsOfFile: directory + "/nodes.log", encoding: .utf8)).map(
                \.response)
            #expect(nodes.map(\.nodeName) == ["osp-node-1", "osp-node-2"])
            #expect(nodes.map { $0.flow.aggregate.egressFlowCount + $0.flow.aggregate.ingressFlowCount } == [6, 2])
            #expect(byNode.counts.lines == 2)
        }
    }

    @Test("aggregation through the writer thread: each interval's groups are written then, the rest when it finishes")
    func aggregationInterval() async throws {
        try await Self.withDirectory { directory in
            let path = directory + "/events.log"
            let exporter = try FlowExporter(
                name: "test",
                settings: ExportSettings(
                    path: path, fieldAggregate: ["source.pod_name", "verdict"], aggregationInterval: .milliseconds(200)),
                nodeName: "n")
            exporter.start()
            exporter.receive(Array(Self.alike.prefix(6)))
            var written: [(response: Observer_GetFlowsResponse, text: String)] = []
            for _ in 0..<100 where written.isEmpty {
                try await Task.sleep(for: .milliseconds(50))
                written = try Self.lines((try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
            }
            #expect(written.count == 2, "the interval's two groups, written at its end")
            exporter.receive(Array(Self.alike.suffix(2)))
            await exporter.finish()
            let lines = try Self.lines(String(contentsOfFile: path, encoding: .utf8)).map(\.response)
            #expect(
                lines.map(\.flow.source.podName) == [
                    "loadgen-7d9f-abcde", "frontend-5c8b-fghij", "untrusted-9a8b-pqrst",
                ])
            #expect(
                lines.map { Int($0.flow.aggregate.egressFlowCount + $0.flow.aggregate.ingressFlowCount) } == [5, 1, 2])
            #expect(exporter.counts.flows == 8 && exporter.counts.lost == 0)
        }
    }

    @Test("aggregation holds a bounded number of groups: one more writes those held first, and no flow goes uncounted")
    func aggregationGroupLimit() async throws {
        try await Self.withDirectory { directory in
            let path = directory + "/events.log"
            let exporter = try FlowExporter(
                name: "test",
                settings: ExportSettings(
                    path: path, fieldAggregate: ["l4.TCP.source_port"], aggregationInterval: .seconds(60)),
                nodeName: "n", standardOutput: STDOUT_FILENO, groupLimit: 4)
            let flows = Self.flows(40).filter { $0.verdict == .forwarded }.enumerated().map { index, flow in
                var flow = flow
                flow.l4 = .tcp(sourcePort: UInt16(40000 + index % 10), destinationPort: 80, flags: .syn)
                return flow
            }
            exporter.export(flows)
            #expect(exporter.counts.lines == 16, "four groups written each time a fifth came: \(exporter.counts.lines)")
            exporter.close()
            let lines = try Self.lines(String(contentsOfFile: path, encoding: .utf8)).map(\.response)
            #expect(lines.count == 20)
            #expect(lines.reduce(0) { $0 + Int($1.flow.aggregate.egressFlowCount) } == 20)
            #expect(lines.prefix(5).map(\.flow.l4.tcp.sourcePort) == [40000, 40001, 40002, 40003, 40004])
        }
    }

    @Test("a path that cannot be written is one sentence naming it; bad settings too")
    func badSettings() throws {
        #expect {
            _ = try FlowExporter(
                name: "x", settings: ExportSettings(path: "/nonexistent/dir/events.log"), nodeName: "n")
        } throws: { "\($0)".contains("/nonexistent/dir/events.log") && "\($0)".hasSuffix("writable.") }
        #expect {
            _ = try FlowExporter(
                name: "x", settings: ExportSettings(path: "/tmp/osp-never.log", allowlist: ["{nope"]), nodeName: "n")
        } throws: { "\($0)".contains("--export-allowlist") }
        #expect {
            _ = try FlowExporter(
                name: "x", settings: ExportSettings(path: "/tmp/osp-never.log", fieldMask: ["sources"]), nodeName: "n")
        } throws: { "\($0)".contains("sources") }
        #expect {
            _ = try FlowExporter(
                name: "x", settings: ExportSettings(path: "/tmp/osp-never.log", fieldAggregate: ["verdict"]),
                nodeName: "n")
        } throws: { "\($0)".hasPrefix("--export-aggregation-interval is needed with --export-fieldaggregate") }
        #expect {
            _ = try FlowExporter(
                name: "x",
                settings: ExportSettings(
                    path: "/tmp/osp-never.log", fieldAggregate: ["verdicts"], aggregationInterval: .seconds(1)),
                nodeName: "n")
        } throws: { "\($0)".hasPrefix("--export-fieldaggregate: ") && "\($0)".contains("verdicts") }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/osp-never.log"), "refused before creating the file")
    }

    @Test("a full disk: lines that do not fit are counted, never half-written, and writing resumes with space")
    func diskFull() async throws {
        try await Self.withDirectory { directory in
            // A 256 KiB tmpfs (root, as CI is).
            let mount = Process()
            mount.executableURL = URL(fileURLWithPath: "/bin/mount")
            mount.arguments = ["-t", "tmpfs", "-o", "size=256k", "osp-export-test", directory]
            try mount.run()
            mount.waitUntilExit()
            try #require(mount.terminationStatus == 0, "mounting a tmpfs needs root")
            defer {
                let umount = Process()
                umount.executableURL = URL(fileURLWithPath: "/bin/umount")
                umount.arguments = [directory]
                try? umount.run()
                umount.waitUntilExit()
            }
            let filler = directory + "/filler"
            #expect(FileManager.default.createFile(atPath: filler, contents: Data(count: 200 * 1024)))
            let exporter = try FlowExporter(
                name: "test", settings: ExportSettings(path: directory + "/events.log"), nodeName: "n")
            exporter.export(Self.flows(200))
            let full = exporter.counts
            #expect(full.errors > 0 && full.lines > 0 && full.lines + full.errors == 200)
            #expect(full.lost == full.errors)
            try FileManager.default.removeItem(atPath: filler)
            exporter.export(Self.flows(20))
            #expect(exporter.counts.lines == full.lines + 20, "writing resumes once there is room")
            exporter.close()
            let lines = try Self.responses(in: directory)
            #expect(lines.count == Int(full.lines) + 20)
        }
    }
}
