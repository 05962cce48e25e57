#!/usr/bin/env bash
# Fails when a cmocka test function (static void test_*(void **state)) has no
# assert_/fail call in its body: a test that asserts nothing cannot fail.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for f in tests/test_*.c tests/integration/test_*.c; do
  [ -f "$f" ] || continue
  awk -v file="$f" '
    /^test_[a-z0-9_]+\(void \*\*state\)/ { name = $0; sub(/\(.*/, "", name); body = ""; inside = 1; depth = 0; next }
    inside {
      body = body $0 "\n"
      n = gsub(/{/, "{"); m = gsub(/}/, "}"); depth += n - m
      if (depth <= 0 && $0 ~ /^}/) {
        if (body !~ /(assert_|fail_msg|fail\(\)|t_expect_)/) { printf "%s: %s asserts nothing\n", file, name; bad = 1 }
        inside = 0
      }
    }
    END { exit bad }
  ' "$f" || status=1
done
exit $status
