#!/usr/bin/env bash
# cors-edge against nginx, Varnish and a bare Pingora floor, on this machine, in one run,
# driven by wrk (an independent load generator).
#
#   benches/compare/run.sh [--duration 10s] [--warmup 3s] [--connections 64] [--paths 10]
#                          [--servers "cors-edge cors-edge-log nginx varnish pingora-floor"]
#                          [--scenarios "1k-10o ..."] [--rounds N] [--profile release|dist]
#                          [--client wrk|loadtest] [--out FILE] [--no-build]
#
# Starts, each with its own temp dir: one upstream (upstream.mjs, a small static API in Node),
# nginx (nginx.conf), Varnish (varnish.vcl), cors-edge (cors-edge.yaml, `server: { threads: 1 }`),
# cors-edge-log (the same with the JSON access log written to a file,
# cors-edge-access-log.yaml) and pingora-floor. Every server under test runs alone on CPU 1
# (`taskset -c 1`, one worker); wrk (`-t1`, --connections keep-alive connections) and the
# upstream run on CPU 0. For every scenario and server: a warm-up with the same load, a
# two-request check that the cache answers (the second says HIT), then the measured run(s).
# Around each measured run the upstream's request counter and the server's CPU time (all its
# processes, from /proc) are read: the hit ratio is 1 - upstream requests / requests (a cache
# that really hits sends nothing upstream), and CPU µs per request is the server's CPU time
# over the requests wrk completed, which stays put when req/s moves with the machine.
#
# Scenarios (GETs carry Origin, drawn from N rotating origins https://oI.loadtest.example):
#   1k-10o          1 KiB per-origin answers (ACAO echoes the origin, Vary: Origin), 10 origins
#   64k-10o         64 KiB per-origin answers, 10 origins
#   1k-1o           1 KiB per-origin, a single origin
#   1k-100o         1 KiB per-origin, 100 origins
#   1k-shared       1 KiB answers with ACAO: * (one copy for every origin), 10 origins
#   preflight       cached CORS preflights (OPTIONS) from the upstream, 10 origins; nginx cannot
#                   cache OPTIONS and answers them from its config instead (X-Cache: CONFIG)
#   edge-preflight  cors-edge's edge route: preflights answered by the CORS policy (no cache, no
#                   upstream); compared with the floor
#   edge-1000o      1000 origins: cors-edge on its edge route (one body, CORS stamped per
#                   request); nginx and Varnish with their per-origin keys (one copy per origin)
#   miss            every GET a path never asked before: the cost of a miss, fetch and store
#                   included (the upstream shares CPU 0 with wrk, so the server's CPU µs/request
#                   is its own work per miss); cors-edge, nginx and Varnish
#
# pingora-floor (crates/gateway/examples/pingora_floor.rs) is no cache: Pingora answering a
# fixed 1 KiB body from request_filter, the ceiling of any hit served by Pingora's HTTP/1 stack
# on that core. It runs in 1k-10o (and edge-preflight, where it is the reference).
# cors-edge-log runs in 1k-10o only (the access log's cost on hits).
#
# Prints the table (server, scenario, req/s, p50, p99, p99.9, hit ratio, upstream requests,
# server CPU %, CPU µs/request, ratios to nginx and to the floor) and the issue-11 targets
# checked against this run, and saves both to benches/compare/results-DATE.md (or --out).
# --client loadtest drives the same scenarios with `cors-edge loadtest` instead (a second,
# in-house client; its percentiles come from its own histogram).
# As root, everything it starts runs at nice -15 so that other work on the machine disturbs
# the measurement less (NO_NICE=1 turns that off). Installs wrk, nginx, varnish, node and curl
# with apt-get when missing. Stops only what it started; KEEP_WORK=1 keeps the temp dir.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

duration=10s
warmup=3s
connections=64
paths=10
servers="cors-edge cors-edge-log nginx varnish pingora-floor"
scenarios="1k-10o 64k-10o 1k-1o 1k-100o 1k-shared preflight edge-preflight edge-1000o miss"
out=""
build=1
rounds=1
profile=release
client=wrk
while [[ $# -gt 0 ]]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --connections | --concurrency) connections=$2; shift 2 ;;
    --paths) paths=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --scenarios) scenarios=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --client) client=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $client == wrk || $client == loadtest ]] || { echo "--client is wrk or loadtest" >&2; exit 2; }

log() { printf '[compare] %s\n' "$*" >&2; }
die() { printf '[compare] error: %s\n' "$*" >&2; exit 1; }

# --- tools --------------------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v varnishd >/dev/null || [[ -x /usr/sbin/varnishd ]] || missing+=(varnish)
command -v node >/dev/null || missing+=(nodejs)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
if [[ ${#missing[@]} -gt 0 ]]; then
  SUDO=()
  [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
  log "installing ${missing[*]} (apt-get)"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
VARNISHD=$(command -v varnishd || echo /usr/sbin/varnishd)
[[ $(nproc --all) -ge 2 ]] || die "needs two CPUs (servers on CPU 1, wrk and the upstream on CPU 0)"

if [[ $build -eq 1 ]]; then
  log "cargo build --profile $profile --bin cors-edge --example pingora_floor"
  (cd "$root" && cargo build --profile "$profile" -q -p cors-edge -p cors-edge-gateway --bin cors-edge --example pingora_floor)
fi
BIN="$root/target/$profile/cors-edge"
FLOOR="$root/target/$profile/examples/pingora_floor"
[[ -x $BIN ]] || die "$BIN is missing (cargo build --profile $profile -p cors-edge)"

# --- processes ----------------------------------------------------------------------------
shm=/dev/shm
[[ -d $shm && -w $shm ]] || shm=${TMPDIR:-/tmp}
work=$(mktemp -d "$shm/cors-edge-compare.XXXXXX")
chmod 755 "$work" # nginx workers (nobody) and varnishd's users must reach their dirs
STARTED=()

stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  trap '' INT TERM
  local i
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop_pid "${STARTED[i]}"; done
  if [[ -n ${KEEP_WORK:-} ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# For nginx, Varnish and the Pingora floor, which cannot report a port the OS chose: a port
# that was free a moment ago (wait_port then only accepts that process's own listener). The
# upstream and cors-edge bind port 0 and report theirs.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
wait_port() { # PORT PID
  local i
  for ((i = 0; i < 300; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# CPU ticks (user + system) of PID and all its descendants, threads included.
tree_ticks() {
  local pids=("$1") all=() p total=0 stat rest line
  local -A kids=()
  while read -r line; do
    read -r p parent <<<"$line"
    kids[$parent]+="$p "
  done < <(ps -e -o pid=,ppid=)
  while [[ ${#pids[@]} -gt 0 ]]; do
    p=${pids[0]}
    pids=("${pids[@]:1}")
    all+=("$p")
    # shellcheck disable=SC2206
    pids+=(${kids[$p]:-})
  done
  for p in "${all[@]}"; do
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    rest=${stat##*) }
    # after "pid (comm) ": state is field 3, utime field 14, stime field 15
    read -r -a f <<<"$rest"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}
HZ=$(getconf CLK_TCK)

# Other work on the machine (builds, tests) would share the two CPUs with the measured
# processes; as root, give the servers, the upstream and the load generator a higher priority.
# PRIO_MODE=rt uses SCHED_FIFO instead (steadier, but starves other work on both CPUs while
# a run lasts).
# The upstream stays at nice -15 either way: at SCHED_FIFO Node's own threads can starve its
# event loop.
PRIO=()
UPSTREAM_PRIO=()
if [[ $(id -u) -eq 0 && -z ${NO_NICE:-} ]]; then
  PRIO=(nice -n -15)
  UPSTREAM_PRIO=(nice -n -15)
  if [[ ${PRIO_MODE:-nice} == rt ]]; then PRIO=(chrt -f 1); fi
fi

"${UPSTREAM_PRIO[@]}" taskset -c 0 node "$here/upstream.mjs" 0 >"$work/upstream.log" 2>&1 &
STARTED+=($!)
for _ in $(seq 100); do grep -q '^listening' "$work/upstream.log" && break; sleep 0.1; done
up_port=$(awk '/^listening/ {print $2}' "$work/upstream.log")
[[ -n $up_port ]] || { cat "$work/upstream.log" >&2; die "the upstream did not start"; }
upstream_count() { curl -fsS "http://127.0.0.1:$up_port/__count"; }
log "upstream (node $(node --version)) on 127.0.0.1:$up_port"

declare -A PORT PID
for server in $servers; do
  case $server in
    cors-edge | cors-edge-log)
      config=$here/cors-edge.yaml
      [[ $server == cors-edge-log ]] && config=$here/cors-edge-access-log.yaml
      sed -e "s|@LISTEN@|0|" -e "s|@ADMIN@|0|" -e "s|@LOG@|$work/$server-access.log|" \
        -e "s|@UPSTREAM@|127.0.0.1:$up_port|" "$config" >"$work/$server.yaml"
      RUST_LOG=warn "${PRIO[@]}" taskset -c 1 "$BIN" run -c "$work/$server.yaml" \
        --ready-file "$work/$server.ready" >"$work/$server.log" 2>&1 &
      PID[$server]=$!
      for _ in $(seq 200); do [[ -s $work/$server.ready ]] && break; sleep 0.05; done
      grep -q "\"pid\":${PID[$server]}," "$work/$server.ready" 2>/dev/null \
        || { cat "$work/$server.log" >&2; die "$server did not start"; }
      PORT[$server]=$(grep -o '"listen":\["127.0.0.1:[0-9]*' "$work/$server.ready" | grep -o '[0-9]*$')
      ;;
    nginx)
      PORT[$server]=$(free_port)
      mkdir -p "$work/nginx" "$work/nginx-cache"
      chmod 777 "$work/nginx-cache"
      sed -e "s|@WORK@|$work/nginx|g" -e "s|@CACHE@|$work/nginx-cache|g" \
        -e "s|@LISTEN@|${PORT[$server]}|" -e "s|@UPSTREAM@|127.0.0.1:$up_port|" \
        "$here/nginx.conf" >"$work/nginx/nginx.conf"
      "$NGINX" -t -q -p "$work/nginx" -c "$work/nginx/nginx.conf" || die "nginx rejected its config"
      "${PRIO[@]}" taskset -c 1 "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' \
        >"$work/nginx.log" 2>&1 &
      PID[$server]=$!
      ;;
    varnish)
      PORT[$server]=$(free_port)
      sed -e "s|@UPSTREAM_PORT@|$up_port|" "$here/varnish.vcl" >"$work/varnish.vcl"
      chmod 644 "$work/varnish.vcl"
      "${PRIO[@]}" taskset -c 1 "$VARNISHD" -F -n "$work/varnish" -a "127.0.0.1:${PORT[$server]}" -T none \
        -f "$work/varnish.vcl" -s malloc,2G -p thread_pools=1 -p thread_pool_min=100 \
        -p thread_pool_max=1000 >"$work/varnishd.log" 2>&1 &
      PID[$server]=$!
      ;;
    pingora-floor)
      [[ -x $FLOOR ]] || die "$FLOOR is missing (cargo build --profile $profile -p cors-edge-gateway --example pingora_floor)"
      PORT[$server]=$(free_port)
      "${PRIO[@]}" taskset -c 1 "$FLOOR" "127.0.0.1:${PORT[$server]}" >"$work/pingora-floor.log" 2>&1 &
      PID[$server]=$!
      ;;
    *) die "unknown server $server (cors-edge, cors-edge-log, nginx, varnish, pingora-floor)" ;;
  esac
  STARTED+=("${PID[$server]}")
  wait_port "${PORT[$server]}" "${PID[$server]}" \
    || { cat "$work"/*.log >&2; die "$server did not start"; }
  log "$server (pid ${PID[$server]}) on 127.0.0.1:${PORT[$server]}, CPU 1"
done

# --- scenarios ----------------------------------------------------------------------------
# scenario -> "path origins mode" (mode: get, preflight or miss)
declare -A SHAPE=(
  [1k-10o]="/o/1k 10 get"
  [64k-10o]="/o/64k 10 get"
  [1k-1o]="/o/1k 1 get"
  [1k-100o]="/o/1k 100 get"
  [1k-shared]="/s/1k 10 get"
  [preflight]="/o/1k 10 preflight"
  [edge-preflight]="/e/1k 10 preflight"
  [edge-1000o]="/o/1k 1000 get"
  [miss]="/o/1k 10 miss"
)
# The servers a scenario runs on.
servers_for() {
  local server
  for server in $servers; do
    case "$server/$1" in
      pingora-floor/1k-10o | pingora-floor/edge-preflight) ;;
      pingora-floor/*) continue ;;
      cors-edge-log/1k-10o) ;;
      cors-edge-log/*) continue ;;
      nginx/edge-preflight | varnish/edge-preflight) continue ;;
    esac
    echo "$server"
  done
}
path_for() { # SERVER SCENARIO
  local path origins mode
  read -r path origins mode <<<"${SHAPE[$2]}"
  # cors-edge's edge route (/e/): one body for every origin, CORS stamped by the policy.
  if [[ $2 == edge-1000o && $1 == cors-edge ]]; then path=/e/1k; fi
  echo "$path"
}

# drive SERVER SCENARIO DURATION -> one line of JSON on stdout: requests, duration_us, p50,
# p99, p999 (µs) and errors, from wrk (origins.lua's `done`) or from `cors-edge loadtest`.
drive() {
  local server=$1 scenario=$2 dur=$3 path origins mode url
  read -r path origins mode <<<"${SHAPE[$scenario]}"
  path=$(path_for "$server" "$scenario")
  url="http://127.0.0.1:${PORT[$server]}"
  if [[ $client == wrk ]]; then
    "${PRIO[@]}" taskset -c 0 wrk -t1 -c"$connections" -d"$dur" -s "$here/origins.lua" "$url" \
      -- "$origins" "$paths" "$path" "$mode" | sed -n 's/^result //p'
  else
    local share=0
    [[ $mode == preflight ]] && share=1
    [[ $mode == miss ]] && die "the miss scenario needs wrk"
    "${PRIO[@]}" taskset -c 0 "$BIN" loadtest "$url$path" --origins "$origins" --paths "$paths" \
      --preflight-share "$share" --concurrency "$connections" --duration "$dur" --json \
      | node -e '
        const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const l = r.latency_us || {};
        console.log(JSON.stringify({ requests: r.requests, duration_us: Math.round(r.elapsed_seconds * 1e6),
          p50: l.p50 ?? 0, p99: l.p99 ?? 0, p999: l.p999 ?? l.p99 ?? 0, status_errors: r.errors }));'
  fi
}

# Two requests for the same object from the same origin: the second must come from the cache.
verify_hit() {
  local server=$1 scenario=$2 path origins mode url args headers status
  read -r path origins mode <<<"${SHAPE[$scenario]}"
  path=$(path_for "$server" "$scenario")
  case "$server/$scenario" in
    pingora-floor/*) echo "fixed answer"; return 0 ;;
    */miss) echo "misses"; return 0 ;;
  esac
  url="http://127.0.0.1:${PORT[$server]}$path/1"
  args=(-sS -o /dev/null -D - -H "Origin: https://o1.loadtest.example")
  if [[ $mode == preflight ]]; then
    args+=(-X OPTIONS -H "Access-Control-Request-Method: PUT" -H "Access-Control-Request-Headers: content-type")
  fi
  curl "${args[@]}" "$url" >/dev/null
  headers=$(curl "${args[@]}" "$url" | tr -d '\r')
  status=$(grep -i '^x-cache:' <<<"$headers" | head -1 | awk '{print toupper($2)}')
  if [[ $scenario == edge-preflight ]]; then
    grep -qi '^access-control-allow-origin: https://o1.loadtest.example' <<<"$headers" \
      && { echo "answered by the policy"; return 0; }
  elif [[ $server == nginx && $mode == preflight && $status == CONFIG ]]; then
    echo "answered by config"; return 0
  elif [[ $status == HIT ]]; then
    echo "HIT"; return 0
  fi
  echo "NOT A HIT: $(tr '\n' ' ' <<<"$headers")"
  return 1
}

measure() { # SERVER SCENARIO CHECK ROUND: one measured run, one JSON line on stdout
  local server=$1 scenario=$2 check=$3 round=$4 before_up before_cpu after_cpu after_up result
  before_up=$(upstream_count)
  before_cpu=$(tree_ticks "${PID[$server]}")
  result=$(drive "$server" "$scenario" "$duration")
  after_cpu=$(tree_ticks "${PID[$server]}")
  after_up=$(upstream_count)
  [[ -n $result ]] || die "$scenario / $server: the load generator reported nothing"
  node -e '
    const [result, server, scenario, round, upstream, ticks, hz, check] = process.argv.slice(1);
    const r = JSON.parse(result);
    const seconds = r.duration_us / 1e6;
    const cpuSeconds = +ticks / +hz;
    console.log(JSON.stringify({ server, scenario, round: +round, check, rps: r.requests / seconds,
      requests: r.requests, p50: r.p50, p99: r.p99, p999: r.p999, upstream: +upstream,
      hit: scenario === "edge-preflight" || server === "pingora-floor" ? null : 1 - +upstream / r.requests,
      cpu: cpuSeconds / seconds, cpu_us: (cpuSeconds * 1e6) / r.requests,
      errors: (r.status_errors || 0) + (r.connect_errors || 0) + (r.read_errors || 0) + (r.write_errors || 0) + (r.timeouts || 0) }));
  ' "$result" "$server" "$scenario" "$round" "$((after_up - before_up))" \
    "$((after_cpu - before_cpu))" "$HZ" "$check"
}

results="$work/results.jsonl"
: >"$results"
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
started_at=$(date -u '+%Y-%m-%d %H:%M UTC')
declare -A CHECK
for scenario in $scenarios; do
  [[ -n ${SHAPE[$scenario]:-} ]] || die "unknown scenario $scenario"
  for server in $(servers_for "$scenario"); do
    log "$scenario / $server: warm-up $warmup"
    drive "$server" "$scenario" "$warmup" >/dev/null
    # Large key spaces (1000 origins x paths) take more than one warm-up to fill.
    if [[ $scenario == edge-1000o && $server != cors-edge ]]; then
      drive "$server" "$scenario" "$warmup" >/dev/null
    fi
    CHECK[$server]=$(verify_hit "$server" "$scenario") || log "$scenario / $server: ${CHECK[$server]}"
  done
  # Rounds go through the servers in turn, so a slow spell of the machine hits them alike.
  for ((round = 1; round <= rounds; round++)); do
    for server in $(servers_for "$scenario"); do
      measure "$server" "$scenario" "${CHECK[$server]}" "$round" >>"$results"
      tail -1 "$results" | node -e '
        const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
        console.error(`[compare] ${r.scenario} / ${r.server} (round ${r.round}): ${r.rps.toFixed(0)} req/s, ` +
          `p50 ${r.p50} µs, p99 ${r.p99} µs, hit ${r.hit == null ? "-" : r.hit.toFixed(4)}, ` +
          `upstream ${r.upstream}, cpu ${(100 * r.cpu).toFixed(0)}%, ${r.cpu_us.toFixed(2)} µs/request`);'
    done
  done
done

# --- report -------------------------------------------------------------------------------
out=${out:-$here/results-$(date +%Y-%m-%d).md}
nginx_v=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
varnish_v=$("$VARNISHD" -V 2>&1 | head -1 | sed -e 's/^varnishd (//' -e 's/ revision.*//')
wrk_v=$( (wrk -v 2>&1 || true) | head -1 | awk "{print \$1, \$2}")
commit=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(cd "$root" && git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
{
  echo "# cors-edge vs nginx vs Varnish vs the Pingora floor — $started_at"
  echo
  echo "Command: \`benches/compare/run.sh --duration $duration --warmup $warmup --connections $connections --paths $paths --rounds $rounds --profile $profile --client $client\`"
  echo "(servers: $servers; scenarios: $scenarios)"
  echo
  echo "- cors-edge $commit$dirty (cargo profile \`$profile\`), \`server: { threads: 1 }\` (cors-edge.yaml; cors-edge-log: cors-edge-access-log.yaml, JSON access log to a file)"
  echo "- nginx $nginx_v, one worker, proxy_cache on tmpfs keyed with \$http_origin (nginx.conf)"
  echo "- Varnish $varnish_v, one thread pool, -s malloc, hash on Origin, preflights cached (varnish.vcl)"
  echo "- pingora-floor: Pingora 0.9 answering a fixed 1 KiB body from request_filter (crates/gateway/examples/pingora_floor.rs)"
  echo "- every server alone on CPU 1; load generator ($([[ $client == wrk ]] && echo "$wrk_v, -t1" || echo "cors-edge loadtest")) with $connections keep-alive connections and $paths paths, and the upstream, on CPU 0"
  echo "- machine: $(nproc --all) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average at start $load_at_start"
  echo
  node "$here/report.mjs" "$results" "$rounds"
} >"$out"
echo
cat "$out"
log "saved $out"
