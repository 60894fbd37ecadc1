#!/usr/bin/env bash
# CI conformance gate: runs http-cache-tests against a built cors-edge and compares the result
# with the committed baseline (results/cors-edge-baseline.json).
#
#   tests/conformance/check-gateway.sh [options] [PATH/TO/cors-edge]
#
# The binary defaults to $CORS_EDGE_BIN, else target/release/cors-edge, else
# target/debug/cors-edge (relative to the repository root).
#
# Options:
#   --write-baseline     write this run's summary as the baseline instead of comparing
#   --baseline FILE      baseline to compare with or write (default results/cors-edge-baseline.json)
#   --proxy-cmd CMD      plumbing test without cors-edge: run CMD (bash -c, in its own process
#                        group) instead of the gateway; it gets LISTEN_PORT, ORIGIN_PORT and WORK
#                        in its environment and must serve http://127.0.0.1:$LISTEN_PORT by
#                        forwarding to http://127.0.0.1:$ORIGIN_PORT (see README.md)
#   --keep               keep the temp dir (gateway config and logs, raw results)
#
# Env: CORS_EDGE_BIN, CONFORMANCE_TIMEOUT (seconds per suite run, default 900),
# RUST_LOG (default warn).
#
# It starts the suite's server on a loopback port of the OS's choosing, writes a gateway
# config (listen and admin on port 0, one upstream = the suite's server, one route / with
# cache enabled and CORS mode upstream), checks it with `cors-edge check`, starts
# `cors-edge run -c --ready-file`, reads the ports from the ready file of that very process,
# runs run.sh once and stops everything it started. A binary under target/ that is older
# than the sources is refused.
#
# Exit 1 when any required or optimal test that passed in the baseline does not pass now
# (by name: a test fixed elsewhere does not make up for it; results/flaky.json lists the
# tests excluded from this, each with its reason), when fewer tests of the Vary group
# (vary, vary-parse) pass, when any required Vary test fails, or when the suite could not
# run. There is no retry. Without a baseline file it prints the counts, says how to create
# it, and fails only on required Vary failures.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPO_ROOT=$(cd "$CONF_DIR/../.." && pwd)

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

baseline="$CONF_DIR/results/cors-edge-baseline.json"
write_baseline=""
proxy_cmd=""
keep="${KEEP_WORK:-}"
bin=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --write-baseline) write_baseline=1 ;;
    --baseline) [[ $# -ge 2 ]] || usage; baseline=$2; shift ;;
    --baseline=*) baseline=${1#*=} ;;
    --proxy-cmd) [[ $# -ge 2 ]] || usage; proxy_cmd=$2; shift ;;
    --proxy-cmd=*) proxy_cmd=${1#*=} ;;
    --keep) keep=1 ;;
    -h|--help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) [[ -z "$bin" ]] || usage; bin=$1 ;;
  esac
  shift
done

if [[ -z "$proxy_cmd" ]]; then
  if [[ -z "$bin" ]]; then
    for cand in "${CORS_EDGE_BIN:-}" "$REPO_ROOT/target/release/cors-edge" "$REPO_ROOT/target/debug/cors-edge"; do
      if [[ -n "$cand" && -x "$cand" ]]; then bin=$cand; break; fi
    done
  fi
  [[ -n "$bin" ]] || die "no cors-edge binary: pass its path (cargo build --release -p <cli crate>; then $0 target/release/cors-edge)"
  [[ -x "$bin" ]] || die "$bin is not an executable file"
  bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
  fail_if_stale "$bin"
fi
ensure_suite

work=$(mktemp -d "${TMPDIR:-/tmp}/conformance-gateway.XXXXXX")
cleanup() {
  local rc=$?
  trap '' INT TERM   # a second signal (timeout(1) signals the whole group) must not cut this short
  stop_started
  if [[ -n "$keep" ]]; then log "kept $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_suite_server "$work"

if [[ -n "$proxy_cmd" ]]; then
  # The command cannot report a port of its own choosing: it gets one that was free.
  listen_port=$(free_port)
  name="proxy-cmd"
  version="--proxy-cmd: $proxy_cmd"
  log "starting --proxy-cmd on 127.0.0.1:$listen_port"
  (cd "$REPO_ROOT" && LISTEN_PORT=$listen_port ORIGIN_PORT=$SUITE_PORT WORK=$work \
    exec setsid bash -c "$proxy_cmd") >"$work/gateway.log" 2>&1 &
  gw_pid=$!
  STARTED_PIDS+=("-$gw_pid")   # its own process group: stop the command and its children
else
  name="cors-edge"
  cat >"$work/gateway.yaml" <<YAML
# written by tests/conformance/check-gateway.sh
# Port 0: the OS picks; the ready file reports the ports.
listen: ["127.0.0.1:0"]
admin:
  listen: "127.0.0.1:0"
# The suite checks plain RFC 9111: stale content only where the response allows it. The
# gateway's defaults (serve stale 10s while revalidating, 60s on errors) are a CDN extension.
cache: { stale_while_revalidate: 0s, stale_if_error: 0s }
upstreams:
  suite:
    servers: ["127.0.0.1:$SUITE_PORT"]
routes:
  - name: conformance
    match: { path_prefix: "/" }
    upstream: suite
    cache: { enabled: true }
    # No browser reads this route; the suite compares Vary as the origin sent it.
    cors: { mode: upstream, vary_origin_always: false }
YAML
  if ! timeout 30 "$bin" check -c "$work/gateway.yaml" >"$work/check.log" 2>&1; then
    cat "$work/check.log" >&2
    die "cors-edge check rejected the generated config:"$'\n'"$(cat "$work/gateway.yaml")"
  fi
  version=$(timeout 5 "$bin" --version 2>/dev/null | head -1 || true)
  [[ -n "$version" ]] || version="cors-edge"
  commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || true)
  [[ -z "$commit" ]] || version="$version (git $commit)"
  log "starting $bin run -c $work/gateway.yaml --ready-file $work/ready.json"
  RUST_LOG=${RUST_LOG:-warn} "$bin" run -c "$work/gateway.yaml" --ready-file "$work/ready.json" \
    >"$work/gateway.log" 2>&1 &
  gw_pid=$!
  STARTED_PIDS+=("$gw_pid:INT")   # SIGINT: Pingora's fast shutdown (SIGTERM waits for a grace period)
  # The ready file is written by this process (its pid) once every listener accepts.
  if ! wait_ready_file "$work/ready.json" "$gw_pid" 60 >/dev/null; then
    tail -n 50 "$work/gateway.log" >&2 || true
    die "$name did not write its ready file within 60s"
  fi
  listen_port=$(json_get "$work/ready.json" 'r.listen[0].split(":").pop()')
fi

if [[ -n "$proxy_cmd" ]] && ! wait_port "$listen_port" 60 "$gw_pid"; then
  tail -n 50 "$work/gateway.log" >&2 || true
  die "$name did not answer on 127.0.0.1:$listen_port within 60s"
fi
log "$name (pid $gw_pid) answers on http://127.0.0.1:$listen_port"

summary="$work/summary.json"
meta=(--meta "name=$name" --meta "version=$version"
      --meta "machine=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(nproc) cores")
status=0
if [[ -n "$write_baseline" ]]; then
  mkdir -p "$(dirname "$baseline")"
  run_group "$CONF_DIR/run.sh" "http://127.0.0.1:$listen_port" "$work/raw.json" --json "$baseline" "${meta[@]}" || status=$?
  [[ $status -eq 0 ]] && log "baseline written to $baseline; commit it: git add tests/conformance"
elif [[ -f "$baseline" ]]; then
  # One run, compared by test name; tests known to flake are listed in results/flaky.json.
  run_group "$CONF_DIR/run.sh" "http://127.0.0.1:$listen_port" "$work/raw.json" --json "$summary" "${meta[@]}" \
    --compare "$baseline" --flaky "$CONF_DIR/results/flaky.json" || status=$?
else
  run_group "$CONF_DIR/run.sh" "http://127.0.0.1:$listen_port" "$work/raw.json" --json "$summary" "${meta[@]}" || status=$?
  log "no baseline at $baseline: nothing to compare with."
  log "create it from this binary with: tests/conformance/check-gateway.sh --write-baseline ${bin:-PATH/TO/cors-edge}"
fi

# Informational: the references measured on this machine, and the Vary gate without a baseline.
if [[ $status -eq 0 || -n "$write_baseline" || ! -f "$baseline" ]]; then
  cur=$summary; [[ -n "$write_baseline" ]] && cur=$baseline
  if [[ -f "$cur" ]]; then
    node --input-type=module - "$cur" "$CONF_DIR/results" <<'JS' || status=1
import fs from 'node:fs'
const [cur, dir] = process.argv.slice(2)
const c = JSON.parse(fs.readFileSync(cur, 'utf8'))
const row = (n, s) => `  ${n.padEnd(10)} required ${String(s.counts.required.passed).padStart(3)}/${s.counts.required.total}` +
  `  optimal ${String(s.counts.optimal.passed).padStart(3)}/${s.counts.optimal.total}` +
  `  Vary ${s.vary.passed}/${s.vary.tests} (required failures ${s.vary.required_failures.length})`
console.log('references (same suite, this repository\'s results/):')
console.log(row(c.name || 'this run', c))
for (const ref of ['nginx', 'varnish']) {
  const f = `${dir}/${ref}.json`
  if (fs.existsSync(f)) console.log(row(ref, JSON.parse(fs.readFileSync(f, 'utf8'))))
}
if (c.vary.required_failures.length) {
  console.log(`CONFORMANCE FAILURE: required Vary tests failed: ${c.vary.required_failures.join(', ')}`)
  process.exit(1)
}
JS
  fi
fi
exit "$status"
