#!/usr/bin/env bash
# make bench, OTLP part: spans per second through the OTLP receiver — OTLP/HTTP
# JSON and protobuf (POST /v1/traces on otlp.listen) and OTLP/gRPC (on
# otlp.grpc_listen) — next to events per second through POST /v1/events,
# with the same agent binary in the same run. The protobuf bodies are the JSON
# requests re-encoded by fr-httpbench (bench/otlppb.c), as an SDK's proto or
# gRPC exporter would send the same spans. The
# spans come from fr-otlpgen (turns of an HTTP server span, two chat calls
# with usage, prompt and completion, 5% of prompts holding a secret, and a
# tool span; ~900 bytes each in OTLP JSON, 500 per request), the events from
# fr-gen (~600 bytes, 500 per request), both spread over conversations alike:
# 8 open at once (fr-gen's default, fr-otlpgen --concurrency 8), ~41 of them
# in 2,000 items. How many conversations a transaction touches weighs on
# what a stored item costs (a page of each conversation-keyed index per
# conversation is written), so spans and events are compared at the same
# spread; a last part compares them at a busy server's (~500 conversations
# in 2,000 items: fr-otlpgen's round of 5,000, fr-gen --concurrency 500),
# protobuf against /v1/events. BENCH_CLIENTS keep-alive clients
# (fr-httpbench); every answer counted is the durable one (200 / 202).
# Rounds alternate the four paths on a fresh agent each; medians reported,
# then the agent's CPU (user + system), minor page faults and bytes written
# (wchar: its WAL, and checkpoints into the database) per item while the
# clients ran (from /proc), steadier than rates on a shared machine.
# grpc-mux is OTLP/gRPC as the OpenTelemetry Collector's exporter sends it:
# BENCH_STREAMS (8) concurrent exports as streams of one HTTP/2 connection
# (bench/grpc-mux.mjs, @grpc/grpc-js); fr-httpbench's grpc keeps one
# connection per client, one request at a time, as an SDK's exporter
# (libnghttp2: libcurl 7.88 cannot reuse one with prior knowledge).
# Then one and four exports of 8,000 spans at once (a Collector's batch): peak RSS.
# Environment: BUILD, BENCH_OTLP_SPANS (default 100000), BENCH_ROUNDS (3),
# BENCH_CLIENTS (4), BENCH_STREAMS (8).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_OTLP_SPANS:-100000}
ROUNDS=${BENCH_ROUNDS:-3}
CLIENTS=${BENCH_CLIENTS:-4}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

"$BUILD/fr-otlpgen" --spans "$N" --batch 500 --seed 1 --sensitive 5 --concurrency 8 \
  > "$tmp/spans.json"
"$BUILD/fr-gen" --events "$N" --seed 1 --sensitive 5 > "$tmp/events.ndjson"
"$BUILD/fr-otlpgen" --spans "$N" --batch 500 --seed 1 --sensitive 5 > "$tmp/spans-busy.json"
"$BUILD/fr-gen" --events "$N" --seed 1 --sensitive 5 --concurrency 500 > "$tmp/events-busy.ndjson"
scripts/npm-deps.sh # @grpc/grpc-js, for grpc-mux
FR_HTTPBENCH_DUMP="$tmp/spans.pb" "$BUILD/fr-httpbench" grpc://127.0.0.1:1 "$tmp/spans.json" 1 500 0 grpc
echo "otlp bench: $N spans ($(($(stat -c %s "$tmp/spans.json") / N)) bytes each in OTLP JSON)" \
     "and $N events ($(($(stat -c %s "$tmp/events.ndjson") / N)) bytes each), $ROUNDS rounds"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# one agent, one path: prints "per_s mb_per_s p99_ms bytes_per_item"
round() { # MODE FILE   (MODE: json, proto, grpc for the spans; events for /v1/events)
  local d="$tmp/agent"
  rm -rf "$d"; mkdir -p "$d"
  printf 'storage:\n  path: %s/db\nhttp:\n  listen: 127.0.0.1:0\notlp:\n  listen: 127.0.0.1:0\n  grpc_listen: 127.0.0.1:0\nsocket:\n  enabled: false\nruntime:\n  self: false\n' \
    "$d" > "$d/c.yaml"
  "$BUILD/flightrec" agent --config "$d/c.yaml" 2> "$d/log" &
  local pid=$! port url
  for _ in $(seq 200); do grep -q 'ready:' "$d/log" 2>/dev/null && break; sleep 0.05; done
  case "$1" in
    json|proto)
      port=$(sed -n 's/.* otlp http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$d/log")
      url="http://127.0.0.1:$port/v1/traces" ;;
    grpc|grpc-mux)
      port=$(sed -n 's/.* otlp-grpc grpc:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$d/log")
      url="grpc://127.0.0.1:$port" ;;
    *)
      port=$(sed -n 's/.* http http:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$d/log")
      url="http://127.0.0.1:$port/v1/events" ;;
  esac
  local before after
  before=$(awk '{print $10, $14 + $15}' "/proc/$pid/stat")
  local wbefore; wbefore=$(awk '/^wchar:/ {print $2}' "/proc/$pid/io")
  if [ "$1" = grpc-mux ]; then
    node bench/grpc-mux.mjs "127.0.0.1:$port" "$tmp/spans.pb" "${BENCH_STREAMS:-8}" > "$d/out" ||
      echo "otlp bench: $1: $(sed -n 's/^failures //p' "$d/out") requests failed" >&2
  else
    "$BUILD/fr-httpbench" "$url" "$2" "$CLIENTS" 500 0 "$1" > "$d/out" ||
      echo "otlp bench: $1: $(sed -n 's/^failures //p' "$d/out") requests failed" >&2
  fi
  after=$(awk '{print $10, $14 + $15}' "/proc/$pid/stat")
  local written; written=$(awk -v a="$wbefore" -v n="$N" '/^wchar:/ {printf "%.0f", ($2 - a) / n}' \
    "/proc/$pid/io")
  kill -TERM "$pid"; wait "$pid"
  # the agent's CPU (user + system) and minor page faults per item, while the clients ran
  local cpu_us faults
  read -r cpu_us faults < <(awk -v a="$before" -v b="$after" -v n="$N" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { split(a, x, " "); split(b, y, " ");
             printf "%.1f %.2f\n", (y[2] - x[2]) * 1e6 / hz / n, (y[1] - x[1]) / n }')
  echo "$(sed -n 's/^events_per_s //p' "$d/out") $(sed -n 's/^mb_per_s //p' "$d/out")" \
       "$(sed -n 's/^ack_p99_ms //p' "$d/out") $(sed -n 's/^bytes_per_event //p' "$d/out")" \
       "$cpu_us $faults $written"
}

declare -A rate mbs p99 size cpu flt wr
modes=(json proto grpc grpc-mux events)
for r in $(seq "$ROUNDS"); do
  line="  round $r:"
  for m in "${modes[@]}"; do
    f="$tmp/spans.json"; [ "$m" = events ] && f="$tmp/events.ndjson"
    read -r x mb p bytes c pf w < <(round "$m" "$f")
    rate[$m]+="$x "; mbs[$m]+="$mb "; p99[$m]+="$p "; size[$m]=$bytes; cpu[$m]+="$c "; flt[$m]+="$pf "
    wr[$m]+="$w "
    line+=" $m ${x}/s (${mb} MB/s, p99 ${p} ms, ${c} us CPU)"
  done
  echo "$line"
done
med() { printf '%s\n' $1 | median; }
er=$(med "${rate[events]}"); emb=$(med "${mbs[events]}")
jr=$(med "${rate[json]}")
for m in "${modes[@]}"; do
  x=$(med "${rate[$m]}"); mb=$(med "${mbs[$m]}"); p=$(med "${p99[$m]}")
  what="spans"; [ "$m" = events ] && what="events"
  printf 'otlp: %-8s %7s %s/s, %5s MB/s (%s bytes each), ack p99 %s ms' "$m" "$x" "$what" "$mb" \
    "${size[$m]}" "$p"
  if [ "$m" != events ]; then
    awk -v a="$x" -v b="$er" -v c="$mb" -v d="$emb" -v j="$jr" \
      'BEGIN { printf "; %.2fx JSON spans/s, %.0f%% of /v1/events items/s, %.0f%% of its bytes/s", a / j, 100 * a / b, 100 * c / d }'
  fi
  echo
done
# The agent's CPU per item is steadier than a rate on a shared machine: the same comparison by it
jc=$(med "${cpu[json]}")
for m in "${modes[@]}"; do
  c=$(med "${cpu[$m]}"); pf=$(med "${flt[$m]}"); w=$(med "${wr[$m]}")
  what="span"; [ "$m" = events ] && what="event"
  printf 'otlp: %-8s agent CPU %5s us per %s, %s minor faults, %s bytes written per %s' "$m" "$c" \
    "$what" "$pf" "$w" "$what"
  [ "$m" != events ] && awk -v a="$c" -v j="$jc" 'BEGIN { printf "; JSON uses %.2fx its CPU", j / a }'
  echo
done
# At a busy server's spread over conversations: protobuf and /v1/events alternated again
declare -A brate bmbs bcpu
for r in $(seq "$ROUNDS"); do
  read -r x mb _ _ c _ _ < <(round proto "$tmp/spans-busy.json")
  brate[proto]+="$x "; bmbs[proto]+="$mb "; bcpu[proto]+="$c "
  read -r x mb _ _ c _ _ < <(round events "$tmp/events-busy.ndjson")
  brate[events]+="$x "; bmbs[events]+="$mb "; bcpu[events]+="$c "
done
px=$(med "${brate[proto]}"); pmb=$(med "${bmbs[proto]}"); pc=$(med "${bcpu[proto]}")
ex=$(med "${brate[events]}"); emb=$(med "${bmbs[events]}"); ec=$(med "${bcpu[events]}")
echo "otlp: busy spread (~500 conversations in 2,000 items): proto ${px} spans/s (${pmb} MB/s," \
     "${pc} us CPU per span), /v1/events ${ex} events/s (${emb} MB/s, ${ec} us CPU per event);" \
     "$(awk -v a="$pmb" -v b="$emb" 'BEGIN { printf "%.0f", 100 * a / b }')% of its bytes/s"
# A Collector's default batch in one request (8,000 spans: ~4.5 MB of protobuf, ~7 MB of
# JSON), read out and prepared 512 spans at a time (agent/otlp/ingest.c): the agent's peak
# RSS for one such export on a fresh agent, and for four posted at once (a 429 is the queue,
# storage.queue_events, still holding another's spans: such senders retry).
"$BUILD/fr-otlpgen" --spans 8000 --batch 8000 --seed 2 --concurrency 8 > "$tmp/big.json"
FR_HTTPBENCH_DUMP="$tmp/big.dump" "$BUILD/fr-httpbench" http://127.0.0.1:1/v1/traces \
  "$tmp/big.json" 1 8000 0 proto > /dev/null 2>&1 || true
# the dump: 4 bytes of length, 4 of span count, then the body
dd if="$tmp/big.dump" of="$tmp/big.pb" bs=1 skip=8 status=none
large() { # CONTENT_TYPE FILE COPIES: prints "peak_kib statuses"
  local d="$tmp/agent"
  rm -rf "$d"; mkdir -p "$d"
  printf 'storage:\n  path: %s/db\nhttp:\n  listen: 127.0.0.1:0\notlp:\n  listen: 127.0.0.1:0\n  grpc_listen: ""\nsocket:\n  enabled: false\nruntime:\n  self: false\n' \
    "$d" > "$d/c.yaml"
  "$BUILD/flightrec" agent --config "$d/c.yaml" 2> "$d/log" &
  local pid=$! port
  for _ in $(seq 200); do grep -q 'ready:' "$d/log" 2>/dev/null && break; sleep 0.05; done
  port=$(sed -n 's/.* otlp http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$d/log")
  local senders=()
  for i in $(seq "$3"); do
    curl -s -o /dev/null -w '%{http_code}\n' -H "Content-Type: $1" --data-binary "@$2" \
      "http://127.0.0.1:$port/v1/traces" > "$d/code.$i" &
    senders+=($!)
  done
  wait "${senders[@]}" || true
  local peak; peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid"
  echo "$peak $(cat "$d"/code.* | sort | uniq -c | awk '{printf "%s%s x %s", (NR > 1 ? ", " : ""), $1, $2}')"
}
for enc in protobuf json; do
  f="$tmp/big.pb"; ct=application/x-protobuf
  [ "$enc" = json ] && f="$tmp/big.json" && ct=application/json
  for copies in 1 4; do
    read -r peak codes < <(large "$ct" "$f" "$copies")
    echo "otlp: one export of 8,000 spans ($enc, $(($(stat -c %s "$f") / 1024)) KiB) x $copies:" \
         "agent peak RSS $(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }') MiB; answered $codes"
  done
done
