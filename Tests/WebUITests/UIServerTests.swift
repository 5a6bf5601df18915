import FlowTestKit
import Flows
import Foundation
import GRPCCore
import GRPCInProcessTransport
import HubbleAPI
import HubbleObserver
import HubbleServer
import Locking
import Logging
import Observer
import Testing

@testable import WebUI

/// The UI's server against a real agent Hubble server (in process): views are shared by tabs —
/// one upstream stream per distinct view — tabs get the map, rows and status as events, a bad
/// view is one sentence, and a view nobody shows stops.
@Suite("Web UI server")
struct UIServerTests {
    /// The real upstream, counting the GetFlows streams it opens.
    final class Counted: HubbleUpstream, Sendable {
        let base: any HubbleUpstream
        let streams = Lock(0)
        init(_ base: any HubbleUpstream) { self.base = base }
        func flows(
            _ request: Observer_GetFlowsRequest, _ body: @escaping @Sendable (Observer_GetFlowsResponse) async -> Void
        ) async throws {
            streams.withLock { $0 += 1 }
            try await base.flows(request, body)
        }
        func status() async throws -> Observer_ServerStatusResponse { try await base.status() }
        func namespaces() async throws -> [String] { try await base.namespaces() }
    }

    /// An agent's Hubble server over `observer`, and a UI server on it, for `body`.
    static func withUI(_ body: (UIServer, Observer, Counted) async throws -> Void) async throws {
        let observer = try Observer(capacity: 1023)
        let server = HubbleServer.agent(
            observer: observer, nodeName: "osp-node-1", clusterName: "osp", listeners: [], peers: { [] })
        let transport = InProcessTransport()
        let client = GRPCClient(transport: transport.client)
        let serving = Task { try await server.serve(inProcess: transport.server) }
        let connections = Task { try await client.runConnections() }
        let upstream = Counted(GRPCUpstream(client: client))
        let ui = UIServer(upstream: upstream, logger: Logger(label: "test"))
        defer {
            ui.stopIdleViews(now: .distantFuture)
            client.beginGracefulShutdown()
            serving.cancel()
            connections.cancel()
        }
        try await body(ui, observer, upstream)
    }

    /// Reads events from `events` until `done` says so (or 300 s pass); returns them all. The
    /// bound is generous because the wall clock runs while nothing else can: in a full parallel
    /// run on two cores, every test can stall for the run's first two minutes (each stage-one
    /// test of `make test` then reports about 115 s), and a 30 s bound once ran out before the
    /// first map event. A read that gets its events returns at once.
    static func read(
        _ events: AsyncStream<String>, until done: @escaping @Sendable ([String]) -> Bool
    ) async -> [String] {
        final class Seen: Sendable { let events = Lock<[String]>([]) }
        let seen = Seen()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in events {
                    let finished = seen.events.withLock { seen in
                        seen.append(event)
                        return done(seen)
                    }
                    if finished { return }
                }
            }
            group.addTask { try? await Task.sleep(for: .seconds(300)) }
            await group.next()
            group.cancelAll()
        }
        return seen.events.withLock { $0 }
    }

    @Test("tabs showing the same view share one upstream stream; another view opens its own")
    func sharedViews() async throws {
        try await Self.withUI { ui, observer, upstream in
            let shop = try UIServer.key(["namespace": ["shop"]])
            let first = ui.view(shop).subscribe()
            let second = ui.view(try UIServer.key(["namespace": ["shop"], "window": ["300"]])).subscribe()
            #expect(ui.viewCount == 1, "the same view (300 s is the default window)")
            observer.append(Fixtures.all)
            let events = await Self.read(first.events) { seen in
                seen.contains { $0.hasPrefix("event: flows") && $0.contains("loadgen-7d9f-abcde") }
                    && seen.contains { $0.hasPrefix("event: map") && $0.contains("shop/frontend") }
            }
            #expect(
                events.contains { $0.hasPrefix("event: map") && $0.contains("\"shop/loadgen→shop/frontend:TCP/80\"") })
            #expect(events.contains { $0.hasPrefix("event: status") }, "\(events.map { String($0.prefix(300)) })")
            let other = await Self.read(second.events) { seen in seen.contains { $0.contains("loadgen-7d9f-abcde") } }
            #expect(other.contains { $0.contains("loadgen-7d9f-abcde") }, "the second tab gets the same rows")
            #expect(upstream.streams.withLock { $0 } == 1)

            _ = ui.view(try UIServer.key(["namespace": ["billing"]])).subscribe()
            #expect(ui.viewCount == 2)
            let deadline = Date().addingTimeInterval(60)
            while upstream.streams.withLock({ $0 }) < 2, Date() < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(upstream.streams.withLock { $0 } == 2)
        }
    }

    @Test("a view nobody shows stops after its idle time; one still shown stays")
    func idleViews() async throws {
        try await Self.withUI { ui, _, _ in
            let view = ui.view(try UIServer.key(["namespace": ["shop"]]))
            let tab = view.subscribe()
            _ = ui.view(try UIServer.key([:])).subscribe()
            view.unsubscribe(tab.id)
            ui.stopIdleViews(now: Date().addingTimeInterval(UIServer.idleTimeout + 1))
            #expect(ui.viewCount == 1, "the shop view had no tab; the all-namespaces view still has one")
        }
    }

    @Test(
        "a view that cannot be shown is one sentence",
        arguments: [
            (["verdict": ["MAYBE"]], "verdict \"MAYBE\" is not a verdict"),
            (["window": ["42"]], "window 42 is not one of 60, 300, 900, 3600 seconds."),
            (["filter": ["to:port=http"]], "http is not a port number"),
            (["filter": ["from:label="]], "has no value"),
        ])
    func badViews(_ parameters: [String: [String]], _ expected: String) {
        #expect {
            _ = try UIServer.key(parameters)
        } throws: { "\($0)".contains(expected) && !"\($0)".contains("\n") }
    }
}
