#!/usr/bin/env bash
# make bench, long conversations and the official instrumentations' OTLP
# shapes: costs that grow with what the store already holds show here, not in
# the per-event rates. Three runs, each on a fresh agent or store:
#   1. content log records: CALLS model calls, each a chat span and 10 log
#      records (system message, 8 history messages, the choice) as
#      @opentelemetry/instrumentation-openai sends them, the spans exported
#      before the logs (the records merge into stored events), into a store
#      that already holds PRELOAD fr-otlpgen spans: the agent's CPU;
#   2. turns of one conversation split over exports: TURNS turns, each its 8
#      child spans in one request and its root span (which names the
#      conversation) in the next, so every turn's events move from the trace
#      to the conversation: ms per turn over the first and the last 150;
#   3. one conversation of EVENTS fr-gen events through `flightrec ingest`, in
#      8 files: events/s of each, first to last;
#   4. that conversation read a part at a time: the query API's 500-event
#      pages at its start, middle and end (median of 3 each) next to the
#      whole answer, and `flightrec show --last 5` next to the whole `show`.
# Requests are sent one at a time (python3's http.client): what is measured is
# the agent's CPU and how it changes, not the sender.
# Environment: BUILD, BENCH_LONG_CALLS (2000), BENCH_LONG_PRELOAD (100000),
# BENCH_LONG_TURNS (1500), BENCH_LONG_EVENTS (200000).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
CALLS=${BENCH_LONG_CALLS:-2000}
PRELOAD=${BENCH_LONG_PRELOAD:-100000}
TURNS=${BENCH_LONG_TURNS:-1500}
EVENTS=${BENCH_LONG_EVENTS:-200000}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

python3 - "$tmp" "$CALLS" "$TURNS" <<'PY'
import json, random, sys
d, calls, turns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(1)
words = ("incidents migration with account order payments Paris summarize list the their refund "
         "weather owners open status please tomorrow quarterly retry report today in for").split()
def txt(n): return " ".join(random.choice(words) for _ in range(n))
def sv(s): return {"stringValue": s}
res = {"attributes": [{"key": "service.name", "value": sv("chat")}]}
def traces(spans): return json.dumps({"resourceSpans": [{"resource": res, "scopeSpans": [{"scope": {"name": "openai"}, "spans": spans}]}]})
def chat(tr, sp, t, extra=()):
    return {"traceId": tr, "spanId": sp, "name": "chat gpt-4o", "kind": 3, "startTimeUnixNano": str(t),
            "endTimeUnixNano": str(t + 800000000), "attributes": [
                {"key": "gen_ai.operation.name", "value": sv("chat")}, {"key": "gen_ai.system", "value": sv("openai")},
                {"key": "gen_ai.request.model", "value": sv("gpt-4o")}, *extra]}
t0 = 1771357440000000000
spans, logs = [], []
for c in range(calls):
    tr, sp, t = "%032x" % random.getrandbits(128), "%016x" % random.getrandbits(64), t0 + c * 10**9
    spans.append(chat(tr, sp, t, [{"key": "gen_ai.conversation.id", "value": sv("conv-%d" % (c // 5))}]))
    def rec(name, body):
        return {"timeUnixNano": str(t), "traceId": tr, "spanId": sp, "eventName": name, "body": body,
                "attributes": [{"key": "event.name", "value": sv(name)}]}
    logs.append(rec("gen_ai.system.message", {"kvlistValue": {"values": [{"key": "content", "value": sv("You are helpful. " + txt(20))}]}}))
    for h in range(8):
        logs.append(rec("gen_ai.user.message" if h % 2 == 0 else "gen_ai.assistant.message",
                        {"kvlistValue": {"values": [{"key": "content", "value": sv(txt(25))}]}}))
    logs.append(rec("gen_ai.choice", {"kvlistValue": {"values": [
        {"key": "index", "value": {"intValue": "0"}}, {"key": "finish_reason", "value": sv("stop")},
        {"key": "message", "value": {"kvlistValue": {"values": [{"key": "content", "value": sv(txt(30))}]}}}]}}))
with open(d + "/calls.traces", "w") as f:
    for i in range(0, len(spans), 500):
        f.write(traces(spans[i:i + 500]) + "\n")
with open(d + "/calls.logs", "w") as f:
    for i in range(0, len(logs), 512):
        f.write(json.dumps({"resourceLogs": [{"resource": res, "scopeLogs": [{"scope": {"name": "openai"}, "logRecords": logs[i:i + 512]}]}]}) + "\n")
with open(d + "/turns.traces", "w") as f:
    for n in range(turns):
        tr, root, t = "%032x" % random.getrandbits(128), "%016x" % random.getrandbits(64), t0 + n * 2 * 10**9
        kids = [dict(chat(tr, "%016x" % random.getrandbits(64), t + k * 10**6), parentSpanId=root) for k in range(8)]
        f.write(traces(kids) + "\n")
        f.write(traces([{"traceId": tr, "spanId": root, "name": "POST /chat", "kind": 2, "startTimeUnixNano": str(t),
                         "endTimeUnixNano": str(t + 9 * 10**8), "attributes": [
                             {"key": "gen_ai.conversation.id", "value": sv("long-conv")},
                             {"key": "http.request.method", "value": sv("POST")}, {"key": "url.path", "value": sv("/chat")},
                             {"key": "http.response.status_code", "value": {"intValue": "200"}}]}]) + "\n")
PY
"$BUILD/fr-otlpgen" --spans "$PRELOAD" --batch 500 --seed 1 > "$tmp/preload.traces"

agent_start() { # [DB] (default: a new one)
  local d="$tmp/agent"
  rm -rf "$d"; mkdir -p "$d"
  printf 'storage:\n  path: %s\nhttp:\n  listen: 127.0.0.1:0\notlp:\n  listen: 127.0.0.1:0\n  grpc_listen: ""\nsocket:\n  enabled: false\nruntime:\n  self: false\n' \
    "${1:-$d/db}" > "$d/c.yaml"
  "$BUILD/flightrec" agent --config "$d/c.yaml" 2> "$d/log" &
  pid=$!
  for _ in $(seq 200); do grep -q 'ready:' "$d/log" 2>/dev/null && break; sleep 0.05; done
  port=$(sed -n 's/.* otlp http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$d/log")
  api=$(sed -n 's/.* http http:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$d/log")
}
# post FILE PATH [EDGE]: one request per line; with EDGE, the ms per request pair over the
# first and the last EDGE pairs
post() {
  python3 - "$port" "$1" "$2" "${3:-0}" <<'PY'
import http.client, sys, time
port, path, url, edge = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
c = http.client.HTTPConnection("127.0.0.1", port)
lines = open(path).read().splitlines()
stamps = []
for l in lines:
    c.request("POST", url, body=l.encode(), headers={"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit("longconv bench: %s answered %d" % (url, r.status))
    stamps.append(time.monotonic())
if edge:
    first = (stamps[2 * edge - 1] - stamps[0]) / (edge - 0.5) * 1000
    last = (stamps[-1] - stamps[-2 * edge - 1]) / edge * 1000
    print("%.1f %.1f" % (first, last))
PY
}
cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$pid/stat"; }
stop() { kill -TERM "$pid"; wait "$pid"; }

echo "longconv bench: $CALLS calls of 10 content log records into a store of $PRELOAD spans;" \
     "$TURNS turns of one conversation split over exports; one conversation of $EVENTS events"
agent_start
post "$tmp/preload.traces" /v1/traces
a=$(cpu)
post "$tmp/calls.traces" /v1/traces
post "$tmp/calls.logs" /v1/logs
b=$(cpu)
stop
echo "content logs (spans first): agent CPU $(awk -v a="$a" -v b="$b" -v n="$CALLS" \
  'BEGIN { printf "%.2f s, %.0f us per call of 10 records", b - a, (b - a) * 1e6 / n }')"

agent_start
read -r first last < <(post "$tmp/turns.traces" /v1/traces 150)
c=$(cpu)
stop
echo "turns split over exports: ${first} ms per turn over the first 150, ${last} ms over the last" \
     "150 (goal: flat); agent CPU ${c} s"

"$BUILD/fr-gen" --events "$EVENTS" --seed 3 --concurrency 1 |
  sed -e 's/"conv_id":"[^"]*"/"conv_id":"long-conv"/' > "$tmp/one.ndjson"
split -n l/8 -d "$tmp/one.ndjson" "$tmp/part."
rates=""
for f in "$tmp"/part.0*; do
  r=$("$BUILD/flightrec" ingest --no-progress --db "$tmp/one.db" "$f" 2>&1 |
      sed -n 's/.* \([0-9][0-9]*\) events\/s$/\1/p')
  rates+="$r "
done
echo "one conversation, $EVENTS events in 8 files: events/s ${rates}(goal: flat);" \
     "$(sqlite3 "$tmp/one.db" "SELECT round(100.0 * count(*) FILTER (WHERE typeof(body) = 'blob') / count(*)) FROM events")% of rows compressed"

agent_start "$tmp/one.db"
pages=$(python3 - "$api" <<'PY'
import http.client, statistics, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
def get(q):
    t = time.monotonic()
    c.request("GET", "/v1/conversations/long-conv" + q)
    r = c.getresponse(); body = r.read()
    if r.status != 200:
        sys.exit("longconv bench: %s answered %d" % (q, r.status))
    return (time.monotonic() - t) * 1000, body
_, whole = get("?offset=0&limit=1")
total = int(whole.split(b'"total_events":')[1].split(b",")[0])
out = []
for off in (0, total // 2, max(0, total - 500)):
    out.append("%.0f" % statistics.median(get("?offset=%d&limit=500" % off)[0] for _ in range(3)))
out.append("%.0f" % get("")[0])
print(" / ".join(out[:3]), "ms per 500-event page at its start / middle / end; the whole %s ms" % out[3])
PY
)
stop
t0=$(date +%s%N)
"$BUILD/flightrec" show --db "$tmp/one.db" --last 5 long-conv > /dev/null 2>&1
t1=$(date +%s%N)
"$BUILD/flightrec" show --db "$tmp/one.db" long-conv > /dev/null
t2=$(date +%s%N)
echo "one conversation read a part at a time: API $pages; show --last 5" \
     "$(( (t1 - t0) / 1000000 )) ms, the whole show $(( (t2 - t1) / 1000000 )) ms"
