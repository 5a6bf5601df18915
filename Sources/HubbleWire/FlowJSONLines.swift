import HubbleAPI
import SwiftProtobuf

/// `hubble observe -o jsonpb` lines: one GetFlowsResponse per line in protobuf's JSON mapping
/// with the proto field names (`node_name`, `IP`, `Type`), enum names, 64-bit integers as
/// strings, laid out as Hubble's Go tools write it (`GoJSONLayout`) — what Hubble's exporter
/// files and `-o json` contain.
public enum FlowJSONLines {
    static let options: JSONEncodingOptions = {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return options
    }()

    /// Lets `extensions` holding Osprey's own messages print as and parse back from JSON.
    static let registered: Bool = Google_Protobuf_Any.register(messageType: Osprey_V1_KernelDrop.self)

    public static func line(_ response: Observer_GetFlowsResponse) -> String {
        _ = registered
        guard let json = try? response.jsonString(options: options) else { return "{}" }
        return GoJSONLayout.relayout(json, as: "observer.GetFlowsResponse")
    }

    /// The same JSON without Go's field order: fields by number, as swift-protobuf writes them
    /// (for GetFlowsResponse the same top level: flow, then node_name and time). Valid jsonpb that
    /// hubble and `osprey observe --input-file` read; about six times cheaper than `line`, which
    /// re-parses the JSON to reorder it — what flow logs write at volume.
    public static func unorderedLine(_ response: Observer_GetFlowsResponse) -> String {
        _ = registered
        return (try? response.jsonString(options: options)) ?? "{}"
    }

    public static func line(_ flow: Flow_Flow) -> String {
        line(
            Observer_GetFlowsResponse.with {
                $0.flow = flow
                $0.nodeName = flow.nodeName
                $0.time = flow.time
            })
    }

    /// Any message in the same JSON mapping (`-o json` of status and list commands).
    public static func json(_ message: some Message) -> String {
        (try? message.jsonString(options: options)) ?? "{}"
    }

    /// Parses one line back (`osprey observe --input-file`).
    public static func parse(_ line: String) throws -> Observer_GetFlowsResponse {
        _ = registered
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        return try Observer_GetFlowsResponse(jsonString: line, options: options)
    }
}
