#!/usr/bin/env bash
# Runs http-cache-tests against Debian's Varnish, configured as in the suite's docker image
# (varnish.vcl here, and the same varnishd parameters), and writes the summary to
# results/varnish.json (or the path given).
#
#   tests/conformance/baseline-varnish.sh [SUMMARY.json]
#
# Starts, on free loopback ports, the suite's server and `varnishd -F` (foreground, its own
# -n working dir in a temp dir, no management port; not the system service), runs run.sh,
# and stops both. Needs `apt-get install -y varnish`. Env: VARNISHD (binary, default:
# varnishd on PATH or /usr/sbin/varnishd), KEEP_WORK=1 keeps the temp dir for debugging.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

summary=${1:-$CONF_DIR/results/varnish.json}
VARNISHD=${VARNISHD:-$(command -v varnishd || echo /usr/sbin/varnishd)}
[[ -x "$VARNISHD" ]] || die "varnishd not found (apt-get install -y varnish, or set VARNISHD=/path/to/varnishd)"
ensure_suite

work=$(mktemp -d "${TMPDIR:-/tmp}/conformance-varnish.XXXXXX")
chmod 755 "$work"   # varnishd started as root drops to its own users, which need to reach -n
cleanup() {
  trap '' INT TERM   # a second signal (timeout(1) signals the whole group) must not cut this short
  stop_started
  if [[ -n "${KEEP_WORK:-}" ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_suite_server "$work"

port=$(free_port)
sed -e "s|@ORIGIN_PORT@|$SUITE_PORT|g" "$CONF_DIR/varnish.vcl" >"$work/varnish.vcl"
chmod 644 "$work/varnish.vcl"
# The parameters of the suite's docker/serve.sh, with loopback listen and no management port.
"$VARNISHD" -F -n "$work/varnish" -a "127.0.0.1:$port" -T none -f "$work/varnish.vcl" \
  -p default_ttl=0 -p default_grace=0 -p default_keep=3600 -s malloc,64M \
  >"$work/varnishd.log" 2>&1 &
varnish_pid=$!
STARTED_PIDS+=("$varnish_pid")
wait_port "$port" 60 "$varnish_pid" || { cat "$work/varnishd.log" >&2; die "varnishd did not start on 127.0.0.1:$port"; }
version=$("$VARNISHD" -V 2>&1 | head -1 | sed -e 's/^varnishd (//' -e 's/)$//')
package=$(dpkg-query -W -f='${Version}' varnish 2>/dev/null || true)
log "varnish $version (Debian package $package, pid $varnish_pid) on http://127.0.0.1:$port"

mkdir -p "$(dirname "$summary")"
run_group "$CONF_DIR/run.sh" "http://127.0.0.1:$port" "$work/raw.json" --json "$summary" \
  --meta name=varnish --meta "version=$version" --meta "package=varnish $package" \
  --meta "config=tests/conformance/varnish.vcl (Debian's default.vcl) with -p default_ttl=0 -p default_grace=0 -p default_keep=3600 -s malloc,64M (the suite's docker/serve.sh)" \
  --meta "machine=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(nproc) cores"
