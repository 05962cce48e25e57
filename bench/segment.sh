#!/usr/bin/env bash
# make bench, archive segments: the archive records of BENCH_SEGMENT_EVENTS
# (default 50,000) events, once of fr-gen traffic and once of a harder mix
# (fr-gen --hard: random 128-bit ids, varied free text), written by the
# segment writer as retention writes them (format 5, columnar) and, in the
# same process, by zstd: the segment's size against `zstd -19 --long` of the
# same records (goal <= 0.8x) and the writer's speed against zstd -3 on one
# core (goal >= 0.3x), and where the segment's bytes go by stream codec;
# bench/segbench.c. The records are what `flightrec archive cat` prints of
# the segments a retention run wrote.
#
# A third mix is closer to what chat servers send: prose for every free text
# (Debian's own changelogs, NEWS and READMEs under /usr/share/doc, each line
# once, used in order: English with its real words, names and numbers) and
# provider calls whose requests carry their conversation's history, as a
# stateless chat API is called (fr-gen --text FILE --history). The goals
# are stated on the first two; this one says how far layout carries on
# text. Skipped when the machine holds less than 16 MB of such prose
# (bench/prose.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_SEGMENT_EVENTS:-50000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FLIGHTREC_KEYS_DIR="$tmp/keys"
mixes="fr-gen hard"
prose=$(bench/prose.sh "$tmp/prose.txt")
if [ "$prose" -ge 16000000 ]; then
  mixes="$mixes prose"
else
  echo "segments (prose): skipped, $prose bytes of prose under /usr/share/doc (16 MB needed)"
fi
for mix in $mixes; do
  flag=""
  [ "$mix" = hard ] && flag="--hard"
  [ "$mix" = prose ] && flag="--text $tmp/prose.txt --history"
  d="$tmp/$mix"
  mkdir -p "$d"
  "$BUILD/fr-gen" --events "$N" --seed 9 $flag > "$d/ev.ndjson"
  "$BUILD/flightrec" ingest --no-progress --db "$d/db" "$d/ev.ndjson" 2> /dev/null
  "$BUILD/flightrec" retention run --no-progress --db "$d/db" \
    --now "$((1771357445201 + 40 * 86400000))" 2> /dev/null
  : > "$d/records.ndjson"
  for s in "$d"/archive/*.seg; do
    "$BUILD/flightrec" archive cat --db "$d/db" "$(basename "$s")" >> "$d/records.ndjson"
  done
  echo "segments ($mix, $N events):"
  "$BUILD/fr-segbench" "$d/records.ndjson" | sed 's/^/  /'
done
