import Dispatch
import FlowFilters
import Flows
import Foundation
import HubbleAPI
import HubbleWire
import Locking
import Observer
import SwiftProtobuf

/// Writes the observer's flows to a file, or to the agent's standard output (`StandardOutput`),
/// as Hubble's exporter does: one `GetFlowsResponse` per line in jsonpb
/// (`{"flow":{…},"node_name":…,"time":…}`), or per group of flows alike when it aggregates
/// (`FlowAggregator`), lost-event records where flows were missed, rotation of a file by size.
/// A sink of the observer: each batch is queued as it is appended and written by the exporter's
/// own thread, so a slow or stalled disk makes it miss flows (counted, and written as a
/// lost-events line), never slows the pipeline or Swift's cooperative pool.
public final class FlowExporter: FlowSink {
    public let name: String
    public let settings: ExportSettings
    let filters: FlowFilterSet
    let nodeName: String
    private let output: Lock<Output>
    private let counters = Lock(Counters())
    /// Flows waiting for the writer thread, and what did not fit while it was behind.
    private let pending = Lock(Pending())
    private let wake = DispatchSemaphore(value: 0)
    private let writerDone = DispatchSemaphore(value: 0)
    private let started = Lock(false)

    struct Pending {
        var flows: [Flow] = []
        var dropped: UInt64 = 0
        var first: Date?
        var last: Date?
        var finished = false
    }

    /// Most flows waiting for the writer; more are counted as lost (and recorded in the file).
    public static let queueLimit = 8192

    /// What an exporter did so far (agent metrics per exporter).
    public struct Counters: Sendable, Equatable {
        /// Flows the exporter took (written, filtered out, or missed).
        public var flows: UInt64 = 0
        public var lines: UInt64 = 0
        public var bytes: UInt64 = 0
        public var rotations: UInt64 = 0
        public var errors: UInt64 = 0
        /// Flows the exporter missed: its queue was full, or a line could not be written.
        public var lost: UInt64 = 0
    }

    public convenience init(name: String, settings: ExportSettings, nodeName: String) throws(ExportError) {
        try self.init(name: name, settings: settings, nodeName: nodeName, standardOutput: STDOUT_FILENO)
    }

    /// `standardOutput`: the stream a `stdout` path writes to (tests pass a socket);
    /// `groupLimit`: the most groups of flows an aggregating exporter holds (tests pass a few).
    init(
        name: String, settings: ExportSettings, nodeName: String, standardOutput: Int32,
        groupLimit: Int = FlowAggregator.defaultGroupLimit
    ) throws(ExportError) {
        self.name = name
        self.settings = settings
        self.nodeName = nodeName
        var compiled = try Self.compile(settings, name: name)
        compiled.aggregator?.groupLimit = groupLimit
        filters = compiled.filters
        let file: any LineOutput
        if settings.path == StandardOutput.path {
            file = StandardOutput(descriptor: standardOutput)
        } else {
            do {
                file = try RotatingFile(
                    path: settings.path, maxBytes: settings.maxSizeMB * 1024 * 1024, maxBackups: settings.maxBackups,
                    compress: settings.compress)
            } catch {
                throw ExportError(
                    settings.origin.prefix(name)
                        + "cannot write flow logs to \(settings.path): \(error.reason); check \(settings.origin.names.path) and that its directory exists and is writable."
                )
            }
        }
        output = Lock(
            Output(file: file, writer: FlowJSONWriter(mask: compiled.mask), aggregator: compiled.aggregator))
    }

    /// What the settings make of each flow.
    struct Compiled {
        var filters: FlowFilterSet
        var mask: FlowFieldMask?
        var aggregator: FlowAggregator?
    }

    /// The settings' filters, mask and aggregation, checked: one sentence naming the setting
    /// when one is not valid. Nothing is opened.
    static func compile(_ settings: ExportSettings, name: String) throws(ExportError) -> Compiled {
        let names = settings.origin.names
        func refuse(_ setting: String, _ reason: String) -> ExportError {
            ExportError(settings.origin.prefix(name) + "\(setting): \(reason)")
        }
        guard settings.maxSizeMB >= 1 else {
            throw refuse(names.maxSize, "must be at least 1, not \(settings.maxSizeMB).")
        }
        guard settings.maxBackups >= 0 else {
            throw refuse(names.maxBackups, "cannot be negative (\(settings.maxBackups)).")
        }
        func parse(_ texts: [String], _ setting: String) throws(ExportError) -> [Flow_FlowFilter] {
            var filters: [Flow_FlowFilter] = []
            for text in texts {
                do { filters.append(try Flow_FlowFilter(jsonString: text)) } catch {
                    throw refuse(setting, "'\(text)' is not a FlowFilter (e.g. {\"source_pod\":[\"shop/\"]}).")
                }
            }
            return filters
        }
        let allow = try parse(settings.allowlist, names.allow)
        let deny = try parse(settings.denylist, names.deny)
        let filters: FlowFilterSet
        do { filters = try FlowFilterSet(allow: allow, deny: deny) } catch {
            throw refuse("\(names.allow)/\(names.deny)", error.description)
        }
        let mask: FlowFieldMask?
        do { mask = try FlowFieldMask(paths: settings.fieldMask) } catch {
            throw refuse(names.fieldMask, error.description)
        }
        // As Hubble: aggregation takes both settings; an interval alone has nothing to group by.
        guard !settings.fieldAggregate.isEmpty else { return Compiled(filters: filters, mask: mask) }
        guard settings.aggregationInterval > .zero else {
            throw ExportError(
                settings.origin.prefix(name)
                    + "\(names.aggregationInterval) is needed with \(names.fieldAggregate): how often each group of flows is written, e.g. 30s."
            )
        }
        do {
            let aggregator = try FlowAggregator(
                fields: settings.fieldAggregate, interval: settings.aggregationInterval)
            return Compiled(filters: filters, mask: mask, aggregator: aggregator)
        } catch {
            throw refuse(names.fieldAggregate, error.description)
        }
    }

    public var counts: Counters {
        var counts = counters.withLock { $0 }
        counts.rotations = output.withLock { $0.file.rotations }
        return counts
    }

    /// The file (or stream) and the lines not yet in it: lines are gathered into one write of
    /// up to the output's `batchBytes` (never across a rotation), then written whole.
    struct Output: ~Copyable {
        let file: any LineOutput
        let writer: FlowJSONWriter
        /// The groups of flows not yet written, when the exporter aggregates.
        var aggregator: FlowAggregator?
        var batch: [UInt8] = []
        /// Where each gathered line ends, and how many flows it stands for (0: a lost-events record).
        var lines: [(end: Int, flows: UInt64)] = []

        init(file: any LineOutput, writer: FlowJSONWriter, aggregator: FlowAggregator?) {
            self.file = file
            self.writer = writer
            self.aggregator = aggregator
            batch.reserveCapacity(file.batchBytes + 4096)
        }

        /// A flow that passed the filters: its line, or its count in its group.
        mutating func add(_ flow: Flow, into counters: borrowing Lock<Counters>) {
            guard aggregator != nil else {
                add(flows: 1, into: counters) { writer, batch in writer.appendLine(flow, to: &batch) }
                return
            }
            if !aggregator!.add(flow) {
                addAggregates(into: counters)
                _ = aggregator!.add(flow)
            }
        }

        /// Adds a line for each group of flows held, and starts the groups over.
        mutating func addAggregates(into counters: borrowing Lock<Counters>) {
            guard let line = aggregator?.line, let groups = aggregator?.take() else { return }
            for group in groups {
                add(flows: group.counts.total, into: counters) { _, batch in
                    line.appendAggregateLine(group.flow, counts: group.counts, to: &batch)
                }
            }
        }

        /// Adds a line built by `append`; writes the batch first when the line would take it
        /// past the batch size or the file past its rotation size.
        mutating func add(
            flows: UInt64, into counters: borrowing Lock<Counters>, _ append: (FlowJSONWriter, inout [UInt8]) -> Void
        ) {
            let start = batch.count
            append(writer, &batch)
            let length = batch.count - start
            if start > 0, start + length > file.batchBytes || file.size + start + length > file.maxBytes {
                let line = Array(batch[start...])
                batch.removeSubrange(start...)
                flush(into: counters)
                batch += line
            }
            lines.append((batch.count, flows))
        }

        /// Writes the gathered lines in one append. When the file cannot take them all (a full
        /// disk), it writes them one by one, so every line that fits gets in; each line that
        /// does not is counted as an error, and its flow as lost.
        mutating func flush(into counters: borrowing Lock<Counters>) {
            guard !batch.isEmpty else { return }
            var written = (lines: 0, bytes: 0)
            var failed = (lines: 0, flows: UInt64(0))
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
                        failed.flows += line.flows
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
                counters.lost += failed.flows
            }
        }
    }

    /// Starts the writer thread (once).
    public func start() {
        guard
            started.withLock({ started in
                defer { started = true }; return !started
            })
        else { return }
        let writer = Thread { [self] in
            defer { writerDone.signal() }
            writeQueued()
        }
        writer.name = "osprey-export-\(name)"
        writer.start()
    }

    /// Queues a batch for the writer thread without waiting; what does not fit in the queue
    /// is counted as missed. Past the exporter's end time, flows are no longer taken.
    public func receive(_ flows: [Flow]) {
        if let end = settings.end, Date() >= end { return }
        pending.withLock { pending in
            let room = max(0, Self.queueLimit - pending.flows.count)
            pending.flows += flows.prefix(room)
            guard flows.count > room else { return }
            pending.dropped += UInt64(flows.count - room)
            pending.first = pending.first ?? flows[room].time
            pending.last = flows[flows.count - 1].time
        }
        wake.signal()
    }

    /// Writes what is queued, stops the writer thread and closes the file (the exporter is
    /// removed or the agent stops). Waits for the thread on a thread of its own, not the pool.
    public func finish() async {
        let wasStarted = started.withLock { $0 }
        if wasStarted {
            pending.withLock { $0.finished = true }
            wake.signal()
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async { [writerDone] in
                    writerDone.wait()
                    continuation.resume()
                }
            }
        }
        close()
    }

    /// The writer thread: takes what is queued, writes it, until `finish`. When aggregating, it
    /// also writes the groups of flows once per interval.
    private func writeQueued() {
        let interval = output.withLock { $0.aggregator?.interval }.map {
            DispatchTimeInterval.nanoseconds(Int(Durations.nanoseconds($0)))
        }
        var due = interval.map { DispatchTime.now() + $0 }
        while true {
            if let due { _ = wake.wait(timeout: due) } else { wake.wait() }
            let (flows, missed, done) = pending.withLock { pending -> ([Flow], LostEvents?, Bool) in
                defer {
                    pending.flows.removeAll(keepingCapacity: true)
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
                return (pending.flows, missed, pending.finished)
            }
            for flow in flows { export(flow) }
            if let missed { handle(.lost(missed)) }
            if let interval, let next = due, DispatchTime.now() >= next {
                output.withLock { $0.addAggregates(into: counters) }
                // The next interval from this one's end, or from now if the writer fell behind.
                let following = next + interval
                due = following > DispatchTime.now() ? following : DispatchTime.now() + interval
            }
            flush()
            if done { return }  // `close` writes the groups held
        }
    }

    /// One event: a flow, or a record of the flows missed (written as a lost-events line, so a
    /// reader of the file knows where it has a gap). Gathered into the next write: `flush` ends
    /// a batch.
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
                output.add(flows: 0, into: counters) { _, batch in
                    batch.append(contentsOf: (FlowJSONLines.unorderedLine(response) + "\n").utf8)
                }
            }
        case .progress: break  // a file has no use for them (exporters do not ask)
        }
    }

    /// Writes `flows` now, on the calling thread (the bench; the agent queues them with `receive`).
    public func export(_ flows: [Flow]) {
        for flow in flows { export(flow) }
        flush()
    }

    /// One flow, if it passes the filters: masked while it is written, or counted in its group.
    func export(_ flow: Flow) {
        counters.withLock { $0.flows += 1 }
        if !filters.isEmpty, filters.message(for: flow) == nil { return }
        output.withLock { $0.add(flow, into: counters) }
    }

    /// Writes what is gathered.
    public func flush() { output.withLock { $0.flush(into: counters) } }

    /// Writes the groups of flows held and what is gathered, and closes the file (the agent
    /// stops, or the flow log is removed); standard output stays open.
    public func close() {
        output.withLock { output in
            output.addAggregates(into: counters)
            output.flush(into: counters)
            output.file.close()
        }
    }
}
