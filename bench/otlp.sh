#!/usr/bin/env bash
# make bench, OTLP part: spans per second through the OTLP/HTTP JSON receiver
# (POST /v1/traces on otlp.listen) next to events per second through
# POST /v1/events, against the same agent process in the same run. The
# spans come from fr-otlpgen (turns of an HTTP server span, two chat calls
# with usage, prompt and completion, 5% of prompts holding a secret, and a
# tool span; ~900 bytes each in OTLP JSON, 500 per request), the events from
# fr-gen (~600 bytes, 500 per request). BENCH_CLIENTS keep-alive clients
# (fr-httpbench); every answer counted is the durable one (200 / 202).
# Rounds alternate the two paths on a fresh agent each; medians reported.
# Environment: BUILD, BENCH_OTLP_SPANS (default 100000), BENCH_ROUNDS (3),
# BENCH_CLIENTS (4).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_OTLP_SPANS:-100000}
ROUNDS=${BENCH_ROUNDS:-3}
CLIENTS=${BENCH_CLIENTS:-4}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

"$BUILD/fr-otlpgen" --spans "$N" --batch 500 --seed 1 --sensitive 5 > "$tmp/spans.json"
"$BUILD/fr-gen" --events "$N" --seed 1 --sensitive 5 > "$tmp/events.ndjson"
echo "otlp bench: $N spans ($(($(stat -c %s "$tmp/spans.json") / N)) bytes each in OTLP JSON)" \
     "and $N events ($(($(stat -c %s "$tmp/events.ndjson") / N)) bytes each), $ROUNDS rounds"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# one agent, one path: prints "per_s p50_ms p99_ms"
round() { # PATH FILE
  local d="$tmp/agent"
  rm -rf "$d"; mkdir -p "$d"
  printf 'storage:\n  path: %s/db\nhttp:\n  listen: 127.0.0.1:0\notlp:\n  listen: 127.0.0.1:0\n  grpc_listen: 127.0.0.1:0\nsocket:\n  enabled: false\nruntime:\n  self: false\n' \
    "$d" > "$d/c.yaml"
  "$BUILD/flightrec" agent --config "$d/c.yaml" 2> "$d/log" &
  local pid=$! port
  for _ in $(seq 200); do grep -q 'ready:' "$d/log" 2>/dev/null && break; sleep 0.05; done
  if [ "$1" = /v1/traces ]; then
    port=$(sed -n 's/.* otlp http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$d/log")
  else
    port=$(sed -n 's/.* http http:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$d/log")
  fi
  "$BUILD/fr-httpbench" "http://127.0.0.1:$port$1" "$2" "$CLIENTS" 500 > "$d/out"
  kill -TERM "$pid"; wait "$pid"
  echo "$(sed -n 's/^events_per_s //p' "$d/out") $(sed -n 's/^ack_p50_ms //p' "$d/out")" \
       "$(sed -n 's/^ack_p99_ms //p' "$d/out")"
}

srate=(); s99=(); erate=(); e99=()
for r in $(seq "$ROUNDS"); do
  read -r sr _ sp99 < <(round /v1/traces "$tmp/spans.json")
  read -r er _ ep99 < <(round /v1/events "$tmp/events.ndjson")
  srate+=("$sr"); s99+=("$sp99"); erate+=("$er"); e99+=("$ep99")
  echo "  round $r: OTLP ${sr} spans/s (p99 ${sp99} ms), /v1/events ${er} events/s (p99 ${ep99} ms)"
done
sr=$(printf '%s\n' "${srate[@]}" | median)
er=$(printf '%s\n' "${erate[@]}" | median)
sp99=$(printf '%s\n' "${s99[@]}" | median)
ep99=$(printf '%s\n' "${e99[@]}" | median)
echo "otlp: ${sr} spans/s through /v1/traces, ${er} events/s through /v1/events," \
     "ratio $(awk -v a="$sr" -v b="$er" 'BEGIN { printf "%.0f", 100 * a / b }')%" \
     "(ack p99 ${sp99} ms vs ${ep99} ms)"
