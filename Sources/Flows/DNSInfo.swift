import Foundation

/// DNS details of an L7 flow (flow.DNS).
public struct DNSInfo: Sendable, Equatable {
    /// The query name with its trailing dot, as Hubble shows it.
    public var query: String
    public var isResponse: Bool
    public var rcode: Int
    public var qtypes: [String]
    public var ips: [String] = []
    public var ttl: UInt32 = 0
    public var cnames: [String] = []
    public var rrtypes: [String] = []
    public var id: UInt16 = 0
    /// A query that got no answer within the decoder's timeout (reported as its own flow).
    public var unanswered = false

    public init(query: String, isResponse: Bool, rcode: Int, qtypes: [String]) {
        self.query = query
        self.isResponse = isResponse
        self.rcode = rcode
        self.qtypes = qtypes
    }

    /// Hubble's names for response codes (`No Error`, `Non-Existent Domain`, …).
    public var rcodeName: String { Self.rcodeNames[rcode] ?? "RCode \(rcode)" }

    /// Response codes by Hubble's names.
    public static let rcodeNames: [Int: String] = [
        0: "No Error", 1: "Format Error", 2: "Server Failure", 3: "Non-Existent Domain", 4: "Not Implemented",
        5: "Query Refused",
    ]
}
