#!/usr/bin/env bash
# Kernel → user event path: a UDP flood between two pods of one node with the agent in
# per-packet mode, about 3 events per packet (leaving one pod, entering the other, dropped there
# for want of a socket). Reports the event rate the agent turned into flows and the events lost.
# Also the agent's resident memory once that flood has filled its flow ring.
# With SENDERS > 1, that many pods flood at once (PPS each): one sender tops out near 130,000
# packets/s here.
# Usage: scripts/bench-events.sh [packets per second] [seconds] [ring capacity] [senders]   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
pps=${1:-70000}
seconds=${2:-10}
capacity=${3:-4095}
senders=${4:-1}
bin=.build/release
lab=ospevts
cleanup() {
  [ -n "${agent:-}" ] && kill "$agent" 2> /dev/null || true
  "$bin/osprey" lab down --name "$lab" > /dev/null 2>&1 || true
}
trap cleanup EXIT
"$bin/osprey" lab down --name "$lab" > /dev/null
"$bin/osprey" lab up --name "$lab" --nodes 1 --no-agent --api-port 0 > /dev/null
for ns in $(ls /run/netns | grep -E "^$lab-shop-(loadgen|untrusted|checkout|reporter)"); do
  for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2> /dev/null || true; done
done
senders_ns=$(ls /run/netns | grep -E "^$lab-shop-(loadgen|checkout|untrusted|reporter)" | head -"$senders")
receiver=$(ls /run/netns | grep "^$lab-billing-ledger" | head -1)
target=$(ip -n "$receiver" -4 -br addr show dev eth0 | awk '{print $3}' | cut -d/ -f1)
ip netns exec "$lab-node-1" "$bin/osprey-agent" --node-name "$lab-node-1" --cluster "$lab" --uplink eth0 --per-packet-events \
  --flow-buffer-capacity "$capacity" --hubble-socket-path "/run/osprey/labs/$lab/bench-agent.sock" \
  > "/run/osprey/labs/$lab/bench-agent.log" 2>&1 &
agent=$!
for _ in $(seq 100); do ip netns exec "$lab-node-1" curl -sf -o /dev/null localhost:9965/healthz && break; sleep 0.1; done
scrape() {
  ip netns exec "$lab-node-1" curl -s localhost:9965/metrics | awk -v name="$1" '
    $1 ~ "^"name"[{]" { sum += $NF } END { printf "%.0f\n", sum }'
}
flows0=$(scrape hubble_flows_processed_total)
lost0=$(scrape hubble_lost_events_total)
sent=0
for sender in $senders_ns; do
  "$bin/osprey-bench" flood "$sender" "$target" 9 "$pps" "$seconds" > "/run/osprey/labs/$lab/flood-$sender" &
done
wait $(jobs -p | grep -v "^$agent$") 2> /dev/null || true
for sender in $senders_ns; do sent=$((sent + $(cat "/run/osprey/labs/$lab/flood-$sender"))); done
sleep 1
flows1=$(scrape hubble_flows_processed_total)
lost1=$(scrape hubble_lost_events_total)
events=$((flows1 - flows0))
printf '| kernel → user: UDP flood, %d sender(s) × %d packets/s for %d s (%d sent), per-packet events | %d events in, %.0f events/s |\n' \
  "$senders" "$pps" "$seconds" "$sent" "$events" "$(echo "$events / $seconds" | bc -l)"
printf '| events lost (goal 0) | %d (of about %d expected: 3 per packet sent, %d sent) |\n' \
  "$((lost1 - lost0))" "$((sent * 3))" "$sent"
# `ip netns exec` execs the agent: same PID.
printf '| agent resident memory with a full %d-flow ring | %.1f MiB |\n' "$capacity" \
  "$(awk '/VmRSS/ {print $2 / 1024}' "/proc/$agent/status")"
