#!/usr/bin/env bash
# Installs the npm packages the tests use (package-lock.json pins them: today
# only s3rver, the S3-compatible server of the SigV4 upload test) with
# `npm ci`, when node_modules is missing or older than the lock file.
# Installs Debian's nodejs and npm first if there is no npm at all.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "npm-deps: installing nodejs npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends nodejs npm
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules
fi
