import HubbleAPI
import Testing

@testable import OspreyCLI

/// `osprey observe` filter flags become the same FlowFilters hubble sends.
@Suite("osprey observe filter flags")
struct FilterFlagTests {
    func raw(_ arguments: [String]) throws -> String {
        ObserveFlows.rawFilterText(try FilterBuilder.build(arguments))
    }

    @Test("hubble's documented --print-raw-filters example")
    func documentedExample() throws {
        let text = try raw([
            "--pod", "default/tiefighter", "--to-port", "80", "--verdict", "DROPPED", "--not", "--protocol", "udp",
        ])
        #expect(
            text == """
                allowlist:
                    - '{"source_pod":["default/tiefighter"],"verdict":["DROPPED"],"destination_port":["80"]}'
                    - '{"destination_pod":["default/tiefighter"],"verdict":["DROPPED"],"destination_port":["80"]}'
                denylist:
                    - '{"protocol":["udp"]}'
                """)
        // As hubble's YAML: an empty list is left out, and no filter at all is `{}`.
        #expect(try raw(["--verdict", "DROPPED"]) == "allowlist:\n    - '{\"verdict\":[\"DROPPED\"]}'")
        #expect(try raw([]) == "{}")
    }

    @Test("namespace, type with observation point, workloads, labels, -4")
    func more() throws {
        let (allow, deny) = try FilterBuilder.build([
            "-n", "shop", "-t", "trace:to-endpoint", "--from-workload", "Deployment/loadgen", "-l", "app=web", "-4",
        ])
        #expect(deny.isEmpty)
        #expect(allow.count == 2)
        #expect(allow[0].sourcePod == ["shop/"])
        #expect(allow[1].destinationPod == ["shop/"])
        #expect(allow[0].sourceLabel == ["app=web"])
        #expect(allow[1].destinationLabel == ["app=web"])
        #expect(
            allow[0].eventType == [
                .with {
                    $0.type = 4; $0.matchSubType = true; $0.subType = 0
                }
            ])
        #expect(
            allow[0].sourceWorkload == [
                .with {
                    $0.kind = "Deployment"; $0.name = "loadgen"
                }
            ])
        #expect(allow[0].ipVersion == [.ipv4])
        let (pods, _) = try FilterBuilder.build(["-n", "shop", "--pod", "frontend"])
        #expect(pods == [.with { $0.sourcePod = ["shop/frontend"] }, .with { $0.destinationPod = ["shop/frontend"] }])
        #expect(throws: (any Error).self, "hubble refuses -n with --from-pod") {
            _ = try FilterBuilder.build(["-n", "shop", "--from-pod", "frontend"])
        }
        // What hubble sends: bare names as given (the server reads them as default/NAME), or
        // scoped by -n — pods and services alike, and -n then adds no filter of its own.
        let (bare, _) = try FilterBuilder.build(["--from-pod", "tiefighter", "--to-service", "deathstar"])
        #expect(
            bare == [
                .with {
                    $0.sourcePod = ["tiefighter"]; $0.destinationService = ["deathstar"]
                }
            ])
        let (scoped, _) = try FilterBuilder.build(["-n", "shop", "--service", "frontend"])
        #expect(
            scoped == [
                .with { $0.sourceService = ["shop/frontend"] }, .with { $0.destinationService = ["shop/frontend"] },
            ])
    }

    @Test(
        "hubble's conflicting filters are refused with hubble's sentence",
        arguments: [
            (["--fqdn", "x.example.", "--pod", "a"], "filters --fqdn and --pod cannot be combined"),
            (["--ip", "10.0.0.1", "--namespace", "shop"], "filters --ip and --namespace cannot be combined"),
            (["-l", "app=a", "--from-label", "app=b"], "filters --label and --from-label cannot be combined"),
            (["--port", "80", "--from-port", "81"], "filters --port and --from-port cannot be combined"),
        ])
    func conflicts(arguments: [String], message: String) {
        #expect {
            _ = try FilterBuilder.build(arguments)
        } throws: { error in
            "\(error)" == message
        }
        // In different lists (one negated) they combine, as in hubble.
        #expect(throws: Never.self) {
            _ = try FilterBuilder.build([arguments[0], arguments[1], "--not"] + arguments[2...])
        }
    }

    @Test("--encrypted with --unencrypted is refused as by hubble; --node-name with --cluster combine (hubble's today)")
    func encryptedConflict() throws {
        #expect {
            _ = try FilterBuilder.build(["--encrypted", "--unencrypted"])
        } throws: { error in
            "\(error)" == "filters --encrypted and --unencrypted cannot be combined"
        }
        #expect(
            try FilterBuilder.build(["--encrypted", "--not", "--unencrypted"]).deny == [
                .with { $0.encrypted = [false] }
            ])
        let (allow, _) = try FilterBuilder.build(["--node-name", "osp-node-1", "--from-cluster", "lab"])
        #expect(
            allow == [
                .with {
                    $0.nodeName = ["osp-node-1"]; $0.sourceClusterName = ["lab"]
                }
            ])
    }

    @Test("--http-header, --trace-id and --ip-trace-id become hubble's FlowFilter fields")
    func traceAndHeaderFields() throws {
        let (allow, deny) = try FilterBuilder.build([
            "--http-header", "x-request-id:a:b", "--http-header", "empty:", "--trace-id", "4bf92f35",
            "--ip-trace-id", "18446744073709551615", "--not", "--ip-trace-id", "7",
        ])
        #expect(
            allow == [
                .with {
                    $0.httpHeader = [
                        .with {
                            $0.key = "x-request-id"; $0.value = "a:b"
                        },
                        .with {
                            $0.key = "empty"; $0.value = ""
                        },
                    ]
                    $0.traceID = ["4bf92f35"]
                    $0.ipTraceID = [.max]
                }
            ])
        #expect(deny == [.with { $0.ipTraceID = [7] }])
        #expect(
            try raw(["--http-header", "foo:bar"])
                == #"allowlist:\#n    - '{"http_header":[{"key":"foo","value":"bar"}]}'"#)
    }

    @Test("--node-label, --snat-ip, --encrypted and --cel-expression become their FlowFilter fields")
    func upstreamOnlyFields() throws {
        let (allow, _) = try FilterBuilder.build([
            "--node-label", "zone=a", "--snat-ip", "10.0.0.9", "--encrypted", "--cel-expression", "true",
        ])
        #expect(allow.count == 1)
        #expect(allow[0].nodeLabels == ["zone=a"] && allow[0].sourceIpXlated == ["10.0.0.9"])
        #expect(allow[0].encrypted == [true] && allow[0].experimental.celExpression == ["true"])
    }

    @Test(
        "bad values are one sentence",
        arguments: [
            (["--verdict", "MAYBE"], "is not a verdict"), (["--port", "http"], "--port \"http\" is not a port number"),
            (["--to-port", "99999"], "--to-port \"99999\" is not a port number"),
            (["--from-identity", "nobody"], "--from-identity \"nobody\" is neither a number"),
            (["--tcp-flags", "SYN,BOGUS"], "BOGUS is not a TCP flag"), (["-t", "trace:sideways"], "not a trace"),
            (["--drop-reason-desc", "OOPS"], "not a Hubble drop reason"), (["--not"], "--not must be followed"),
            (["--traffic-direction", "up"], "must be ingress or egress"),
            (["--http-header", "foo"], "--http-header \"foo\" must be name:value (e.g. foo:bar)."),
            (["--ip-trace-id", "0"], "--ip-trace-id \"0\" must be a number greater than 0."),
            (["--ip-trace-id", "abc"], "--ip-trace-id \"abc\" must be a number greater than 0."),
        ])
    func badValues(arguments: [String], message: String) {
        #expect {
            _ = try FilterBuilder.build(arguments)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test("the selectors make hubble's request: 20 by default, --until dropped with --follow, since with last")
    func selectors() throws {
        func request(_ arguments: [String]) throws -> Observer_GetFlowsRequest {
            try ObserveFlows.parse(arguments).request((allow: [], deny: []))
        }
        #expect(try request([]).number == 20 && !request([]).follow)
        let followed = try request(["--follow", "--until", "5m"])
        #expect(followed.follow && !followed.hasUntil && followed.number == 0)
        let window = try request(["--since", "10m", "--until", "5m"])
        #expect(window.hasSince && window.hasUntil && window.number == 0)
        #expect(window.since.seconds < window.until.seconds)
        let lastSince = try request(["--last", "3", "--since", "1h"])
        #expect(lastSince.number == 3 && lastSince.hasSince && !lastSince.first)
        let first = try request(["--first", "4"])
        #expect(first.first && first.number == 4)
        #expect(try request(["--all", "--follow"]).number == .max)
    }
}
