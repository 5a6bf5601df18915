// swift-tools-version: 6.2
// Osprey: network observability for Kubernetes. One target per stage; executables stay thin.
import PackageDescription

/// Our own targets build in Swift 6 mode with every warning an error (CI fails on warnings).
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

/// The flow pipeline's modules (decode → enrich → observer → metrics) run once per event: their
/// small functions (a flow's field accessors above all) must inline into the next stage, which
/// release builds only do across modules with cross-module optimization (`make bench`: ~1.6M →
/// ~2M events/s for this flag on `Flows` alone).
let pipeline: [SwiftSetting] = strict + [.unsafeFlags(["-cross-module-optimization"])]

let package = Package(
    name: "osprey",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "osprey", targets: ["osprey"]),
        .executable(name: "osprey-agent", targets: ["osprey-agent"]),
        .executable(name: "osprey-relay", targets: ["osprey-relay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
    ],
    targets: [
        // The cluster as the Kubernetes API would describe it: nodes, pods, services.
        .target(name: "ClusterInventory", swiftSettings: strict),
        // setns(2) needs _GNU_SOURCE, which Swift's Glibc import does not give.
        .target(name: "CNetns"),
        // Run code or open sockets inside another network namespace.
        .target(name: "Netns", dependencies: ["CNetns"], swiftSettings: strict),
        // --- The eBPF datapath ---
        // Structs and constants shared by the BPF C and Swift (osprey_abi.h).
        .target(name: "CDatapathABI"),
        // libbpf from Debian's libbpf-dev.
        .systemLibrary(name: "CLibbpf", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        // The libbpf calls Swift cannot make itself (LIBBPF_OPTS structs, BTF walks).
        .target(name: "CBPFGlue", dependencies: ["CLibbpf", "CDatapathABI"]),
        // Turns a compiled BPF object into a Swift byte array (used by the BPFCompiler plugin).
        .executableTarget(name: "osprey-bpf-embed"),
        .plugin(name: "BPFCompiler", capability: .buildTool(), dependencies: ["osprey-bpf-embed"]),
        // The eBPF programs (bpf/*.c), compiled and embedded at build time.
        .target(name: "DatapathBPF", exclude: ["bpf"], plugins: ["BPFCompiler"]),
        // Loads, attaches, detaches the programs and reads their maps.
        .target(
            name: "Datapath", dependencies: ["DatapathBPF", "CBPFGlue", "CLibbpf", "CDatapathABI", "Netns"],
            swiftSettings: strict),
        // rtnetlink: link dumps, link events, namespace ids.
        .target(name: "Netlink", swiftSettings: strict),
        // Node-level metrics (Retina names): collectors and the Prometheus text format.
        .target(name: "NodeMetrics", dependencies: ["Datapath", "Netns"], swiftSettings: strict),
        // --- Flows ---
        // The flow model (Hubble's fields), DNS messages, drop reason mapping, JSON lines.
        // Flow's copy-on-write box is accessed on every field read: no dynamic exclusivity
        // checks there (they cost a tenth of the pipeline; the box is only mutated when unique).
        .target(name: "Flows", swiftSettings: pipeline + [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        // Raw datapath events → flows; TCP handshake and DNS latency; unanswered queries.
        .target(name: "FlowDecoder", dependencies: ["Flows", "CDatapathABI"], swiftSettings: pipeline),
        // IP → pod/service identity from a metadata source (the lab inventory, standalone).
        .target(name: "Enricher", dependencies: ["Flows", "ClusterInventory"], swiftSettings: pipeline),
        // The ring of recent flows and lost-event accounting.
        .target(name: "Observer", dependencies: ["Flows", "CMalloc"], swiftSettings: pipeline),
        .systemLibrary(name: "CMalloc"),
        // Pod-level Hubble metrics computed from flows.
        .target(name: "FlowMetrics", dependencies: ["Flows", "Observer", "NodeMetrics"], swiftSettings: pipeline),
        // --- The Hubble API ---
        // Swift generated from proto/ (`make proto`): Hubble's flow, observer, peer, relay
        // packages and grpc.health.v1, byte-compatible with upstream clients.
        .target(
            name: "HubbleAPI",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ]),
        // Flows on the wire: agent flow → flow.Flow, lost events, field masks, jsonpb lines.
        .target(
            name: "HubbleWire",
            dependencies: [
                "Flows", "Observer", "HubbleAPI", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict),
        // Hubble's FlowFilter semantics (allow/deny lists) over flow.Flow.
        .target(name: "FlowFilters", dependencies: ["HubbleAPI", "HubbleWire"], swiftSettings: strict),
        // Reaching and serving Hubble APIs: addresses (TCP, unix, tls://), TLS and mutual TLS
        // from PEM files, Go-style durations.
        .target(
            name: "HubbleTransport",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // The agent's gRPC services: observer.Observer, peer.Peer, grpc.health.v1.Health.
        .target(
            name: "HubbleServer",
            dependencies: [
                "Observer", "HubbleAPI", "HubbleWire", "FlowFilters", "Flows", "HubbleTransport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: strict),
        // `osprey observe` output: compact, dict, table, json/jsonpb, as the hubble CLI prints them.
        .target(
            name: "FlowPrinter",
            dependencies: [
                "HubbleAPI", "HubbleWire", "Flows", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict),
        // osprey-agent's parts: configuration, preflight checks, interface watcher, HTTP server.
        .target(
            name: "Agent",
            dependencies: [
                "Datapath", "Netlink", "NodeMetrics", "Netns", "Flows", "FlowDecoder", "Enricher", "Observer",
                "FlowMetrics", "HubbleServer", "HubbleWire", "HubbleTransport", "ClusterInventory",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        .executableTarget(name: "osprey-agent", dependencies: ["Agent"], swiftSettings: strict),
        // osprey-relay's parts: peer discovery and health, the merged observer.Observer.
        .target(
            name: "Relay",
            dependencies: [
                "HubbleAPI", "HubbleServer", "HubbleTransport", "HubbleWire",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        .executableTarget(name: "osprey-relay", dependencies: ["Relay"], swiftSettings: strict),
        // `make bench`: the user-space flow pipeline's throughput on one core.
        .executableTarget(
            name: "osprey-bench",
            dependencies: [
                "FlowDecoder", "Enricher", "Observer", "FlowMetrics", "Flows", "ClusterInventory", "CDatapathABI",
            ],
            swiftSettings: strict),

        // The lab: a Kubernetes-like cluster of network namespaces on one machine.
        .target(name: "Lab", dependencies: ["ClusterInventory", "HubbleTransport"], swiftSettings: strict),
        // The `osprey` command line (subcommands as a library so tests can parse them).
        .target(
            name: "OspreyCLI",
            dependencies: [
                "Lab", "ClusterInventory", "HubbleAPI", "HubbleWire", "HubbleServer", "HubbleTransport", "FlowFilters",
                "FlowPrinter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict),
        .executableTarget(name: "osprey", dependencies: ["OspreyCLI"], swiftSettings: strict),

        // Helpers shared by test targets: DNS probe, process runner, lab fixtures.
        .target(
            name: "TestSupport", dependencies: ["Lab", "Netns", "ClusterInventory", "Flows"],
            path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "LabTests", dependencies: ["Lab", "ClusterInventory"], swiftSettings: strict),
        .testTarget(
            name: "LabIntegrationTests", dependencies: ["Lab", "ClusterInventory", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "AgentIntegrationTests", dependencies: ["Lab", "ClusterInventory", "TestSupport", "HubbleTransport"],
            swiftSettings: strict),
        .testTarget(name: "NodeMetricsTests", dependencies: ["NodeMetrics"], swiftSettings: strict),
        .testTarget(
            name: "FlowTests",
            dependencies: [
                "Flows", "FlowDecoder", "Enricher", "Observer", "FlowMetrics", "ClusterInventory", "CDatapathABI",
                "HubbleWire",
            ],
            swiftSettings: strict),
        .testTarget(
            name: "HubbleAPITests",
            dependencies: [
                "HubbleAPI", "HubbleWire", "HubbleServer", "HubbleTransport", "FlowFilters", "FlowPrinter", "OspreyCLI",
                "Flows", "Observer", "Relay",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: strict),
        .testTarget(name: "OspreyCLITests", dependencies: ["OspreyCLI", "TestSupport"], swiftSettings: strict),
    ]
)
