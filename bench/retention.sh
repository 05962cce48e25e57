#!/usr/bin/env bash
# make bench, retention part: a generated hot store of BENCH_RETENTION_EVENTS
# (default 1,000,000) events, all due for the warm tier, then
#   - compaction: `flightrec retention run` throughput (MB/s of the hot rows'
#     JSON) and the warm segments' compression ratio against those rows;
#   - ingest latency: `flightrec agent` on the same store taking paced HTTP
#     load (BENCH_RATE events/s, 500-event batches, every 202 durable) once
#     alone and once while the retention run goes; p99 ack latency of both.
# Environment: BUILD, BENCH_RETENTION_EVENTS, BENCH_RATE (default 5000).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_RETENTION_EVENTS:-1000000}
RATE=${BENCH_RATE:-5000}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

now_ms=$(($(date +%s) * 1000))
echo "retention bench: $N events in the hot store, paced HTTP load of $RATE events/s"
"$BUILD/fr-gen" --events "$N" --seed 3 --sensitive 5 > "$tmp/old.ndjson"
"$BUILD/flightrec" ingest --no-progress --db "$tmp/db" "$tmp/old.ndjson" 2> "$tmp/ingest.log"
rm -f "$tmp/old.ndjson"
# fresh traffic, stamped now: never due during the run
load=$((RATE * 20))
"$BUILD/fr-gen" --events "$load" --seed 4 --prefix live --base-ms "$now_ms" > "$tmp/a.ndjson"
"$BUILD/fr-gen" --events "$load" --seed 5 --prefix live2 --base-ms "$now_ms" > "$tmp/b.ndjson"

printf 'storage:\n  path: %s/db\nhttp:\n  listen: 127.0.0.1:0\nsocket:\n  enabled: false\nruntime:\n  self: false\nretention:\n  enabled: false\n' \
  "$tmp" > "$tmp/agent.yaml"
"$BUILD/flightrec" agent --config "$tmp/agent.yaml" 2> "$tmp/agent.log" &
agent=$!
for _ in $(seq 200); do grep -q 'ready:' "$tmp/agent.log" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/.* http http:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$tmp/agent.log")
url="http://127.0.0.1:$port/v1/events"

"$BUILD/fr-httpbench" "$url" "$tmp/a.ndjson" 2 500 "$RATE" > "$tmp/alone.out"

# reads before the move: one old conversation (it will be in warm) and one live one (it stays
# in hot), each the median of 7 `flightrec show` runs
show_ms() {
  local t=()
  for _ in 1 2 3 4 5 6 7; do
    local s e
    s=$(date +%s%N)
    "$BUILD/flightrec" show --db "$tmp/db" "$1" > /dev/null 2>&1 || true
    e=$(date +%s%N)
    t+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | sed -n 4p
}
warm_conv=$(sqlite3 "$tmp/db" "SELECT conv_id FROM conversations WHERE conv_id NOT LIKE 'live%' ORDER BY conv_id LIMIT 1 OFFSET (SELECT count(*) / 2 FROM conversations WHERE conv_id NOT LIKE 'live%')")
hot_conv=$(sqlite3 "$tmp/db" "SELECT conv_id FROM conversations WHERE conv_id LIKE 'live%' ORDER BY conv_id LIMIT 1")
warm_before=$(show_ms "$warm_conv")
hot_before=$(show_ms "$hot_conv")
printf 'warm:\n  segment_events: %s\n' "${BENCH_SEGMENT_EVENTS:-10000}" > "$tmp/policy.yaml"
# the run moves everything older than 3 days; the paced load runs beside it
"$BUILD/flightrec" retention run --no-progress --db "$tmp/db" --policy "$tmp/policy.yaml" \
  --now "$((1771357445201 + 4 * 86400000))" 2> "$tmp/retention.log" &
ret=$!
"$BUILD/fr-httpbench" "$url" "$tmp/b.ndjson" 2 500 "$RATE" > "$tmp/during.out"
wait "$ret"
kill -TERM "$agent"; wait "$agent" || true
segs=$(sqlite3 "$tmp/db" "SELECT count(*) FROM archive_segments")
warm_after=$(show_ms "$warm_conv")
hot_after=$(show_ms "$hot_conv")

p99a=$(sed -n 's/^ack_p99_ms //p' "$tmp/alone.out")
p99b=$(sed -n 's/^ack_p99_ms //p' "$tmp/during.out")
p50a=$(sed -n 's/^ack_p50_ms //p' "$tmp/alone.out")
p50b=$(sed -n 's/^ack_p50_ms //p' "$tmp/during.out")
sum=$(cat "$tmp/retention.log")
rows=$(echo "$sum" | sed -n 's/.*(\([0-9.]*\) MB of rows.*/\1/p')
secs=$(echo "$sum" | sed -n 's/.* \([0-9.]*\) s$/\1/p')
ratio=$(echo "$sum" | sed -n 's/.* MB, \([0-9.]*\):1).*/\1/p')
echo "  $sum"
awk -v r="$rows" -v s="$secs" -v ra="$ratio" -v a="$p99a" -v b="$p99b" -v pa="$p50a" -v pb="$p50b" \
  -v ha="$hot_after" -v hb="$hot_before" -v wa="$warm_after" -v wb="$warm_before" -v sg="$segs" 'BEGIN {
  printf "retention: compaction %.1f MB/s of hot rows, warm ratio %.1f:1 vs the rows JSON (target >= 8:1)\n", r / s, ra
  printf "retention: ingest ack p99 %.1f ms during the run vs %.1f ms without (%.2fx, target <= 2x); p50 %.1f vs %.1f ms\n", b, a, b / a, pb, pa
  printf "retention: show of a conversation held in hot alone %.1f ms after the move vs %.1f ms before (%.2fx, target <= 1.2x)\n", ha / 1000, hb / 1000, ha / hb
  printf "retention: show of a conversation moved to warm %.1f ms vs %.1f ms in hot (%.2fx, target <= 3x); %d segments\n", wa / 1000, wb / 1000, wa / wb, sg
}'
