#!/usr/bin/env bash
# make fuzz: builds the libFuzzer harnesses of tests/fuzz (clang,
# -fsanitize=fuzzer,address,undefined) and runs each for FUZZ_SECONDS
# (default 60) from its seed corpus (tests/fuzz/corpus/<name>, left
# unchanged: new inputs go to a scratch directory). Prints per harness the
# executions, the rate and the coverage (libFuzzer's edge "cov" and feature
# "ft" counts). A crash stops with the reproducer's path
# (build-fuzz/artifacts/); copy it to tests/fuzz/regressions/<name>/ and
# `make test` replays it from then on (tests/fuzz/replay.c).
# Environment: FUZZ_SECONDS, FUZZ_BUILD (build-fuzz), FUZZ_ONLY (one harness).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
B=${FUZZ_BUILD:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$B" -DFR_FUZZ=ON -DFR_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug > /dev/null
cmake --build "$B" -j "$(nproc)" > "$B/build.log" 2>&1 || { cat "$B/build.log"; exit 1; }
mkdir -p "$B/artifacts"
status=0
for h in ${FUZZ_ONLY:-wire redact config segment bundle body otlp query}; do
  scratch=$(mktemp -d)
  log="$B/fuzz_$h.log"
  seeds=(tests/fuzz/corpus/"$h")
  [ -d tests/fuzz/regressions/"$h" ] && seeds+=(tests/fuzz/regressions/"$h")
  if ! "$B/tests/fuzz/fuzz_$h" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$B/artifacts/$h-" \
        "$scratch" "${seeds[@]}" > "$log" 2>&1; then
    status=1
    echo "fuzz $h: FAILED, see $log; reproducer:"
    grep -E 'Test unit written to|SUMMARY' "$log" | sed 's/^/  /'
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  corpus=$(find "$scratch" -type f | wc -l)
  echo "fuzz $h: ${runs:-0} executions in ${SECONDS_EACH}s (${rate:-0}/s), ${cov:-no coverage line}, $corpus new corpus inputs"
  rm -rf "$scratch"
done
exit $status
