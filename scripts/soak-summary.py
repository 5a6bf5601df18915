#!/usr/bin/env python3
"""Summarises a soak CSV (scripts/soak.sh): growth of memory, descriptors and threads after the
warm-up, the event rate, events lost and what the follower and Prometheus saw, as Markdown.

Usage: soak-summary.py SOAK.CSV FLOOD_PACKETS_SENT FLOOD_PPS FLOOD_NODE
"""
import csv
import sys


def main() -> int:
    path, sent, pps, flood_node = sys.argv[1], int(sys.argv[2] or 0), int(sys.argv[3]), sys.argv[4]
    rows = [{k: float(v or 0) for k, v in row.items()} for row in csv.DictReader(open(path))]
    if len(rows) < 3:
        print(f"soak: only {len(rows)} samples in {path}; run for a few minutes at least.")
        return 1
    total = rows[-1]["seconds"]
    warm_up = min(600.0, total / 6)
    warm = [r for r in rows if r["seconds"] >= warm_up]
    first, last = warm[0], warm[-1]
    print(f"Soak of {total / 60:.0f} min, sampled every 10 s ({len(rows)} samples); warm-up: the first {warm_up:.0f} s.")
    print(f"Flood: {sent:,} UDP packets ({pps:,}/s target) into {flood_node}, per-packet events.\n")
    print("| process | measure | after warm-up | at the end | max after warm-up | growth |")
    print("|---|---|---|---|---|---|")
    for process in ("agent1", "agent2", "relay"):
        for measure, unit in (("rss_mib", "MiB"), ("fds", ""), ("threads", "")):
            key = f"{process}_{measure}"
            a, b = first[key], last[key]
            peak = max(r[key] for r in warm)
            growth = f"{(b - a) / a * 100:+.1f} %" if a else "n/a"
            name = {"rss_mib": "resident memory", "fds": "open descriptors", "threads": "threads"}[measure]
            print(f"| {process} | {name} | {a:g} {unit} | {b:g} {unit} | {peak:g} {unit} | {growth} |")
    flows = rows[-1]["flows_processed"] - rows[0]["flows_processed"]
    span = rows[-1]["seconds"] - rows[0]["seconds"]
    lost = {k: rows[-1][k] - rows[0][k] for k in ("lost_perf_ring", "lost_observer_queue", "lost_hubble_ring")}
    print()
    print(f"- events turned into flows: {flows:,.0f} ({flows / span:,.0f}/s over both agents)")
    print(
        "- events lost: "
        + ", ".join(f"{k.removeprefix('lost_').replace('_', ' ')} {v:,.0f}" for k, v in lost.items())
    )
    print(f"- flows the relay follower received: {rows[-1]['follower_flows']:,.0f}")
    up = [r["prometheus_targets_up"] for r in rows]
    print(f"- Prometheus targets up: {min(up):g}–{max(up):g} over the run (last {up[-1]:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
