import Foundation

/// A Grafana dashboard evaluated the way Grafana would: its template variables resolved from
/// their own queries (`label_values`, `query_result` with the variable's regex), in order, each
/// later one under the earlier ones' values; multi-value and "All" variables as the regex
/// alternation of every value; then every panel's queries with those values.
///
/// Single-value variables (a namespace, a workload) are what a user picks: a panel counts as
/// having data when some choice of them gives it data, as a user would find by picking.
struct GrafanaDashboard {
    let file: String
    let json: [String: Any]

    /// Prometheus' HTTP API: a path and its parameters → the decoded JSON answer.
    typealias Prometheus = (_ path: String, _ parameters: [String]) throws -> [String: Any]

    struct Panel {
        var title: String
        var expressions: [String]
    }

    init(path: String) throws {
        file = (path as NSString).lastPathComponent
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw DashboardError(message: "\(path) is not a JSON object")
        }
        json = object
    }

    struct DashboardError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// Every panel with queries, rows' nested panels included.
    var panels: [Panel] {
        func walk(_ panels: [[String: Any]]) -> [Panel] {
            panels.flatMap { panel -> [Panel] in
                let targets = (panel["targets"] as? [[String: Any]] ?? []).filter { $0["hide"] as? Bool != true }
                let own = Panel(
                    title: panel["title"] as? String ?? "?", expressions: targets.compactMap { $0["expr"] as? String })
                return (own.expressions.isEmpty ? [] : [own]) + walk(panel["panels"] as? [[String: Any]] ?? [])
            }
        }
        return walk(json["panels"] as? [[String: Any]] ?? [])
    }

    var variables: [[String: Any]] {
        ((json["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []).filter {
            $0["type"] as? String == "query"
        }
    }

    /// Replaces `$name` and `${name}` (longest names first) and Grafana's `$__rate_interval`
    /// (a minute: four 5 s scrapes and more).
    static func substitute(_ text: String, _ values: [String: String]) -> String {
        var text = text
        for name in values.keys.sorted(by: { $0.count > $1.count }) {
            text = text.replacingOccurrences(of: "${\(name)}", with: values[name]!)
                .replacingOccurrences(of: "$\(name)", with: values[name]!)
        }
        return text.replacingOccurrences(of: "$__rate_interval", with: "1m")
    }

    /// A value as a regex matches it literally.
    static func escape(_ value: String) -> String {
        var escaped = ""
        for character in value {
            if "\\^$.|?*+()[]{}".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    /// A variable's options under the earlier variables' values.
    static func options(
        _ variable: [String: Any], _ values: [String: String], prometheus: Prometheus
    ) throws -> [String] {
        let raw = (variable["query"] as? [String: Any])?["query"] as? String ?? variable["query"] as? String ?? ""
        let query = substitute(raw, values).trimmingCharacters(in: .whitespacesAndNewlines)
        var texts: [String] = []
        if query.hasPrefix("label_values("), query.hasSuffix(")") {
            let inner = String(query.dropFirst("label_values(".count).dropLast())
            let comma = inner.lastIndex(of: ",")!
            let selector = String(inner[..<comma]).trimmingCharacters(in: .whitespaces)
            let label = String(inner[inner.index(after: comma)...]).trimmingCharacters(in: .whitespaces)
            let answer = try prometheus("/api/v1/series", ["match[]=\(selector)"])
            for series in answer["data"] as? [[String: String]] ?? [] {
                if let value = series[label], !texts.contains(value) { texts.append(value) }
            }
        } else if query.hasPrefix("query_result("), query.hasSuffix(")") {
            let expression = String(query.dropFirst("query_result(".count).dropLast())
            let answer = try prometheus("/api/v1/query", ["query=\(expression)"])
            let results = (answer["data"] as? [String: Any])?["result"] as? [[String: Any]] ?? []
            for result in results {
                // Grafana's text for a result: `name{a="1", b="2"} value timestamp`.
                var metric = result["metric"] as? [String: String] ?? [:]
                let name = metric.removeValue(forKey: "__name__") ?? ""
                let labels = metric.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }
                let value = result["value"] as? [Any] ?? []
                texts.append("\(name){\(labels.joined(separator: ", "))} \(value.last ?? "") \(value.first ?? "")")
            }
        } else {
            throw DashboardError(message: "unknown variable query \(query)")
        }
        guard let regex = variable["regex"] as? String, regex.count > 2, regex.hasPrefix("/") else { return texts }
        let pattern = String(regex.dropFirst().prefix(upTo: regex.lastIndex(of: "/")!))
        let compiled = try NSRegularExpression(pattern: pattern)
        var options: [String] = []
        for text in texts {
            let range = NSRange(text.startIndex..., in: text)
            guard let match = compiled.firstMatch(in: text, range: range) else { continue }
            let group = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
            guard let found = Range(group, in: text) else { continue }
            let option = String(text[found])
            if !options.contains(option) { options.append(option) }
        }
        return options
    }

    /// Every choice of the single-value variables a user could make (at most `limit`), each
    /// with every variable's value; multi-value ones hold all their options.
    func choices(prometheus: Prometheus, limit: Int = 40) throws -> [[String: String]] {
        var assignments: [[String: String]] = [[:]]
        for variable in variables {
            let name = variable["name"] as? String ?? ""
            let multi = variable["multi"] as? Bool == true || variable["includeAll"] as? Bool == true
            var next: [[String: String]] = []
            for assignment in assignments {
                let options = try Self.options(variable, assignment, prometheus: prometheus)
                if multi || options.isEmpty {
                    var chosen = assignment
                    chosen[name] = options.isEmpty ? "" : "(" + options.map(Self.escape).joined(separator: "|") + ")"
                    next.append(chosen)
                } else {
                    for option in options {
                        var chosen = assignment
                        chosen[name] = option
                        next.append(chosen)
                    }
                }
            }
            assignments = Array(next.prefix(limit))
        }
        return assignments
    }

    /// The titles of panels none of whose queries has data under any choice; each query's
    /// status must be success. `withoutThreshold` panels are judged without their trailing
    /// `> 0` (they show only what is non-zero, and the lab's interfaces drop nothing).
    func emptyPanels(prometheus: Prometheus, withoutThreshold: Set<String> = []) throws -> [String] {
        let choices = try self.choices(prometheus: prometheus)
        var empty: [String] = []
        for panel in panels {
            var filled = false
            search: for choice in choices {
                for expression in panel.expressions {
                    var query = Self.substitute(expression, choice)
                    if withoutThreshold.contains(panel.title) {
                        query = query.replacingOccurrences(
                            of: #"\s*>\s*0\s*$"#, with: "", options: .regularExpression)
                    }
                    let answer = try prometheus("/api/v1/query", ["query=\(query)"])
                    guard answer["status"] as? String == "success" else {
                        throw DashboardError(message: "\(file) / \(panel.title): \(answer)")
                    }
                    let result = (answer["data"] as? [String: Any])?["result"] as? [Any] ?? []
                    if !result.isEmpty {
                        filled = true
                        break search
                    }
                }
            }
            if !filled { empty.append(panel.title) }
        }
        return empty
    }
}
