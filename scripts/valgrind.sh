#!/usr/bin/env bash
# make valgrind (CI runs it): the daemon integration tests (tests/integration/
# test_agent_*.c) with both the test process and every `flightrec agent` it
# starts under valgrind (memcheck; definite leaks count as errors). The test
# passes FR_AGENT_WRAPPER to the daemon's exec, and every test asserts the
# daemon's exit status, so an error valgrind finds in the daemon (exit 99)
# fails that test; one in the test process fails the run (exit 1).
# Environment: BUILD (default build, a non-sanitizer build: valgrind and
# ASan do not mix), FR_TEST_FILTER (a cmocka pattern to run fewer tests).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
scripts/npm-deps.sh
vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
for t in "$BUILD"/tests/test_agent_*; do
  echo "valgrind: $t and the agents it starts"
  FR_AGENT_WRAPPER="$vg" valgrind -q --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite "$t"
done
echo "valgrind: no error in the test or the daemon"
