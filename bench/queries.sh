#!/usr/bin/env bash
# make bench, queries: how long the investigation commands take on a large hot
# store (BENCH_QUERY_EVENTS, default 1,000,000 events of fr-gen traffic, 5% of
# user messages with a secret). Each command runs BENCH_QUERY_RUNS times (7)
# as a fresh process, as an operator runs it; the median is printed next to
# the median of `flightrec help` (process start alone) in the same run, and
# the difference is the query's own time. Commands: show of a conversation of
# median size, conversations --has-errors / --model / --tool / --code,
# errors (newest 50), errors --by code, class, kind and model.
# Environment: BUILD, BENCH_QUERY_EVENTS, BENCH_QUERY_RUNS, BENCH_QUERY_MIX
# (gen or hard).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_QUERY_EVENTS:-1000000}
RUNS=${BENCH_QUERY_RUNS:-7}
MIX=${BENCH_QUERY_MIX:-gen}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flag=""; [ "$MIX" = hard ] && flag="--hard"
"$BUILD/fr-gen" --events "$N" --seed 11 --sensitive 5 $flag > "$tmp/events.ndjson"
"$BUILD/flightrec" ingest --no-progress --db "$tmp/hot.db" "$tmp/events.ndjson" 2> "$tmp/ingest.log"
rm -f "$tmp/events.ndjson"
db="$tmp/hot.db"
conv=$(sqlite3 "$db" "SELECT conv_id FROM conversations ORDER BY event_count, conv_id LIMIT 1 OFFSET (SELECT count(*) / 2 FROM conversations)")
model=$(sqlite3 "$db" "SELECT model FROM events WHERE model IS NOT NULL GROUP BY 1 ORDER BY count(*) LIMIT 1")
tool=$(sqlite3 "$db" "SELECT tool FROM events WHERE tool IS NOT NULL GROUP BY 1 ORDER BY count(*) LIMIT 1")
code=$(sqlite3 "$db" "SELECT error_code FROM events WHERE error_code IS NOT NULL GROUP BY 1 ORDER BY count(*) LIMIT 1")
read -r convs errors < <(sqlite3 -separator ' ' "$db" "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM events WHERE error_code IS NOT NULL)")
echo "queries: $N events ($MIX mix) in hot, $convs conversations, $errors failures;" \
     "show $conv ($(sqlite3 "$db" "SELECT event_count FROM conversations WHERE conv_id = '$conv'") events)"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { # command... -> median wall milliseconds of RUNS fresh processes
  local t=()
  for _ in $(seq "$RUNS"); do
    local s e
    s=$(date +%s%N)
    "$@" > /dev/null
    e=$(date +%s%N)
    t+=("$(( (e - s) / 100000 ))")
  done
  printf '%s\n' "${t[@]}" | median | awk '{printf "%.1f", $1 / 10}'
}
F="$BUILD/flightrec"
start=$(ms "$F" help)
echo "  process start (flightrec help): $start ms"
while IFS='|' read -r label args; do
  # shellcheck disable=SC2086
  t=$(ms "$F" $args --db "$db")
  awk -v l="$label" -v t="$t" -v s="$start" \
    'BEGIN { printf "  %-34s %7.1f ms (%6.1f ms past process start; goal < 50 ms)\n", l, t, t - s }'
done <<LIST
show (one conversation)|show $conv
conversations --has-errors|conversations --has-errors
conversations --model (least used)|conversations --model $model
conversations --tool (least used)|conversations --tool $tool
conversations --code (least seen)|conversations --code $code
errors (newest 50)|errors
errors --by code|errors --by code
errors --by class|errors --by class
errors --by kind|errors --by kind
errors --by model|errors --by model
LIST
