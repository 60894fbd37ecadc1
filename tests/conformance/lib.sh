# Shared helpers for the conformance scripts; sourced, not run.
# shellcheck shell=bash

CONF_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE_DIR="$CONF_DIR/node_modules/http-cache-tests"

log() { printf '[conformance] %s\n' "$*" >&2; }
die() { printf '[conformance] error: %s\n' "$*" >&2; exit 1; }

# Installs the pinned suite from package-lock.json when node_modules is missing.
ensure_suite() {
  command -v node >/dev/null || die "node is not installed (Node 18+ is needed)"
  if [[ ! -f "$SUITE_DIR/package.json" ]]; then
    log "installing http-cache-tests (npm ci in $CONF_DIR)"
    (cd "$CONF_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) \
      || die "npm ci failed in $CONF_DIR"
  fi
}

# Prints a TCP port that was free on 127.0.0.1 a moment ago (bound, then released: another
# process may take it before the caller binds it). Only for the nginx and Varnish reference
# scripts and --proxy-cmd, whose servers cannot pick a port of their own; their readiness
# check (wait_port with the pid) then accepts only a listener held by the process started, so
# losing the race fails the run instead of testing someone else's server. cors-edge and the
# suite's server listen on port 0 and report the port they got (wait_ready_file).
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_ready_file FILE PID [SECONDS]: waits until FILE holds JSON whose "pid" is PID (the
# process this script started, not any process that happens to listen), and prints it.
# Fails early if PID has exited.
wait_ready_file() {
  local file=$1 pid=$2 secs=${3:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    if [[ -s "$file" ]] && node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
      if (r.pid !== Number(process.argv[2])) {
        console.error(`ready file ${process.argv[1]} names pid ${r.pid}, not ${process.argv[2]}`)
        process.exit(2)
      }' "$file" "$pid"; then
      cat "$file"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.1
  done
  return 1
}

# json_get FILE EXPR: prints EXPR (JavaScript, `r` is the parsed FILE) of a JSON file.
json_get() {
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(eval(process.argv[2]))' "$1" "$2"
}

# fail_if_stale BIN: BIN must be newer than every source it is built from when it is a build
# output of this repository (target/*/cors-edge): a gate never runs against an old binary.
fail_if_stale() {
  local bin=$1 root newer
  root=$(cd "$CONF_DIR/../.." && pwd)
  case "$bin" in
    "$root"/target/*) ;;
    *) return 0 ;;
  esac
  # What the binary is built from: the crates' src/ trees and manifests (not their tests/,
  # benches/ or examples/, which a rebuild would not relink the binary for).
  local sources=("$root"/crates/*/src "$root"/crates/*/Cargo.toml) f
  # Only build scripts that exist: find fails on a missing path (and set -e would end the
  # script without a word).
  for f in "$root"/crates/*/build.rs; do [[ -e $f ]] && sources+=("$f"); done
  newer=$(find "${sources[@]}" -newer "$bin" \( -name '*.rs' -o -name 'Cargo.toml' \) \
            -print -quit 2>/dev/null || true)
  [[ -z "$newer" ]] || die "$bin is older than $newer: rebuild it (cargo build --release -p cors-edge)"
}

# descendants PID: PID and every process below it.
descendants() {
  local todo=("$1") p c
  while ((${#todo[@]})); do
    p=${todo[0]}
    todo=("${todo[@]:1}")
    echo "$p"
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do todo+=("$c"); done
  done
}

# port_held_by PORT PID: whether a socket listening on 127.0.0.1:PORT (or 0.0.0.0:PORT) is
# held by PID or one of its descendants: the listener is the process this script started,
# not whichever process took the port.
port_held_by() {
  local hex inodes p fd link i
  hex=$(printf ':%04X' "$1")
  inodes=$(awk -v p="$hex" 'NR > 1 && $4 == "0A" && ($2 == "0100007F" p || $2 == "00000000" p) { print $10 }' /proc/net/tcp)
  [[ -n "$inodes" ]] || return 1
  for p in $(descendants "$2"); do
    for fd in /proc/"$p"/fd/*; do
      link=$(readlink "$fd" 2>/dev/null) || continue
      for i in $inodes; do
        [[ "$link" == "socket:[$i]" ]] && return 0
      done
    done
  done
  return 1
}

# wait_port PORT [SECONDS] [PID]: waits until 127.0.0.1:PORT accepts connections; with PID,
# until the listening socket is held by PID or a descendant (see port_held_by). Fails early if
# PID (the process expected to listen) has exited.
wait_port() {
  local port=$1 secs=${2:-30} pid=${3:-} i
  for ((i = 0; i < secs * 10; i++)); do
    if [[ -n "$pid" ]]; then
      if port_held_by "$port" "$pid"; then
        return 0
      fi
    elif node -e 'const s=require("net").connect(+process.argv[1],"127.0.0.1");s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1))' "$port" 2>/dev/null; then
      return 0
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.1
  done
  return 1
}

# Processes started by the sourcing script, stopped by stop_started (call it from an EXIT
# trap). Entries are PID or PID:SIGNAL; a negative PID names a process group the script
# created itself (setsid), stopped as a whole.
STARTED_PIDS=()

# stop_pid PID [SIGNAL]: SIGNAL (default TERM), wait up to 10s, then KILL.
# Only for pids (or groups, -PGID) this script started.
stop_pid() {
  local pid=$1 sig=${2:-TERM} i
  kill -0 -- "$pid" 2>/dev/null || { wait "${pid#-}" 2>/dev/null || true; return 0; }
  kill "-$sig" -- "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 -- "$pid" 2>/dev/null; then
      wait "${pid#-}" 2>/dev/null || true
      return 0
    fi
    sleep 0.1
  done
  log "pid $pid did not stop on SIG$sig within 10s; sending KILL"
  kill -KILL -- "$pid" 2>/dev/null || true
  wait "${pid#-}" 2>/dev/null || true
}

stop_started() {
  local i entry
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    entry=${STARTED_PIDS[i]}
    if [[ "$entry" == *:* ]]; then stop_pid "${entry%%:*}" "${entry#*:}"; else stop_pid "$entry"; fi
  done
  STARTED_PIDS=()
}

# start_suite_server WORKDIR: starts the suite's origin server on a loopback port the OS
# picks, and learns the port from the server's ready file (written by that very process).
# Sets SUITE_PORT and SUITE_PID; its output goes to WORKDIR/suite-server.log.
start_suite_server() {
  local work=$1
  node "$CONF_DIR/server.mjs" 0 "$work/suite-server.pid" "$work/suite-server.ready.json" \
    >"$work/suite-server.log" 2>&1 &
  SUITE_PID=$!
  STARTED_PIDS+=("$SUITE_PID")
  wait_ready_file "$work/suite-server.ready.json" "$SUITE_PID" 30 >/dev/null \
    || { cat "$work/suite-server.log" >&2; die "the suite's server did not start"; }
  SUITE_PORT=$(json_get "$work/suite-server.ready.json" 'r.port')
  log "suite server (pid $SUITE_PID) on http://127.0.0.1:$SUITE_PORT"
}

# run_group CMD...: runs CMD in its own process group and waits for it, so that a signal to
# this script (whose trap runs at once during `wait`) stops CMD and its children too.
run_group() {
  local pid rc=0
  setsid "$@" &
  pid=$!
  STARTED_PIDS+=("-$pid")
  wait "$pid" || rc=$?
  return "$rc"
}
