#!/usr/bin/env bash
# Runs the http-cache-tests suite (pinned in package.json) against a cache and summarizes it.
#
#   tests/conformance/run.sh BASE_URL OUT.json [SUMMARIZE OPTIONS...]
#
# BASE_URL is the cache under test (e.g. http://127.0.0.1:8080), which must forward to an
# already running suite server (see server.mjs / lib.sh start_suite_server). The raw per-test
# results of the suite's CLI (test id -> true or [error, message]) go to OUT.json, and
# summarize.mjs prints the counts per kind and the Vary failures. Options after OUT.json go
# to summarize.mjs: --json SUMMARY.json, --meta KEY=VALUE, --compare BASELINE.json.
# Exits 0 when the suite ran, whatever the results, unless --compare finds a regression
# (then 1); 1 also when the suite could not run.
#
# Env: CONFORMANCE_TIMEOUT (seconds for the whole suite run, default 900).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $# -lt 2 ]]; then
  echo "usage: $0 BASE_URL OUT.json [--json SUMMARY.json] [--meta KEY=VALUE ...] [--compare BASELINE.json]" >&2
  exit 2
fi
base=${1%/}   # the CLI appends /test/..., a trailing slash would make '//test/' (a 404)
out=$2
shift 2
ensure_suite

log "running http-cache-tests against $base (timeout ${CONFORMANCE_TIMEOUT:-900}s)"
start=$(date +%s)
tmp_out="$out.partial"
# The CLI reads its options from npm's env vars, as `npm run --silent cli --base=URL` sets them
# (an empty id must come through npm_package_config_id, the package.json default).
if ! (cd "$SUITE_DIR" && npm_config_base="$base" npm_config_id="" npm_package_config_id="" \
      timeout --kill-after=10 "${CONFORMANCE_TIMEOUT:-900}" node --no-warnings cli.mjs) >"$tmp_out"; then
  die "the suite's CLI failed or timed out (partial output in $tmp_out)"
fi
if ! node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); if(!Object.keys(r).length) process.exit(1)' "$tmp_out" 2>/dev/null; then
  head -c 2000 "$tmp_out" >&2
  die "the suite's CLI printed no JSON results (is $base reachable and forwarding to the suite server?)"
fi
mv "$tmp_out" "$out"
log "suite finished in $(( $(date +%s) - start ))s; raw results in $out"

node "$CONF_DIR/summarize.mjs" "$out" "$@"
