import Foundation
import HubbleAPI
import HubbleWire

/// A GetFlows request checked the way Hubble's servers check it — the agent before it reads its
/// ring, the relay before it asks any agent — with the filters compiled and the field mask parsed.
/// Every problem is one sentence (servers answer it as InvalidArgument).
public struct FlowRequest: Sendable {
    public let number: UInt64
    public let first: Bool
    public let follow: Bool
    public let since: Date?
    public let until: Date?
    public let filters: FlowFilterSet
    public let mask: FlowFieldMask?

    public init(_ request: Observer_GetFlowsRequest) throws(FilterError) {
        guard !(request.first && request.follow) else { throw FilterError("first cannot be specified with follow") }
        if request.hasSince, request.hasUntil, request.until.seconds < request.since.seconds {
            throw FilterError("until is before since")
        }
        number = request.number
        first = request.first
        follow = request.follow
        since = request.hasSince ? FlowMessage.date(request.since) : nil
        until = request.hasUntil ? FlowMessage.date(request.until) : nil
        filters = try FlowFilterSet(allow: request.whitelist, deny: request.blacklist)
        do {
            mask = try FlowFieldMask(paths: request.hasFieldMask ? request.fieldMask.paths : [])
        } catch {
            throw FilterError(error.description)
        }
    }
}
