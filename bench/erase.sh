#!/usr/bin/env bash
# make bench, erasure part: a store of BENCH_ERASE_EVENTS (default
# 1,000,000) generated events moved into warm segments (about 50 at the
# default segment size) plus 50,000 newer events still hot, and one
# conversation of 3,000 events spread over both; the time
# `flightrec erase --conv` takes and the bytes it writes again, against
# `flightrec archive verify` (which reads and checks every segment) of the
# same store, in the same run.
# Environment: BUILD, BENCH_ERASE_EVENTS.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_ERASE_EVENTS:-1000000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FLIGHTREC_KEYS_DIR="$tmp/keys"
base=1771357445201
day=86400000

echo "erase bench: $N archived events, 50000 hot, one conversation of 3000 events in both"
{
  "$BUILD/fr-gen" --events "$N" --seed 11
  "$BUILD/fr-gen" --events 2000 --seed 12 --prefix gone | sed 's/"conv_id":"gone-[0-9]*"/"conv_id":"gone"/'
} > "$tmp/old.ndjson"
"$BUILD/flightrec" ingest --no-progress --db "$tmp/db" "$tmp/old.ndjson" 2> /dev/null || true
rm -f "$tmp/old.ndjson"
"$BUILD/flightrec" retention run --no-progress --db "$tmp/db" --now $((base + 4 * day)) 2> "$tmp/run.log"
{
  "$BUILD/fr-gen" --events 50000 --seed 13 --prefix new --base-ms $((base + 4 * day))
  "$BUILD/fr-gen" --events 1000 --seed 14 --prefix gone --base-ms $((base + 4 * day)) |
    sed 's/"conv_id":"gone-[0-9]*"/"conv_id":"gone"/'
} > "$tmp/new.ndjson"
"$BUILD/flightrec" ingest --no-progress --db "$tmp/db" "$tmp/new.ndjson" 2> /dev/null || true
segs=$("$BUILD/flightrec" archive list --db "$tmp/db" | tail -n +2 | wc -l)
start=$(date +%s.%N)
"$BUILD/flightrec" archive verify --db "$tmp/db" > /dev/null
end=$(date +%s.%N)
verify=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
start=$(date +%s.%N)
"$BUILD/flightrec" erase --conv gone --reason bench --db "$tmp/db" 2> "$tmp/erase.log"
end=$(date +%s.%N)
erase=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
summary=$(sed -n 's/^erase: //p' "$tmp/erase.log")
db_mb=$(du -sm "$tmp/db" | cut -f1)
arch_mb=$(du -sm "$tmp/archive" | cut -f1)
echo "erase: $summary"
echo "erase: one conversation out of a store with $segs segments ($arch_mb MB) and a ${db_mb} MB hot database: ${erase} s, $(awk -v a="$erase" -v b="$verify" 'BEGIN { printf "%.2f", a / b }')x the ${verify} s of archive verify of the same store"
