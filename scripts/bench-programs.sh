#!/usr/bin/env bash
# The eBPF programs' own cost under connection churn (wrk, 16 connections, `Connection: close`,
# as scripts/bench-churn.sh), from the kernel's run statistics as the agents export them
# (osprey_agent_bpf_program_runs_total / _run_seconds_total, both nodes summed): per program,
# runs per request, nanoseconds per run and per request. The statistics are on only during this
# benchmark (they cost each run two clock reads, so they stay off in bench-churn.sh).
# Usage: scripts/bench-programs.sh [rounds] [seconds per run] [cross|same]   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
lab=ospprog
source scripts/bench-lib.sh
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -q kernel.bpf_stats_enabled="$stats_before"; cleanup' EXIT
lab_pair
sysctl -q kernel.bpf_stats_enabled=1

programs=(osp_tc_pod_ingress osp_tc_pod_egress osp_kfree_skb osp_tcp_retransmit_skb)
declare -A per_request ns_per_run ns_per_request
rates=()
for round in $(seq "$rounds"); do
  start_agents
  before=$(program_totals)
  read -r rate requests < <(churn)
  after=$(program_totals)
  rates+=("$rate")
  summary=""
  for program in "${programs[@]}"; do
    read -r runs0 seconds0 < <(awk -v p="$program" '$1 == p { print $2, $3 }' <<< "$before")
    read -r runs1 seconds1 < <(awk -v p="$program" '$1 == p { print $2, $3 }' <<< "$after")
    runs=$((runs1 - runs0))
    ns=$(echo "($seconds1 - $seconds0) * 1000000000" | bc -l)
    per_request[$program]+=" $(echo "$runs / $requests" | bc -l)"
    ns_per_request[$program]+=" $(echo "$ns / $requests" | bc -l)"
    [ "$runs" -gt 0 ] && ns_per_run[$program]+=" $(echo "$ns / $runs" | bc -l)"
    summary+=" $program $(printf '%.0f' "$(echo "$ns / $requests" | bc -l)") ns/request;"
  done
  stop_agents
  echo "round $round ($placement): $rate requests/s;$summary" >&2
done

printf '\n| eBPF programs under connection churn %s (wrk -c16, Connection: close), %d rounds of %d s, kernel run statistics on (%.0f requests/s) | runs per request | ns per run | ns per request |\n|---|---|---|---|\n' \
  "$where" "$rounds" "$seconds" "$(median "${rates[@]}")"
total=()
for program in "${programs[@]}"; do
  # shellcheck disable=SC2086
  printf '| %s | %.2f | %s | %.0f |\n' "$program" "$(median ${per_request[$program]})" \
    "$([ -n "${ns_per_run[$program]:-}" ] && printf '%.0f' "$(median ${ns_per_run[$program]})" || echo -)" \
    "$(median ${ns_per_request[$program]})"
done
# shellcheck disable=SC2086
printf '| all, per request | | | %.0f |\n' "$(for program in "${programs[@]}"; do median ${ns_per_request[$program]}; done | awk '{s += $1} END {print s}')"
