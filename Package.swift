// swift-tools-version: 6.2
// Osprey: network observability for Kubernetes. One target per stage; executables stay thin.
// Targets are listed by layer (README, "Layers"): vocabulary → stages → services → applications
// → executables; a target depends only on targets of its own or a lower layer.
import PackageDescription

/// Our own targets build in Swift 6 mode with every warning an error (CI fails on warnings).
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

/// The flow pipeline's modules (decode → enrich → observer → metrics) run once per event: their
/// small functions (a flow's field accessors above all) must inline into the next stage, which
/// release builds only do across modules with cross-module optimization (`make bench`: ~1.6M →
/// ~2M events/s for this flag on `Flows` alone).
let pipeline: [SwiftSetting] = strict + [.unsafeFlags(["-cross-module-optimization"])]

/// `make fuzz` builds with OSPREY_FUZZ=1: the modules that parse untrusted bytes, and
/// osprey-fuzz, get libFuzzer's coverage instrumentation and AddressSanitizer — those alone (the
/// build's plugin tools and the dependencies stay plain).
let fuzzing = Context.environment["OSPREY_FUZZ"] != nil
let fuzzed: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"]), .define("OSPREY_FUZZ")] : []

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
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // ===== Layer 1, vocabulary: types every other layer speaks. No Osprey dependencies
        // beyond this layer, no C compiled (CDatapathABI is a header).
        // The flow model (Hubble's fields), lost events, drop reasons, IP text.
        // Flow's copy-on-write box is accessed on every field read: no dynamic exclusivity
        // checks there (they cost a tenth of the pipeline; the box is only mutated when unique).
        .target(
            name: "Flows", swiftSettings: pipeline + [.unsafeFlags(["-enforce-exclusivity=unchecked"])] + fuzzed),
        // The cluster as the Kubernetes API would describe it: nodes, pods, services.
        .target(name: "ClusterInventory", swiftSettings: strict + fuzzed),
        // Metric families and the Prometheus text exposition format.
        .target(name: "PrometheusExposition", swiftSettings: strict),
        // Structs and constants shared by the BPF C and Swift (osprey_abi.h), as a header module.
        .systemLibrary(name: "CDatapathABI"),
        // ThreadSanitizer's annotation hooks (weak: null outside a -sanitize=thread build).
        .systemLibrary(name: "CSanitizerHooks"),
        // Mutex as ThreadSanitizer can see it (`Lock`): every lock in Osprey is one.
        .target(name: "Locking", dependencies: ["CSanitizerHooks"], swiftSettings: strict),
        // Swift generated from proto/ (`make proto`): Hubble's flow, observer, peer, relay
        // packages and grpc.health.v1, byte-compatible with upstream clients.
        .target(
            name: "HubbleAPI",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            // Generated code whose messages keep their fields in a storage class: every field
            // set checked its access dynamically, a quarter of making a flow's message (perf on
            // osprey-bench filter). Nothing here holds two accesses to one field at once.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),

        // ===== Layer 2, stages: each does one job on the vocabulary.
        // --- The flow pipeline (decode → enrich → observe → count) ---
        // Raw datapath events → flows; DNS messages; TCP handshake and DNS latency.
        .target(name: "FlowDecoder", dependencies: ["Flows", "CDatapathABI"], swiftSettings: pipeline + fuzzed),
        // IP → pod/service identity from a metadata source (the lab inventory, standalone).
        .target(name: "Enricher", dependencies: ["Locking", "Flows", "ClusterInventory"], swiftSettings: pipeline),
        // The ring of recent flows, live subscribers, lost-event accounting.
        .target(name: "Observer", dependencies: ["Locking", "Flows", "CMalloc"], swiftSettings: pipeline),
        .systemLibrary(name: "CMalloc"),
        // Pod-level Hubble metrics computed from flows.
        .target(
            name: "FlowMetrics", dependencies: ["Locking", "Flows", "HubbleWire", "PrometheusExposition"],
            swiftSettings: pipeline),
        // The stages joined: one pipeline for the agent, the bench and the tests.
        .target(
            name: "FlowPipeline",
            dependencies: ["Locking", "Flows", "FlowDecoder", "Enricher", "Observer", "FlowMetrics", "CDatapathABI"],
            swiftSettings: pipeline),
        // --- Hubble on the wire ---
        // Flows on the wire: agent flow → flow.Flow, lost events, field masks, jsonpb lines.
        .target(
            name: "HubbleWire",
            dependencies: ["Flows", "HubbleAPI", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strict + fuzzed),
        // Hubble's FlowFilter semantics (allow/deny lists) over flow.Flow, and a quick check on the
        // pipeline's own flows that lets a follower skip making messages it would drop.
        .target(
            name: "FlowFilters", dependencies: ["Flows", "HubbleAPI", "HubbleWire"], swiftSettings: strict + fuzzed),
        // gzip through zlib (rotated flow logs, `osprey observe --input-file x.gz`).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "Gzip", dependencies: ["CZlib"], swiftSettings: strict),
        // `osprey observe` output: compact, dict, table, json/jsonpb, as the hubble CLI prints them.
        .target(
            name: "FlowPrinter",
            dependencies: [
                "HubbleAPI", "HubbleWire", "Flows", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict),
        // Reaching and serving Hubble APIs: addresses (TCP, unix, tls://), TLS and mutual TLS
        // from PEM files, Go-style durations.
        .target(
            name: "HubbleTransport",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict + fuzzed),
        // --- The node ---
        // setns(2) needs _GNU_SOURCE, which Swift's Glibc import does not give.
        .target(name: "CNetns"),
        // posix_spawn's close-from action, a GNU extension too: the lab's programs start with
        // their three standard descriptors only.
        .target(name: "CSpawn"),
        // Run code or open sockets inside another network namespace.
        .target(name: "Netns", dependencies: ["CNetns"], swiftSettings: strict),
        // rtnetlink (links, namespace ids) and ctnetlink (conntrack lookups).
        .target(name: "Netlink", swiftSettings: strict),
        // libbpf from Debian's libbpf-dev.
        .systemLibrary(name: "CLibbpf", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        // The libbpf calls Swift cannot make itself (LIBBPF_OPTS structs, BTF walks).
        .target(
            name: "CBPFGlue", dependencies: ["CLibbpf", "CDatapathABI"],
            cSettings: [.headerSearchPath("../CDatapathABI")]),
        // Turns a file into a Swift byte array (the BPFCompiler and AssetEmbedder plugins use it).
        .executableTarget(name: "osprey-embed"),
        .plugin(name: "BPFCompiler", capability: .buildTool(), dependencies: ["osprey-embed"]),
        .plugin(name: "AssetEmbedder", capability: .buildTool(), dependencies: ["osprey-embed"]),
        // The eBPF programs (bpf/*.c), compiled and embedded at build time.
        .target(name: "DatapathBPF", exclude: ["bpf"], plugins: ["BPFCompiler"]),
        // Loads, attaches, detaches the programs and reads their maps.
        .target(
            name: "Datapath",
            dependencies: ["Locking", "DatapathBPF", "CBPFGlue", "CLibbpf", "CDatapathABI", "Netns", "Gzip"],
            swiftSettings: strict),
        // Node-level metrics (Retina names) from the datapath's maps and the kernel's counters.
        .target(
            name: "NodeMetrics",
            dependencies: ["Locking", "Datapath", "Netns", "Netlink", "PrometheusExposition", "Flows"],
            swiftSettings: strict),

        // Kubernetes API objects (trimmed to what Osprey reads and serves), watch events, status,
        // workload naming, and the conversion between them and the cluster inventory.
        .target(name: "KubernetesModel", dependencies: ["ClusterInventory"], swiftSettings: strict + fuzzed),

        // The web UI's service map: cards and edges from flows over a time window, their layout,
        // and Hubble UI's filter bar language (no server, no browser: unit-tested as is).
        .target(name: "ServiceMap", dependencies: ["Flows", "HubbleAPI", "HubbleWire"], swiftSettings: strict),

        // ===== Layer 3, services: what serves the Hubble API.
        // Serving gRPC services on listeners: grpc.health.v1, peer.Peer, server reflection.
        .target(
            name: "HubbleServer",
            dependencies: [
                "HubbleAPI", "HubbleTransport", "HubbleWire", .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict),
        // The agent's observer.Observer: Hubble's GetFlows semantics over its flow ring.
        .target(
            name: "HubbleObserver",
            dependencies: [
                "Observer", "Flows", "HubbleAPI", "HubbleWire", "FlowFilters", "HubbleServer",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict),

        // The agent's Kubernetes metadata source: kubeconfig and in-cluster access, list and watch
        // of Pods, Services, EndpointSlices, Nodes and Namespaces, the enricher's tables from them.
        .target(
            name: "KubernetesSource",
            dependencies: [
                "Locking",
                "KubernetesModel", "ClusterInventory", "Enricher", "Flows", "PrometheusExposition",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict),
        // A Kubernetes API endpoint (discovery, list, watch, Table, bearer tokens over TLS) for the
        // lab's objects: what kubectl and the lab's agents talk to. The project's one test double.
        .target(
            name: "KubernetesAPIServer",
            dependencies: [
                "Locking",
                "KubernetesModel", "ClusterInventory", "PrometheusExposition",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        // The web UI: its page and script (embedded from assets/), JSON endpoints and one
        // Server-Sent Events stream per tab, over any Hubble API server.
        .target(
            name: "WebUI",
            dependencies: [
                "Locking",
                "ServiceMap", "HubbleAPI", "HubbleWire", "HubbleTransport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["assets"], swiftSettings: strict, plugins: ["AssetEmbedder"]),
        // Flow logs on disk: Hubble's exporters (jsonpb lines, rotation, filters, field masks), the
        // static one from flags and dynamic ones from its flowlogs YAML config.
        .target(
            name: "FlowExport",
            dependencies: [
                "Locking",
                "Flows", "Observer", "HubbleAPI", "HubbleWire", "FlowFilters", "Gzip",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict),

        // ===== Layer 4, applications: each executable's parts, as libraries tests can drive.
        // osprey-agent: settings, runtime (its Services), interface watcher, HTTP endpoint.
        .target(
            name: "Agent",
            dependencies: [
                "Locking",
                "Datapath", "Netlink", "NodeMetrics", "Netns", "Flows", "FlowPipeline", "Enricher", "Observer",
                "FlowMetrics", "HubbleServer", "HubbleObserver", "HubbleWire", "HubbleTransport", "ClusterInventory",
                "PrometheusExposition", "FlowExport", "KubernetesSource",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict),
        // The lab: a Kubernetes-like cluster of network namespaces on one machine.
        .target(
            name: "Lab", dependencies: ["CSpawn", "ClusterInventory", "HubbleTransport", "KubernetesModel"],
            swiftSettings: strict
        ),
        // osprey-relay: peer discovery and health, the merged observer.Observer.
        .target(
            name: "Relay",
            dependencies: [
                "Locking",
                "HubbleAPI", "HubbleServer", "HubbleTransport", "HubbleWire", "FlowFilters", "WebUI", "Flows",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        // The `osprey` command line.
        .target(
            name: "OspreyCLI",
            dependencies: [
                "Lab", "ClusterInventory", "HubbleAPI", "HubbleWire", "HubbleServer", "HubbleTransport", "FlowFilters",
                "FlowPrinter", "Gzip", "WebUI", "KubernetesAPIServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict),

        // ===== Executables: thin mains.
        .executableTarget(name: "osprey-agent", dependencies: ["Agent"], swiftSettings: strict),
        .executableTarget(name: "osprey-relay", dependencies: ["Relay"], swiftSettings: strict),
        .executableTarget(name: "osprey", dependencies: ["OspreyCLI"], swiftSettings: strict),
        // `make bench`: the flow pipeline's throughput on one core, and a UDP flood for the datapath.
        .executableTarget(
            name: "osprey-bench",
            dependencies: [
                "Locking",
                "FlowPipeline", "FlowTestKit", "Observer", "ClusterInventory", "Enricher", "FlowMetrics",
                "CDatapathABI", "Netns", "FlowExport", "Flows", "Gzip", "HubbleWire", "ServiceMap", "HubbleAPI",
                "HubbleTransport", "HubbleObserver", "HubbleServer", "KubernetesAPIServer", "KubernetesModel",
                "FlowFilters",
                "KubernetesSource", "Lab", .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // `make fuzz`: every parser of untrusted bytes (FuzzTargets), driven by libFuzzer when
        // built with OSPREY_FUZZ=1 (see `fuzzed`); otherwise it writes the seed corpus.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "CDatapathABI", "ClusterInventory", "FlowDecoder", "FlowFilters", "Flows", "HubbleAPI",
                "HubbleTransport", "HubbleWire", "KubernetesModel",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict + fuzzed),
        .executableTarget(
            name: "osprey-fuzz", dependencies: ["FuzzTargets"], swiftSettings: strict + fuzzed,
            linkerSettings: fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"])] : []),

        // ===== Tests: one test target per source target it covers; kits shared by them.
        // Builders for stage tests without root or files: raw events, flows, in-memory metadata.
        // (Also the bench's: the same events it measures are the ones the tests decode.)
        .target(
            name: "FlowTestKit", dependencies: ["Flows", "CDatapathABI", "ClusterInventory", "Enricher", "HubbleAPI"],
            path: "Tests/FlowTestKit", swiftSettings: strict),
        // Helpers for tests on real labs: DNS probe, process runner, lab fixtures, eventually.
        .target(
            name: "TestSupport",
            dependencies: [
                "Lab", "Netns", "ClusterInventory", "FlowDecoder",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "LabTests", dependencies: ["Lab", "ClusterInventory"], swiftSettings: strict),
        .testTarget(name: "FuzzTargetsTests", dependencies: ["FuzzTargets"], swiftSettings: strict),
        .testTarget(
            name: "LabIntegrationTests", dependencies: ["Lab", "ClusterInventory", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "AgentIntegrationTests",
            dependencies: [
                "Locking", "Lab", "ClusterInventory", "TestSupport", "HubbleTransport", "Datapath", "Netns",
                "FlowDecoder",
            ],
            swiftSettings: strict),
        .testTarget(
            name: "NodeMetricsTests", dependencies: ["NodeMetrics", "Datapath", "Netlink", "PrometheusExposition"],
            swiftSettings: strict),
        .testTarget(name: "PrometheusExpositionTests", dependencies: ["PrometheusExposition"], swiftSettings: strict),
        .testTarget(
            name: "DatapathTests",
            dependencies: ["Datapath", "DatapathBPF", "CDatapathABI", "Gzip", "Locking", "Lab", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "FlowTests",
            dependencies: [
                "Locking",
                "Flows", "FlowDecoder", "Enricher", "Observer", "FlowMetrics", "FlowPipeline", "ClusterInventory",
                "FlowTestKit", "HubbleWire", "PrometheusExposition", "CDatapathABI",
            ],
            swiftSettings: strict),
        .testTarget(
            name: "HubbleWireTests",
            dependencies: [
                "HubbleAPI", "HubbleWire", "FlowFilters", "FlowPrinter", "Flows", "FlowTestKit", "HubbleTransport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "WebUITests",
            dependencies: [
                "Locking",
                "WebUI", "HubbleObserver", "HubbleServer", "Observer", "FlowTestKit", "Flows", "HubbleAPI",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "ServiceMapTests", dependencies: ["ServiceMap", "FlowTestKit", "Flows", "HubbleAPI", "HubbleWire"],
            swiftSettings: strict),
        .testTarget(
            name: "FlowExportTests",
            dependencies: [
                "Locking",
                "FlowExport", "Observer", "Flows", "FlowTestKit", "HubbleWire", "HubbleAPI", "Gzip",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "HubbleObserverTests",
            dependencies: [
                "HubbleAPI", "HubbleWire", "HubbleServer", "HubbleObserver", "HubbleTransport", "Flows", "Observer",
                "FlowTestKit", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "RelayTests",
            dependencies: [
                "Locking",
                "Relay", "HubbleAPI", "HubbleWire", "HubbleServer", "HubbleObserver", "HubbleTransport", "Flows",
                "Observer", "Lab", "FlowTestKit", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "KubernetesTests",
            dependencies: [
                "Locking",
                "KubernetesSource", "KubernetesAPIServer", "KubernetesModel", "ClusterInventory", "Enricher", "Flows",
                "Lab",
                "TestSupport", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Yams", package: "Yams"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "OspreyCLITests",
            dependencies: [
                "OspreyCLI", "TestSupport", "FlowTestKit", "FlowPrinter", "HubbleAPI", "HubbleWire", "Flows", "Lab",
            ],
            swiftSettings: strict),
    ]
)

/// `make test`'s sanitizer stages (scripts/sanitize.sh) build with OSPREY_SANITIZE=address or
/// thread: Osprey's own targets — sources, tests, executables — are instrumented and linked with
/// the sanitizer's runtime, in the plain debug build's own directory, so the dependencies (NIO,
/// grpc-swift, BoringSSL…) are compiled once for all three stages instead of once per stage
/// (`swift build --sanitize` instruments them too: 12 minutes a stage from clean, against 2–3).
/// The sanitizers still see every allocation (AddressSanitizer and the leak check intercept
/// malloc); what they no longer check is the dependencies' own code. The plugins' tool
/// (osprey-embed) stays plain.
if let sanitizer = Context.environment["OSPREY_SANITIZE"] {
    let instrumented: [Target.TargetType] = [.regular, .executable, .test]
    for target in package.targets where instrumented.contains(target.type) && target.name != "osprey-embed" {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-sanitize=\(sanitizer)"])]
        target.cSettings = (target.cSettings ?? []) + [.unsafeFlags(["-fsanitize=\(sanitizer)"])]
        target.linkerSettings = (target.linkerSettings ?? []) + [.unsafeFlags(["-sanitize=\(sanitizer)"])]
    }
}
