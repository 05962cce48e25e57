#!/usr/bin/env bash
# make bench, ingest stages: where the time of the ingest path goes, per
# event, on one core (bench/stagebench.c): parse, collect, redact, store, on
# BENCH_STAGE_EVENTS (default 100,000) generated events with 5% of user
# messages carrying a secret or personal datum, into a fresh hot store.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_STAGE_EVENTS:-100000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/fr-gen" --events "$N" --seed 5 --sensitive 5 > "$tmp/events.ndjson"
"$BUILD/fr-stagebench" "$tmp/events.ndjson" "$tmp/hot.db"
