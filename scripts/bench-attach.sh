#!/usr/bin/env bash
# How the tc programs hang on their hooks, measured: the same agent build attached as tcx links
# (the default on Linux 6.6+) and as cls_bpf filters (--disable-tcx), and no agent, in an order
# that rotates every round (one run: only ratios within it mean anything on this noisy machine).
# Each arm runs connection churn (wrk -c16, `Connection: close`) and then iperf3, from loadgen on
# node 1 to a frontend on node 2 (cross) or node 1 (same).
# Usage: scripts/bench-attach.sh [rounds] [seconds per run] [cross|same]   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
lab=osptcx
source scripts/bench-lib.sh
lab_pair
start_iperf_server

arms=(none filters links)
declare -A rps=() mbits=()
measure() { # arm round
  case $1 in
    filters) start_agents --disable-tcx ;;
    links) start_agents ;;
  esac
  if [ "$1" != none ] && ! grep -q "$([ "$1" = links ] && echo 'as tcx links' || echo 'as cls_bpf filters')" \
    "$state/bench-agent-1.log"; then
    echo "the $1 arm's agent did not attach that way; its log:" >&2
    cat "$state/bench-agent-1.log" >&2
    exit 1
  fi
  rps[$1,$2]=$(churn | awk '{print $1}')
  mbits[$1,$2]=$(throughput)
  [ "$1" = none ] || stop_agents
}
for round in $(seq "$rounds"); do
  for i in 0 1 2; do measure "${arms[$(((round + i) % 3))]}" "$round"; done
  echo "round $round ($placement): requests/s ${rps[none,$round]} / ${rps[filters,$round]} / ${rps[links,$round]}," \
    "Mbit/s ${mbits[none,$round]} / ${mbits[filters,$round]} / ${mbits[links,$round]} (none / filters / links)" >&2
done

printf '\n| tc programs attached %s, %d rounds of %d s each | churn requests/s | ratio to no agent | iperf3 Mbit/s | ratio to no agent |\n|---|---|---|---|---|\n' \
  "$where" "$rounds" "$seconds"
printf '| no agent | %.0f | | %.0f | |\n' "$(median_of rps none)" "$(median_of mbits none)"
printf '| cls_bpf filters (`--disable-tcx`) | %.0f | %.3f | %.0f | %.3f |\n' "$(median_of rps filters)" \
  "$(median_of rps filters none)" "$(median_of mbits filters)" "$(median_of mbits filters none)"
printf '| tcx links (the default) | %.0f | %.3f | %.0f | %.3f |\n' "$(median_of rps links)" \
  "$(median_of rps links none)" "$(median_of mbits links)" "$(median_of mbits links none)"
printf '| tcx links / cls_bpf filters (median of the rounds'"'"' ratios) | | %.3f | | %.3f |\n' \
  "$(median_of rps links filters)" "$(median_of mbits links filters)"
