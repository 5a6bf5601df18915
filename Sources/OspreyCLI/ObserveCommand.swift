import ArgumentParser
import FlowFilters
import FlowPrinter
import Foundation
import GRPCCore
import Gzip
import HubbleAPI
import HubbleTransport
import HubbleWire
import SwiftProtobuf

/// `osprey observe`: hubble observe's selectors, filters and output formats against any Hubble
/// API server (osprey-agent, osprey-relay, Cilium's Hubble). Flows are the default; `flows`,
/// `agent-events` and `debug-events` name what to observe, as in hubble.
struct ObserveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observe",
        abstract: "Show flows from a Hubble API server (osprey-agent or osprey-relay), like `hubble observe`.",
        discussion: """
            Selectors (--last, --first, --all, --follow, --since, --until), output and server options: \
            `osprey observe flows --help`.

            """ + ObserveFlows.discussion,
        subcommands: [ObserveFlows.self, ObserveAgentEvents.self, ObserveDebugEvents.self],
        defaultSubcommand: ObserveFlows.self)
}

/// `osprey observe [flows]`: the flows, filtered and printed as hubble does.
struct ObserveFlows: AsyncParsableCommand {
    static let discussion = "Selectors: with none, the last 20 flows.\n\n" + FilterFlag.helpText
    static let configuration = CommandConfiguration(
        commandName: "flows", abstract: "Show flows (the default of `osprey observe`).", discussion: discussion)

    @OptionGroup var server: ServerOptions

    // MARK: Selectors
    // `.unconditional`: the word after the flag is its value even when it starts with a dash, as
    // hubble's flags read it (`--last -5` is a bad value, not a missing one).
    @Option(parsing: .unconditional, help: "Get the last N flows (per node through a relay).") var last: UInt64?
    @Option(parsing: .unconditional, help: "Get the first N flows still in the buffer.") var first: UInt64?
    @Flag(help: "Get every flow in the buffer.") var all = false
    @Flag(name: [.short, .long], help: "Follow new flows as they come.") var follow = false
    @Option(
        parsing: .unconditional,
        help:
            "Flows since a time: 5m or 1h30m ago, or in one of hubble's layouts: 2026-11-27, 2026-11-27T10Z, 2026-11-27T10:00Z, RFC 3339 (2026-11-27T10:00:00.5+01:00), RFC1123Z (Fri, 27 Nov 2026 10:00:00 +0000)."
    )
    var since: String?
    @Option(
        parsing: .unconditional, help: "Flows until a time (same forms as --since; ignored with --follow, as hubble).")
    var until: String?

    // MARK: Filters (FilterFlag.all: read in the order typed, listed by --help)
    @Argument(parsing: .allUnrecognized, help: .hidden) var filterArguments: [String] = []
    @Option(help: "A FlowFilter as JSON to allow (repeatable).") var allowlist: [String] = []
    @Option(help: "A FlowFilter as JSON to deny (repeatable).") var denylist: [String] = []
    @Flag(help: "Print the filters that would be sent, then exit.") var printRawFilters = false
    @Flag(
        name: [.customShort("s"), .long],
        help: "Leave out warnings on stderr: a relay's unavailable or failing nodes, a flow log's cut last line.")
    var silentErrors = false
    @Flag(
        name: [.customShort("D"), .long],
        help: "Also show a relay's informational node events on stderr (nodes connected or gone), as hubble's --debug.")
    var debug = false

    // MARK: Output
    @Option(name: [.short, .long], help: "Output: compact, dict, json, jsonpb, table.") var output = "compact"
    @Flag(help: "Print the node each flow was seen on.") var printNodeName = false
    @Option(help: "Colors: auto, always, never.") var color = "auto"
    @Option(help: "Time format: \(TimeFormat.allCases.map(\.rawValue).joined(separator: ", ")).") var timeFormat =
        "StampMilli"
    @Option(help: "Flow fields to ask for (json/jsonpb only), e.g. time,source.pod_name,IP.") var fieldMask: [String] =
        []
    @Option(
        help:
            "For compact, dict and table: ask the server only for the fields they print (true, as hubble) or for all (false)."
    )
    var useDefaultFieldMasks = true
    @Flag(help: "Print addresses as numbers, not as pod, service or DNS names.") var numeric = false
    @Option(help: "Translate addresses to pod, service and DNS names (true/false).") var ipTranslation = true
    @Flag(help: "Name the policies behind policy verdicts (flows of servers that report them).")
    var printPolicyNames = false
    @Option(help: "Read jsonpb flows from a file (- for stdin) instead of a server; filters apply locally.")
    var inputFile: String?
    @Flag(
        help:
            "With --input-file FILE, a flow log: first read its rotated files (FILE-<time>.log, gzipped or not), oldest first, then FILE: its whole history in order."
    )
    var includeRotated = false

    func validate() throws {
        if first != nil, last != nil { throw ValidationError("--first and --last cannot be used together.") }
        if first != nil, all { throw ValidationError("--first and --all cannot be used together.") }
        if includeRotated, inputFile == nil || inputFile == "-" {
            throw ValidationError("--include-rotated needs --input-file naming a flow log (not stdin).")
        }
        if first != nil, follow { throw ValidationError("cannot set both --first and --follow.") }
        if last != nil, all { throw ValidationError("--last and --all cannot be used together.") }
        guard let format = FlowPrinter.Format(rawValue: output) else {
            throw ValidationError("--output \"\(output)\" must be one of compact, dict, json, jsonpb, table.")
        }
        if format != .json, format != .jsonpb, !fieldMask.isEmpty {
            throw ValidationError(
                "\(output) output format is not compatible with custom field mask; use -o jsonpb with --field-mask.")
        }
        if format == .table, follow { throw ValidationError("--output table cannot be used with --follow.") }
        guard ["auto", "always", "never"].contains(color) else {
            throw ValidationError("--color must be auto, always or never.")
        }
        guard TimeFormat(named: timeFormat) != nil else {
            throw ValidationError(
                "--time-format must be one of \(TimeFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        for (flag, text) in [("--since", since), ("--until", until)] {
            if let text, Self.time(text) == nil {
                throw ValidationError(
                    "\(flag) \"\(text)\" is not a time: use 30s, 5m, 1h30m (ago), 2006-01-02, 2006-01-02T15:04Z07:00 or RFC 3339."
                )
            }
        }
    }

    func run() async throws {
        try await reportingErrors {
            let filters = try filterLists(filterArguments)
            if printRawFilters {
                print(Self.rawFilterText(filters))
                return
            }
            if let inputFile {
                var printer = FlowPrinter(options: printerOptions)
                let files = includeRotated ? Self.logFiles(of: inputFile) : [inputFile]
                try readFiles(files, filters: filters, printer: &printer)
            } else {
                let (options, silent) = (printerOptions, silentErrors)
                let request = try request(filters)
                let lines = try await server.withObserver { observer, _ in
                    try await observer.getFlows(request) { response in
                        var printer = FlowPrinter(options: options)
                        for try await message in response.messages {
                            Self.show(message, with: &printer, silent: silent)
                        }
                        return printer.finish()
                    }
                }
                if let lines { Self.emit(lines) }
            }
        }
    }

    func filterLists(_ arguments: [String]) throws -> (allow: [Flow_FlowFilter], deny: [Flow_FlowFilter]) {
        var (allow, deny) = try FilterBuilder.build(arguments)
        for (text, isAllow) in allowlist.map({ ($0, true) }) + denylist.map({ ($0, false) }) {
            do {
                var options = JSONDecodingOptions()
                options.ignoreUnknownFields = false
                let filter = try Flow_FlowFilter(jsonString: text, options: options)
                if isAllow { allow.append(filter) } else { deny.append(filter) }
            } catch {
                throw CLIError(
                    "\(isAllow ? "--allowlist" : "--denylist") '\(text)' is not a FlowFilter in JSON "
                        + "(e.g. {\"source_pod\":[\"shop/\"]}).")
            }
        }
        // Checked here so that a bad CIDR or regex is reported before connecting.
        do { _ = try FlowFilterSet(allow: allow, deny: deny) } catch { throw CLIError(error.description) }
        return (allow, deny)
    }

    func request(_ filters: (allow: [Flow_FlowFilter], deny: [Flow_FlowFilter])) throws -> Observer_GetFlowsRequest {
        var request = Observer_GetFlowsRequest()
        request.whitelist = filters.allow
        request.blacklist = filters.deny
        request.follow = follow
        if let first {
            request.first = true
            request.number = first
        } else if all {
            request.number = .max
        } else if let last {
            request.number = last
        } else if since == nil, until == nil, !follow {
            request.number = 20
        }
        if let since, let time = Self.time(since) { request.since = time }
        // As hubble: a followed stream has no end, so --until is not sent with --follow.
        if let until, !follow, let time = Self.time(until) { request.until = time }
        let format = FlowPrinter.Format(rawValue: output) ?? .compact
        if !fieldMask.isEmpty {
            request.fieldMask = .with { $0.paths = fieldMask.flatMap { $0.split(separator: ",").map(String.init) } }
        } else if format != .json, format != .jsonpb, useDefaultFieldMasks {
            request.fieldMask = .with { $0.paths = Self.defaultFieldMask }
        }
        return request
    }

    /// What compact, dict and table need: hubble's default field mask, plus drop_reason_desc,
    /// DNS names and Osprey's extension (the kernel's drop reason).
    static let defaultFieldMask = [
        "time", "verdict", "drop_reason_desc", "ethernet", "IP", "l4", "source.identity", "source.namespace",
        "source.pod_name", "destination.identity", "destination.namespace", "destination.pod_name", "Type",
        "node_name", "l7", "event_type", "source_service", "destination_service", "is_reply", "Summary",
        "ip_trace_id", "source_names", "destination_names", "extensions",
    ]

    var printerOptions: FlowPrinter.Options {
        var options = FlowPrinter.Options()
        options.format = FlowPrinter.Format(rawValue: output) ?? .compact
        options.timeFormat = TimeFormat(named: timeFormat) ?? .stampMilli
        options.printNodeName = printNodeName
        options.ipTranslation = ipTranslation && !numeric
        options.debug = debug
        options.color = color == "always" || (color == "auto" && isatty(STDOUT_FILENO) == 1)
        return options
    }

    /// The files of the flow log `path` with its rotated ones, oldest first. A log read while
    /// its agent writes it rotates under the reader: its current file is briefly missing
    /// (renamed, not yet opened again), and a rotated file is for a moment there both plain and
    /// gzipped (the gzip whole, the plain one about to go). Each flow is read once.
    static func logFiles(of path: String) -> [String] {
        let backups = FlowLogFiles.backups(of: path)
        let listed = Set(backups)
        let rotated = backups.filter { !listed.contains($0 + ".gz") }
        let current = rotated.isEmpty || FileManager.default.fileExists(atPath: path) ? [path] : []
        return rotated + current
    }

    /// Prints the flows of `paths`, read in that order as one stream, as hubble selects them
    /// from a file with the request it would send: those within `--since` and `--until` (both
    /// included, by each line's time) that pass the filters, then the first or last `number`
    /// of them (`--first`/`--last`, the last 20 when no selector is given; all with `--all`).
    func readFiles(
        _ paths: [String], filters: (allow: [Flow_FlowFilter], deny: [Flow_FlowFilter]), printer: inout FlowPrinter
    ) throws {
        let set = try FlowFilterSet(allow: filters.allow, deny: filters.deny)
        let request = try request(filters)
        let (earliest, latest) = (request.hasSince ? request.since : nil, request.hasUntil ? request.until : nil)
        var selected: [Observer_GetFlowsResponse] = []
        for path in paths {
            // A rotated file gzipped since it was listed is read as its gzip.
            let handle =
                path == "-"
                ? FileHandle.standardInput
                : FileHandle(forReadingAtPath: path)
                    ?? (includeRotated && path != inputFile ? FileHandle(forReadingAtPath: path + ".gz") : nil)
            guard let handle else { throw CLIError("Cannot read --input-file \(path); check the path.") }
            var data = handle.readDataToEndOfFile()
            // Rotated flow logs may be gzipped (`--export-file-compress`): read them as they are.
            if Gzip.isCompressed(data) {
                do { data = try Gzip.decompress(data) } catch {
                    throw CLIError("--input-file \(path) is gzip but cannot be read: \(error.description).")
                }
            }
            let text = String(decoding: data, as: UTF8.self)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for (number, line) in lines.enumerated() where !line.isEmpty {
                let response: Observer_GetFlowsResponse
                do { response = try FlowJSONLines.parse(String(line)) } catch {
                    // A file its agent is still writing, or a copy taken meanwhile, can end in
                    // the part of a line written so far: not an error, and not a flow yet.
                    if number == lines.count - 1 {
                        if !silentErrors {
                            Self.warn(
                                "osprey: the last line of \(path) is cut short (written while it was read); skipped.")
                        }
                        break
                    }
                    throw CLIError("Line \(number + 1) of \(path) is not a jsonpb flow (hubble observe -o jsonpb).")
                }
                if earliest != nil || latest != nil {
                    // A line without a time is before any --since (the epoch), as in hubble.
                    let time = (response.time.seconds, response.time.nanos)
                    if let earliest, time < (earliest.seconds, earliest.nanos) { continue }
                    if let latest, time > (latest.seconds, latest.nanos) { continue }
                }
                if case .flow(let flow)? = response.responseTypes, !set.matches(flow) { continue }
                selected.append(response)
            }
        }
        if request.number != 0, request.number != .max {
            let number = Int(clamping: request.number)
            selected = Array(request.first ? selected.prefix(number) : selected.suffix(number))
        }
        for response in selected { Self.show(response, with: &printer, silent: silentErrors) }
        if let rest = printer.finish() { Self.emit(rest) }
    }

    /// hubble's `--print-raw-filters`: YAML of the filters as Go's JSON, an empty list left out
    /// (`{}` when both are).
    static func rawFilterText(_ filters: (allow: [Flow_FlowFilter], deny: [Flow_FlowFilter])) -> String {
        func list(_ name: String, _ filters: [Flow_FlowFilter]) -> [String] {
            guard !filters.isEmpty else { return [] }
            return [name + ":"]
                + filters.map { "    - '\(GoJSON.compact($0).replacingOccurrences(of: "'", with: "''"))'" }
        }
        let lines = list("allowlist", filters.allow) + list("denylist", filters.deny)
        return lines.isEmpty ? "{}" : lines.joined(separator: "\n")
    }

    /// Writes one line to stdout. When the reader has gone (`osprey observe | head`), stops
    /// quietly with status 0, as hubble does.
    static func emit(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                Foundation.exit(0)
            }
            offset += written
        }
    }

    /// One response as hubble's printer shows it: a flow or lost events on stdout, a relay's
    /// word on its nodes on stderr (unless `--silent-errors`).
    static func show(_ response: Observer_GetFlowsResponse, with printer: inout FlowPrinter, silent: Bool) {
        if case .nodeStatus? = response.responseTypes {
            if !silent, let text = printer.renderStatus(response) { warn(text) }
        } else if let line = printer.render(response) {
            emit(line)
        }
    }

    /// A warning on stderr (what `--silent-errors` leaves out).
    static func warn(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

    /// `30s`/`5m`/`1h30m` ago (Go's durations), or a time in a layout hubble takes
    /// (`TimeFormat.parse`, to the nanosecond).
    static func time(_ text: String) -> Google_Protobuf_Timestamp? {
        if let duration = Durations.parse(text) {
            let (seconds, attoseconds) = duration.components
            return FlowMessage.timestamp(
                Date().addingTimeInterval(-(Double(seconds) + Double(attoseconds) / 1e18)))
        }
        return TimeFormat.parse(text).map { Google_Protobuf_Timestamp(seconds: $0.seconds, nanos: $0.nanos) }
    }
}
