#!/usr/bin/env bash
# The one command that tests cors-edge, on a fresh machine or a developer's:
# installs what it needs (Debian packages, npm packages), checks formatting and lints,
# builds the release binary once, and runs every suite against it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n==> %s\n' "$*"; }

need_packages=()
command -v cmake >/dev/null || need_packages+=(cmake)
command -v pkg-config >/dev/null || need_packages+=(pkg-config)
command -v cc >/dev/null || need_packages+=(build-essential)
command -v redis-server >/dev/null || need_packages+=(redis-server)
command -v chromium >/dev/null || need_packages+=(chromium)
command -v node >/dev/null || need_packages+=(nodejs npm)
if [ ${#need_packages[@]} -gt 0 ]; then
  # As root directly, otherwise through sudo (which resets the environment, hence env).
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null; then
    SUDO=(sudo)
  else
    echo "test-all.sh: needs ${need_packages[*]}; installing them needs root or sudo (neither is available)" >&2
    exit 1
  fi
  log "installing Debian packages: ${need_packages[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${need_packages[@]}" >/dev/null
fi

suites_passed=0
suites_failed=0
failed_names=()
run_suite() {
  local name=$1; shift
  log "$name"
  if "$@"; then
    suites_passed=$((suites_passed + 1))
  else
    suites_failed=$((suites_failed + 1))
    failed_names+=("$name")
  fi
}

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

log "build the release binary"
cargo build --release -p cors-edge
export CORS_EDGE_BIN="${CARGO_TARGET_DIR:-$root/target}/release/cors-edge"

run_suite "unit, property and black-box tests (cargo test --release)" \
  cargo test --release --workspace
run_suite "real-browser CORS tests (Chromium)" bash tests/browser/run.sh
run_suite "RFC 9111 conformance (http-cache-tests) against the baseline" \
  bash tests/conformance/check-gateway.sh "$CORS_EDGE_BIN"
run_suite "deploy files validation" env CI="${CI:-}" DEPLOY_VALIDATE_INSTALL=1 DEPLOY_VALIDATE_STRICT=1 bash deploy/validate.sh
# Fuzzing: every cargo-fuzz target, 100,000 inputs from a fixed seed (at most FUZZ_SECONDS, 30,
# each), when a nightly toolchain is here: deterministic, so it fails only on a real regression.
if command -v rustup >/dev/null && rustup toolchain list | grep -q '^nightly'; then
  run_suite "fuzz targets, ${FUZZ_SECONDS:-30} s each (scripts/fuzz.sh)" \
    env FUZZ_RUNS="${FUZZ_RUNS:-100000}" bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
else
  log "fuzz targets skipped: no nightly toolchain (rustup toolchain install nightly)"
fi

echo
if [ "$suites_failed" -gt 0 ]; then
  echo "failed suites: ${failed_names[*]}"
fi
echo "suites: $suites_passed passed, $suites_failed failed"
[ "$suites_failed" -eq 0 ]
