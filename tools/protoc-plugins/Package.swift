// swift-tools-version:6.2
// Builds the protoc plugins that `make proto` uses to regenerate Sources/HubbleAPI.
// Not part of the main package: building swift-protobuf's plugin takes about ten minutes and the
// generated code is committed, so `make test` never needs it.
import PackageDescription

let package = Package(
    name: "osprey-protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
    ],
    targets: []
)
