#!/usr/bin/env bash
# Live flows: how long a flow takes from its packet to a client following GetFlows, straight
# from an agent and through osprey-relay (which merges every node's flows in time order), on a
# 2-node lab with its usual traffic, then under connection churn (wrk from loadgen on node 1
# to a frontend on node 2). p50/p99/max per client (osprey-bench latency).
# Usage: scripts/bench-latency.sh [seconds per measurement]   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
bin=.build/release
lab=osplat
state=/run/osprey/labs/$lab
cleanup() {
  [ -n "${load:-}" ] && kill "$load" 2> /dev/null || true
  "$bin/osprey" lab down --name "$lab" > /dev/null 2>&1 || true
}
trap cleanup EXIT
"$bin/osprey" lab down --name "$lab" > /dev/null
"$bin/osprey" lab up --name "$lab" --nodes 2 --relay-port 0 --ui-port 0 --api-port 0 > /dev/null
sleep 3
relay="unix://$state/relay.sock"
agent="unix://$state/nodes/$lab-node-1/hubble.sock"

measure() { # both clients at once, for $seconds
  "$bin/osprey-bench" latency "$agent" "$seconds" "agent (node 1), $1" > "$state/latency-agent" &
  local first=$!
  "$bin/osprey-bench" latency "$relay" "$seconds" "relay (both nodes), $1" > "$state/latency-relay"
  wait "$first"
  cat "$state/latency-agent" "$state/latency-relay"
}
printf '\n| packet → client, %d s each | flows | p50 | p99 | max |\n|---|---|---|---|---|\n' "$seconds"
measure "the lab's traffic"
read -r client_ns _ < <(scripts/lab-pod.sh "$lab" shop loadgen 1)
read -r _ server_ip < <(scripts/lab-pod.sh "$lab" shop frontend 2)
ip netns exec "$client_ns" wrk -t1 -c16 -d"$((seconds + 5))s" -H 'Connection: close' "http://$server_ip/" \
  > /dev/null 2>&1 &
load=$!
sleep 2
measure "under connection churn"
