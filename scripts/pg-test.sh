#!/usr/bin/env bash
# A throwaway PostgreSQL server for the fleet tests and bench (Debian's
# postgresql package, installed by scripts/deps.sh): one data directory, a
# Unix socket in it, no TCP, trust auth, torn down by `stop`.
#
#   scripts/pg-test.sh start DIR [PORT]   prints the URI to ship into
#   scripts/pg-test.sh stop DIR           fast shutdown (kept on disk)
#   scripts/pg-test.sh restart DIR        stop, then start on the same port
#   scripts/pg-test.sh kill DIR           immediate shutdown (a crash)
#
# The server refuses to run as root; as root it runs as the postgres user.
set -euo pipefail
cmd=${1:?usage: pg-test.sh start|stop|restart|kill DIR [PORT]}
dir=${2:?data directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
  echo "pg-test: no PostgreSQL server installed (scripts/deps.sh installs postgresql)" >&2
  exit 2
fi
as=()
if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); fi
run() { "${as[@]}" "$@"; }

case "$cmd" in
start)
  # the port chosen at the first start is kept, so a restart keeps the same URI
  if [ -f "$dir/port" ]; then port=$(cat "$dir/port"); else port=${3:-$((20000 + RANDOM % 20000))}; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    mkdir -p "$dir"
    if [ ${#as[@]} -gt 0 ]; then chown postgres "$dir"; fi
    run "$bin/initdb" -D "$dir/data" -U flightrec -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  echo "$port" >"$dir/port"
  run "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
    -o "-k $dir -p $port -c listen_addresses= -c fsync=off -c full_page_writes=off" >/dev/null ||
    { tail -20 "$dir/server.log" >&2; exit 1; }
  echo "postgresql://flightrec@/postgres?host=$dir&port=$port"
  ;;
stop | kill)
  # a server that is not running is already stopped
  [ -f "$dir/data/postmaster.pid" ] || exit 0
  mode=fast
  if [ "$cmd" = kill ]; then mode=immediate; fi
  run "$bin/pg_ctl" -D "$dir/data" -m $mode -w stop >/dev/null
  ;;
restart)
  run "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  "$0" start "$dir" >/dev/null
  ;;
*) echo "pg-test: unknown command $cmd" >&2; exit 2 ;;
esac
