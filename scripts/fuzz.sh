#!/usr/bin/env bash
# Runs each fuzz target (built by `make fuzz`) for SECONDS with libFuzzer and AddressSanitizer,
# from the committed seeds (Fuzz/corpus/<target>) plus what earlier runs found (.build-fuzz/corpus,
# not committed). A crash stops the run; its input is saved in Fuzz/corpus/<target>/ (commit it:
# the corpus test replays it from then on). Prints executions per target as a table.
# Usage: scripts/fuzz.sh SECONDS TARGET...   (FUZZ_REPORT: where the table goes, so that runs on
# several cores at once keep theirs apart; default .build-fuzz/fuzz-report.md. FUZZ_RUNS: stop a
# target after that many executions, if that comes before SECONDS — a count that does not
# depend on what else the machine is doing)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=$1
shift
binary=.build-fuzz/release/osprey-fuzz
report=${FUZZ_REPORT:-.build-fuzz/fuzz-report.md}
printf '| fuzz target | seconds | executions | executions/s | corpus | crashes |\n|---|---|---|---|---|---|\n' > $report
for target in "$@"; do
  work=.build-fuzz/corpus/$target
  mkdir -p "$work"
  log=.build-fuzz/fuzz-$target.log
  status=0
  started=$(date +%s)
  OSPREY_FUZZ_TARGET=$target "$binary" "$work" "Fuzz/corpus/$target" -max_total_time="$seconds" \
    ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -print_final_stats=1 -artifact_prefix="Fuzz/corpus/$target/crash-" \
    -rss_limit_mb=4096 > "$log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - started))
  runs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$log")
  rate=$(awk '/stat::average_exec_per_sec:/ {print $2}' "$log")
  units=$(ls "$work" | wc -l)
  crashes=$([ "$status" -eq 0 ] && echo 0 || echo 1)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$target" "$elapsed" "${runs:-?}" "${rate:-?}" "$units" "$crashes" \
    >> $report
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    echo "fuzz: $target crashed; the input is in Fuzz/corpus/$target/ (see $log)" >&2
    cat $report
    exit 1
  fi
done
cat $report
