// swift-tools-version: 6.2
// Osprey: network observability for Kubernetes. One target per stage; executables stay thin.
import PackageDescription

/// Our own targets build in Swift 6 mode with every warning an error (CI fails on warnings).
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "osprey",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "osprey", targets: ["osprey"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        // The cluster as the Kubernetes API would describe it: nodes, pods, services.
        .target(name: "ClusterInventory", swiftSettings: strict),
        // setns(2) needs _GNU_SOURCE, which Swift's Glibc import does not give.
        .target(name: "CNetns"),
        // Run code or open sockets inside another network namespace.
        .target(name: "Netns", dependencies: ["CNetns"], swiftSettings: strict),
        // The lab: a Kubernetes-like cluster of network namespaces on one machine.
        .target(name: "Lab", dependencies: ["ClusterInventory"], swiftSettings: strict),
        // The `osprey` command line (subcommands as a library so tests can parse them).
        .target(
            name: "OspreyCLI",
            dependencies: [
                "Lab", "ClusterInventory",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        .executableTarget(name: "osprey", dependencies: ["OspreyCLI"], swiftSettings: strict),

        // Helpers shared by test targets: DNS probe, process runner, lab fixtures.
        .target(
            name: "TestSupport", dependencies: ["Lab", "Netns", "ClusterInventory"],
            path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "LabTests", dependencies: ["Lab", "ClusterInventory"], swiftSettings: strict),
        .testTarget(
            name: "LabIntegrationTests", dependencies: ["Lab", "ClusterInventory", "TestSupport"],
            swiftSettings: strict),
        .testTarget(name: "OspreyCLITests", dependencies: ["OspreyCLI", "TestSupport"], swiftSettings: strict),
    ]
)
