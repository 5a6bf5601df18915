import Foundation
import HubbleAPI
import SwiftProtobuf

/// Enum value names exactly as the .proto declares them (`FORWARDED`, `POLICY_DENIED`,
/// `HUBBLE_RING_BUFFER`), read once from swift-protobuf's JSON encoding of the generated types —
/// so the proto files stay the only list of names.
public enum ProtoNames {
    public static let verdicts = table(Flow_Verdict.allCases, "verdict") { value in
        Flow_FlowFilter.with { $0.verdict = [value] }
    }
    public static let dropReasons = table(Flow_DropReason.allCases, "drop_reason_desc") { value in
        Flow_FlowFilter.with { $0.dropReasonDesc = [value] }
    }
    /// The proto's name of a flow.DropReason value (`POLICY_DENIED`).
    public static func dropReason(_ value: Int) -> String {
        Flow_DropReason(rawValue: value).map { dropReasons.name($0) } ?? "DROP_REASON_UNKNOWN"
    }
    public static let trafficDirections = table(Flow_TrafficDirection.allCases, "traffic_direction") { value in
        Flow_FlowFilter.with { $0.trafficDirection = [value] }
    }
    public static let lostEventSources = table(
        Flow_LostEventSource.allCases, "source", zero: "UNKNOWN_LOST_EVENT_SOURCE"
    ) { value in
        Flow_LostEvent.with { $0.source = value }
    }
    public static let nodeStates = table(Relay_NodeState.allCases, "state_change", zero: "UNKNOWN_NODE_STATE") {
        value in
        Relay_NodeStatusEvent.with { $0.stateChange = value }
    }

    public static let l7FlowTypes = table(Flow_L7FlowType.allCases, "type", zero: "UNKNOWN_L7_TYPE") { value in
        Flow_Layer7.with { $0.type = value }
    }
    public static let debugCapturePoints = table(
        Flow_DebugCapturePoint.allCases, "debug_capture_point", zero: "DBG_CAPTURE_POINT_UNKNOWN"
    ) { value in
        Flow_Flow.with { $0.debugCapturePoint = value }
    }
    public static let socketTranslationPoints = table(
        Flow_SocketTranslationPoint.allCases, "sock_xlate_point", zero: "SOCK_XLATE_POINT_UNKNOWN"
    ) { value in
        Flow_Flow.with { $0.sockXlatePoint = value }
    }

    public static let peerChanges = table(Peer_ChangeNotificationType.allCases, "type", zero: "UNKNOWN") { value in
        Peer_ChangeNotification.with { $0.type = value }
    }

    public static let agentEventTypes = table(Flow_AgentEventType.allCases, "type", zero: "AGENT_EVENT_UNKNOWN") {
        value in
        Flow_AgentEvent.with { $0.type = value }
    }
    public static let debugEventTypes = table(Flow_DebugEventType.allCases, "type", zero: "DBG_EVENT_UNKNOWN") {
        value in
        Flow_DebugEvent.with { $0.type = value }
    }

    /// value → name, and name → value.
    public struct Table<Value: Hashable & Sendable>: Sendable {
        public let names: [Value: String]
        public let values: [String: Value]

        public func name(_ value: Value) -> String { names[value] ?? "\(value)" }
        public func value(_ name: String) -> Value? { values[name.uppercased()] }
        public var allNames: [String] { names.values.sorted() }
    }

    static func table<Value: Hashable & Sendable, M: Message>(
        _ values: [Value], _ key: String, zero: String? = nil, _ wrap: (Value) -> M
    ) -> Table<Value> {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        var names: [Value: String] = [:]
        // A singular field at its default (0) is left out of JSON: its name is given.
        if let zero, let first = values.first { names[first] = zero }
        for value in values {
            guard let json = try? wrap(value).jsonString(options: options),
                let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                let field = object[key]
            else { continue }
            if let name = (field as? [String])?.first ?? (field as? String) { names[value] = name }
        }
        return Table(names: names, values: Dictionary(names.map { ($1, $0) }, uniquingKeysWith: { a, _ in a }))
    }
}

extension Flow_Verdict {
    public var name: String { ProtoNames.verdicts.name(self) }
}
extension Flow_DropReason {
    public var name: String { ProtoNames.dropReasons.name(self) }
}
extension Flow_TrafficDirection {
    public var name: String { ProtoNames.trafficDirections.name(self) }
}
extension Flow_LostEventSource {
    public var name: String { ProtoNames.lostEventSources.name(self) }
}
extension Relay_NodeState {
    public var name: String { ProtoNames.nodeStates.name(self) }
}

extension Flow_L7FlowType {
    public var name: String { ProtoNames.l7FlowTypes.name(self) }
}

extension Flow_DebugCapturePoint {
    public var name: String { ProtoNames.debugCapturePoints.name(self) }
}

extension Flow_SocketTranslationPoint {
    public var name: String { ProtoNames.socketTranslationPoints.name(self) }
}

extension Peer_ChangeNotificationType {
    public var name: String { ProtoNames.peerChanges.name(self) }
}
