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
            (["--node-name", "n", "--cluster", "c"], "filters --node-name and --cluster cannot be combined"),
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
        ])
    func badValues(arguments: [String], message: String) {
        #expect {
            _ = try FilterBuilder.build(arguments)
        } throws: { error in
            "\(error)".contains(message)
        }
    }
}
