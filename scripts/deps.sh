#!/usr/bin/env bash
# Installs the Debian packages flightrec needs to build, test and run, but only
# those that are missing, so a second run is a no-op and costs no network.
#
# Runs as root on the project machines; uses sudo otherwise. Exits non-zero
# with a clear message when a package cannot be installed.
set -euo pipefail

packages=(
  # build
  cmake make gcc g++ pkg-config binutils
  # scripts/check-layers.py
  python3
  # libraries (see README "Dependencies" for why each one)
  libsqlite3-dev libjansson-dev libzstd-dev libssl-dev libyaml-dev libvectorscan-dev
  libmicrohttpd-dev zlib1g-dev libcurl4-openssl-dev libarchive-dev
  libprotobuf-c-dev protobuf-c-compiler libnghttp2-dev libsimdjson-dev libsnappy-dev liblz4-dev
  # the fleet store: libpq, and the PostgreSQL server its tests start (tests/fleet)
  libpq-dev postgresql
  # tests and formatting
  libcmocka-dev clang-format sqlite3
  # the web console's browser tests (tests/ui, driven by playwright-core from npm)
  chromium
  # the README walk (tests/readme/walk.py) runs its curl commands as written
  curl
  # fuzzing (clang with libFuzzer's runtime) and the valgrind run of CI
  clang libclang-rt-14-dev valgrind
)

# `scripts/deps.sh package` (make package, make package-test): what building,
# checking and installing the Debian package needs on top
if [ "${1:-}" = package ]; then
  packages+=(dpkg-dev lintian man-db systemd util-linux passwd)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "deps: not root and no sudo; install these packages: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet: update before the first install.
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
