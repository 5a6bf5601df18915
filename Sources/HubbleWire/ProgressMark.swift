import Foundation
import HubbleAPI

/// Progress marks between Osprey's agents and its relay: how a relay learns that an agent has
/// sent every flow up to some time, so it can release merged flows without waiting out its sort
/// window.
///
/// The relay asks for them with the request header `osprey-progress-marks: 1` on a follow
/// GetFlows; only then does an Osprey agent put marks in the stream: a `GetFlowsResponse` with
/// `node_name` and `time` and no `response_types` ("every flow before `time` has been sent").
/// Clients that do not ask — hubble, Cilium's relay, anything else — see nothing new, and a
/// relay that asks a Cilium agent simply receives none (and falls back to its sort window).
public enum ProgressMark {
    /// The request header that asks for marks (gRPC metadata, lower case).
    public static let header = "osprey-progress-marks"

    /// A mark from `node` at `time`.
    public static func response(node: String, time: Date) -> Observer_GetFlowsResponse {
        .with {
            $0.nodeName = node
            $0.time = FlowMessage.timestamp(time)
        }
    }

    /// Whether `response` is a mark rather than a flow, a node status or lost events.
    public static func isMark(_ response: Observer_GetFlowsResponse) -> Bool {
        response.responseTypes == nil && response.hasTime
    }
}
