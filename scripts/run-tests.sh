#!/usr/bin/env bash
# Runs the test suite (arguments go to `swift test`) and, when it fails, repeats every failed
# test's issues at the very end, so whoever reads only the tail of a CI log sees what failed.
set -uo pipefail
log=.build/test-output.log
mkdir -p .build
${SWIFT:-swift} test --skip-build "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
	echo
	echo "== what failed (from $log) =="
	grep -E '✘|recorded an issue|Expectation failed|Caught error|Fatal error|error:' "$log" | grep -v '^✘ Test run with' | cut -c1-600 | tail -60
	grep -E '^✘ Test run with' "$log"
fi
exit "$status"
