#!/usr/bin/env bash
# Real-browser CORS tests: installs Debian's chromium if missing, the pinned playwright-core
# (npm ci), then runs `node --test` against the gateway binary in $CORS_EDGE_BIN
# (default: target/release/cors-edge; build it first with cargo build --release -p cors-edge).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${CORS_EDGE_BIN:-$here/../../target/release/cors-edge}"
export CORS_EDGE_BIN="$(readlink -f "$bin")"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ ! -x "$CORS_EDGE_BIN" ]; then
  echo "run.sh: no gateway binary at $bin; build it with: cargo build --release -p cors-edge" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM_PATH" ]; then
  if [ "$CHROMIUM_PATH" != /usr/bin/chromium ]; then
    echo "run.sh: no Chromium at CHROMIUM_PATH=$CHROMIUM_PATH" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

cd "$here"
npm ci --no-audit --no-fund --loglevel=error
exec node --test "$@"
