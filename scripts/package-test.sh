#!/usr/bin/env bash
# make package-test: the Debian package as a user gets it (docs/packaging.md).
# lintian with no error; dpkg -i; flightrec version and config check of the
# installed configuration; the man pages; the units verified and their
# exposure (systemd-analyze security) at "OK" or better; the installed binary
# started as the flightrec user against /var/lib/flightrec, the sample events
# ingested and read back; dpkg -r keeps the data and conffiles; dpkg -P leaves
# no file of the package, no data, no user behind (each one is listed).
# Needs root (it installs and purges the package); skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-package}
deb=$(ls -1t "$BUILD"/flightrec_*.deb 2> /dev/null | head -1)
[ -n "$deb" ] || { echo "package-test: no package in $BUILD (make package)" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
  echo "package-test: needs root to install the package; skipped"
  exit 0
fi
fail() { echo "package-test: FAILED: $*" >&2; exit 1; }
step() { echo "package-test: $*"; }
tmp=$(mktemp -d)
agent=""
cleanup() {
  [ -n "$agent" ] && kill "$agent" 2> /dev/null || true
  if dpkg -s flightrec > /dev/null 2>&1 && [ -z "${KEEP:-}" ]; then dpkg -P flightrec > /dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
if dpkg -s flightrec > /dev/null 2>&1; then
  KEEP=1 fail "a flightrec package is already installed here; this test installs and purges its own"
fi

step "lintian $deb"
lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'root privileges' | tee "$tmp/lintian" || true
if grep -q '^E:' "$tmp/lintian"; then fail "lintian reports errors (above)"; fi

step "Depends of the libraries opened at run time, each with its least version"
depends=$(dpkg-deb -f "$deb" Depends)
echo "$depends"
for lib in libcurl4 libpq5 libarchive13 libmicrohttpd12; do
  grep -Eq "(^|, )$lib(t64)? \(>= [0-9]" <<< "$depends" || fail "Depends has no versioned $lib"
done

files=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$')
step "dpkg -i"
dpkg -i "$deb" > "$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i"; }

step "flightrec version"
flightrec version || fail "flightrec version"
flightrec version | head -1 | grep -q "^flightrec $(dpkg-query -W -f='${Version}' flightrec)$" ||
  fail "flightrec version does not print the package's version"
step "config check /etc/flightrec/flightrec.yaml"
flightrec config check /etc/flightrec/flightrec.yaml > "$tmp/check" || fail "config check"
grep -q "path: \"/var/lib/flightrec/flightrec.db\"" "$tmp/check" || fail "the packaged config does not use /var/lib/flightrec"

step "man pages"
if man -w flightrec > /dev/null 2>&1 && man -w 5 flightrec.yaml > /dev/null 2>&1; then
  man -w flightrec
  man -w 5 flightrec.yaml
  MANWIDTH=80 man flightrec 2> /dev/null | grep -q "erase" || fail "man flightrec does not list every command"
elif grep -qs 'path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
  # a minimal image (Docker) drops man pages at install: read them from the package instead
  dpkg-deb -x "$deb" "$tmp/x"
  man -l "$tmp/x/usr/share/man/man1/flightrec.1.gz" 2> /dev/null | grep -q "erase" || fail "flightrec(1)"
  man -l "$tmp/x/usr/share/man/man5/flightrec.yaml.5.gz" 2> /dev/null | grep -q "keys.dir" || fail "flightrec.yaml(5)"
  echo "package-test: (this system's dpkg excludes /usr/share/man; pages read from the package)"
else
  fail "man -w flightrec: the man pages are not installed"
fi

step "bash completion"
comp=/usr/share/bash-completion/completions/flightrec
got=$(bash -c ". $comp; COMP_WORDS=(flightrec era); COMP_CWORD=1; _flightrec; echo \${COMPREPLY[*]}")
[ "$got" = erase ] || fail "completion of 'flightrec era': '$got'"
got=$(bash -c ". $comp; COMP_WORDS=(flightrec erase --rea); COMP_CWORD=2; _flightrec; echo \${COMPREPLY[*]}")
[ "$got" = --reason ] || fail "completion of 'flightrec erase --rea': '$got'"

step "user and folders"
getent passwd flightrec > /dev/null || fail "no flightrec user"
[ "$(stat -c '%U %a' /var/lib/flightrec)" = "flightrec 700" ] || fail "/var/lib/flightrec is not flightrec's, 0700"
[ "$(stat -c '%U %a' /etc/flightrec/keys)" = "flightrec 700" ] || fail "/etc/flightrec/keys is not flightrec's, 0700"

step "units"
if command -v systemd-analyze > /dev/null; then
  systemd-analyze verify /lib/systemd/system/flightrec.service \
    /lib/systemd/system/flightrec-retention.service /lib/systemd/system/flightrec-retention.timer ||
    fail "systemd-analyze verify"
  for u in flightrec.service flightrec-retention.service; do
    score=$(systemd-analyze security --offline=yes "/lib/systemd/system/$u" 2>&1 |
      sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    echo "package-test: $u exposure $score"
    awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.5) }' || fail "$u exposure $score > 2.5"
  done
else
  fail "systemd-analyze is missing (scripts/deps.sh package installs it)"
fi

step "the agent as the flightrec user, against /var/lib/flightrec"
install -d -m 0700 -o flightrec -g flightrec /run/flightrec # what RuntimeDirectory= does
# setpriv execs (runuser would stand between the signal and the agent)
setpriv --reuid=flightrec --regid=flightrec --init-groups --inh-caps=-all \
  env HOME=/var/lib/flightrec FLIGHTREC_HTTP_LISTEN=127.0.0.1:0 FLIGHTREC_OTLP_LISTEN=127.0.0.1:0 \
  flightrec agent --config /etc/flightrec/flightrec.yaml 2> "$tmp/agent.log" &
agent=$!
port=""
for _ in $(seq 300); do
  port=$(sed -n 's/.* http http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/agent.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$agent" 2> /dev/null || { cat "$tmp/agent.log"; fail "the agent exited at start"; }
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/agent.log"; fail "the agent did not become ready"; }
sample=/usr/share/doc/flightrec/examples/sample-events.ndjson
[ -e "$sample" ] || sample=$PWD/configs/sample-events.ndjson # dpkg set to drop /usr/share/doc
# (curl runs as flightrec, which cannot write into this script's folder: answers on stdout)
runuser -u flightrec -- curl -s -w '\n%{http_code}\n' --data-binary @- \
  "http://127.0.0.1:$port/v1/events" > "$tmp/post" < "$sample"
code=$(tail -1 "$tmp/post")
[ "$code" = 202 ] || { cat "$tmp/post"; fail "POST of the sample events: HTTP $code"; }
accepted=$(sed -n 's/.*"accepted":\([0-9]*\).*/\1/p' "$tmp/post")
lines=$(grep -c . "$sample")
[ "$accepted" = "$lines" ] || fail "$accepted of $lines sample events accepted"
runuser -u flightrec -- curl -sf "http://127.0.0.1:$port/v1/conversations" > "$tmp/convs" ||
  fail "GET /v1/conversations"
grep -q '"conv_id"' "$tmp/convs" || fail "no conversation read back"
kill -TERM "$agent"
wait "$agent" || { cat "$tmp/agent.log"; fail "the agent did not stop cleanly"; }
agent=""
[ "$(stat -c '%U %a' /var/lib/flightrec/flightrec.db)" = "flightrec 600" ] || fail "the database is not flightrec's, 0600"
[ "$(stat -c '%U %a' /etc/flightrec/keys/hmac.key)" = "flightrec 600" ] || fail "the HMAC key is not in /etc/flightrec/keys, flightrec's, 0600"
echo "package-test: $accepted events stored in /var/lib/flightrec, keys in /etc/flightrec/keys"

step "dpkg -r keeps the data and the configuration"
dpkg -r flightrec > /dev/null
[ ! -e /usr/bin/flightrec ] || fail "/usr/bin/flightrec left after dpkg -r"
[ -e /var/lib/flightrec/flightrec.db ] || fail "dpkg -r removed the data"
[ -e /etc/flightrec/flightrec.yaml ] || fail "dpkg -r removed a conffile"

step "dpkg -P leaves nothing behind"
dpkg -P flightrec > /dev/null
left=""
for f in $files /var/lib/flightrec /etc/flightrec; do
  [ -e "$f" ] && left="$left $f"
done
getent passwd flightrec > /dev/null && left="$left (user flightrec)"
getent group flightrec > /dev/null && left="$left (group flightrec)"
[ -z "$left" ] || fail "left after dpkg -P:$left"
rm -rf /run/flightrec
echo "package-test: ok"
