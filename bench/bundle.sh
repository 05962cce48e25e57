#!/usr/bin/env bash
# make bench, incident part: a store of BENCH_BUNDLE_EVENTS (default
# 1,000,000) generated events plus one conversation of 10,000 events; the
# time `flightrec incident create --conv` takes for that conversation, then
# the upload throughput of `flightrec incident upload` against `curl -T` of
# the same file to the same loopback sink (fr-sink), in the same run.
# Environment: BUILD, BENCH_BUNDLE_EVENTS.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_BUNDLE_EVENTS:-1000000}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

echo "bundle bench: $N events in the store and one conversation of 10000 events"
"$BUILD/fr-gen" --events "$N" --seed 6 > "$tmp/all.ndjson"
"$BUILD/fr-gen" --events 10000 --seed 7 --prefix big |
  sed 's/"conv_id":"big-[0-9]*"/"conv_id":"big"/' >> "$tmp/all.ndjson"
"$BUILD/flightrec" ingest --no-progress --db "$tmp/db" "$tmp/all.ndjson" 2> /dev/null || true
rm -f "$tmp/all.ndjson"
start=$(date +%s.%N)
"$BUILD/flightrec" incident create --db "$tmp/db" --conv big --out "$tmp/big.tar.zst" 2> "$tmp/create.log" > /dev/null
end=$(date +%s.%N)
create=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
events=$(sed -n 's/.*: \([0-9]*\) events of.*/\1/p' "$tmp/create.log")

# upload: a real bundle (a 100,000-event conversation), uploaded 30 times
# by each side so the transfers, not process start-up, dominate
"$BUILD/fr-gen" --events 100000 --seed 8 --prefix huge |
  sed 's/"conv_id":"huge-[0-9]*"/"conv_id":"huge"/' > "$tmp/huge.ndjson"
"$BUILD/flightrec" ingest --no-progress --db "$tmp/db" "$tmp/huge.ndjson" 2> /dev/null || true
"$BUILD/flightrec" incident create --db "$tmp/db" --conv huge --out "$tmp/huge.tar.zst" \
  2> /dev/null > /dev/null
"$BUILD/fr-sink" > "$tmp/port" &
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
port=$(cat "$tmp/port")
printf 'outbox: %s/outbox\ntargets:\n  - name: sink\n    url: http://127.0.0.1:%s/u/{name}\n' \
  "$tmp" "$port" > "$tmp/upload.yaml"
# throughput of the uploads themselves (process start-up excluded on both
# sides): flightrec's own timing of each upload (the hash lookup, the retry
# loop and the transfer) against curl's time_total for the same file
# 30 pairs, each flightrec then curl back to back so machine noise hits
# both alike; the medians are compared
size=$(stat -c %s "$tmp/huge.tar.zst")
: > "$tmp/fr.times"; : > "$tmp/curl.times"
for _ in $(seq 30); do
  "$BUILD/flightrec" incident upload "$tmp/huge.tar.zst" --to sink --targets "$tmp/upload.yaml" 2>&1 |
    sed -n 's/.* in \([0-9.]*\) s,.*/\1/p' >> "$tmp/fr.times"
  curl -s -o /dev/null -w '%{time_total}\n' -T "$tmp/huge.tar.zst" "http://127.0.0.1:$port/u/x" >> "$tmp/curl.times"
done
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t_fr=$(median < "$tmp/fr.times"); t_curl=$(median < "$tmp/curl.times")
echo "incident: bundle of a ${events}-event conversation in a $N-event store built in ${create} s (target < 1 s)"
awk -v a="$t_fr" -v b="$t_curl" -v s="$size" 'BEGIN {
  printf "incident: upload of %d kB: %.1f MB/s vs curl -T %.1f MB/s (medians of 30 interleaved uploads each): %.0f%% (target >= 90%%)\n",
    s / 1000, s / 1e6 / a, s / 1e6 / b, 100 * b / a }'
