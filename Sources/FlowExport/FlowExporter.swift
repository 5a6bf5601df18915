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
    private let file: Mutex<RotatingFile>
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
        file = Mutex(
            try RotatingFile(
                path: settings.path, maxBytes: settings.maxSizeMB * 1024 * 1024, maxBackups: settings.maxBackups,
                compress: settings.compress))
    }

    public var counts: Counters {
        var counts = counters.withLock { $0 }
        counts.rotations = file.withLock { $0.rotations }
        return counts
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
            if done { return }
        }
    }

    /// One event of the subscription: a flow, or a record of the flows it missed (written as a
    /// lost-events line, so a reader of the file knows where it has a gap).
    public func handle(_ event: ObserverEvent) {
        switch event {
        case .flow(let flow): export(flow)
        case .lost(let lost):
            counters.withLock { $0.lost += lost.count }
            write(
                Observer_GetFlowsResponse.with {
                    $0.lostEvents = FlowMessage.lostEvent(lost)
                    $0.nodeName = nodeName
                    $0.time = FlowMessage.timestamp(lost.last)
                })
        }
    }

    /// Writes `flows` now, on the calling thread (the bench; the agent uses `run`).
    public func export(_ flows: [Flow]) { for flow in flows { export(flow) } }

    /// One flow, if it passes the filters, masked.
    func export(_ flow: Flow) {
        counters.withLock { $0.flows += 1 }
        let message = FlowMessage.make(flow)
        guard filters.matches(message) else { return }
        let masked = mask?.apply(message) ?? message
        write(
            Observer_GetFlowsResponse.with {
                $0.flow = masked
                $0.nodeName = flow.nodeName
                $0.time = message.time
            })
    }

    private func write(_ response: Observer_GetFlowsResponse) {
        let line = Array((FlowJSONLines.unorderedLine(response) + "\n").utf8)
        let written = file.withLock { $0.write(line) }
        counters.withLock { counters in
            if written {
                counters.lines += 1
                counters.bytes += UInt64(line.count)
            } else {
                counters.errors += 1
                if case .flow? = response.responseTypes { counters.lost += 1 }
            }
        }
    }

    /// Closes the file (the agent stops).
    public func close() { file.withLock { $0.close() } }
}
