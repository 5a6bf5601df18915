#!/usr/bin/env bash
# What the hooks alone cost under connection churn: programs that return at once, attached as tcx
# links on the ingress and egress of every pod veth of both nodes as the agent's are
# (scripts/hooks/empty-hooks.c), with no agent running; against no hooks and against the full
# agents, in an order that rotates every round (one run: only ratios within it mean anything on
# this noisy machine). Run statistics stay off. Churn: wrk -c16, `Connection: close`, from
# loadgen on node 1 to a frontend on node 2 (cross) or node 1 (same).
# Usage: scripts/bench-hooks.sh [rounds] [seconds per run] [cross|same]   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
lab=osphooks
source scripts/bench-lib.sh
tool=$(mktemp -d /tmp/osp-hooks.XXXXXX)
hook_pids=""
trap 'for pid in $hook_pids; do kill "$pid" 2> /dev/null || true; done; rm -rf "$tool"; cleanup' EXIT
cc -O1 -o "$tool/empty-hooks" scripts/hooks/empty-hooks.c -lbpf
lab_pair

# The pod veths of node N: its veths but the uplink.
pod_veths() { ip -n "$lab-node-$1" -o link show type veth | awk -F': ' '{sub(/@.*/, "", $2); if ($2 != "eth0") print $2}'; }

arms=(none hooks agents)
declare -A rps=()
measure() { # arm round
  case $1 in
    hooks)
      for node in 1 2; do
        # shellcheck disable=SC2046
        ip netns exec "$lab-node-$node" "$tool/empty-hooks" $(pod_veths "$node") &
        hook_pids="$hook_pids $!"
      done
      sleep 1
      for pid in $hook_pids; do kill -0 "$pid"; done ;; # both attached and holding their links
    agents) start_agents ;;
  esac
  rps[$1,$2]=$(churn | awk '{print $1}')
  case $1 in
    hooks)
      for pid in $hook_pids; do kill "$pid"; done
      for pid in $hook_pids; do wait "$pid"; done
      hook_pids="" ;;
    agents) stop_agents ;;
  esac
}
for round in $(seq "$rounds"); do
  for i in 0 1 2; do measure "${arms[$(((round + i) % 3))]}" "$round"; done
  echo "round $round ($placement): requests/s ${rps[none,$round]} / ${rps[hooks,$round]} / ${rps[agents,$round]} (none / empty hooks / agents)" >&2
done

row() { # label arm divisor
  # shellcheck disable=SC2046
  printf '| %s | %.3f | %s |\n' "$1" "$(median_of rps "$2" "$3")" "$(median_interval 3 $(per_round rps "$2" "$3"))"
}
printf '\n| churn %s, %d rounds of %d s | median of the rounds'"'"' ratios | 95 %% interval |\n|---|---|---|\n' \
  "$where" "$rounds" "$seconds"
row "empty programs on every pod veth (no agent) / no hooks" hooks none
row "the agents / no hooks" agents none
row "the agents / empty programs" agents hooks
printf '| requests/s, median: no hooks / empty hooks / agents | %.0f / %.0f / %.0f | |\n' \
  "$(median_of rps none)" "$(median_of rps hooks)" "$(median_of rps agents)"
pace_row 1
