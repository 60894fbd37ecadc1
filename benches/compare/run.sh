#!/usr/bin/env bash
# cors-edge against nginx and Varnish, on this machine, in one run.
#
#   benches/compare/run.sh [--duration 10s] [--warmup 3s] [--concurrency 50] [--paths 10]
#                          [--servers "cors-edge nginx varnish"] [--scenarios "1k-10o ..."]
#                          [--rounds N] [--profile dist|release] [--out FILE] [--no-build]
#
# Starts, each on a free loopback port with its own temp dir: one upstream (upstream.mjs, a
# small static API in Node), nginx (nginx.conf), Varnish (varnish.vcl) and cors-edge
# (cors-edge.yaml, `server: { threads: 1 }`). The servers under test run on CPU 0
# (`taskset -c 0`), the load generator (`cors-edge loadtest`) and the upstream on CPU 1.
# For every scenario and server: a warm-up run with the same load, a check that the cache
# answers (two requests: the second must say HIT and carry Age), then the measured run,
# with the upstream's request counter read before and after (a cache that really hits sends
# nothing upstream) and the server's CPU time (all its processes) read from /proc.
#
# Scenarios (all GETs carry Origin, drawn from N rotating origins https://oI.loadtest.example):
#   1k-10o      1 KiB per-origin answers (ACAO echoes the origin, Vary: Origin), 10 origins
#   64k-10o     64 KiB per-origin answers, 10 origins
#   1k-1o       1 KiB per-origin, a single origin (flatters caches that ignore Origin)
#   1k-100o     1 KiB per-origin, 100 origins
#   1k-shared   1 KiB answers with ACAO: * (one copy for every origin), 10 origins
#   preflight   cached CORS preflights only (OPTIONS), 10 origins; nginx cannot cache
#               OPTIONS and answers them from its config instead (X-Cache: CONFIG)
#   edge-1000o  1000 origins: cors-edge on its edge route (one body, CORS stamped per
#               request); nginx and Varnish with their per-origin keys (one copy per origin)
#
# pingora-floor (crates/gateway/examples/pingora_floor.rs) is no cache: Pingora answering a
# fixed 1 KiB body from request_filter. It runs in the 1 KiB per-origin scenarios only, as the
# ceiling of any cache hit served by Pingora's HTTP/1 stack on that core.
#
# Prints a table (server, scenario, req/s, p50, p99, hit ratio, upstream requests during the
# measured run, server CPU, ratio to nginx) and saves it to benches/compare/results-DATE.md
# (or --out). A server whose CPU is well below 100% during a run was not the bottleneck:
# the single load-generator core was (about 60k req/s here), so its ratio is a lower bound.
# As root, everything it starts runs at nice -15 so that other work on the machine disturbs
# the measurement less (NO_NICE=1 turns that off; PRIO_MODE=rt runs the servers and the load
# generator at SCHED_FIFO instead). Installs nginx and varnish with apt-get when missing.
# cors-edge is built with the `dist` cargo profile (fat LTO, one codegen unit: what the
# container image ships; about 7 minutes from clean on 2 cores), or `--profile release`.
# Stops only what it started; KEEP_WORK=1 keeps the temp dir.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

duration=10s
warmup=3s
concurrency=50
paths=10
servers="cors-edge nginx varnish pingora-floor"
scenarios="1k-10o 64k-10o 1k-1o 1k-100o 1k-shared preflight edge-1000o"
out=""
build=1
rounds=1
profile=dist
while [[ $# -gt 0 ]]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --paths) paths=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --scenarios) scenarios=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '[compare] %s\n' "$*" >&2; }
die() { printf '[compare] error: %s\n' "$*" >&2; exit 1; }

# --- tools --------------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v varnishd >/dev/null || [[ -x /usr/sbin/varnishd ]] || missing+=(varnish)
command -v node >/dev/null || missing+=(nodejs)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
VARNISHD=$(command -v varnishd || echo /usr/sbin/varnishd)
[[ $(nproc --all) -ge 2 ]] || die "needs two CPUs (servers on CPU 0, load generator on CPU 1)"

if [[ $build -eq 1 ]]; then
  log "cargo build --profile $profile -p cors-edge"
  (cd "$root" && cargo build --profile "$profile" -q -p cors-edge)
  if [[ " $servers " == *" pingora-floor "* ]]; then
    log "cargo build --profile $profile -p cors-edge-gateway --example pingora_floor"
    (cd "$root" && cargo build --profile "$profile" -q -p cors-edge-gateway --example pingora_floor)
  fi
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

"${UPSTREAM_PRIO[@]}" taskset -c 1 node "$here/upstream.mjs" 0 >"$work/upstream.log" 2>&1 &
STARTED+=($!)
for _ in $(seq 100); do grep -q '^listening' "$work/upstream.log" && break; sleep 0.1; done
up_port=$(awk '/^listening/ {print $2}' "$work/upstream.log")
[[ -n $up_port ]] || { cat "$work/upstream.log" >&2; die "the upstream did not start"; }
upstream_count() { curl -fsS "http://127.0.0.1:$up_port/__count"; }
log "upstream (node $(node --version)) on 127.0.0.1:$up_port"

declare -A PORT PID
for server in $servers; do
  case $server in
    cors-edge)
      sed -e "s|@LISTEN@|0|" -e "s|@ADMIN@|0|" \
        -e "s|@UPSTREAM@|127.0.0.1:$up_port|" "$here/cors-edge.yaml" >"$work/cors-edge.yaml"
      RUST_LOG=warn "${PRIO[@]}" taskset -c 0 "$BIN" run -c "$work/cors-edge.yaml" \
        --ready-file "$work/cors-edge.ready" >"$work/cors-edge.log" 2>&1 &
      PID[$server]=$!
      for _ in $(seq 200); do [[ -s $work/cors-edge.ready ]] && break; sleep 0.05; done
      grep -q "\"pid\":${PID[$server]}," "$work/cors-edge.ready" 2>/dev/null \
        || { cat "$work/cors-edge.log" >&2; die "cors-edge did not start"; }
      PORT[$server]=$(grep -o '"listen":\["127.0.0.1:[0-9]*' "$work/cors-edge.ready" | grep -o '[0-9]*$')
      ;;
    nginx)
      PORT[$server]=$(free_port)
      mkdir -p "$work/nginx" "$work/nginx-cache"
      chmod 777 "$work/nginx-cache"
      sed -e "s|@WORK@|$work/nginx|g" -e "s|@CACHE@|$work/nginx-cache|g" \
        -e "s|@LISTEN@|${PORT[$server]}|" -e "s|@UPSTREAM@|127.0.0.1:$up_port|" \
        "$here/nginx.conf" >"$work/nginx/nginx.conf"
      "$NGINX" -t -q -p "$work/nginx" -c "$work/nginx/nginx.conf" || die "nginx rejected its config"
      "${PRIO[@]}" taskset -c 0 "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' \
        >"$work/nginx.log" 2>&1 &
      PID[$server]=$!
      ;;
    varnish)
      PORT[$server]=$(free_port)
      sed -e "s|@UPSTREAM_PORT@|$up_port|" "$here/varnish.vcl" >"$work/varnish.vcl"
      chmod 644 "$work/varnish.vcl"
      "${PRIO[@]}" taskset -c 0 "$VARNISHD" -F -n "$work/varnish" -a "127.0.0.1:${PORT[$server]}" -T none \
        -f "$work/varnish.vcl" -s malloc,2G -p thread_pools=1 -p thread_pool_min=100 \
        -p thread_pool_max=1000 >"$work/varnishd.log" 2>&1 &
      PID[$server]=$!
      ;;
    pingora-floor)
      [[ -x $FLOOR ]] || die "$FLOOR is missing (cargo build --profile $profile -p cors-edge-gateway --example pingora_floor)"
      PORT[$server]=$(free_port)
      "${PRIO[@]}" taskset -c 0 "$FLOOR" "127.0.0.1:${PORT[$server]}" >"$work/pingora-floor.log" 2>&1 &
      PID[$server]=$!
      ;;
    *) die "unknown server $server (cors-edge, nginx, varnish, pingora-floor)" ;;
  esac
  STARTED+=("${PID[$server]}")
  wait_port "${PORT[$server]}" "${PID[$server]}" \
    || { cat "$work"/*.log >&2; die "$server did not start"; }
  log "$server (pid ${PID[$server]}) on 127.0.0.1:${PORT[$server]}, CPU 0"
done

# --- scenarios ----------------------------------------------------------------------------
# scenario -> "path origins preflight-share" (path for cors-edge in edge-1000o differs)
declare -A SHAPE=(
  [1k-10o]="/o/1k 10 0"
  [64k-10o]="/o/64k 10 0"
  [1k-1o]="/o/1k 1 0"
  [1k-100o]="/o/1k 100 0"
  [1k-shared]="/s/1k 10 0"
  [preflight]="/o/1k 10 1"
  [edge-1000o]="/o/1k 1000 0"
)

# loadtest SERVER SCENARIO DURATION -> JSON on stdout
loadtest() {
  local server=$1 scenario=$2 dur=$3 path origins share
  read -r path origins share <<<"${SHAPE[$scenario]}"
  if [[ $scenario == edge-1000o && $server == cors-edge ]]; then path=/e/1k; fi
  "${PRIO[@]}" taskset -c 1 "$BIN" loadtest "http://127.0.0.1:${PORT[$server]}$path" --origins "$origins" \
    --paths "$paths" --preflight-share "$share" --concurrency "$concurrency" \
    --duration "$dur" --json
}

# Two requests for the same object from the same origin: the second must come from cache.
verify_hit() {
  local server=$1 scenario=$2 path origins share url args headers
  read -r path origins share <<<"${SHAPE[$scenario]}"
  if [[ $scenario == edge-1000o && $server == cors-edge ]]; then path=/e/1k; fi
  if [[ $server == pingora-floor ]]; then echo "no cache: fixed answer"; return 0; fi
  url="http://127.0.0.1:${PORT[$server]}$path/p/1"
  args=(-sS -o /dev/null -D - -H "Origin: https://o1.loadtest.example")
  if [[ $share == 1 ]]; then
    args+=(-X OPTIONS -H "Access-Control-Request-Method: PUT"
      -H "Access-Control-Request-Headers: content-type,authorization")
  fi
  curl "${args[@]}" "$url" >/dev/null
  headers=$(curl "${args[@]}" "$url" | tr -d '\r')
  local status age
  status=$(grep -i '^x-cache:' <<<"$headers" | head -1 | awk '{print toupper($2)}')
  age=$(grep -ci '^age:' <<<"$headers" || true)
  if [[ $server == nginx && $share == 1 ]]; then
    [[ $status == CONFIG ]] && { echo "answered by config"; return 0; }
  fi
  if [[ $server == nginx ]]; then
    # nginx does not send Age for responses from its own cache.
    [[ $status == HIT ]] && { echo "X-Cache: HIT"; return 0; }
  else
    [[ $status == HIT && $age -gt 0 ]] && { echo "X-Cache: HIT, Age"; return 0; }
  fi
  echo "NOT A HIT: $(tr '\n' ' ' <<<"$headers")"
  return 1
}

# The servers a scenario runs on: the floor only where its fixed answer is the same load.
servers_for() {
  local server
  for server in $servers; do
    if [[ $server == pingora-floor && ! $1 =~ ^1k-[0-9]+o$ ]]; then continue; fi
    echo "$server"
  done
}

measure() { # SERVER SCENARIO CHECK: one measured run, one TSV row on stdout
  local server=$1 scenario=$2 check=$3 before_up before_cpu start_ns end_ns after_cpu after_up
  before_up=$(upstream_count)
  before_cpu=$(tree_ticks "${PID[$server]}")
  start_ns=$(date +%s%N)
  loadtest "$server" "$scenario" "$duration" >"$work/run.json" || true
  end_ns=$(date +%s%N)
  after_cpu=$(tree_ticks "${PID[$server]}")
  after_up=$(upstream_count)
  node -e '
    const [file, server, scenario, upstream, ticks, hz, ns, check] = process.argv.slice(1);
    const r = JSON.parse(require("fs").readFileSync(file));
    const cpu = (+ticks / +hz) / (+ns / 1e9);
    const l = r.latency_us || { p50: 0, p99: 0 };
    const hit = r.cache.hit_ratio == null ? "" : r.cache.hit_ratio.toFixed(4);
    const statuses = Object.entries(r.cache.statuses).map(([k, v]) => k + "=" + v).join(",");
    console.log([server, scenario, r.requests_per_second.toFixed(0), l.p50, l.p99, hit,
      upstream, (100 * cpu).toFixed(0), r.errors, r.leaks.total, statuses, check].join("\t"));
  ' "$work/run.json" "$server" "$scenario" "$((after_up - before_up))" \
    "$((after_cpu - before_cpu))" "$HZ" "$((end_ns - start_ns))" "$check"
}

results="$work/results.tsv"
: >"$results"
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A CHECK
for scenario in $scenarios; do
  [[ -n ${SHAPE[$scenario]:-} ]] || die "unknown scenario $scenario"
  for server in $(servers_for "$scenario"); do
    log "$scenario / $server: warm-up $warmup"
    loadtest "$server" "$scenario" "$warmup" >"$work/warm.json" || true
    # Large key spaces (1000 origins x paths) take more than one warm-up to fill.
    for _ in 1 2 3 4 5; do
      ratio=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(r.cache.hit_ratio ?? 0)' "$work/warm.json")
      node -e 'process.exit(+process.argv[1] >= 0.999 || process.argv[2] === "nginx-preflight" ? 0 : 1)' \
        "$ratio" "$server-$scenario" && break
      log "$scenario / $server: warm-up hit ratio $ratio, warming again"
      loadtest "$server" "$scenario" "$warmup" >"$work/warm.json" || true
    done
    CHECK[$server]=$(verify_hit "$server" "$scenario") || log "$scenario / $server: ${CHECK[$server]}"
  done
  # Rounds go through the servers in turn, so a slow spell of the machine hits them alike.
  for ((round = 1; round <= rounds; round++)); do
    for server in $(servers_for "$scenario"); do
      measure "$server" "$scenario" "${CHECK[$server]}" >>"$results"
      tail -1 "$results" | awk -F'\t' -v r="$round" '{printf "[compare] %s / %s (round %s): %s req/s, p50 %s us, p99 %s us, hit %s, upstream %s, cpu %s%%\n", $2, $1, r, $3, $4, $5, $6, $7, $8}' >&2
    done
  done
done

# --- report -------------------------------------------------------------------------------
date_tag=$(date +%Y-%m-%d)
out=${out:-$here/results-$date_tag.md}
nginx_v=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
varnish_v=$("$VARNISHD" -V 2>&1 | head -1 | sed -e 's/^varnishd (//' -e 's/ revision.*//')
commit=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(cd "$root" && git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
node - "$results" >"$work/table.md" <<'EOF'
const all = require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n")
  .filter(Boolean).map((l) => l.split("\t"));
// One row per server and scenario: the round with the median req/s, with the spread.
const cells = new Map();
for (const r of all) {
  const key = r[0] + "\t" + r[1];
  if (!cells.has(key)) cells.set(key, []);
  cells.get(key).push(r);
}
const rows = [];
for (const runs of cells.values()) {
  runs.sort((a, b) => +a[2] - +b[2]);
  const median = runs[Math.floor((runs.length - 1) / 2)].slice();
  median.push(runs.length > 1 ? `${runs[0][2]}–${runs[runs.length - 1][2]}` : "");
  median.push(runs.reduce((n, r) => n + +r[6], 0));
  median.push(runs.reduce((n, r) => n + +r[8], 0));
  median.push(runs.reduce((n, r) => n + +r[9], 0));
  rows.push(median);
}
const base = (name) => Object.fromEntries(rows.filter((r) => r[0] === name).map((r) => [r[1], +r[2]]));
const nginx = base("nginx");
const varnish = base("varnish");
const ratio = (rps, ref) => (ref ? (+rps / ref).toFixed(2) + "x" : "");
const out = [];
out.push("| server | scenario | req/s | spread | p50 µs | p99 µs | hit ratio | upstream reqs | server CPU | vs nginx | vs Varnish | notes |");
out.push("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
for (const r of rows) {
  const [server, scenario, rps, p50, p99, hit, , cpu, , , statuses, check, spread, up, errors, leaks] = r;
  const notes = [];
  if (+cpu < 85) notes.push("server not saturated: load-generator bound");
  if (+errors > 0) notes.push(errors + " errors");
  if (+leaks > 0) notes.push(leaks + " CORS leaks");
  if (!check.startsWith("X-Cache") && !check.startsWith("answered") && server !== "pingora-floor") notes.push(check);
  if (server === "pingora-floor") notes.push("Pingora alone, fixed 1 KiB answer: the ceiling of a Pingora-based cache");
  if (check.startsWith("answered")) notes.push("preflights answered by nginx config (cannot cache OPTIONS)");
  if (hit !== "" && +hit < 0.999) notes.push("statuses " + statuses);
  out.push(`| ${server} | ${scenario} | ${rps} | ${spread} | ${p50} | ${p99} | ${hit || "-"} | ${up} | ${cpu}% | ${ratio(rps, nginx[scenario])} | ${ratio(rps, varnish[scenario])} | ${notes.join("; ")} |`);
}
console.log(out.join("\n"));
EOF
{
  echo "# cors-edge vs nginx vs Varnish — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`benches/compare/run.sh --duration $duration --warmup $warmup --concurrency $concurrency --paths $paths --rounds $rounds --profile $profile\`${PRIO_MODE:+ with PRIO_MODE=$PRIO_MODE}"
  echo "(servers: $servers; scenarios: $scenarios)"
  echo
  echo "- cors-edge $commit$dirty (cargo profile \`$profile\`), \`server: { threads: 1 }\` ($here/cors-edge.yaml)"
  echo "- nginx $nginx_v, one worker, proxy_cache on tmpfs keyed with \$http_origin (nginx.conf)"
  echo "- Varnish $varnish_v, one thread pool, -s malloc, hash on Origin, preflights cached (varnish.vcl)"
  echo "- pingora-floor: Pingora 0.9 answering a fixed 1 KiB body from request_filter (crates/gateway/examples/pingora_floor.rs), 1 KiB per-origin scenarios only"
  echo "- servers pinned to CPU 0, load generator (\`cors-edge loadtest\`, $concurrency keep-alive connections, $paths paths) and upstream on CPU 1"
  echo "- machine: $(nproc --all) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average at start $load_at_start"
  echo
  echo "Each row: a warm-up with the same load, a two-request HIT check, then $rounds measured"
  echo "run(s) of $duration, the servers taking turns; req/s, p50, p99 and CPU are those of the"
  echo "median run, 'spread' the slowest and fastest, 'upstream reqs' the sum over the runs."
  echo "'upstream reqs' is what the upstream served during the measured run (0: every answer came"
  echo "from the cache). 'server CPU' is the CPU time of all the server's processes over the run:"
  echo "below 100% the server was waiting for the single load-generator core, so its req/s (and"
  echo "ratio) is capped by the generator, not by the server."
  echo
  cat "$work/table.md"
} >"$out"
echo
cat "$out"
log "saved $out"
