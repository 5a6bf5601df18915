import Foundation
import HubbleAPI
import HubbleWire

/// Filters on what happened and where: uuid, verdict, drop reason, direction, interface,
/// event type, reply, node, trace ids, encryption.
enum EventFilters {
    static func add(_ filter: Flow_FlowFilter, to checks: inout CheckList) throws(FilterError) {
        let uuids = Set(filter.uuid.map { $0.lowercased() })
        checks.add(uuids) { uuids.contains($0.uuid.lowercased()) }

        let directions = Set(filter.trafficDirection)
        checks.add(directions) { directions.contains($0.trafficDirection) }
        let verdicts = Set(filter.verdict)
        checks.add(verdicts, quick: { verdicts.contains(Flow_Verdict(rawValue: $0.verdict.rawValue) ?? .unknown) }) {
            verdicts.contains($0.verdict)
        }
        let dropReasons = Set(filter.dropReasonDesc)
        checks.add(dropReasons) { $0.verdict == .dropped && dropReasons.contains($0.dropReasonDesc) }
        let interfaces = filter.interface
        checks.add(interfaces) { flow in
            flow.hasInterface
                && interfaces.contains {
                    ($0.index == 0 || $0.index == flow.interface.index)
                        && ($0.name.isEmpty || $0.name == flow.interface.name)
                }
        }
        let eventTypes = filter.eventType
        checks.add(eventTypes) { flow in
            eventTypes.contains {
                $0.type == flow.eventType.type && (!$0.matchSubType || $0.subType == flow.eventType.subType)
            }
        }

        let replies = Set(filter.reply)
        checks.add(replies) { $0.hasIsReply && replies.contains($0.isReply.value) }

        let nodes = try filter.nodeName.map { text throws(FilterError) in try NodePattern(text) }
        checks.add(nodes) { flow in nodes.contains { $0.matches(flow) } }
        let nodeLabels = try filter.nodeLabels.map { text throws(FilterError) in try LabelSelector(text) }
        checks.add(nodeLabels) { flow in nodeLabels.contains { $0.matches(flow.nodeLabels) } }

        let traceIDs = Set(filter.traceID)
        checks.add(traceIDs) { traceIDs.contains($0.traceContext.parent.traceID) }
        let ipTraceIDs = Set(filter.ipTraceID)
        checks.add(ipTraceIDs) { ipTraceIDs.contains($0.ipTraceID.traceID) }
        let encrypted = Set(filter.encrypted)
        checks.add(encrypted) { encrypted.contains($0.ip.encrypted) }
    }
}
