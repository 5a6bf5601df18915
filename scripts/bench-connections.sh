#!/usr/bin/env bash
# Many connections: loadgen on node 1 opens N TCP connections to ledger on node 2 and holds them
# open, with osprey-agent on both nodes. Reports how long opening took, whether every
# connection's start was reported (SYN flows on node 1), events lost, both agents' resident
# memory, and the kernel memory of the connection table.
# Usage: scripts/bench-connections.sh [connections] [seconds held]   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-100000}
hold=${2:-20}
lab=ospconns
source scripts/bench-lib.sh
cleanup_connections() {
  for pid in ${client_pids:-} ${server_pids:-}; do kill "$pid" 2> /dev/null || true; done
  cleanup
}
trap cleanup_connections EXIT
quiet_lab
read -r server_ns server_ip < <(pod_on billing ledger 2)
read -r client_ns _ < <(pod_on shop loadgen 1)
# One server and one client process per port: a process may hold at most $per connections.
per=$(( $(ulimit -Hn) - 200 ))
ports=$(( (count + per - 1) / per ))
ip netns exec "$server_ns" sysctl -qw net.core.somaxconn=65535
ip netns exec "$client_ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
server_pids="" client_pids=""
for i in $(seq 0 $((ports - 1))); do
  ip netns exec "$server_ns" python3 scripts/hold-connections.py serve $((9000 + i)) > "$state/hold-server-$i.log" 2>&1 &
  server_pids="$server_pids $!"
done
sleep 1
start_agents
node1_agent=$(echo $agent_pids | awk '{print $1}')
node2_agent=$(echo $agent_pids | awk '{print $2}')
syn0=$(scrape 1 hubble_tcp_flags_total 'flag="SYN"')
lost0=$(($(scrape 1 hubble_lost_events_total) + $(scrape 2 hubble_lost_events_total)))
rss0=$(rss_kib "$node1_agent")
started=$(date +%s.%N)
for i in $(seq 0 $((ports - 1))); do
  n=$(( i == ports - 1 ? count - per * (ports - 1) : per ))
  ip netns exec "$client_ns" python3 scripts/hold-connections.py connect "$server_ip" $((9000 + i)) "$n" "$hold" \
    > "$state/hold-client-$i.log" 2>&1 &
  client_pids="$client_pids $!"
done
for i in $(seq 0 $((ports - 1))); do
  for _ in $(seq 1200); do [ -s "$state/hold-client-$i.log" ] && break; sleep 0.1; done
done
opened=$(date +%s.%N)
established=0 failed=0
for i in $(seq 0 $((ports - 1))); do
  read -r e f < "$state/hold-client-$i.log" || { cat "$state/hold-client-$i.log" >&2; exit 1; }
  established=$((established + e)) failed=$((failed + f))
done
sleep 3 # the last polls reach the metrics
syn=$(($(scrape 1 hubble_tcp_flags_total 'flag="SYN"') - syn0))
lost=$(($(scrape 1 hubble_lost_events_total) + $(scrape 2 hubble_lost_events_total) - lost0))
# The connection table's kernel memory, from the agent's map file descriptors: its arrays
# (map_type 2; the young and the old table) hold one set of OSP_CT_WAYS ways per entry, all of
# one value size, and as many sets together as the agent's size says. Each map counts once
# (by map_id).
table_size=$(scrape 1 osprey_agent_conntrack_size)
ways=$(awk '$1 == "#define" && $2 == "OSP_CT_WAYS" {print $3}' Sources/CDatapathABI/osprey_abi.h)
table_memory=$(for fd in /proc/"$node1_agent"/fdinfo/*; do
  awk '/^map_type:/ {t = $2} /^value_size:/ {v = $2} /^max_entries:/ {n = $2} /^memlock:/ {l = $2}
    /^map_id:/ {id = $2} END {if (t == 2) print id, v, n, l}' "$fd"
done 2> /dev/null | sort -u | awk -v sets=$((table_size / ways)) '
  {entries[$2] += $3; memory[$2] += $4}
  END {for (v in entries) if (entries[v] == sets) print memory[v]}' | head -1)
printf '\n| %d connections held open, loadgen (node 1) → ledger (node 2) | |\n|---|---|\n' "$count"
printf '| established / failed | %d / %d in %.1f s |\n' "$established" "$failed" "$(echo "$opened - $started" | bc -l)"
printf '| connection starts reported on node 1 (SYN flows; goal: every one) | %d |\n' "$syn"
printf '| events lost, both nodes (goal 0) | %d |\n' "$lost"
printf '| agent RSS, node 1 / node 2 (goal ≤ 128 MiB) | %.1f / %.1f MiB (node 1 before: %.1f MiB) |\n' \
  "$(echo "$(rss_kib "$node1_agent") / 1024" | bc -l)" "$(echo "$(rss_kib "$node2_agent") / 1024" | bc -l)" \
  "$(echo "$rss0 / 1024" | bc -l)"
printf '| connection table: size, kernel memory, evictions on node 1 | %d entries, %.1f MiB, %d evicted |\n' \
  "$table_size" "$(echo "$table_memory / 1048576" | bc -l)" \
  "$(scrape 1 osprey_agent_conntrack_evictions_total)"
