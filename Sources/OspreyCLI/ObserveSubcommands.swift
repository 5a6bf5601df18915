import ArgumentParser
import FlowPrinter
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HubbleAPI
import HubbleWire
import SwiftProtobuf

/// What `observe agent-events` and `observe debug-events` share: the selectors and the output.
struct EventOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Get the last N events.") var last: UInt64?
    @Option(parsing: .unconditional, help: "Get the first N events still in the buffer.") var first: UInt64?
    @Flag(name: [.short, .long], help: "Follow new events as they come.") var follow = false
    @Option(name: [.short, .long], help: "Output: compact, json, jsonpb.") var output = "compact"
    @Option(help: "Time format (as for observe).") var timeFormat = "StampMilli"
    @Flag(help: "Print the node each event was seen on.") var printNodeName = false

    func validate() throws {
        guard ["compact", "json", "jsonpb"].contains(output) else {
            throw ValidationError("--output must be compact, json or jsonpb for events.")
        }
        guard TimeFormat(named: timeFormat) != nil else { throw ValidationError("--time-format is not a time format.") }
        if first != nil, follow { throw ValidationError("cannot set both --first and --follow.") }
    }

    /// (number, first) as hubble sends them: the last 20 unless told otherwise.
    var selection: (number: UInt64, first: Bool) {
        if let first { return (first, true) }
        if let last { return (last, false) }
        return (follow ? 0 : 20, false)
    }

    /// One event: jsonpb, or hubble's compact line with the event's type.
    func line(
        _ response: some SwiftProtobuf.Message, time: Google_Protobuf_Timestamp, node: String, type: String
    )
        -> String
    {
        guard output == "compact" else { return FlowJSONLines.json(response) }
        let format = TimeFormat(named: timeFormat) ?? .stampMilli
        let stamp = format.format(seconds: time.seconds, nanos: Int(time.nanos), timeZone: .current)
        return "\(stamp)\(printNodeName ? " [\(node)]" : ""): \(type)"
    }
}

extension EventOptions {
    /// Runs one events request against `server` and prints each event as it comes.
    func printEach<Event: SwiftProtobuf.Message>(
        from server: ServerOptions,
        _ call:
            @escaping @Sendable (
                Observer_Observer.Client<HTTP2ClientTransport.Posix>,
                @escaping @Sendable (StreamingClientResponse<Event>) async throws -> Void
            ) async throws -> Void,
        parts: @escaping @Sendable (Event) -> (time: Google_Protobuf_Timestamp, node: String, type: String)
    ) async throws {
        let events = self
        try await reportingErrors {
            try await server.withObserver { observer, _ in
                try await call(observer) { response in
                    for try await event in response.messages {
                        let (time, node, type) = parts(event)
                        ObserveFlows.emit(events.line(event, time: time, node: node, type: type))
                    }
                }
            }
        }
    }
}

/// `osprey observe agent-events`: the agent events of servers that produce them (Cilium's);
/// Osprey's agents have none and say so.
struct ObserveAgentEvents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent-events", abstract: "Show agent events (servers that produce them, such as Cilium's).")

    @OptionGroup var server: ServerOptions
    @OptionGroup var events: EventOptions

    func run() async throws {
        let request = Observer_GetAgentEventsRequest.with {
            ($0.number, $0.first) = events.selection
            $0.follow = events.follow
        }
        try await events.printEach(from: server) { observer, each in
            try await observer.getAgentEvents(request, onResponse: each)
        } parts: {
            ($0.time, $0.nodeName, ProtoNames.agentEventTypes.name($0.agentEvent.type))
        }
    }
}

/// `osprey observe debug-events`: the datapath debug events of servers that produce them.
struct ObserveDebugEvents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug-events", abstract: "Show debug events (servers that produce them, such as Cilium's).")

    @OptionGroup var server: ServerOptions
    @OptionGroup var events: EventOptions

    func run() async throws {
        let request = Observer_GetDebugEventsRequest.with {
            ($0.number, $0.first) = events.selection
            $0.follow = events.follow
        }
        try await events.printEach(from: server) { observer, each in
            try await observer.getDebugEvents(request, onResponse: each)
        } parts: {
            ($0.time, $0.nodeName, ProtoNames.debugEventTypes.name($0.debugEvent.type))
        }
    }
}
