#!/usr/bin/env bash
# Runs the test suite (arguments go to `swift test`) and, when it fails, repeats every failed
# test's issues at the very end, so whoever reads only the tail of a CI log sees what failed.
set -uo pipefail
log=${TEST_LOG:-.build/test-output.log}
mkdir -p "$(dirname "$log")"
${SWIFT:-swift} test --skip-build "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
	echo
	echo "== what failed (from $log) =="
	grep -E '✘|recorded an issue|Expectation failed|Caught error|Fatal error|error:|ERROR: [A-Za-z]+Sanitizer|WARNING: ThreadSanitizer|SUMMARY: [A-Za-z]+Sanitizer' "$log" | grep -v '^✘ Test run with' | cut -c1-600 | tail -60
	# The first sanitizer report in full (its stacks are what says where to look).
	awk '/WARNING: ThreadSanitizer|ERROR: (Address|Leak)Sanitizer/ { n = 40 } n-- > 0' "$log" | head -40 | cut -c1-300
	grep -E '^✘ Test run with' "$log"
fi
exit "$status"
