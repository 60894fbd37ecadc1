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

# Prints a free TCP port on 127.0.0.1.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_port PORT [SECONDS] [PID]: waits until 127.0.0.1:PORT accepts connections.
# Fails early if PID (the process expected to listen) has exited.
wait_port() {
  local port=$1 secs=${2:-30} pid=${3:-} i
  for ((i = 0; i < secs * 10; i++)); do
    if node -e 'const s=require("net").connect(+process.argv[1],"127.0.0.1");s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1))' "$port" 2>/dev/null; then
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

# start_suite_server WORKDIR: starts the suite's origin server on a free loopback port.
# Sets SUITE_PORT and SUITE_PID; its output goes to WORKDIR/suite-server.log.
start_suite_server() {
  local work=$1
  SUITE_PORT=$(free_port)
  node "$CONF_DIR/server.mjs" "$SUITE_PORT" "$work/suite-server.pid" >"$work/suite-server.log" 2>&1 &
  SUITE_PID=$!
  STARTED_PIDS+=("$SUITE_PID")
  wait_port "$SUITE_PORT" 30 "$SUITE_PID" \
    || { cat "$work/suite-server.log" >&2; die "the suite's server did not start on 127.0.0.1:$SUITE_PORT"; }
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
