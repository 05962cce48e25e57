#!/usr/bin/env bash
# make bench: ingest throughput of `flightrec ingest` (every collector, the
# taxonomy, rollups, SEM checks, the conversation index and the default
# redaction policy on) next to
#   - the raw SQLite ceiling: the same rows, same schema and indexes,
#     inserted by a bare prepared-statement loop;
#   - the same ingest with redaction off (a policy that can change nothing:
#     configs in bench/redaction-off.yaml), to price the redaction stage;
# on the same generated file (5% of user messages carry a secret or PII),
# in the same run, and on the harder mix (fr-gen --hard) and on prose with
# history (fr-gen --text --history: every free text English from Debian's
# docs, bench/prose.sh, and provider requests carrying their conversation's
# earlier messages; skipped without 16 MB of such prose), each against its
# own bare insert; and the HTTP path: `flightrec agent` on a loopback port,
# BENCH_CLIENTS concurrent keep-alive clients (fr-httpbench) posting batches
# of 500 events, every 202 durable: sustained events/s, p50/p99 ack latency
# and the agent's peak RSS; then overload: BENCH_OVERLOAD_CLIENTS (64) clients on
# the same file, past what the agent takes (429s, retried after 20 ms by the
# sender): the agent's CPU per stored event next to the BENCH_CLIENTS run's,
# the 429s and peak RSS; then small requests: BENCH_SMALL_CLIENTS (16) clients posting one
# event each (20,000 events): events/s, the agent's CPU per event, its commits and the bytes it
# wrote to disk per event. Rounds alternate the runs so machine noise hits
# all of them; medians are reported, and each round's own ratios with their
# median. Then the redaction stage alone (fr-redactbench): MB/s of free text
# through the walk and the detectors.
#
# Environment: BUILD (build dir), BENCH_EVENTS (default 200000), BENCH_ROUNDS (3),
# BENCH_CLIENTS (4), BENCH_OVERLOAD_CLIENTS (64), BENCH_SMALL_CLIENTS (16).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_EVENTS:-200000}
ROUNDS=${BENCH_ROUNDS:-3}
CLIENTS=${BENCH_CLIENTS:-4}
OVERLOAD=${BENCH_OVERLOAD_CLIENTS:-64}
SMALL=${BENCH_SMALL_CLIENTS:-16}
TICK=$(getconf CLK_TCK)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$BUILD/fr-gen" --events "$N" --seed 1 --sensitive 5 > "$tmp/events.ndjson"
"$BUILD/fr-gen" --events "$N" --seed 1 --sensitive 5 --hard > "$tmp/hard.ndjson"
prose=$(bench/prose.sh "$tmp/prose.txt")
if [ "$prose" -ge 16000000 ]; then
  "$BUILD/fr-gen" --events "$N" --seed 1 --sensitive 5 --text "$tmp/prose.txt" --history \
    > "$tmp/prose.ndjson"
else
  echo "bench: the prose mix is skipped: $prose bytes of prose under /usr/share/doc (16 MB needed)"
fi
bytes=$(stat -c %s "$tmp/events.ndjson")
echo "bench: $N generated events, $((bytes / N)) bytes/event on average, $ROUNDS rounds"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; } # KiB -> MiB, one decimal
rate() { sed -n 's/.* \([0-9][0-9]*\) events\/s$/\1/p' "$1"; }
# starts `flightrec agent` on a loopback port with its store in the fresh folder $1; sets
# AGENT_PID and AGENT_PORT
agent_start() {
  local d="$1"
  rm -rf "$d"; mkdir -p "$d"
  printf 'storage:\n  path: %s/db\nhttp:\n  listen: 127.0.0.1:0\nsocket:\n  enabled: false\nruntime:\n  self: false\notlp:\n  enabled: false\n' \
    "$d" > "$d/c.yaml"
  "$BUILD/flightrec" agent --config "$d/c.yaml" 2> "$d/log" &
  AGENT_PID=$!
  for _ in $(seq 200); do grep -q 'ready:' "$d/log" 2>/dev/null && break; sleep 0.05; done
  AGENT_PORT=$(sed -n 's/.* http http:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$d/log")
  if [ -z "$AGENT_PORT" ]; then
    echo "bench: the agent did not start:" >&2
    tail -3 "$d/log" >&2
    exit 1
  fi
}
# the agent's user + system CPU in microseconds per event, over $1 events
agent_cpu() {
  awk -v t="$TICK" -v n="$1" '{printf "%.1f", ($14 + $15) / t * 1e6 / n}' "/proc/$AGENT_PID/stat"
}

# one agent run with $1 clients: prints "events_per_s p50 p99 peak_rss_kib cpu_us_per_event
# retries_429" (CPU: the agent's user + system time over the N events stored)
http_round() {
  local d="$tmp/agent"
  agent_start "$d"
  "$BUILD/fr-httpbench" "http://127.0.0.1:$AGENT_PORT/v1/events" "$tmp/events.ndjson" "$1" 500 > "$d/out"
  local hwm cpu; hwm=$(awk '/VmHWM/ {print $2}' "/proc/$AGENT_PID/status")
  cpu=$(agent_cpu "$N")
  kill -TERM "$AGENT_PID"; wait "$AGENT_PID"
  echo "$(sed -n 's/^events_per_s //p' "$d/out") $(sed -n 's/^ack_p50_ms //p' "$d/out")" \
       "$(sed -n 's/^ack_p99_ms //p' "$d/out") $hwm $cpu $(sed -n 's/^retries_429 //p' "$d/out")"
}

# one agent run of small requests: BENCH_SMALL_CLIENTS (16) clients posting one event each,
# the first 20,000 events: prints "events_per_s cpu_us_per_event commits kb_written_per_event"
# (bytes the agent wrote to disk, /proc/PID/io, the WAL and checkpoints: what a producer that
# posts events as they happen costs the disk)
small_round() {
  local d="$tmp/small" n=20000
  agent_start "$d"
  head -n "$n" "$tmp/events.ndjson" > "$d/in.ndjson"
  local w0; w0=$(awk '/^write_bytes/ {print $2}' "/proc/$AGENT_PID/io")
  "$BUILD/fr-httpbench" "http://127.0.0.1:$AGENT_PORT/v1/events" "$d/in.ndjson" "$SMALL" 1 > "$d/out"
  local w1 cpu commits
  w1=$(awk '/^write_bytes/ {print $2}' "/proc/$AGENT_PID/io")
  cpu=$(agent_cpu "$n")
  commits=$(curl -s "http://127.0.0.1:$AGENT_PORT/metrics" | sed -n 's/^flightrec_commit_seconds_count //p')
  kill -TERM "$AGENT_PID"; wait "$AGENT_PID"
  echo "$(sed -n 's/^events_per_s //p' "$d/out") $cpu ${commits:-0}" \
       "$(awk -v a="$w0" -v b="$w1" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n / 1024 }')"
}

ingest=(); off=(); raw=(); hard=(); hraw=(); prate=(); praw=(); hrate=(); hp50=(); hp99=(); hrss=(); hcpu=()
srate=(); scpu=(); scommits=(); skb=()
orate=(); orss=(); ocpu=(); o429=()
for r in $(seq "$ROUNDS"); do
  rm -rf "$tmp"/*.db* "$tmp/keys"
  "$BUILD/flightrec" ingest --no-progress --db "$tmp/ingest.db" "$tmp/events.ndjson" 2> "$tmp/ingest.log"
  ingest+=("$(rate "$tmp/ingest.log")")
  "$BUILD/flightrec" ingest --no-progress --redaction bench/redaction-off.yaml \
    --db "$tmp/off.db" "$tmp/events.ndjson" 2> "$tmp/off.log"
  off+=("$(rate "$tmp/off.log")")
  raw+=("$("$BUILD/fr-rawinsert" "$tmp/events.ndjson" "$tmp/raw.db" | sed -n 's/^rows_per_s //p')")
  # the harder mix: random 128-bit ids (random B-tree inserts), varied free text
  rm -rf "$tmp"/*.db* "$tmp/keys"
  "$BUILD/flightrec" ingest --no-progress --db "$tmp/hard.db" "$tmp/hard.ndjson" 2> "$tmp/hard.log"
  hard+=("$(rate "$tmp/hard.log")")
  hraw+=("$("$BUILD/fr-rawinsert" "$tmp/hard.ndjson" "$tmp/raw.db" | sed -n 's/^rows_per_s //p')")
  if [ -f "$tmp/prose.ndjson" ]; then
    rm -rf "$tmp"/*.db* "$tmp/keys"
    "$BUILD/flightrec" ingest --no-progress --db "$tmp/prose.db" "$tmp/prose.ndjson" 2> "$tmp/prose.log"
    prate+=("$(rate "$tmp/prose.log")")
    praw+=("$("$BUILD/fr-rawinsert" "$tmp/prose.ndjson" "$tmp/raw.db" | sed -n 's/^rows_per_s //p')")
  fi
  read -r hr h50 h99 hm hc _ < <(http_round "$CLIENTS") || true
  [ -n "${hr:-}" ] || exit 1 # http_round said why
  hrate+=("$hr"); hp50+=("$h50"); hp99+=("$h99"); hrss+=("$hm"); hcpu+=("$hc")
  read -r xr _ _ xm xc x429 < <(http_round "$OVERLOAD")
  orate+=("$xr"); orss+=("$xm"); ocpu+=("$xc"); o429+=("$x429")
  read -r sr sc sm sk < <(small_round)
  srate+=("$sr"); scpu+=("$sc"); scommits+=("$sm"); skb+=("$sk")
  echo "  round $r: flightrec ingest ${ingest[-1]} events/s, redaction off ${off[-1]} events/s," \
       "raw insert ${raw[-1]} rows/s, harder mix ${hard[-1]} vs raw ${hraw[-1]}," \
       "${prate:+prose with history ${prate[-1]} vs raw ${praw[-1]},}" \
       "HTTP ${hr} events/s (p50 ${h50} ms, p99 ${h99} ms," \
       "peak RSS $(mib "$hm") MiB, ${hc} us CPU per event);" \
       "$OVERLOAD clients ${xr} events/s, ${x429} 429s, ${xc} us CPU per event," \
       "peak RSS $(mib "$xm") MiB; $SMALL clients of one event ${sr} events/s, ${sc} us CPU" \
       "per event, ${sm} commits, ${sk} KB written per event"
done
grep '^redaction' "$tmp/ingest.log" | sed 's/^/  /'
i=$(printf '%s\n' "${ingest[@]}" | median)
o=$(printf '%s\n' "${off[@]}" | median)
w=$(printf '%s\n' "${raw[@]}" | median)
ratio=$(awk -v a="$i" -v b="$w" 'BEGIN { printf "%.0f", 100 * a / b }')
cost=$(awk -v a="$i" -v b="$o" 'BEGIN { printf "%.0f", 100 * (1 - a / b) }')
# each round's own ratio too: a round's runs share that round's machine, so the median of these
# is the steadier figure when the machine's speed drifts between rounds
rounds() { # "a/b" per round, as percentages, and their median
  local -n num=$1 den=$2
  local r out=() pct=()
  for r in "${!num[@]}"; do
    pct+=("$(awk -v a="${num[$r]}" -v b="${den[$r]}" 'BEGIN { printf "%.0f", 100 * a / b }')")
  done
  echo "rounds $(printf '%s%%, ' "${pct[@]}" | sed 's/, $//'); median of the rounds $(printf '%s\n' "${pct[@]}" | median)%"
}
echo "ingest (file): flightrec ${i} events/s, raw ceiling ${w} rows/s, ratio ${ratio}% (goal >= 80%);" \
     "$(rounds ingest raw)"
hi=$(printf '%s\n' "${hard[@]}" | median)
hw=$(printf '%s\n' "${hraw[@]}" | median)
echo "ingest (file, harder mix: fr-gen --hard): flightrec ${hi} events/s, raw ceiling ${hw} rows/s," \
     "ratio $(awk -v a="$hi" -v b="$hw" 'BEGIN { printf "%.0f", 100 * a / b }')% (goal >= 80%);" \
     "$(rounds hard hraw)"
if [ ${#prate[@]} -gt 0 ]; then
  pi=$(printf '%s\n' "${prate[@]}" | median)
  pw=$(printf '%s\n' "${praw[@]}" | median)
  echo "ingest (file, prose with history: fr-gen --text --history): flightrec ${pi} events/s," \
       "raw ceiling ${pw} rows/s, ratio $(awk -v a="$pi" -v b="$pw" 'BEGIN { printf "%.0f", 100 * a / b }')%" \
       "(goal >= 80%); $(rounds prate praw)"
fi
echo "redaction: ingest ${i} events/s on vs ${o} events/s off, cost ${cost}% (target <= 25%)"
hr=$(printf '%s\n' "${hrate[@]}" | median)
h50=$(printf '%s\n' "${hp50[@]}" | median)
h99=$(printf '%s\n' "${hp99[@]}" | median)
hm=$(printf '%s\n' "${hrss[@]}" | sort -n | tail -1)
hratio=$(awk -v a="$hr" -v b="$i" 'BEGIN { printf "%.0f", 100 * a / b }')
echo "http ($CLIENTS keep-alive clients, 500-event batches, durable 202s): ${hr} events/s," \
     "${hratio}% of the file rate (goal >= 90%), ack p50 ${h50} ms p99 ${h99} ms," \
     "peak RSS $(mib "$hm") MiB (goal <= 32 MiB); of each round's file rate: $(rounds hrate ingest)"
hc=$(printf '%s\n' "${hcpu[@]}" | median)
xc=$(printf '%s\n' "${ocpu[@]}" | median)
xm=$(printf '%s\n' "${orss[@]}" | sort -n | tail -1)
echo "overload ($OVERLOAD clients, 429s retried after 20 ms): $(printf '%s\n' "${orate[@]}" | median)" \
     "events/s, $(printf '%s\n' "${o429[@]}" | median) 429s per $N events; agent CPU ${xc} us per" \
     "stored event vs ${hc} with $CLIENTS clients:" \
     "$(awk -v a="$xc" -v b="$hc" 'BEGIN { printf "%.2f", a / b }')x (goal <= 1.5x);" \
     "peak RSS $(mib "$xm") MiB (goal <= 64 MiB)"
echo "small requests ($SMALL clients of one event each, 20000 events, durable 202s):" \
     "$(printf '%s\n' "${srate[@]}" | median) events/s, agent CPU $(printf '%s\n' "${scpu[@]}" | median)" \
     "us per event, $(printf '%s\n' "${scommits[@]}" | median) commits," \
     "$(printf '%s\n' "${skb[@]}" | median) KB written to disk per event (requests of 500: about 2)"
"$BUILD/fr-redactbench" "$tmp/events.ndjson" 3 > "$tmp/redact.out"
echo "redaction stage alone: $(sed -n 's/^text_mb_per_s //p' "$tmp/redact.out") MB/s of free text" \
     "($(sed -n 's/^line_mb_per_s //p' "$tmp/redact.out") MB/s of event lines," \
     "$(sed -n 's/^events_per_s //p' "$tmp/redact.out") events/s)"
