#!/usr/bin/env bash
# make bench, console part: the web console's timeline of one conversation of
# BENCH_CONSOLE_EVENTS (default 10,000) generated events in headless Chromium
# (Debian's chromium through playwright-core, bench/console.mjs): time from
# the start of navigation until it is interactive (its first rows on screen
# with their handlers, marked by the page; goal < 1 s) and until every event
# is laid out, next to fetching the same conversation's JSON alone in
# the same page (the floor), and the API's bytes per event served to it.
# Rounds on fresh pages of one agent; medians. Environment: BUILD,
# BENCH_CONSOLE_EVENTS, BENCH_ROUNDS (5).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_CONSOLE_EVENTS:-10000}
ROUNDS=${BENCH_ROUNDS:-5}
if [ ! -x /usr/bin/chromium ] || [ ! -d node_modules/playwright-core ]; then
  echo "console bench: skipped (needs Debian's chromium and npm ci: make test installs both)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
printf 'storage:\n  path: %s/db\nhttp:\n  listen: 127.0.0.1:0\notlp:\n  listen: 127.0.0.1:0\n  grpc_listen: ""\nsocket:\n  enabled: false\nruntime:\n  self: false\n' \
  "$tmp" > "$tmp/c.yaml"
"$BUILD/flightrec" agent --config "$tmp/c.yaml" 2> "$tmp/log" &
pid=$!
for _ in $(seq 200); do grep -q 'ready:' "$tmp/log" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/.* http http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/log" | head -1)
# fr-gen traffic (turns, provider and tool calls, middleware, transport, SEM), all in one conversation
"$BUILD/fr-gen" --events "$N" --seed 21 --concurrency 1 --base-ms $(( $(date +%s%3N) - 3600000 )) |
  sed 's/"conv_id":"[^"]*"/"conv_id":"bench-big"/' > "$tmp/big.ndjson"
curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-ndjson' \
  --data-binary @"$tmp/big.ndjson" "http://127.0.0.1:$port/v1/events" | grep -q 202
stored=$(curl -s "http://127.0.0.1:$port/v1/conversations/bench-big?summary=true" |
  sed -n 's/.*"event_count":\([0-9]*\).*/\1/p')
out=$(node bench/console.mjs "http://127.0.0.1:$port" bench-big "$stored" "$ROUNDS")
kill -TERM "$pid"; wait "$pid" || true
ms=$(echo "$out" | sed -n 's/.*"interactive_ms":\([0-9]*\).*/\1/p')
fetch=$(echo "$out" | sed -n 's/.*"fetch_ms":\([0-9]*\).*/\1/p')
bpe=$(echo "$out" | sed -n 's/.*"bytes_per_event":\([0-9]*\).*/\1/p')
rounds=$(echo "$out" | sed -n 's/.*"rounds_ms":\[\([0-9,]*\)\].*/\1/p')
complete=$(echo "$out" | sed -n 's/.*"complete_ms":\([0-9]*\).*/\1/p')
echo "console: timeline of a $stored-event conversation interactive in ${ms} ms (median of $ROUNDS: $rounds; goal < 1000 ms);" \
     "every event laid out in ${complete} ms, $(awk -v a="$complete" -v b="$fetch" 'BEGIN { printf "%.1f", a / (b > 0 ? b : 1) }')x" \
     "the ${fetch} ms of fetching the same conversation's JSON alone in the same page;" \
     "the API serves it $bpe bytes per event"
