import Flows
import Foundation
import Locking
import Logging
import Observer

/// The agent's flow logs: the static exporter from its `--export-*` flags and the dynamic ones
/// from the flowlogs config, each a sink of the observer with its own writer thread. Adding,
/// changing or removing one never touches the others.
public final class FlowLogs: LostEventLedger {
    /// The static exporter's name (in metrics and log lines); a dynamic flow log cannot take it.
    public static let staticName = "static"

    let observer: Observer
    let nodeName: String
    let logger: Logger
    private let running = Lock<[String: Running]>([:])
    /// What exporters that were stopped had missed, so that the lost-events counter never goes down.
    private let retired = Lock<[String: UInt64]>([:])

    struct Running {
        let exporter: FlowExporter
        let sink: UInt64
    }

    public init(observer: Observer, nodeName: String, logger: Logger) {
        self.observer = observer
        self.nodeName = nodeName
        self.logger = logger
    }

    /// Every running exporter, by name.
    public var exporters: [FlowExporter] {
        running.withLock { $0.values.map(\.exporter) }.sorted { $0.name < $1.name }
    }

    /// Starts `exporter`: from now on it receives every batch the observer appends.
    public func start(_ exporter: FlowExporter) {
        exporter.start()
        let sink = observer.attach(exporter)
        running.withLock { $0[exporter.name] = Running(exporter: exporter, sink: sink) }
    }

    /// Stops the exporter named `name`: it writes what it has queued and closes its file.
    public func stop(_ name: String) async {
        guard let stopped = running.withLock({ $0.removeValue(forKey: name) }) else { return }
        observer.detach(stopped.sink)
        await stopped.exporter.finish()
        let lost = stopped.exporter.counts.lost
        retired.withLock { $0[name, default: 0] += lost }
    }

    public func stopAll() async {
        for name in running.withLock({ Array($0.keys) }) { await stop(name) }
    }

    /// Makes the dynamic exporters what `configs` says: new ones start, changed ones restart
    /// with their new settings, missing ones stop; an exporter past its end time is not
    /// started. One that cannot start (its file cannot be opened) is logged in one sentence;
    /// the others still apply.
    @discardableResult
    public func apply(_ configs: [String: ExportSettings], now: Date = Date()) async -> Changes {
        var changes = Changes()
        let current = running.withLock { $0.filter { $0.key != Self.staticName }.mapValues(\.exporter.settings) }
        for (name, settings) in current where configs[name] != settings {
            await stop(name)
            if configs[name] == nil { changes.removed.append(name) }
        }
        for (name, settings) in configs.sorted(by: { $0.key < $1.key }) where current[name] != settings {
            if let end = settings.end, end <= now {
                logger.info("Flow log \"\(name)\" is not started: its end time \(end) has passed.")
                continue
            }
            do {
                start(try FlowExporter(name: name, settings: settings, nodeName: nodeName))
                if current[name] == nil { changes.added.append(name) } else { changes.changed.append(name) }
            } catch {
                logger.error("\(error.description)")
                changes.failed.append(name)
            }
        }
        return changes
    }

    /// Stops the dynamic exporters whose end time has passed.
    public func expire(now: Date = Date()) async {
        let ended = running.withLock { running in
            running.values.filter { ($0.exporter.settings.end.map { $0 <= now }) ?? false }.map(\.exporter.name)
        }
        for name in ended {
            await stop(name)
            logger.info("Flow log \"\(name)\" reached its end time and was stopped.")
        }
    }

    /// What an `apply` did, by exporter name.
    public struct Changes: Sendable, Equatable {
        public var added: [String] = []
        public var changed: [String] = []
        public var removed: [String] = []
        public var failed: [String] = []

        public var isEmpty: Bool { added.isEmpty && changed.isEmpty && removed.isEmpty && failed.isEmpty }
    }

    /// Flows each exporter missed (`hubble_lost_events_total{source="exporter_NAME"}`).
    public var lostBySource: [String: UInt64] {
        var lost = retired.withLock { $0 }
        for exporter in exporters { lost[exporter.name, default: 0] += exporter.counts.lost }
        return Dictionary(uniqueKeysWithValues: lost.map { ("exporter_\($0.key)", $0.value) })
    }
}

/// Re-reads the flowlogs config when its content changes and applies it. Reading the file by
/// its path each time follows a mounted ConfigMap's symlink swap (`..data` → a new directory)
/// as well as an edit in place; a file that is missing means no dynamic flow logs.
public final class FlowLogsConfigWatcher: Sendable {
    public let path: String
    let flowLogs: FlowLogs
    let logger: Logger
    /// The content last read (nil: not read yet; empty: missing or empty).
    private let last = Lock<Data?>(nil)

    public init(path: String, flowLogs: FlowLogs, logger: Logger) {
        self.path = path
        self.flowLogs = flowLogs
        self.logger = logger
    }

    /// Reads the config; when it changed, applies it, or — when it is not valid — logs why in
    /// one sentence and keeps the running flow logs. Returns what changed (nil: nothing read
    /// was new, or the config was refused).
    @discardableResult
    public func reload() async -> FlowLogs.Changes? {
        let content = FileManager.default.contents(atPath: path) ?? Data()
        guard
            last.withLock({ last in
                defer { last = content }; return last != content
            })
        else { return nil }
        let configs: [String: ExportSettings]
        do { configs = try FlowLogsConfig.parse(String(decoding: content, as: UTF8.self), path: path) } catch {
            logger.error("\(error.description)")
            return nil
        }
        let changes = await flowLogs.apply(configs)
        if !changes.isEmpty {
            logger.info(
                "flow logs reconfigured from \(path)",
                metadata: [
                    "added": "\(changes.added)", "changed": "\(changes.changed)", "removed": "\(changes.removed)",
                    "failed": "\(changes.failed)",
                ])
        }
        return changes
    }

    /// Checks the file every `interval` until cancelled; stops flow logs past their end time.
    public func run(every interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            await reload()
            await flowLogs.expire()
            try? await Task.sleep(for: interval)
        }
    }
}
