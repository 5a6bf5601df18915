#!/usr/bin/env bash
# Datapath benchmark: iperf3 TCP from loadgen on node 1 to a frontend pod on node 2 (across
# nodes) or on node 1 (same node), with osprey-agent running and without, interleaved in one
# invocation (this machine is noisy; only ratios within one run are meaningful). Also the
# agent's CPU and resident memory, idle and under that load.
# Usage: scripts/bench-datapath.sh [rounds] [seconds per run] [cross|same]   (as root; `make bench` runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
lab=ospbench
source scripts/bench-lib.sh
lab_pair
start_iperf_server

without=() with=() idle_cpu=() load_cpu=() idle_rss=() load_rss=()
measure_with_agents() {
  start_agents
  sender_agent=$(echo $agent_pids | awk '{print $1}')
  t0=$(cpu_ticks "$sender_agent")
  sleep "$seconds"
  t1=$(cpu_ticks "$sender_agent")
  idle_cpu+=("$(echo "($t1 - $t0) * 100 / $hz / $seconds" | bc -l)")
  idle_rss+=("$(rss_kib "$sender_agent")")
  t0=$(cpu_ticks "$sender_agent")
  with+=("$(throughput)")
  t1=$(cpu_ticks "$sender_agent")
  load_cpu+=("$(echo "($t1 - $t0) * 100 / $hz / $seconds" | bc -l)")
  load_rss+=("$(rss_kib "$sender_agent")")
  # Scrape once under the agent so the collectors' cost is part of the picture.
  ip netns exec "$lab-node-1" curl -s -o /dev/null localhost:9965/metrics
  stop_agents
}
measure_without() { without+=("$(throughput)"); }
interleave Mbit/s

m_without=$(median "${without[@]}")
m_with=$(median "${with[@]}")
printf '\n| iperf3 TCP pod→pod %s, %d interleaved rounds of %d s | median |\n|---|---|\n' "$where" "$rounds" "$seconds"
printf '| without osprey-agent | %.0f Mbit/s |\n| with osprey-agent on both nodes | %.0f Mbit/s |\n' "$m_without" "$m_with"
ratios=()
for i in "${!with[@]}"; do ratios+=("$(echo "${with[$i]} / ${without[$i]}" | bc -l)"); done
printf '| ratio of the medians with/without | %.3f |\n' "$(echo "$m_with / $m_without" | bc -l)"
read -r q1 q3 < <(quartiles "${ratios[@]}")
printf '| median of the rounds'"'"' ratios (each round pairs two neighbouring runs; goal ≥ 0.98); its 95 %% interval; middle half | %.3f; %s; %.3f–%.3f |\n' \
  "$(median "${ratios[@]}")" "$(median_interval 3 "${ratios[@]}")" "$q1" "$q3"
printf '| agent CPU, idle | %.1f %% of a core |\n| agent CPU, under load | %.1f %% of a core |\n' \
  "$(median "${idle_cpu[@]}")" "$(median "${load_cpu[@]}")"
printf '| agent RSS, idle | %.1f MiB |\n| agent RSS, under load | %.1f MiB |\n' \
  "$(echo "$(median "${idle_rss[@]}") / 1024" | bc -l)" "$(echo "$(median "${load_rss[@]}") / 1024" | bc -l)"
pace_row
