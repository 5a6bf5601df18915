#!/usr/bin/env bash
# The pod programs' cost per run with hot caches (scripts/profile/program-cost.c: the release
# build's pod object, run by the kernel on one packet many times), beside which
# scripts/bench-programs.sh's cost per run under churn shows the share of memory: the lines of
# connections, the ring and packets that the caches no longer hold or another CPU wrote.
# Usage: scripts/bench-program-cost.sh [runs]   (as root, after `swift build -c release`)
set -euo pipefail
cd "$(dirname "$0")/.."
object=.build/release/osprey_DatapathBPF.resources/pod.bpf.o
if [ ! -f "$object" ]; then
  echo "scripts/bench-program-cost.sh needs the release build's $object: run swift build -c release --product osprey-agent" >&2
  exit 2
fi
work=$(mktemp -d /tmp/osp-program-cost.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O1 -I Sources/CDatapathABI -o "$work/program-cost" scripts/profile/program-cost.c -lbpf
"$work/program-cost" "$object" "${1:-10000}"
