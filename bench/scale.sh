#!/usr/bin/env bash
# make bench, scale: ingest into a hot store that already holds
# BENCH_SCALE_EVENTS (default 10,000,000) fr-gen events, next to the bare
# insert of the same rows into a copy of that same store (fr-rawinsert: same
# schema, indexes, PRAGMAs and size), in the same run; then the store's bytes
# per byte of the NDJSON it was built from. The added events
# (BENCH_SCALE_MORE, default 200,000) are new ones (other ids, later times),
# as a sidecar keeps receiving. Building the store takes minutes at 10M.
# Environment: BUILD, BENCH_SCALE_EVENTS, BENCH_SCALE_MORE, BENCH_SCALE_ROUNDS
# (1: rounds of the timed pair, alternated, each on fresh copies of the store;
# a copy at 10M is 10 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_SCALE_EVENTS:-10000000}
M=${BENCH_SCALE_MORE:-200000}
ROUNDS=${BENCH_SCALE_ROUNDS:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

t0=$(date +%s)
"$BUILD/fr-gen" --events "$N" --seed 1 --sensitive 5 | tee >(wc -c > "$tmp/ndjson.bytes") |
  "$BUILD/flightrec" ingest --no-progress --db "$tmp/base.db" - 2> "$tmp/fill.log"
sleep 0.2 # wc's output
bytes=$(cat "$tmp/ndjson.bytes")
store=$(stat -c %s "$tmp/base.db")
echo "scale: $N events in hot ($((store / 1048576)) MiB from $((bytes / 1048576)) MiB of NDJSON," \
     "$(awk -v a="$store" -v b="$bytes" 'BEGIN { printf "%.2f", a / b }') bytes per NDJSON byte;" \
     "built in $(($(date +%s) - t0)) s)"
"$BUILD/fr-gen" --events "$M" --seed 2 --sensitive 5 --prefix more- \
  --base-ms "$(sqlite3 "$tmp/base.db" "SELECT max(ts_ms) + 60000 FROM events")" > "$tmp/more.ndjson"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ours=(); bare=()
for r in $(seq "$ROUNDS"); do
  cp "$tmp/base.db" "$tmp/hot.db"
  "$BUILD/flightrec" ingest --no-progress --db "$tmp/hot.db" "$tmp/more.ndjson" 2> "$tmp/more.log"
  ours+=("$(sed -n 's/.* \([0-9][0-9]*\) events\/s$/\1/p' "$tmp/more.log")")
  rm -f "$tmp"/hot.db*
  cp "$tmp/base.db" "$tmp/raw.db"
  bare+=("$("$BUILD/fr-rawinsert" "$tmp/more.ndjson" "$tmp/raw.db" | sed -n 's/^rows_per_s //p')")
  rm -f "$tmp"/raw.db*
  echo "  round $r: flightrec ingest ${ours[-1]} events/s, bare insert ${bare[-1]} rows/s"
done
o=$(printf '%s\n' "${ours[@]}" | median)
b=$(printf '%s\n' "${bare[@]}" | median)
echo "scale: $M more events into $N: flightrec ingest $o events/s, bare insert of the same rows" \
     "into a copy of the same store $b rows/s, ratio" \
     "$(awk -v a="$o" -v b="$b" 'BEGIN { printf "%.0f", 100 * a / b }')% (goal >= 70%)"
