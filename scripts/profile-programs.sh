#!/usr/bin/env bash
# Where the pod programs spend their time under connection churn: perf samples the whole machine
# while wrk runs (as scripts/bench-churn.sh), and each sample inside a pod program is attributed
# to the source line its JIT-compiled code came from (the kernel's line info, read by
# scripts/profile/jit-lines.c). Prints the programs' share of the busy samples and their most
# sampled lines. Needs perf and bpftool (Debian's linux-perf and bpftool) and the release build.
# Usage: scripts/profile-programs.sh [seconds] [cross|same] [osprey-agent]   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in perf bpftool; do
  if ! command -v "$tool" > /dev/null; then
    echo "scripts/profile-programs.sh needs $tool: apt-get install linux-perf bpftool" >&2
    exit 2
  fi
done
profile_seconds=${1:-10}
agent=${3:-}
lab=ospprof
set -- 1 $((profile_seconds + 4)) "${2:-same}"
source scripts/bench-lib.sh
work=$(mktemp -d /tmp/osp-profile.XXXXXX)
trap 'cleanup; rm -rf "$work"' EXIT
cc -O1 -o "$work/jit-lines" scripts/profile/jit-lines.c -lbpf
lab_pair
start_agents
churn > "$work/churn" &
churn_pid=$!
sleep 2
perf record -a -o "$work/perf.data" -- sleep "$profile_seconds" > /dev/null 2>&1
# The programs as loaded now (both nodes' agents load the same code: one's line table serves).
mkdir "$work/lines"
for program in osp_tc_pod osp_tc_pod_ingress osp_tc_pod_egress; do
  id=$(bpftool prog show name "$program" | awk -F: 'NR == 1 {print $1}')
  "$work/jit-lines" "$id" > "$work/lines/$program.lines"
done
wait "$churn_pid"
stop_agents
read -r rate _ < "$work/churn"
perf report -i "$work/perf.data" --sort sym --stdio 2> /dev/null | awk -v rate="$rate" -v where="$where" '
  /pv_native_safe_halt|default_idle|cpuidle/ {gsub("%", "", $1); idle += $1}
  /bpf_prog_[0-9a-f]+_osp_tc_pod/ {gsub("%", "", $1); programs += $1}
  END {printf "churn %s, %s requests/s: the pod programs took %.2f %% of the busy samples (%.2f %% of all)\n",
       where, rate, 100 * programs / (100 - idle), programs}'
perf script -i "$work/perf.data" -F ip,sym,symoff 2> /dev/null | python3 scripts/profile/attribute.py "$work/lines" 15 \
  Sources/DatapathBPF/bpf Sources/CDatapathABI
