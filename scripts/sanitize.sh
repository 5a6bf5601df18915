#!/usr/bin/env bash
# The tests that need no lab under a sanitizer: `address` (AddressSanitizer with LeakSanitizer)
# or `thread` (ThreadSanitizer). OSPREY_SANITIZE tells Package.swift to instrument Osprey's own
# targets, in the plain build's directory: the dependencies are not compiled again (a stage
# builds in 2–3 minutes after the plain build, where a tree of its own took 12 from clean), and
# the next plain build compiles Osprey's targets again (about 2 minutes).
# The lab suites (AgentIntegrationTests, LabIntegrationTests) run agents, relays and browsers as
# separate processes, so they add nothing here and are skipped.
# Usage: scripts/sanitize.sh address|thread   (run by `make test`)
set -uo pipefail
cd "$(dirname "$0")/.."
sanitizer=${1:?usage: scripts/sanitize.sh address|thread}
case "$sanitizer" in
address | thread) ;;
*)
	echo "sanitize.sh: '$sanitizer' is not a sanitizer this runs; use address or thread." >&2
	exit 2
	;;
esac
swift=${SWIFT:-swift}
export OSPREY_SANITIZE=$sanitizer
"$swift" build --build-tests || exit
# The Swift runtime's crash reporter reads the crashed process's memory in ways AddressSanitizer
# itself reports (and then waits for ever); with it off, a crash is the sanitizer's own report.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export LSAN_OPTIONS=suppressions=$PWD/scripts/sanitizers/lsan.supp:print_suppressions=0
export TSAN_OPTIONS=suppressions=$PWD/scripts/sanitizers/tsan.supp:halt_on_error=0:second_deadlock_stack=1
TEST_LOG=.build/test-output-$sanitizer.log SWIFT="$swift" scripts/run-tests.sh \
	--no-parallel --skip '^(AgentIntegrationTests|LabIntegrationTests)\.'
