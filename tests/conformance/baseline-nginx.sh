#!/usr/bin/env bash
# Runs http-cache-tests against Debian's nginx, configured as in the suite's docker image
# (nginx.conf here), and writes the summary to results/nginx.json (or the path given).
#
#   tests/conformance/baseline-nginx.sh [SUMMARY.json]
#
# Starts, on free loopback ports, the suite's server and `nginx -g 'daemon off;'` with its
# pid, logs, temp and cache dirs in a temp dir (not the system service), runs run.sh, and
# stops both. Needs `apt-get install -y nginx`. Env: NGINX (binary, default: nginx on PATH or
# /usr/sbin/nginx), KEEP_WORK=1 keeps the temp dir (logs) for debugging.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

summary=${1:-$CONF_DIR/results/nginx.json}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[[ -x "$NGINX" ]] || die "nginx not found (apt-get install -y nginx, or set NGINX=/path/to/nginx)"
ensure_suite

work=$(mktemp -d "${TMPDIR:-/tmp}/conformance-nginx.XXXXXX")
chmod 755 "$work"   # nginx workers (nobody when started as root) create the cache in here
cleanup() {
  trap '' INT TERM   # a second signal (timeout(1) signals the whole group) must not cut this short
  stop_started
  if [[ -n "${KEEP_WORK:-}" ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_suite_server "$work"

port=$(free_port)
sed -e "s|@WORK@|$work|g" -e "s|@LISTEN@|$port|g" -e "s|@ORIGIN@|127.0.0.1:$SUITE_PORT|g" \
  "$CONF_DIR/nginx.conf" >"$work/nginx.conf"
nginx_args=(-p "$work/" -e "$work/nginx-error.log" -c "$work/nginx.conf")
"$NGINX" -t -q "${nginx_args[@]}" || die "nginx rejected $work/nginx.conf"
"$NGINX" "${nginx_args[@]}" -g 'daemon off;' &
nginx_pid=$!
STARTED_PIDS+=("$nginx_pid")
wait_port "$port" 30 "$nginx_pid" || { cat "$work/nginx-error.log" >&2; die "nginx did not start on 127.0.0.1:$port"; }
version=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
package=$(dpkg-query -W -f='${Version}' nginx 2>/dev/null || true)
log "nginx $version (Debian package $package, pid $nginx_pid) on http://127.0.0.1:$port"

mkdir -p "$(dirname "$summary")"
run_group "$CONF_DIR/run.sh" "http://127.0.0.1:$port" "$work/raw.json" --json "$summary" \
  --meta name=nginx --meta "version=$version" --meta "package=nginx $package" \
  --meta "config=tests/conformance/nginx.conf (the suite's docker/nginx/nginx.conf)" \
  --meta "machine=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(nproc) cores"
