#!/usr/bin/env bash
# bench/prose.sh OUT: English prose for the benchmarks' third mix (fr-gen --text): Debian's own
# changelogs, NEWS and READMEs under /usr/share/doc, in path order, each line of 20 bytes or
# more once. Prints how many bytes it wrote; a machine without them (a minimal image) gives
# few, and the callers skip the mix.
set -euo pipefail
find /usr/share/doc -type f \( -name 'changelog*' -o -name 'NEWS*' -o -name 'README*' \) \
  2> /dev/null | LC_ALL=C sort | while read -r f; do
  case "$f" in *.gz) zcat -- "$f" 2> /dev/null || true ;; *) cat -- "$f" 2> /dev/null || true ;; esac
done | awk 'length($0) >= 20 && !seen[$0]++' > "$1"
stat -c %s "$1"
