#!/usr/bin/env bash
# Connection churn: short HTTP connections (wrk, 16 connections, `Connection: close`: one TCP
# connection per request) from loadgen on node 1 to a frontend nginx on node 2 (across nodes)
# or on node 1 (same node), with osprey-agent on both nodes and without, the order alternating
# every round (only ratios within one run mean anything on this noisy machine). With the
# agents: their CPU per 10,000 connections/s, events lost, and whether every connection was
# reported (its SYN and its FINs in hubble_tcp_flags_total).
# Usage: scripts/bench-churn.sh [rounds] [seconds per run] [cross|same]   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
lab=ospchurn
source scripts/bench-lib.sh
lab_pair

without=() with=() cpu=() lost=() syn_ratio=() fin_ratio=()
measure_with_agents() {
  start_agents
  local t0=() t1=() pid
  local lost0 syn0 fin0 requests rate
  lost0=$(($(scrape 1 hubble_lost_events_total) + $(scrape 2 hubble_lost_events_total)))
  syn0=$(scrape 1 hubble_tcp_flags_total 'flag="SYN"')
  fin0=$(scrape 1 hubble_tcp_flags_total 'flag="FIN"')
  # The agents' CPU during the run only: rendering the scrapes above is not the churn's.
  for pid in $agent_pids; do t0+=("$(cpu_ticks "$pid")"); done
  read -r rate requests < <(churn)
  for pid in $agent_pids; do t1+=("$(cpu_ticks "$pid")"); done
  sleep 1 # the last poll's flows reach the metrics
  with+=("$rate")
  lost+=($(($(scrape 1 hubble_lost_events_total) + $(scrape 2 hubble_lost_events_total) - lost0)))
  # Node 1 sees each connection's SYN once: leaving loadgen across nodes; on one node, at the
  # default monitor aggregation, only entering frontend (each FIN likewise once).
  syn_ratio+=("$(echo "($(scrape 1 hubble_tcp_flags_total 'flag="SYN"') - $syn0) / $requests" | bc -l)")
  fin_ratio+=("$(echo "($(scrape 1 hubble_tcp_flags_total 'flag="FIN"') - $fin0) / $requests" | bc -l)")
  local ticks=$(((t1[0] - t0[0]) + (t1[1] - t0[1])))
  # Both agents' CPU (% of one core) per 10,000 connections/s.
  cpu+=("$(echo "$ticks * 100 / $hz / $seconds / ($rate / 10000)" | bc -l)")
  stop_agents
}
measure_without() { without+=("$(churn | awk '{print $1}')"); }
interleave requests/s

ratios=()
for i in "${!with[@]}"; do ratios+=("$(echo "${with[$i]} / ${without[$i]}" | bc -l)"); done
printf '\n| connection churn %s (wrk -c16, Connection: close), %d rounds of %d s | median |\n|---|---|\n' \
  "$where" "$rounds" "$seconds"
printf '| without osprey-agent | %.0f requests/s |\n| with osprey-agent on both nodes | %.0f requests/s |\n' \
  "$(median "${without[@]}")" "$(median "${with[@]}")"
read -r q1 q3 < <(quartiles "${ratios[@]}")
printf '| median of the rounds'"'"' ratios (goal ≥ 0.97); its 95 %% interval; middle half of the rounds | %.3f; %s; %.3f–%.3f |\n' \
  "$(median "${ratios[@]}")" "$(median_interval 3 "${ratios[@]}")" "$q1" "$q3"
printf '| both agents'"'"' CPU per 10,000 connections/s | %.1f %% of a core |\n' "$(median "${cpu[@]}")"
printf '| events lost, all rounds (goal 0) | %d |\n' "$(IFS=+; echo $((${lost[*]})))"
printf '| connections reported: SYN / FIN flows per request (lowest round; goal ≥ 1) | %.3f / %.3f |\n' \
  "$(printf '%s\n' "${syn_ratio[@]}" | sort -g | head -1)" "$(printf '%s\n' "${fin_ratio[@]}" | sort -g | head -1)"
pace_row
