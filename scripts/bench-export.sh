#!/usr/bin/env bash
# Flow logs under load: the lab's traffic plus a UDP flood (per-packet events, about 3 per
# packet: ~200k events/s at 67k packets/s) for 60 s into an agent writing every flow to a flow
# log rotated every 1 MB (all backups kept). Then: every line of every file must be one whole
# JSON object, and flow lines written + flows the exporter counted as lost = flows the observer
# saw (hubble_flows_processed_total).
# Usage: scripts/bench-export.sh [packets per second] [seconds]   (as root, release build)
set -euo pipefail
cd "$(dirname "$0")/.."
pps=${1:-67000}
seconds=${2:-60}
bin=.build/release
lab=ospexpt
logs=/var/tmp/osp-bench-export
cleanup() {
  [ -n "${agent:-}" ] && kill "$agent" 2> /dev/null || true
  "$bin/osprey" lab down --name "$lab" > /dev/null 2>&1 || true
  rm -rf "$logs"
}
trap cleanup EXIT
"$bin/osprey" lab down --name "$lab" > /dev/null
rm -rf "$logs" && mkdir -p "$logs"
"$bin/osprey" lab up --name "$lab" --nodes 1 --no-agent --api-port 0 > /dev/null
sender=$(ls /run/netns | grep "^$lab-shop-loadgen" | head -1)
receiver=$(ls /run/netns | grep "^$lab-billing-ledger" | head -1)
target=$(ip -n "$receiver" -4 -br addr show dev eth0 | awk '{print $3}' | cut -d/ -f1)
ip netns exec "$lab-node-1" "$bin/osprey-agent" --node-name "$lab-node-1" --cluster "$lab" --uplink eth0 --per-packet-events \
  --inventory "/run/osprey/labs/$lab/inventory.json" --hubble-socket-path "/run/osprey/labs/$lab/bench-agent.sock" \
  --export-file-path "$logs/flows.log" --export-file-max-size-mb 1 --export-file-max-backups 0 \
  > "/run/osprey/labs/$lab/bench-agent.log" 2>&1 &
agent=$!
for _ in $(seq 100); do ip netns exec "$lab-node-1" curl -sf -o /dev/null localhost:9965/healthz && break; sleep 0.1; done
scrape() {
  ip netns exec "$lab-node-1" curl -s localhost:9965/metrics | awk -v name="$1" -v filter="${2:-}" '
    $1 ~ "^"name"[{]" && (filter == "" || index($1, filter)) { sum += $NF } END { printf "%.0f\n", sum }'
}
sent=$("$bin/osprey-bench" flood "$sender" "$target" 9 "$pps" "$seconds")
# Quiet the lab (its pods' processes) so that nothing reaches the observer after the count.
for ns in $(ls /run/netns | grep "^$lab-" | grep -v "node-"); do
  for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2> /dev/null || true; done
done
# Wait until the observer has seen its last flow (the same count 2 s apart), then count.
seen=$(scrape hubble_flows_processed_total)
for _ in $(seq 10); do
  sleep 2
  now=$(scrape hubble_flows_processed_total)
  [ "$now" = "$seen" ] && break
  seen=$now
done
kernel_lost=$(scrape hubble_lost_events_total 'source="perf_event_ring_buffer"')
lost=$(scrape osprey_agent_export_lost_total)
errors=$(scrape osprey_agent_export_errors_total)
rotations=$(scrape osprey_agent_export_rotations_total)
kill -TERM "$agent"
wait "$agent" 2> /dev/null || true
agent=
read -r files lines flows recorded bad < <("$bin/osprey-bench" verify-flowlogs "$logs")
bytes=$(du -sb "$logs" | cut -f1)
printf '| flow logs under the lab'"'"'s traffic + a UDP flood of %d packets/s (%d sent) for %d s, per-packet events, rotation every 1 MB | %d flows seen (%.0f/s), %d lost before the observer (kernel ring) |\n' \
  "$pps" "$sent" "$seconds" "$seen" "$(echo "$seen / $seconds" | bc -l)" "$kernel_lost"
printf '| … written | %d files (%d rotations), %d lines, %.1f GB; lines not whole JSON: %d |\n' \
  "$files" "$rotations" "$lines" "$(echo "$bytes / 1000000000" | bc -l)" "$bad"
printf '| … accounted for | %d flow lines + %d counted lost = %d of %d flows seen (lost-events records in the files: %d; write errors: %d) |\n' \
  "$flows" "$lost" "$((flows + lost))" "$seen" "$recorded" "$errors"
