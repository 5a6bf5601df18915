import Flows
import HubbleWire

/// Hubble's flow-log aggregation (`fieldAggregate` with `aggregationInterval`): flows alike in
/// the chosen fields form one group per interval, written as one line that holds those fields,
/// the time of the group's first flow, and how many flows it stands for by traffic direction
/// (`flow.aggregate`). Flows are alike when their chosen fields are written the same, the way
/// Hubble compares them (by their encoding). Groups are written in the order their first flows
/// came, each once per interval.
///
/// At most `groupLimit` groups are held. A flow that would start one more, or whose count is
/// full, makes the exporter write the groups it holds first, so an interval ends early; memory
/// stays bounded and no flow goes uncounted.
struct FlowAggregator {
    /// Writes the chosen fields alone: what groups flows.
    let keyWriter: FlowJSONWriter
    /// Writes a group's line: the chosen fields and the time.
    let line: FlowJSONWriter
    let interval: Duration
    var groupLimit: Int
    private var index: [[UInt8]: Int] = [:]
    private var groups: [Group] = []
    /// Where each flow's key is written: its storage is reused while flows join known groups.
    private var key = [UInt8]()

    struct Group {
        /// The group's first flow: its time and chosen fields are the line's.
        var flow: Flow
        var counts = FlowAggregateCounts()
    }

    static let defaultGroupLimit = 65_536

    /// `fields`: the paths flows are grouped by (not empty, checked by `FlowExporter.compile`).
    init(fields: [String], interval: Duration, groupLimit: Int = defaultGroupLimit) throws(FlowFieldMask.MaskError) {
        keyWriter = FlowJSONWriter(mask: try FlowFieldMask(paths: fields))
        line = FlowJSONWriter(mask: try FlowFieldMask(paths: fields + ["time"]))
        self.interval = interval
        self.groupLimit = groupLimit
    }

    var isEmpty: Bool { groups.isEmpty }

    /// Counts the flow in its group. False, counting nothing, when the groups held must be
    /// written first: the flow would start a group past the limit, or its count is full.
    mutating func add(_ flow: Flow) -> Bool {
        key.removeAll(keepingCapacity: true)
        keyWriter.appendFlowObject(flow, to: &key)
        if let at = index[key] { return groups[at].counts.count(flow.trafficDirection) }
        guard groups.count < groupLimit else { return false }
        var group = Group(flow: flow)
        _ = group.counts.count(flow.trafficDirection)
        index[key] = groups.count
        groups.append(group)
        return true
    }

    /// The groups held, in the order they started; the aggregator starts over empty.
    mutating func take() -> [Group] {
        defer {
            groups.removeAll(keepingCapacity: true)
            index.removeAll(keepingCapacity: true)
        }
        return groups
    }
}
