#!/usr/bin/env bash
# Two or more cors-edge binaries on the same load, interleaved, driven by wrk (an independent
# load generator): did a change make hits (or misses) cheaper or dearer?
#
#   benches/compare/hits-ab.sh BIN_A BIN_B [BIN_C ...] [--rounds 3] [--duration 5s]
#                              [--connections 64] [--scenario 1k-10o|1k-100o|preflight|edge-preflight|miss]
#                              [--config FILE] [--config-b FILE]
#
# BIN_A and BIN_B may be the same binary with --config-b giving B another config (e.g.
# cors-edge-access-log.yaml: the cost of the JSON access log on hits). In configs, @LOG@
# becomes a file in the run's temp dir. The miss scenario asks for a new path every time (the
# upstream then shares CPU 0 with wrk): the cost of a miss, store included.
#
# Each binary runs alone on CPU 1 (`server: { threads: 1 }`, ports chosen by the OS and read
# from its --ready-file), wrk runs on CPU 0, the upstream (upstream.mjs) on CPU 0 too (it is
# asked only during the warm-up: every measured request must be a hit, checked with the
# upstream's counter). Reported per binary: median req/s over the rounds, p50/p99 from wrk,
# and server CPU time per request (user + system, from /proc), which is steadier than req/s
# on a shared machine. Installs wrk and node (Debian) when missing. Loopback only.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=ab-common.sh
source "$here/ab-common.sh"
bins=()
rounds=3; duration=5s; connections=64; scenario=1k-10o; config="$here/cors-edge.yaml"; config_b=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --scenario) scenario=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --config-b) config_b=$2; shift 2 ;;
    -*) echo "unknown argument $1" >&2; exit 2 ;;
    *) bins+=("$(readlink -f "$1")"); shift ;;
  esac
done
[[ ${#bins[@]} -ge 2 ]] || { sed -n '2,16p' "$0"; exit 2; }
labels=()
for ((i = 0; i < ${#bins[@]}; i++)); do labels+=("$(printf "\\x$(printf %x $((65 + i)))")"); done
scenario_args "$scenario"
install_missing wrk:wrk node:nodejs curl:curl
# As root, the measured processes run at nice -15: other work on the machine disturbs them less.
PRIO=()
[[ $(id -u) -eq 0 && -z ${NO_NICE:-} ]] && PRIO=(nice -n -15)
start_work
count() { curl -fsS "http://127.0.0.1:$up_port/__count"; }

ticks() { # utime + stime of PID (all threads), in clock ticks
  local rest; rest=$(cut -d')' -f2- "/proc/$1/stat"); set -- $rest; echo $(( ${12} + ${13} ))
}
hz=$(getconf CLK_TCK)

# start BIN CONFIG -> "PID PORT"
start() {
  sed -e "s|127.0.0.1:@LISTEN@|127.0.0.1:0|" -e "s|127.0.0.1:@ADMIN@|127.0.0.1:0|" \
    -e "s|@UPSTREAM@|127.0.0.1:$up_port|" -e "s|@LOG@|$work/access.log|" "$2" >"$work/gw.yaml"
  rm -f "$work/ready.json"
  if "$1" run --help 2>/dev/null | grep -q -- --ready-file; then
    RUST_LOG=warn "${PRIO[@]}" taskset -c 1 "$1" run -c "$work/gw.yaml" --ready-file "$work/ready.json" >"$work/gw.log" 2>&1 &
    local pid=$!
    for _ in $(seq 200); do [[ -s $work/ready.json ]] && break; sleep 0.05; done
    local port; port=$(grep -o '"listen":\["127.0.0.1:[0-9]*' "$work/ready.json" | grep -o '[0-9]*$')
    echo "$pid $port"
    return
  fi
  # A binary from before --ready-file: its port-0 listeners are found by its pid (ss), and the
  # proxy is the one whose answers carry X-Cache. Its config check refuses two listeners on
  # 127.0.0.1:0, so its admin API goes to 127.0.0.2.
  sed -i "s|admin: { listen: \"127.0.0.1:0\" }|admin: { listen: \"127.0.0.2:0\" }|" "$work/gw.yaml"
  RUST_LOG=warn "${PRIO[@]}" taskset -c 1 "$1" run -c "$work/gw.yaml" >"$work/gw.log" 2>&1 &
  local pid=$! p
  for _ in $(seq 200); do
    for p in $(ss -Hltnp 2>/dev/null | grep "pid=$pid," | awk '{print $4}' | grep -o '[0-9]*$'); do
      if curl -fsS -o /dev/null -D - "http://127.0.0.1:$p/o/1k/0" 2>/dev/null | grep -qi '^x-cache'; then
        echo "$pid $p"
        return
      fi
    done
    sleep 0.05
  done
  echo "$pid 0"
}

declare -A RPS CPU P50 P99
for ((round = 1; round <= rounds; round++)); do
  for ((i = 0; i < ${#bins[@]}; i++)); do
    label=${labels[i]}; bin=${bins[i]}; cfg=$config
    if [[ $label == B ]]; then cfg=${config_b:-$config}; fi
    read -r pid port < <(start "$bin" "$cfg")
    pids+=("$pid")
    url="http://127.0.0.1:$port"
    "${PRIO[@]}" taskset -c 0 wrk -t1 -c"$connections" -d2s -s "$here/origins.lua" "$url" -- "${wrk_args[@]}" >/dev/null
    before=$(count); t0=$(ticks "$pid")
    out=$("${PRIO[@]}" taskset -c 0 wrk -t1 -c"$connections" -d"$duration" --latency -s "$here/origins.lua" "$url" -- "${wrk_args[@]}")
    t1=$(ticks "$pid"); after=$(count)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    cpu_us=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    if [[ $scenario == miss ]]; then
      [[ $((after - before)) -ge $requests ]] || echo "warning: $label: $requests requests, only $((after - before)) went upstream" >&2
    else
      [[ $after -eq $before ]] || echo "warning: $label sent $((after - before)) requests upstream during the run" >&2
    fi
    echo "round $round $label: $rps req/s, p50 $p50, p99 $p99, $cpu_us µs CPU/request" >&2
    RPS[$label]+="$rps "; CPU[$label]+="$cpu_us "; P50[$label]+="$p50 "; P99[$label]+="$p99 "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '\n| binary | scenario | req/s (median of %s) | CPU µs/request (median) | p50 | p99 |\n| --- | --- | ---: | ---: | --- | --- |\n' "$rounds"
for ((i = 0; i < ${#bins[@]}; i++)); do
  label=${labels[i]}; bin=${bins[i]}
  cfg=$config; [[ $label == B ]] && cfg=${config_b:-$config}
  printf '| %s `%s` (%s) | %s | %s | %s | %s | %s |\n' "$label" "$bin" "$(basename "$cfg")" "$scenario" \
    "$(median <<<"${RPS[$label]}")" "$(median <<<"${CPU[$label]}")" \
    "$(echo "${P50[$label]}" | awk '{print $1}')" "$(echo "${P99[$label]}" | awk '{print $1}')"
done
