#!/usr/bin/env bash
# make bench, ingest stages: where the time of the ingest path goes, per
# event, on one core (bench/stagebench.c): parse, collect, redact, store, on
# BENCH_STAGE_EVENTS (default 100,000) generated events with 5% of user
# messages carrying a secret or personal datum, into a fresh hot store.
# Then the OTLP traces path the same way (bench/otlpstagebench.c): as many
# spans of fr-otlpgen (turns of four spans, 5% of prompts with a secret, 500
# spans a request, 8 conversations open at once as fr-gen's) encoded as
# protobuf, through decode, map, prepare and store, each CPU microseconds per
# span: next to the events' figures, which stage makes a span dearer than an
# event.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_STAGE_EVENTS:-100000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/fr-gen" --events "$N" --seed 5 --sensitive 5 > "$tmp/events.ndjson"
"$BUILD/fr-stagebench" "$tmp/events.ndjson" "$tmp/hot.db"
"$BUILD/fr-otlpgen" --spans "$N" --batch 500 --seed 5 --sensitive 5 --concurrency 8 \
  > "$tmp/spans.json"
"$BUILD/fr-otlpstagebench" "$tmp/spans.json" "$tmp/otlp.db"
