// `make bench`: how long a flow takes from its packet to a client following GetFlows — straight
// from an agent, or through osprey-relay's merge. The flow's time is when the datapath saw the
// packet; the latency is when the client received it, on the same machine's clock.
// The client is grpc-swift's (as `osprey observe`), or with `wire` a reader of HTTP/2 and gRPC
// framing on one thread (WireFollower.swift; unix sockets), which measures the server rather
// than the client's library.
// Usage: osprey-bench latency ADDRESS SECONDS LABEL [grpc|wire]   (prints one Markdown table row)
import Foundation
import GRPCCore
import GRPCProtobuf
import HubbleAPI
import HubbleServer
import HubbleTransport
import HubbleWire
import Locking

enum LatencyBench {
    static func run(_ arguments: [String]) throws {
        guard arguments.count == 3 || arguments.count == 4, let seconds = Double(arguments[1]), seconds > 0,
            arguments.count == 3 || ["grpc", "wire"].contains(arguments[3])
        else {
            throw BenchError(
                "usage: osprey-bench latency ADDRESS SECONDS LABEL [grpc|wire] (e.g. unix:///run/relay.sock 20 relay)")
        }
        let address = try HubbleAddress(parsing: arguments[0], defaultPort: 4245)
        let samples = Samples()
        if arguments.count == 4, arguments[3] == "wire" {
            guard case .unix(let path) = address.endpoint else {
                throw BenchError("the wire client follows unix sockets only, not \(arguments[0])")
            }
            var follower = WireFollower(path: path)
            do {
                try follower.follow(until: Date().addingTimeInterval(seconds)) { time in
                    samples.add(Date().timeIntervalSince1970 - Double(time) / 1e9)
                }
            } catch {
                samples.fail(error)
            }
        } else {
            let done = DispatchSemaphore(value: 0)
            Task {
                await follow(address, for: seconds, into: samples)
                done.signal()
            }
            done.wait()
        }
        let (sorted, failure) = samples.result()
        guard !sorted.isEmpty else {
            throw BenchError("no flows arrived from \(arguments[0]) in \(seconds) s\(failure.map { ": \($0)" } ?? "")")
        }
        func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000 }
        print(
            String(
                format: "| %@ | %d flows (%.0f/s) | %.1f ms | %.1f ms | %.1f ms |", arguments[2], sorted.count,
                Double(sorted.count) / seconds, percentile(0.5), percentile(0.99), sorted.last! * 1000))
    }

    /// Follows GetFlows for `seconds`, noting each flow's delay from its packet to here.
    static func follow(_ address: HubbleAddress, for seconds: Double, into samples: Samples) async {
        do {
            let transport = try HubbleDialer(tls: nil).transport(to: address)
            try await withGRPCClient(transport: transport) { client in
                // Each response's kind and time are read from its bytes, as the relay reads them;
                // decoding whole flows would make the client, not the server, the limit.
                let following = Task {
                    try await client.serverStreaming(
                        request: ClientRequest(message: Observer_GetFlowsRequest.with { $0.follow = true }),
                        descriptor: Observer_Observer.Method.GetFlows.descriptor,
                        serializer: ProtobufSerializer<Observer_GetFlowsRequest>(), deserializer: RawBytes(),
                        options: .defaults
                    ) { response in
                        for try await bytes in response.messages {
                            let message = try RawFlowResponse(bytes: bytes)
                            guard message.kind == .flow else { continue }
                            samples.add(Date().timeIntervalSince1970 - Double(message.time) / 1e9)
                        }
                    }
                }
                try await Task.sleep(for: .seconds(seconds))
                following.cancel()
                _ = await following.result
            }
        } catch {
            samples.fail(error)
        }
    }

    /// Delays in seconds, gathered by the following task.
    final class Samples: Sendable {
        private let state = Lock<(values: [Double], failure: String?)>(([], nil))
        func add(_ value: Double) { state.withLock { $0.values.append(value) } }
        func fail(_ error: any Error) { state.withLock { $0.failure = "\(error)" } }
        func result() -> ([Double], String?) { state.withLock { ($0.values.sorted(), $0.failure) } }
    }
}

/// A benchmark that cannot run, in one sentence.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
