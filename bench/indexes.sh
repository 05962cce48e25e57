#!/usr/bin/env bash
# make bench, indexes: what each index of the hot store's events table costs
# at insert. fr-rawinsert inserts the same prepared rows into flightrec's
# schema with every index, then with each one dropped, back to back (rounds,
# medians of the paired differences); an index's price is the difference in
# user CPU microseconds per row of the insert loop (wall time on these shared
# machines varies by more than one index costs), and its size per row
# (dbstat). The query each index serves is listed in docs/storage.md. On
# fr-gen traffic and the --hard mix. "none" is every index dropped at once;
# the last line, "noise", is the same pair
# with nothing dropped (the median absolute difference): smaller differences
# are not measured.
# Environment: BUILD, BENCH_INDEX_EVENTS (default 100000), BENCH_ROUNDS (3),
# BENCH_INDEX_MIXES ("gen hard").
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
N=${BENCH_INDEX_EVENTS:-100000}
ROUNDS=${BENCH_ROUNDS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
raw() { # FILE DROP -> CPU microseconds per row
  rm -f "$tmp"/raw.db*
  "$BUILD/fr-rawinsert" "$1" "$tmp/raw.db" 1000 "$2" | sed -n 's/^cpu_us_per_row //p'
}
for mix in ${BENCH_INDEX_MIXES:-gen hard}; do
  flag=""; [ "$mix" = hard ] && flag="--hard"
  "$BUILD/fr-gen" --events "$N" --seed 3 --sensitive 5 $flag > "$tmp/$mix.ndjson"
  raw "$tmp/$mix.ndjson" "" > /dev/null
  mapfile -t idx < <(sqlite3 "$tmp/raw.db" \
    "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL ORDER BY name")
  declare -A size=()
  while IFS='|' read -r name bytes; do size[$name]=$bytes; done < <(sqlite3 "$tmp/raw.db" \
    "SELECT name, sum(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_schema WHERE tbl_name = 'events') GROUP BY name")
  declare -A rates=()
  for r in $(seq "$ROUNDS"); do
    for i in "${idx[@]}"; do # paired: every index, then without it, back to back
      a=$(raw "$tmp/$mix.ndjson" "")
      w=$(raw "$tmp/$mix.ndjson" "$i")
      rates[all]+="$a "
      rates[$i]+="$(awk -v a="$a" -v w="$w" 'BEGIN { print a - w }') "
    done
    # all of them at once
    a=$(raw "$tmp/$mix.ndjson" "")
    w=$(raw "$tmp/$mix.ndjson" "$(IFS=,; echo "${idx[*]}")")
    rates[none]+="$(awk -v a="$a" -v w="$w" 'BEGIN { print a - w }') "
    # the noise floor: the same pair with nothing dropped
    a=$(raw "$tmp/$mix.ndjson" "")
    w=$(raw "$tmp/$mix.ndjson" "")
    rates[noise]+="$(awk -v a="$a" -v w="$w" 'BEGIN { print (a > w ? a - w : w - a) }') "
  done
  all=$(printf '%s\n' ${rates[all]} | median)
  printf 'indexes (%s, %d rows): every index %s CPU us/row at insert, table %.0f bytes/row\n' "$mix" "$N" "$all" \
    "$(awk -v b="${size[events]}" -v n="$N" 'BEGIN { print b / n }')"
  for i in "${idx[@]}" none noise; do
    d=$(printf '%s\n' ${rates[$i]} | median)
    awk -v i="$i" -v a="$all" -v d="$d" -v b="${size[$i]:-0}" -v n="$N" \
      'BEGIN { printf "  %-22s %6.2f us/row at insert (%5.1f%% of the insert), %5.1f bytes/row\n", i, d, 100 * d / a, b / n }'
  done
  unset size rates
done
