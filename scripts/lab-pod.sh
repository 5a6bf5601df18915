#!/usr/bin/env bash
# Prints "NETNS IP" of a lab pod chosen by workload and node, from the lab's inventory (pod
# names are random per lab, so benchmarks never pick a pod by name and assume its node).
# Usage: scripts/lab-pod.sh LAB NAMESPACE WORKLOAD NODE-NUMBER
set -euo pipefail
lab=$1 namespace=$2 workload=$3 node=$4
python3 - "/run/osprey/labs/$lab/inventory.json" "$namespace" "$workload" "$lab-node-$node" <<'PY'
import json, sys
path, namespace, workload, node = sys.argv[1:]
for pod in json.load(open(path))["pods"]:
    if pod["namespace"] == namespace and pod["workload"]["name"] == workload and pod["node"] == node:
        print(pod["netns"], pod["ips"][0])
        sys.exit(0)
sys.exit(f"lab-pod: no {namespace}/{workload} pod on {node} in {path}")
PY
