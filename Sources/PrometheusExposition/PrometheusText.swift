import Foundation

/// One metric family in the Prometheus text exposition format (version 0.0.4).
public struct MetricFamily: Sendable, Equatable {
    public enum Kind: String, Sendable { case gauge, counter, histogram }

    public struct Sample: Sendable, Equatable {
        public var labels: [(String, String)]
        public var value: Double
        /// What follows the family's name on this sample's line: a histogram's `_bucket`,
        /// `_sum` and `_count`; empty otherwise.
        public var suffix: String

        public init(_ labels: [(String, String)], _ value: Double, suffix: String = "") {
            self.labels = labels
            self.value = value
            self.suffix = suffix
        }

        public static func == (a: Sample, b: Sample) -> Bool {
            a.value == b.value && a.suffix == b.suffix && a.labels.map(\.0) == b.labels.map(\.0)
                && a.labels.map(\.1) == b.labels.map(\.1)
        }
    }

    public var name: String
    public var help: String
    public var kind: Kind
    public var samples: [Sample]

    public init(name: String, help: String, kind: Kind, samples: [Sample]) {
        self.name = name
        self.help = help
        self.kind = kind
        self.samples = samples
    }

    /// A histogram without labels: cumulative `_bucket` counts for each upper bound and `+Inf`,
    /// then `_sum` and `_count`. `counts[i]` is how many observations fell at or below
    /// `bounds[i]` and above the bound before it; `counts` has one more element, for above
    /// the last bound.
    public static func histogram(
        name: String, help: String, bounds: [Double], counts: [UInt64], sum: Double
    ) -> MetricFamily {
        precondition(counts.count == bounds.count + 1, "a histogram needs a count per bound and one for +Inf")
        var samples: [Sample] = []
        var cumulative: UInt64 = 0
        for (index, bound) in bounds.enumerated() {
            cumulative += counts[index]
            samples.append(Sample([("le", PrometheusText.format(bound))], Double(cumulative), suffix: "_bucket"))
        }
        cumulative += counts[bounds.count]
        samples.append(Sample([("le", "+Inf")], Double(cumulative), suffix: "_bucket"))
        samples.append(Sample([], sum, suffix: "_sum"))
        samples.append(Sample([], Double(cumulative), suffix: "_count"))
        return MetricFamily(name: name, help: help, kind: .histogram, samples: samples)
    }
}

/// Renders metric families as Prometheus text, adding `commonLabels` (cluster, instance) to
/// every sample. Families without samples are left out, as client libraries do.
public enum PrometheusText {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(_ families: [MetricFamily], commonLabels: [(String, String)]) -> String {
        var out = ""
        out.reserveCapacity(families.reduce(0) { $0 + $1.samples.count } * 120)
        for family in families where !family.samples.isEmpty {
            out += "# HELP \(family.name) \(escapeHelp(family.help))\n# TYPE \(family.name) \(family.kind.rawValue)\n"
            for sample in family.samples {
                out += family.name
                out += sample.suffix
                out += "{"
                out += (commonLabels + sample.labels).map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",")
                out += "} "
                out += format(sample.value)
                out += "\n"
            }
        }
        return out
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    static func escapeLabel(_ value: String) -> String {
        guard value.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return value }
        return value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func escapeHelp(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }
}
