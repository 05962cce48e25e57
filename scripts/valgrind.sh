#!/usr/bin/env bash
# make valgrind (CI runs it): the daemon integration tests (tests/integration/
# test_agent_*.c) with both the test process and every `flightrec agent` it
# starts under valgrind (memcheck; definite leaks count as errors). The test
# passes FR_AGENT_WRAPPER to the daemon's exec, and every test asserts the
# daemon's exit status, so an error valgrind finds in the daemon (exit 99)
# fails that test; one in the test process fails the run (exit 1).
# The test programs run JOBS at a time (default: the number of cores; each
# test's agents take their own ports, as under ctest -j), each one's output
# printed whole when it ends, with its time; the run fails if any failed.
# Environment: BUILD (default build, a non-sanitizer build: valgrind and
# ASan do not mix), JOBS, FR_TEST_FILTER (a cmocka pattern to run fewer tests).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
scripts/npm-deps.sh
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
export FR_VG_LOGS=$logs
one() {
  local t=$1 log rc=0 start
  log="$FR_VG_LOGS/$(basename "$t").log"
  start=$(date +%s)
  FR_AGENT_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
    valgrind -q --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite "$t" >"$log" 2>&1 || rc=$?
  {
    echo "valgrind: $t and the agents it starts ($(($(date +%s) - start)) s, exit $rc)"
    cat "$log"
  } | flock "$FR_VG_LOGS" cat
  return "$rc"
}
export -f one
# The longest first, so that the last to start is not the longest to run.
order=(fleet faults otlp http lifecycle incident socket crash bucket console)
tests=()
for n in "${order[@]}"; do
  [ -x "$BUILD/tests/test_agent_$n" ] && tests+=("$BUILD/tests/test_agent_$n")
done
for t in "$BUILD"/tests/test_agent_*; do
  case " ${tests[*]} " in *" $t "*) ;; *) tests+=("$t") ;; esac
done
if ! printf '%s\n' "${tests[@]}" | xargs -P "$JOBS" -I{} bash -c 'one "$1"' _ {}; then
  echo "valgrind: a test or a daemon it started failed (above)" >&2
  exit 1
fi
echo "valgrind: no error in the test or the daemon (${#tests[@]} test programs)"
