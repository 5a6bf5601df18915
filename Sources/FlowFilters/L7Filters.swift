import Foundation
import HubbleAPI
import HubbleWire

/// Filters on layer 7: DNS queries, HTTP (Osprey's flows carry none), CEL (refused).
enum L7Filters {
    static func add(_ filter: Flow_FlowFilter, to checks: inout CheckList) throws(FilterError) {
        let queries = try filter.dnsQuery.map { pattern throws(FilterError) in
            try Pattern(regex: pattern, what: "DNS query")
        }
        checks.add(queries) { flow in
            guard case .dns(let dns)? = flow.l7.record else { return false }
            return queries.contains { $0.matches(dns.query) }
        }

        // HTTP fields: Osprey's flows carry no HTTP records, so such a filter matches nothing —
        // but its values are still checked so that a typo is reported, as Hubble does.
        for code in filter.httpStatusCode {
            guard code.range(of: #"^[1-5]([0-9][0-9]|\+)?$"#, options: .regularExpression) != nil else {
                throw FilterError(
                    "HTTP status code \"\(code)\" is not valid; use a code such as 404 or a class such as 5+.")
            }
        }
        for pattern in filter.httpPath + filter.httpURL {
            _ = try Pattern(regex: pattern, what: "HTTP path/URL")
        }
        let http =
            !filter.httpStatusCode.isEmpty || !filter.httpMethod.isEmpty || !filter.httpPath.isEmpty
            || !filter.httpURL.isEmpty || !filter.httpHeader.isEmpty
        if http {
            checks.add { flow in
                if case .http? = flow.l7.record { return true }
                return false
            }
        }
        if filter.hasExperimental, !filter.experimental.celExpression.isEmpty {
            throw FilterError(
                "CEL expressions (experimental.cel_expression) are not supported by Osprey; "
                    + "use the other filter fields.")
        }
    }
}
