import Dispatch
import FlowFilters
import Flows
import Foundation
import HubbleAPI
import HubbleWire
import Observer
import SwiftProtobuf
import Synchronization

/// What one exporter writes where (Hubble's `hubble-export-*` settings).
public struct ExportSettings: Sendable {
    public var path: String
    public var maxSizeMB: Int
    public var maxBackups: Int
    public var compress: Bool
    /// FlowFilters (JSON, as `osprey observe --allowlist`): a flow is written when it passes them.
    public var allowlist: [String]
    public var denylist: [String]
    /// Flow fields to keep (`time`, `source.pod_name`, `IP`…); empty: every field.
    public var fieldMask: [String]

    public init(
        path: String, maxSizeMB: Int = 10, maxBackups: Int = 5, compress: Bool = false, allowlist: [String] = [],
        denylist: [String] = [], fieldMask: [String] = []
    ) {
        self.path = path
        self.maxSizeMB = maxSizeMB
        self.maxBackups = maxBackups
        self.compress = compress
        self.allowlist = allowlist
        self.denylist = denylist
        self.fieldMask = fieldMask
    }
}

/// Writes the observer's flows to a file as Hubble's exporter does: one `GetFlowsResponse` per
/// line in jsonpb (`{"flow":{…},"node_name":…,"time":…}`), lost-event records where flows were
/// missed, rotation by size. A consumer of the observer like the gRPC server: it reads its own
/// bounded subscription, so a slow disk makes it miss flows (counted and written as a
/// lost-events line), never slows the pipeline.
public final class FlowExporter: Sendable {
    public let name: String
    let settings: ExportSettings
    let filters: FlowFilterSet
    let mask: FlowFieldMask?
    let nodeName: String
    private let output: Mutex<Output>
    private let counters = Mutex(Counters())
    /// Events waiting for the writer thread, and what did not fit while it was behind.
    private let pending = Mutex(Pending())
    private let wake = DispatchSemaphore(value: 0)

    struct Pending {
        var events: [ObserverEvent] = []
        var dropped: UInt64 = 0
        var first: Date?
        var last: Date?
        var finished = false
    }

    /// Most events waiting for the writer; more are counted as lost (and recorded in the file).
    static let queueLimit = 8192

    /// What an exporter did so far (agent metrics per exporter).
    public struct Counters: Sendable, Equatable {
        /// Flows the exporter read from the ring (written or filtered out).
        public var flows: UInt64 = 0
        public var lines: UInt64 = 0
        public var bytes: UInt64 = 0
        public var rotations: UInt64 = 0
        public var errors: UInt64 = 0
        /// Flows the exporter missed: its queue was full, or a line could not be written.
        public var lost: UInt64 = 0
    }

    public init(name: String, settings: ExportSettings, nodeName: String) throws(ExportError) {
        self.name = name
        self.settings = settings
        self.nodeName = nodeName
        guard settings.maxSizeMB >= 1 else {
            throw .badSetting("--export-file-max-size-mb must be at least 1, not \(settings.maxSizeMB).")
        }
        guard settings.maxBackups >= 0 else {
            throw .badSetting("--export-file-max-backups cannot be negative (\(settings.maxBackups)).")
        }
        func parse(_ texts: [String], _ flag: String) throws(ExportError) -> [Flow_FlowFilter] {
            var filters: [Flow_FlowFilter] = []
            for text in texts {
                do { filters.append(try Flow_FlowFilter(jsonString: text)) } catch {
                    throw .badFilter(
                        flag: flag, reason: "'\(text)' is not a FlowFilter in JSON (e.g. {\"source_pod\":[\"shop/\"]})."
                    )
                }
            }
            return filters
        }
        do {
            filters = try FlowFilterSet(
                allow: try parse(settings.allowlist, "--export-allowlist"),
                deny: try parse(settings.denylist, "--export-denylist"))
        } catch let error as ExportError {
            throw error
        } catch {
            throw .badFilter(flag: "--export-allowlist/--export-denylist", reason: "\(error)")
        }
        do { mask = try FlowFieldMask(paths: settings.fieldMask) } catch {
            throw .badFilter(flag: "--export-fieldmask", reason: error.description)
        }
        output = Mutex(
            Output(
                file: try RotatingFile(
                    path: settings.path, maxBytes: settings.maxSizeMB * 1024 * 1024, maxBackups: settings.maxBackups,
                    compress: settings.compress),
                writer: FlowJSONWriter(mask: mask)))
    }

    public var counts: Counters {
        var counts = counters.withLock { $0 }
        counts.rotations = output.withLock { $0.file.rotations }
        return counts
    }

    /// The file and the lines not yet in it: lines are gathered into one write of up to
    /// `batchBytes` (never across a rotation), then written whole.
    struct Output: ~Copyable {
        let file: RotatingFile
        let writer: FlowJSONWriter
        var batch: [UInt8] = []
        /// Where each gathered line ends, and whether it is a flow (rather than a lost-events record).
        var lines: [(end: Int, flow: Bool)] = []

        static let batchBytes = 64 * 1024

        init(file: RotatingFile, writer: FlowJSONWriter) {
            self.file = file
            self.writer = writer
            batch.reserveCapacity(Self.batchBytes + 4096)
        }

        /// Adds a line built by `append`; writes the batch first when the line would take it
        /// past the batch size or the file past its rotation size.
        mutating func add(
            flow: Bool, into counters: borrowing Mutex<Counters>, _ append: (FlowJSONWriter, inout [UInt8]) -> Void
        ) {
            let start = batch.count
            append(writer, &batch)
            let length = batch.count - start
            if start > 0, start + length > Self.batchBytes || file.size + start + length > file.maxBytes {
                let line = Array(batch[start...])
                batch.removeSubrange(start...)
                flush(into: counters)
                batch += line
            }
            lines.append((batch.count, flow))
        }

        /// Writes the gathered lines in one append. When the file cannot take them all (a full
        /// disk), it writes them one by one, so every line that fits gets in; each line that
        /// does not is counted as an error, and its flow as lost.
        mutating func flush(into counters: borrowing Mutex<Counters>) {
            guard !batch.isEmpty else { return }
            var written = (lines: 0, bytes: 0)
            var failed = (lines: 0, flows: 0)
            if file.write(batch[...]) {
                written = (lines.count, batch.count)
            } else {
                var start = 0
                for line in lines {
                    if file.write(batch[start..<line.end]) {
                        written.lines += 1
                        written.bytes += line.end - start
                    } else {
                        failed.lines += 1
                        if line.flow { failed.flows += 1 }
                    }
                    start = line.end
                }
            }
            batch.removeAll(keepingCapacity: true)
            lines.removeAll(keepingCapacity: true)
            counters.withLock { counters in
                counters.lines += UInt64(written.lines)
                counters.bytes += UInt64(written.bytes)
                counters.errors += UInt64(failed.lines)
                counters.lost += UInt64(failed.flows)
            }
        }
    }

    /// Writes what `events` brings until it ends or the task is cancelled. The file is written
    /// on a thread of its own: a slow or stalled disk blocks that thread, never Swift's
    /// cooperative pool (which serves the gRPC API) nor the pipeline.
    public func run(_ events: some AsyncSequence<ObserverEvent, Never>) async {
        let finished = DispatchSemaphore(value: 0)
        let writer = Thread { [self] in
            defer { finished.signal() }
            writeQueued()
        }
        writer.name = "osprey-export-\(name)"
        writer.start()
        for await event in events {
            enqueue(event)
            if Task.isCancelled { break }
        }
        pending.withLock { $0.finished = true }
        wake.signal()
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                finished.wait()
                continuation.resume()
            }
        }
    }

    /// Hands an event to the writer without waiting; when it is too far behind, the flow is
    /// counted as missed instead.
    func enqueue(_ event: ObserverEvent) {
        let queued = pending.withLock { pending -> Bool in
            guard pending.events.count < Self.queueLimit else {
                if case .flow(let flow) = event {
                    pending.dropped += 1
                    pending.first = pending.first ?? flow.time
                    pending.last = flow.time
                }
                return false
            }
            pending.events.append(event)
            return true
        }
        if queued { wake.signal() }
    }

    /// The writer thread: takes what is queued, writes it, until the run ends.
    private func writeQueued() {
        while true {
            wake.wait()
            let (events, missed, done) = pending.withLock { pending -> ([ObserverEvent], LostEvents?, Bool) in
                defer {
                    pending.events.removeAll(keepingCapacity: true)
                    pending.dropped = 0
                    pending.first = nil
                    pending.last = nil
                }
                let missed =
                    pending.dropped == 0
                    ? nil
                    : LostEvents(
                        source: .hubbleRingBuffer, count: pending.dropped, first: pending.first ?? Date(),
                        last: pending.last ?? Date())
                return (pending.events, missed, pending.finished)
            }
            for event in events { handle(event) }
            if let missed { handle(.lost(missed)) }
            flush()
            if done { return }
        }
    }

    /// One event of the subscription: a flow, or a record of the flows it missed (written as a
    /// lost-events line, so a reader of the file knows where it has a gap). Gathered into the
    /// next write: `flush` ends a batch.
    public func handle(_ event: ObserverEvent) {
        switch event {
        case .flow(let flow): export(flow)
        case .lost(let lost):
            counters.withLock { $0.lost += lost.count }
            let response = Observer_GetFlowsResponse.with {
                $0.lostEvents = FlowMessage.lostEvent(lost)
                $0.nodeName = nodeName
                $0.time = FlowMessage.timestamp(lost.last)
            }
            output.withLock { output in
                output.add(flow: false, into: counters) { _, batch in
                    batch.append(contentsOf: (FlowJSONLines.unorderedLine(response) + "\n").utf8)
                }
            }
        }
    }

    /// Writes `flows` now, on the calling thread (the bench; the agent uses `run`).
    public func export(_ flows: [Flow]) {
        for flow in flows { export(flow) }
        flush()
    }

    /// One flow, if it passes the filters, masked while it is written.
    func export(_ flow: Flow) {
        counters.withLock { $0.flows += 1 }
        if !filters.isEmpty, !filters.matches(FlowMessage.make(flow)) { return }
        output.withLock { output in
            output.add(flow: true, into: counters) { writer, batch in writer.appendLine(flow, to: &batch) }
        }
    }

    /// Writes what is gathered.
    public func flush() { output.withLock { $0.flush(into: counters) } }

    /// Closes the file (the agent stops).
    public func close() {
        output.withLock { output in
            output.flush(into: counters)
            output.file.close()
        }
    }
}
