#!/usr/bin/env bash
# Two osprey-agent builds against each other and against no agent, in one run whose order
# rotates every round (only ratios within one run mean anything on this noisy machine): the way
# to judge a datapath or pipeline change. Each arm runs connection churn (wrk -c16,
# `Connection: close`, as scripts/bench-churn.sh), then iperf3; for A and B also, during the
# churn, the pod programs' time per request from the kernel's run statistics (on for the whole
# run: they cost each program run two clock reads, the same for A and B; the arm without agents
# runs no program, so A and B against it read about two points lower than scripts/bench-churn.sh
# (0.911 against 0.934 in one hour of 2026-12-03), which leaves them off) and both agents' CPU
# per 10,000 connections/s.
# Usage: scripts/bench-ab.sh AGENT_A AGENT_B [rounds] [seconds per run] [cross|same]   (as root)
# e.g. copy .build/release/osprey-agent to /tmp/agent-a before a change, build, and compare it
# with .build/release/osprey-agent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
  echo "usage: scripts/bench-ab.sh AGENT_A AGENT_B [rounds] [seconds per run] [cross|same]: two osprey-agent executables" >&2
  exit 2
fi
declare -A builds=([A]="$(realpath "$1")" [B]="$(realpath "$2")")
shift 2
lab=ospab
source scripts/bench-lib.sh
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -q kernel.bpf_stats_enabled="$stats_before"; cleanup' EXIT
lab_pair
start_iperf_server
sysctl -q kernel.bpf_stats_enabled=1

declare -A rps=() mbits=() program_ns=() cpu=()
# The pod programs' nanoseconds, both nodes summed, from program_totals output.
pod_seconds() { awk '$1 ~ /^osp_tc_pod_/ {s += $3} END {printf "%.9f\n", s}' <<< "$1"; }
measure() { # arm round
  local arm=$1 round=$2 rate requests
  if [ "$arm" = none ]; then
    read -r rate requests < <(churn)
    rps[none,$round]=$rate
    mbits[none,$round]=$(throughput)
    return
  fi
  agent=${builds[$arm]} start_agents
  local before after t0=() t1=() pid
  before=$(program_totals)
  for pid in $agent_pids; do t0+=("$(cpu_ticks "$pid")"); done
  read -r rate requests < <(churn)
  for pid in $agent_pids; do t1+=("$(cpu_ticks "$pid")"); done
  after=$(program_totals)
  mbits[$arm,$round]=$(throughput)
  stop_agents
  rps[$arm,$round]=$rate
  program_ns[$arm,$round]=$(echo "($(pod_seconds "$after") - $(pod_seconds "$before")) * 1000000000 / $requests" | bc -l)
  cpu[$arm,$round]=$(echo "$(((t1[0] - t0[0]) + (t1[1] - t0[1]))) * 100 / $hz / $seconds / ($rate / 10000)" | bc -l)
}
arms=(none A B)
for round in $(seq "$rounds"); do
  for i in 0 1 2; do measure "${arms[$(((round + i) % 3))]}" "$round"; done
  printf 'round %d (%s): requests/s %.0f / %.0f / %.0f, Mbit/s %.0f / %.0f / %.0f (none / A / B); pod programs %.0f / %.0f ns per request; CPU %.2f / %.2f %% of a core per 10,000 connections/s\n' \
    "$round" "$placement" "${rps[none,$round]}" "${rps[A,$round]}" "${rps[B,$round]}" \
    "${mbits[none,$round]}" "${mbits[A,$round]}" "${mbits[B,$round]}" \
    "${program_ns[A,$round]}" "${program_ns[B,$round]}" "${cpu[A,$round]}" "${cpu[B,$round]}" >&2
done

# row LABEL DECIMALS VALUES...: median; its 95 % interval.
row() {
  local label=$1 decimals=$2
  shift 2
  printf "| %s | %.${decimals}f | %s |\n" "$label" "$(median "$@")" "$(median_interval "$decimals" "$@")"
}
printf '\n| A: %s, B: %s; %s, %d rounds of %d s per run, run statistics on | median of the rounds | its 95 %% interval |\n|---|---|---|\n' \
  "${builds[A]}" "${builds[B]}" "$where" "$rounds" "$seconds"
# shellcheck disable=SC2046
{
  row "churn requests/s, A / no agent" 3 $(per_round rps A none)
  row "churn requests/s, B / no agent" 3 $(per_round rps B none)
  row "churn requests/s, B / A" 3 $(per_round rps B A)
  row "iperf3 Mbit/s, A / no agent" 3 $(per_round mbits A none)
  row "iperf3 Mbit/s, B / no agent" 3 $(per_round mbits B none)
  row "iperf3 Mbit/s, B / A" 3 $(per_round mbits B A)
  row "pod programs, ns per request, A" 0 $(per_round program_ns A)
  row "pod programs, ns per request, B" 0 $(per_round program_ns B)
  row "agents' CPU per 10,000 connections/s, % of a core, A" 2 $(per_round cpu A)
  row "agents' CPU per 10,000 connections/s, % of a core, B" 2 $(per_round cpu B)
  pace_row 1
}
