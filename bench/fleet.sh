#!/usr/bin/env bash
# make bench: shipping into the fleet store (docs/fleet.md), against a real
# PostgreSQL started here (scripts/pg-test.sh: Debian's server, a Unix
# socket, fsync off for both runs alike).
#
#  1. Throughput: `flightrec ship` of BENCH_FLEET_EVENTS generated events
#     (read from the hot store, COPY into staging, insert-or-ignore into the
#     day partitions, conversation index and rollups merged, cursor moved)
#     next to a bare COPY of exactly the same rows into the same `events`
#     table with the same indexes (psql \copy of the rows shipped), in the
#     same run, rounds alternating; medians. Goal: ratio >= 0.5.
#  2. Lag: an agent with ship.url under a steady BENCH_FLEET_RATE events/s
#     over HTTP for BENCH_FLEET_SECONDS; per event, when it reached the
#     fleet store minus when the agent stored it (shipped_ms - ingested_ms):
#     p50, p99, max. Goal: p99 < 2 s.
#
# Environment: BUILD, BENCH_FLEET_EVENTS (200000), BENCH_ROUNDS (3),
# BENCH_FLEET_RATE (5000), BENCH_FLEET_SECONDS (20).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_FLEET_EVENTS:-200000}
ROUNDS=${BENCH_ROUNDS:-3}
RATE=${BENCH_FLEET_RATE:-5000}
SECS=${BENCH_FLEET_SECONDS:-20}
tmp=$(mktemp -d)
pg=$(mktemp -d)
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
  scripts/pg-test.sh kill "$pg" >/dev/null 2>&1 || true
  rm -rf "$tmp" "$pg"
}
trap cleanup EXIT
uri=$(scripts/pg-test.sh start "$pg")
sql() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$uri" "$@"; }
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cols="conv_id, ts_ms, ekey, host, src_id, ingested_ms, kind, seq, session_id, turn_id, run_id,
 request_id, stream_id, event_id, trace_id, span_id, runtime_key, inference_id, status,
 provider, model, tool, duration_ms, error_class, error_code, error_message, body, policy,
 input_tokens, output_tokens, cached_tokens, reasoning_tokens, panic, shipped_ms"
empty="TRUNCATE events, conversations, rollups, ship_cursors"

"$BUILD/fr-gen" --events "$N" --seed 7 --sensitive 5 > "$tmp/events.ndjson"
"$BUILD/flightrec" ingest --no-progress --db "$tmp/local.db" "$tmp/events.ndjson" 2> /dev/null
bytes=$(stat -c %s "$tmp/events.ndjson")
echo "fleet: $N events ($((bytes / N)) bytes/event as NDJSON) in a hot store, PostgreSQL $(sql -c 'SHOW server_version')"

# a first run creates the schema and the day partitions; its rows are the bare COPY's input
"$BUILD/flightrec" ship --no-progress --to "$uri" --db "$tmp/local.db" --host bench 2> /dev/null
rows=$(sql -c "SELECT count(*) FROM events")
sql -c "\\copy (SELECT $cols FROM events) TO '$tmp/rows.tsv'"
ship=(); copy=()
for r in $(seq "$ROUNDS"); do
  sql -c "$empty"
  t0=$(now)
  "$BUILD/flightrec" ship --no-progress --to "$uri" --db "$tmp/local.db" --host bench 2> "$tmp/ship.log"
  t1=$(now)
  got=$(sql -c "SELECT count(*) FROM events")
  [ "$got" = "$rows" ] || { echo "fleet: shipped $got rows, want $rows" >&2; exit 1; }
  sql -c "$empty"
  t2=$(now)
  sql -c "\\copy events ($cols) FROM '$tmp/rows.tsv'"
  t3=$(now)
  s=$(awk -v r="$rows" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", r / (b - a) }')
  c=$(awk -v r="$rows" -v a="$t2" -v b="$t3" 'BEGIN { printf "%.0f", r / (b - a) }')
  ship+=("$s"); copy+=("$c")
  echo "  round $r: flightrec ship $s events/s, bare COPY of the same rows $c rows/s"
done
s=$(printf '%s\n' "${ship[@]}" | median)
c=$(printf '%s\n' "${copy[@]}" | median)
ratio=$(awk -v a="$s" -v b="$c" 'BEGIN { printf "%.2f", a / b }')
echo "fleet ship: ${s} events/s vs bare COPY ${c} rows/s into the same table and indexes, ratio ${ratio} (goal >= 0.5)"

# lag under a steady load through a real agent
sql -c "$empty"
d="$tmp/agent"
mkdir -p "$d"
head -n $((RATE * SECS)) "$tmp/events.ndjson" > "$d/load.ndjson"
printf 'storage:\n  path: %s/db\nhttp:\n  listen: 127.0.0.1:0\nsocket:\n  enabled: false\notlp:\n  enabled: false\nruntime:\n  self: false\nship:\n  url: "%s"\n  host: lagbench\n' \
  "$d" "$uri" > "$d/c.yaml"
"$BUILD/flightrec" agent --config "$d/c.yaml" 2> "$d/log" &
agent_pid=$!
for _ in $(seq 200); do grep -q 'ready:' "$d/log" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/.* http http:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$d/log")
"$BUILD/fr-httpbench" "http://127.0.0.1:$port/v1/events" "$d/load.ndjson" 2 250 "$RATE" > "$d/out"
want=$(wc -l < "$d/load.ndjson")
for _ in $(seq 600); do
  [ "$(sql -c "SELECT count(*) FROM events WHERE host = 'lagbench'")" -ge "$want" ] && break
  sleep 0.1
done
kill -TERM "$agent_pid"; wait "$agent_pid" || true; agent_pid=""
read -r n p50 p99 mx < <(sql -F ' ' -c "SELECT count(*),
  percentile_disc(0.5) WITHIN GROUP (ORDER BY shipped_ms - ingested_ms),
  percentile_disc(0.99) WITHIN GROUP (ORDER BY shipped_ms - ingested_ms),
  max(shipped_ms - ingested_ms) FROM events WHERE host = 'lagbench'")
sent=$(sed -n 's/^events_per_s //p' "$d/out")
echo "fleet lag: $n events at ${sent} events/s over HTTP; stored in the agent -> in PostgreSQL: p50 ${p50} ms, p99 ${p99} ms, max ${mx} ms (goal p99 < 2000 ms)"
