#!/usr/bin/env bash
# The agent's Kubernetes source at cluster scale: the lab's API server in one process serving
# PODS pods and SERVICES Services (with their EndpointSlices) over TLS; the source in another,
# from start to a full cache (seconds, resident memory), then the flow pipeline on one core
# with that cache behind the enricher, against the 64-pod inventory in the same run.
# Usage: scripts/bench-kubernetes.sh [pods] [services]   (default 100000 pods, 10000 Services)
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${1:-100000}
services=${2:-10000}
bin=.build/release
dir=/tmp/osp-kube-bench
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2> /dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
rm -rf "$dir" && mkdir -p "$dir"
"$bin/osprey-bench" kube-server "$pods" "$services" "$dir" > "$dir/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 600); do [ -f "$dir/ready" ] && break; sleep 0.1; done
[ -f "$dir/ready" ] || { echo "the API server did not start: $(cat "$dir/server.out")" >&2; exit 1; }
printf '\n| Kubernetes source at scale (the server built its %d pods and %d Services in %s s) | result |\n|---|---|\n' \
  "$pods" "$services" "$(cat "$dir/ready")"
"$bin/osprey-bench" kube-sync "$dir/kubeconfig" "$pods" "$services"
