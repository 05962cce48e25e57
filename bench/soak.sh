#!/usr/bin/env bash
# The soak (not part of `make test`; run `bench/soak.sh` or `make soak`):
# `flightrec agent` under the generator's paced HTTP load for SOAK_SECONDS,
# with its retention job running every minute (hot.max_age 1m, so data keeps
# moving to warm segments) and an incident bundle of a live conversation
# every SOAK_BUNDLE_EVERY seconds. Every SOAK_SAMPLE seconds it prints the
# agent's RSS and open file descriptors; at the end: events sent, acked and
# readable across hot and warm (lost must be 0), RSS growth from the end of
# the first third (warmed up) to the end (must stay flat: under 20%), and
# PRAGMA integrity_check.
# Environment: BUILD (build-bench), SOAK_SECONDS (600), SOAK_RATE (2000
# events/s), SOAK_SAMPLE (10), SOAK_BUNDLE_EVERY (120).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
DURATION=${SOAK_SECONDS:-600}
RATE=${SOAK_RATE:-2000}
SAMPLE=${SOAK_SAMPLE:-10}
BUNDLE_EVERY=${SOAK_BUNDLE_EVERY:-120}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

events=$((DURATION * RATE))
now_ms=$(($(date +%s) * 1000))
echo "soak: ${DURATION}s at ${RATE} events/s (${events} events), retention every minute," \
     "a bundle every ${BUNDLE_EVERY}s"
# the generator spaces events ~60 ms apart: stamp them so the whole load lies
# in the past, and each minute's retention run moves what came in since the last
"$BUILD/fr-gen" --events "$events" --seed 11 --sensitive 5 --prefix soak \
  --base-ms "$((now_ms - events * 61))" \
  > "$tmp/load.ndjson"
conv=$(head -1 "$tmp/load.ndjson" | sed 's/.*"conv_id":"\([^"]*\)".*/\1/')
printf 'hot:\n  max_age: 1m\nschedule:\n  interval: 1m\n' > "$tmp/retention.yaml"
printf 'storage:\n  path: %s/db\nhttp:\n  listen: 127.0.0.1:0\nsocket:\n  enabled: false\notlp:\n  enabled: false\nruntime:\n  self: false\nretention:\n  policy: %s/retention.yaml\n' \
  "$tmp" "$tmp" > "$tmp/agent.yaml"
"$BUILD/flightrec" agent --config "$tmp/agent.yaml" 2> "$tmp/agent.log" &
agent=$!
for _ in $(seq 200); do grep -q 'ready:' "$tmp/agent.log" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/.* http http:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$tmp/agent.log")
"$BUILD/fr-httpbench" "http://127.0.0.1:$port/v1/events" "$tmp/load.ndjson" 2 500 "$RATE" \
  > "$tmp/load.out" &
load=$!

rss() { awk '/VmRSS/ {print $2}' "/proc/$agent/status"; }
fds() { ls "/proc/$agent/fd" | wc -l; }
printf '%8s %10s %6s %8s\n' seconds rss_kib fds bundles
samples=(); start=$(date +%s); next_bundle=$BUNDLE_EVERY; bundles=0
while kill -0 "$load" 2>/dev/null; do
  sleep "$SAMPLE"
  t=$(($(date +%s) - start))
  if [ "$t" -ge "$next_bundle" ]; then
    "$BUILD/flightrec" incident create --db "$tmp/db" --conv "$conv" \
      --key "$tmp/sign.pem" --out "$tmp/bundle-$t.tar.zst" > /dev/null 2>> "$tmp/bundles.log" &&
      bundles=$((bundles + 1))
    next_bundle=$((next_bundle + BUNDLE_EVERY))
  fi
  r=$(rss); samples+=("$r")
  printf '%8d %10d %6d %8d\n' "$t" "$r" "$(fds)" "$bundles"
done
wait "$load" || true
kill -TERM "$agent"; wait "$agent" || true

acked=$(sed -n 's/^events //p' "$tmp/load.out")
failures=$(sed -n 's/^failures //p' "$tmp/load.out")
# readable: the hot rows, the warm event records, and the runtime samples the
# warm tier keeps per minute (its records say how many samples each holds)
hot=$(sqlite3 "$tmp/db" 'SELECT count(*) FROM events')
warm=0; minutes=0
for seg in $(sqlite3 "$tmp/db" 'SELECT path FROM archive_segments'); do
  "$BUILD/flightrec" archive cat "$seg" --db "$tmp/db" --policy "$tmp/retention.yaml" > "$tmp/seg.ndjson"
  warm=$((warm + $(grep -c '"t":"event"' "$tmp/seg.ndjson" || true)))
  minutes=$((minutes + $(grep '"t":"runtime_minute"' "$tmp/seg.ndjson" |
    grep -o '"samples":[0-9]*' | awk -F: '{s += $2} END {print s + 0}')))
done
segments=$(sqlite3 "$tmp/db" 'SELECT count(*) FROM archive_segments')
integrity=$(sqlite3 "$tmp/db" 'PRAGMA integrity_check')
stored=$((hot + warm + minutes))
lost=$((acked - stored))
# warmed up (caches filled, a retention run done) by the end of the first
# third; flat means the end is within 20% of that
quarter=${samples[$(( ${#samples[@]} / 3 ))]}
last=${samples[$(( ${#samples[@]} - 1 ))]}
growth=$(awk -v a="$quarter" -v b="$last" 'BEGIN { printf "%.0f", 100 * (b - a) / a }')
echo "soak: sent ${events}, acked ${acked} (${failures} failed requests), readable ${stored}" \
     "(hot ${hot} rows, warm ${warm} event records and ${minutes} runtime samples in" \
     "${segments} segments), lost ${lost}; RSS ${quarter} KiB at 1/3 -> ${last} KiB at the end" \
     "(${growth}%); ${bundles} bundles; integrity_check: ${integrity}"
status=0
[ "$lost" -eq 0 ] || { echo "soak: FAILED: $lost acknowledged events are missing"; status=1; }
[ "$integrity" = ok ] || { echo "soak: FAILED: integrity_check"; status=1; }
[ "$growth" -lt 20 ] || { echo "soak: FAILED: RSS grew ${growth}%"; status=1; }
exit $status
