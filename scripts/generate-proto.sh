#!/usr/bin/env bash
# `make proto`: regenerate Sources/HubbleAPI from proto/ with swift-protobuf and grpc-swift-2.
# The generated Swift is committed; `make test` never runs this (the plugins take minutes to build).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v protoc >/dev/null || [ ! -f /usr/include/google/protobuf/timestamp.proto ]; then
    echo "Installing protoc and the well-known protos (protobuf-compiler, libprotobuf-dev)…"
    apt-get install -y -q protobuf-compiler libprotobuf-dev >/dev/null
fi

plugins=tools/protoc-plugins
swift build -c release --package-path "$plugins" --product protoc-gen-swift
swift build -c release --package-path "$plugins" --product protoc-gen-grpc-swift-2
bin="$(swift build -c release --package-path "$plugins" --show-bin-path)"

out=Sources/HubbleAPI
mkdir -p "$out"
find "$out" \( -name '*.pb.swift' -o -name '*.grpc.swift' \) -delete
protos=(flow/flow.proto observer/observer.proto peer/peer.proto relay/relay.proto grpc/health/v1/health.proto
    osprey/extensions.proto)
services=(observer/observer.proto peer/peer.proto grpc/health/v1/health.proto)
protoc -I proto -I /usr/include --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --swift_out="$out" --swift_opt=Visibility=Public "${protos[@]}"
protoc -I proto -I /usr/include --plugin=protoc-gen-grpc-swift="$bin/protoc-gen-grpc-swift-2" \
    --grpc-swift_out="$out" --grpc-swift_opt=Visibility=Public,Client=true,Server=true "${services[@]}"
echo "Generated $(find "$out" -name '*.swift' | wc -l) files in $out"
