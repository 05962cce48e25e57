#!/usr/bin/env bash
# The layering check must catch what it claims to: builds a small tree with
# one upward include, one upward call and two files calling each other, and
# expects scripts/check-layers.py to name each; then a clean tree must pass.
set -euo pipefail
script="$(cd "$(dirname "$0")/../.." && pwd)/scripts/check-layers.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/core" "$tmp/agent" "$tmp/collectors" "$tmp/build/CMakeFiles/x.dir/core" \
  "$tmp/build/CMakeFiles/x.dir/agent" "$tmp/build/CMakeFiles/x.dir/collectors"
echo 'void agent_fn(void);' > "$tmp/agent/a.h"
printf '#include "agent/a.h"\nvoid b_fn(void);\nvoid c_fn(void) { agent_fn(); b_fn(); }\n' > "$tmp/core/c.c"
printf 'void c_fn(void);\nvoid b_fn(void) { c_fn(); }\n' > "$tmp/core/b.c"
printf 'void agent_fn(void) {}\n' > "$tmp/agent/a.c"
printf 'void coll_fn(void) {}\n' > "$tmp/collectors/ok.c"
for f in core/c.c core/b.c agent/a.c collectors/ok.c; do
  cc -c -I"$tmp" "$tmp/$f" -o "$tmp/build/CMakeFiles/x.dir/$f.o"
done
out=$(FR_LAYERS_ROOT="$tmp" "$script" "$tmp/build" || true)
echo "$out"
fail=0
grep -q 'core/c.c:1: core includes agent/a.h' <<<"$out" || { echo "FAIL: upward include not caught"; fail=1; }
grep -q 'core/c.c (core) calls agent/a.c (agent): agent_fn' <<<"$out" || { echo "FAIL: upward call not caught"; fail=1; }
grep -q 'files calling each other in a loop: core/b.c, core/c.c' <<<"$out" || { echo "FAIL: loop not caught"; fail=1; }
if FR_LAYERS_ROOT="$tmp" "$script" "$tmp/build" >/dev/null; then echo "FAIL: a bad tree passed"; fail=1; fi
# the clean tree: only the files that respect the layers
rm "$tmp/core/c.c" "$tmp/core/b.c" "$tmp/build/CMakeFiles/x.dir/core/c.c.o" "$tmp/build/CMakeFiles/x.dir/core/b.c.o"
FR_LAYERS_ROOT="$tmp" "$script" "$tmp/build" || { echo "FAIL: a clean tree failed"; fail=1; }
exit $fail
