# Shared by the datapath benchmarks (sourced after `set -- "$@"`): a 2-node lab without agents,
# the agents started and stopped between runs, pods picked by node, medians. Expects $lab; reads
# the benchmark's arguments [rounds] [seconds per run] [cross|same].
rounds=${1:-5}
seconds=${2:-5}
placement=${3:-cross}
bin=.build/release
state=/run/osprey/labs/$lab
hz=$(getconf CLK_TCK)

# How fast this machine runs at the moment: seconds of a shell loop of a million iterations.
# About 0.6 s in calm hours here; at times the host's neighbours make it two to four times
# slower, and the agents' CPU per connection and the overhead ratios worsen with it. The
# benchmarks print it from their start and end beside their figures, so a figure can be
# judged by its hour.
machine_pace() {
  local TIMEFORMAT=%R
  { time bash -c 'for i in $(seq 1000000); do :; done'; } 2>&1
}
pace_at_start=$(machine_pace)
# The table row: the pace at the start and now (then empty cells for a wider table: pace_row 1).
pace_row() {
  printf '| machine pace: a shell loop of 10^6 iterations at the start / end (about 0.6 s when calm) | %s / %s s |' \
    "$pace_at_start" "$(machine_pace)"
  for _ in $(seq "${1:-0}"); do printf ' |'; done
  echo
}

cleanup() {
  for pid in ${agent_pids:-} ${server_pid:-}; do kill "$pid" 2> /dev/null || true; done
  "$bin/osprey" lab down --name "$lab" > /dev/null 2>&1 || true
}
trap cleanup EXIT

# A 2-node lab with only the benchmark's traffic: the shop's own clients are stopped. Nothing
# on the host's loopback (`--api-port 0`; no relay, UI or Prometheus without agents), so that it
# starts beside the demo lab (whose traffic then shares the two cores: figures taken so are noisier).
quiet_lab() {
  "$bin/osprey" lab down --name "$lab" > /dev/null
  "$bin/osprey" lab up --name "$lab" --nodes 2 --no-agent --api-port 0 > /dev/null
  for ns in $(ls /run/netns | grep -E "^$lab-shop-(loadgen|untrusted|checkout|reporter)"); do
    for pid in $(ip netns pids "$ns"); do kill -9 "$pid" 2> /dev/null || true; done
  done
}

# "NETNS IP" of the NAMESPACE/WORKLOAD pod on node N.
pod_on() { scripts/lab-pod.sh "$lab" "$1" "$2" "$3"; }

# The quiet lab, and the pair measured: loadgen on node 1 (client_ns) and a frontend pod
# (server_ns, server_ip) on node 2, or on node 1 with placement "same".
lab_pair() {
  quiet_lab
  where=$([ "$placement" = same ] && echo "on one node" || echo "across nodes")
  read -r server_ns server_ip < <(pod_on shop frontend "$([ "$placement" = same ] && echo 1 || echo 2)")
  read -r client_ns _ < <(pod_on shop loadgen 1)
}

# An iperf3 server in the measured server pod (cleanup stops it).
start_iperf_server() {
  ip netns exec "$server_ns" iperf3 -s > /dev/null 2>&1 &
  server_pid=$!
  sleep 0.5
}

# One iperf3 run: Mbit/s received by the server.
throughput() {
  ip netns exec "$client_ns" iperf3 -c "$server_ip" -t "$seconds" -f m \
    | awk '/receiver/ {for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") print $(i - 1)}'
}

# One churn run (wrk, 16 connections, `Connection: close`: a TCP connection per request): "requests/s requests".
churn() {
  ip netns exec "$client_ns" wrk -t1 -c16 -d"${seconds}s" -H 'Connection: close' "http://$server_ip/" \
    | awk '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END {print r, n}'
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# start_agents [more agent flags...] (tracefs is mounted for builds before 2026-12-03, whose
# tracepoint programs were classic ones; `bench-ab.sh` runs such builds too.)
start_agents() {
  agent_pids=""
  for node in 1 2; do
    ip netns exec "$lab-node-$node" sh -c \
      'mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing; exec "$0" "$@"' \
      "${agent:-$bin/osprey-agent}" --node-name "$lab-node-$node" --cluster "$lab" --uplink eth0 \
      --hubble-socket-path "$state/bench-agent-$node.sock" "$@" \
      > "$state/bench-agent-$node.log" 2>&1 &
    agent_pids="$agent_pids $!"
  done
  for node in 1 2; do
    for _ in $(seq 100); do
      ip netns exec "$lab-node-$node" curl -sf -o /dev/null localhost:9965/healthz && break
      sleep 0.1
    done
  done
  # Steady state, not start-up: an agent that has just answered /healthz is still scanning
  # namespaces and attaching; measured right away, that work landed on the first seconds of the
  # run (an A/B of two agent builds on 2026-11-30 read 0.88-0.95 for both without this pause,
  # ~0.99 with it).
  sleep 2
}

stop_agents() {
  local node=0
  for pid in $agent_pids; do
    node=$((node + 1))
    if ! kill "$pid" 2> /dev/null; then
      echo "osprey-agent on node $node exited during the run; its log ends:" >&2
      tail -20 "$state/bench-agent-$node.log" >&2
      exit 1
    fi
  done
  for pid in $agent_pids; do while kill -0 "$pid" 2> /dev/null; do sleep 0.05; done; done
  agent_pids=""
}

# One line per eBPF program, "program runs seconds", from the kernel's run statistics as both
# nodes' agents export them (osprey_agent_bpf_program_runs_total / _run_seconds_total), summed.
# Each agent is scraped once (a scrape enters every pod namespace of its node). The statistics
# count only while kernel.bpf_stats_enabled is 1.
program_totals() {
  for node in 1 2; do ip netns exec "$lab-node-$node" curl -s localhost:9965/metrics; done | awk '
    match($1, /program="[^"]*"/) {
      program = substr($1, RSTART + 9, RLENGTH - 10)
      if ($1 ~ /^osprey_agent_bpf_program_runs_total[{]/) runs[program] += $NF
      if ($1 ~ /^osprey_agent_bpf_program_run_seconds_total[{]/) seconds[program] += $NF
    }
    END { for (program in runs) printf "%s %.0f %.9f\n", program, runs[program], seconds[program] }'
}

# Sum of a metric's series on node N's agent: scrape N NAME [LABEL="VALUE"].
scrape() {
  ip netns exec "$lab-node-$1" curl -s localhost:9965/metrics | awk -v name="$2" -v label="${3:-}" '
    $1 ~ "^"name"([{]|$)" && index($1, label) { sum += $NF } END { printf "%.0f\n", sum }'
}

# Rounds of measure_without and measure_with_agents (each appends to $without / $with), the
# order alternating: with a fixed order, the second iperf3 run of a round measured about 3 %
# less even with no agent at all (an A/A run: 0.967), which read as agent overhead.
interleave() {
  for round in $(seq "$rounds"); do
    if ((round % 2)); then
      measure_without
      measure_with_agents
    else
      measure_with_agents
      measure_without
    fi
    echo "round $round ($placement): without ${without[-1]}, with ${with[-1]} $1" >&2
  done
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
# per_round ARRAY ARM [DIVISOR_ARM]: for benchmarks that rotate arms (values in ARRAY[ARM,ROUND]),
# ARRAY[ARM] of every round, divided by ARRAY[DIVISOR_ARM] of the same round when given; one per
# line.
per_round() {
  local -n values=$1
  local round
  for round in $(seq "$rounds"); do
    if [ -n "${3:-}" ]; then echo "${values[$2,$round]} / ${values[$3,$round]}" | bc -l; else echo "${values[$2,$round]}"; fi
  done
}
# median_of ARRAY ARM [DIVISOR_ARM]: the median over rounds of ARRAY[ARM] (/ ARRAY[DIVISOR_ARM]).
# shellcheck disable=SC2046
median_of() { median $(per_round "$@"); }
# The lower and upper quartile (nearest rank): the middle half of the values lies between them.
# On this noisy machine a single round's ratio can be off by ±10 %; the spread says how far
# the median can be trusted.
quartiles() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {q = int((NR + 3) / 4); print a[q], a[NR + 1 - q]}'; }
# A 95 % interval for the median itself (bootstrap: the medians of 10,000 resamples of the values,
# drawn with replacement; a fixed seed, so the same rounds give the same interval), printed as
# `low–high` with DECIMALS decimals. A goal is shown only when the whole interval meets it. With
# fewer than 8 values the resampled medians say nothing, and it prints that instead.
# Usage: median_interval DECIMALS VALUES...
median_interval() {
  python3 -c '
import random, statistics, sys
decimals = int(sys.argv[1])
values = [float(v) for v in sys.argv[2:]]
if len(values) < 8:
    print("none below 8 rounds")
    sys.exit()
rng = random.Random(1)
medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(10000))
print(f"{medians[250]:.{decimals}f}–{medians[9749]:.{decimals}f}")' "$@"
}
