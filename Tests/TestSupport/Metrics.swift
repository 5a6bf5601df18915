import Foundation

/// A scraped Prometheus text page, as samples to query in tests.
public struct ScrapedMetrics: Sendable {
    public struct Sample: Sendable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public var text: String
    public var samples: [Sample]

    /// Parses the text format (`name{a="b",…} value` lines; comments skipped).
    public init(text: String) {
        self.text = text
        samples = text.split(separator: "\n").compactMap { line -> Sample? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "),
                let value = Double(line[line.index(after: space)...])
            else { return nil }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else {
                return Sample(name: String(series), labels: [:], value: value)
            }
            var labels: [String: String] = [:]
            for match in series[brace...].matches(of: /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/) {
                labels[String(match.1)] = String(match.2)
            }
            return Sample(name: String(series[..<brace]), labels: labels, value: value)
        }
    }

    /// Sum of the samples of `name` whose labels include `labels`.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double {
        series(name, labels).reduce(0) { $0 + $1.value }
    }

    /// The samples of `name` whose labels include `labels`.
    public func series(_ name: String, _ labels: [String: String] = [:]) -> [Sample] {
        samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
    }
}

extension LabFixture {
    /// GET /metrics of the agent on the node whose namespace is `nodeNetns`.
    public static func scrape(_ nodeNetns: String) throws -> ScrapedMetrics {
        let result = try exec(nodeNetns, ["curl", "-s", "-m", "5", "http://127.0.0.1:9965/metrics"])
        guard result.status == 0 else { throw POSIXError(.ECONNREFUSED) }
        return ScrapedMetrics(text: result.stdout)
    }
}
