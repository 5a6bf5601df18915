#!/usr/bin/env bash
# Soak: a 2-node lab (agents, relay, Prometheus scraping, the shop's own traffic) plus a UDP
# flood of about 100,000 events/s into node 1's agent, with a follow client on the relay, for
# MINUTES. Every 10 s it samples each agent's and the relay's resident memory, open file
# descriptors and threads, the flows processed, the events lost (by where they were lost), the
# flows the follower got and Prometheus's healthy targets into a CSV; at the end it summarises
# growth after the warm-up (the first sixth of the run, at most 10 minutes).
# Usage: scripts/soak.sh [minutes] [flood packets/s]   (as root; `make soak` builds first)
# The agents run with --per-packet-events: about 3 events per flood packet (leaving one pod,
# entering the other, dropped there for want of a socket), so 33,000 packets/s ≈ 100,000 events/s.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
pps=${2:-33000}
bin=.build/release
lab=ospsoak
state=/run/osprey/labs/$lab
out=.build/soak
csv=$out/soak.csv
mkdir -p "$out"
rm -f "$out/follower.count"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  "$bin/osprey" lab down --name "$lab" > /dev/null 2>&1 || true
}
trap cleanup EXIT

"$bin/osprey" lab down --name "$lab" > /dev/null
prometheus_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/osprey" lab up --name "$lab" --nodes 2 --relay-port 0 --ui-port 0 --api-port 0 \
  --prometheus-rules deploy/prometheus/osprey-alerts.yaml --prometheus-port "$prometheus_port" \
  --agent-argument=--per-packet-events > "$out/lab-up.txt"

agent_pid() { cat "$state/nodes/$lab-node-$1/osprey-agent.pid.osprey"; }
relay_pid=$(cat "$state/relay/osprey-relay.pid.osprey")
# The flood: from another pod of the ledger's node to the ledger, on a port nothing listens on.
read -r sender_ns receiver_ip flood_node < <(python3 - "$state/inventory.json" <<'PY'
import json, sys
pods = json.load(open(sys.argv[1]))["pods"]
ledger = next(p for p in pods if p["namespace"] == "billing" and p["workload"]["name"] == "ledger")
others = [p for p in pods if p["node"] == ledger["node"] and p["name"] != ledger["name"]]
sender = next((p for p in others if p["namespace"] != "shop"), others[0])
print(sender["netns"], ledger["ips"][0], ledger["node"])
PY
)

# The follower: the kube-system namespace's flows (DNS to CoreDNS) from every node through
# the relay (not the flood, which no terminal could print), counted, never stored.
"$bin/osprey" observe --server "unix://$state/relay.sock" -f --namespace kube-system -o compact 2> "$out/follower.err" |
  awk -v file="$out/follower.count" '{ n++ } n % 100 == 0 { print n > file; close(file) }' &
pids+=($!)
seconds=$((minutes * 60))
"$bin/osprey-bench" flood "$sender_ns" "$receiver_ip" 9 "$pps" "$seconds" > "$out/flood.sent" &
pids+=($!)

rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
threads() { awk '/Threads/ {print $2}' "/proc/$1/status"; }
# Sum of a metric over both agents, optionally only samples whose labels contain $2.
metric() {
  for node in 1 2; do ip netns exec "$lab-node-$node" curl -s localhost:9965/metrics; done |
    awk -v name="$1" -v match_="${2:-}" '$1 ~ "^"name"([{]|$)" && index($1, match_) { sum += $NF } END { printf "%.0f", sum }'
}
prometheus_up() {
  curl -s "http://127.0.0.1:$prometheus_port/api/v1/query?query=sum(up)" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)'
}

echo "seconds,agent1_rss_mib,agent1_fds,agent1_threads,agent2_rss_mib,agent2_fds,agent2_threads,relay_rss_mib,relay_fds,relay_threads,flows_processed,lost_perf_ring,lost_observer_queue,lost_hubble_ring,follower_flows,prometheus_targets_up" > "$csv"
start=$(date +%s)
while :; do
  now=$(($(date +%s) - start))
  a1=$(agent_pid 1)
  a2=$(agent_pid 2)
  echo "$now,$(rss "$a1"),$(fds "$a1"),$(threads "$a1"),$(rss "$a2"),$(fds "$a2"),$(threads "$a2"),$(rss "$relay_pid"),$(fds "$relay_pid"),$(threads "$relay_pid"),$(metric hubble_flows_processed_total),$(metric hubble_lost_events_total perf_event_ring_buffer),$(metric hubble_lost_events_total observer_events_queue),$(metric hubble_lost_events_total hubble_ring_buffer),$(cat "$out/follower.count" 2> /dev/null || echo 0),$(prometheus_up)" >> "$csv"
  [ "$now" -ge "$seconds" ] && break
  sleep 10
done
sent=$(cat "$out/flood.sent" 2> /dev/null || echo 0)
python3 scripts/soak-summary.py "$csv" "$sent" "$pps" "$flood_node" | tee "$out/summary.md"
