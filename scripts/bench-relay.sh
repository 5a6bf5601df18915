#!/usr/bin/env bash
# The relay at cluster scale: N simulated agents (osprey-bench agents: Hubble servers in one
# process, fed RATE flows/s in all, with progress marks) behind one osprey-relay process, and
# one client following GetFlows through it (osprey-bench latency, which reads each response's
# kind and time as the relay does; CLIENT=wire (default) reads HTTP/2 and gRPC framing itself on
# one thread, CLIENT=grpc is grpc-swift's client, as `osprey observe`). Per N: flows/s delivered to the client, packet → client
# p50/p99, the relay's CPU and resident memory. Everything shares this machine's 2 cores.
# AGENTS chooses what the simulated agents serve (see Sources/osprey-bench/SimulatedAgents.swift):
# batches (default: osprey.v1.FlowBatches, as Osprey's agents), getflows (Hubble's GetFlows, one
# message per flow, as Cilium's) or observer (the real agent server, ring and encoding included).
# Usage: [AGENTS=batches] [CLIENT=wire] scripts/bench-relay.sh [seconds] [rate] [N...]   (default 15 s, 500000 flows/s, N = 10 50 200)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
rate=${2:-500000}
shift $(($# > 2 ? 2 : $#))
sizes=("${@:-10 50 200}")
agents=${AGENTS:-batches}
client=${CLIENT:-wire}
read -r -a sizes <<< "${sizes[*]}"
bin=.build/release
dir=/tmp/osp-relay-bench
cleanup() {
  for pid in ${agents_pid:-} ${relay_pid:-}; do kill "$pid" 2> /dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)
printf '\n| relay, N agents (%s) fed %d flows/s in all, one follow client (%s), %d s | delivered | p50 | p99 | max | relay CPU | relay RSS |\n|---|---|---|---|---|---|---|\n' \
  "$agents" "$rate" "$client" "$seconds"
for n in "${sizes[@]}"; do
  rm -rf "$dir" && mkdir -p "$dir"
  "$bin/osprey-bench" agents "$n" "$rate" "$dir" $((seconds + 15)) "$agents" > "$dir/agents.out" &
  agents_pid=$!
  for _ in $(seq 100); do [ -S "$dir/agent-$((n - 1)).sock" ] && break; sleep 0.1; done
  peers=$(for i in $(seq 0 $((n - 1))); do printf 'osp-sim-%d=unix://%s/agent-%d.sock,' "$i" "$dir" "$i"; done)
  "$bin/osprey-relay" --peers "${peers%,}" --listen-address "unix://$dir/relay.sock" --ui-listen-address "" \
    --log-level error > "$dir/relay.log" 2>&1 &
  relay_pid=$!
  for _ in $(seq 100); do [ -S "$dir/relay.sock" ] && break; sleep 0.1; done
  sleep 3 # every agent passes its health check
  t0=$(awk '{print $14 + $15}' "/proc/$relay_pid/stat")
  row=$("$bin/osprey-bench" latency "unix://$dir/relay.sock" "$seconds" "N = $n" "$client")
  t1=$(awk '{print $14 + $15}' "/proc/$relay_pid/stat")
  rss=$(awk '/VmRSS/ {print $2 / 1024}' "/proc/$relay_pid/status")
  printf '%s %.0f %% of a core | %.1f MiB |\n' "$row" "$(echo "($t1 - $t0) * 100 / $hz / $seconds" | bc -l)" "$rss"
  kill "$relay_pid" "$agents_pid" 2> /dev/null || true
  wait "$relay_pid" "$agents_pid" 2> /dev/null || true
  relay_pid="" agents_pid=""
done
