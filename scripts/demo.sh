#!/usr/bin/env bash
# Builds cors-edge and runs its demo (a demo API and the gateway on loopback), installing the
# system packages the build needs when they are missing: cmake (Pingora's zlib-ng), pkg-config
# and a C compiler (build-essential). Debian/Ubuntu; as root, or as a user with sudo.
# Arguments go to `cors-edge demo` (e.g. --port 8080 --upstream-port 8081 --admin-port 9901).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "demo.sh: cargo is not installed. Install Rust first (https://rustup.rs):" >&2
  echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh" >&2
  exit 1
fi

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v cc >/dev/null || missing+=(build-essential)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null; then
    SUDO=(sudo)
  else
    echo "demo.sh: the build needs ${missing[*]}, and installing them needs root or sudo (neither is available)." >&2
    echo "  Install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null; then
    echo "demo.sh: the build needs ${missing[*]} (or your distribution's equivalents); there is no apt-get here to install them." >&2
    exit 1
  fi
  echo "demo.sh: installing ${missing[*]} (needed to build Pingora): ${SUDO[*]:+${SUDO[*]} }apt-get install -y ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "demo.sh: building (the first build takes a few minutes) and starting the demo"
exec cargo run --release -p cors-edge -- demo "$@"
