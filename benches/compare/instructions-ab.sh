#!/usr/bin/env bash
# User-space instructions per request of two or more cors-edge binaries on the same load,
# counted by Valgrind's callgrind: a measure this VM's noise does not move (CPU time per hit
# spreads ±20% between rounds of the same binary here; instruction counts repeat to well
# under 1%). The kernel's part (the send and receive) is not counted; it is the same for
# every binary.
#
#   benches/compare/instructions-ab.sh BIN_A BIN_B [BIN_C ...] [--seconds 6] [--rounds 2]
#                                      [--scenario 1k-10o|1k-100o|preflight|edge-preflight|miss]
#
# Each binary runs under `valgrind --tool=callgrind` (instrumentation off), alone on CPU 1, with
# cors-edge.yaml (one worker thread); wrk (8 connections) and the upstream (upstream.mjs) run
# on CPU 0. After a warm-up (every answer cached), instrumentation is switched on for a wrk run of
# --seconds, then off; Ir (instructions executed) over the requests wrk completed is the
# figure. The server runs about 50 times slower under Valgrind, so a run is a few thousand
# requests. Installs valgrind, wrk and node (Debian) when missing. Loopback only; stops what
# it started.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=ab-common.sh
source "$here/ab-common.sh"
bins=()
rounds=2; seconds=6; scenario=1k-10o; config="$here/cors-edge.yaml"
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --scenario) scenario=$2; shift 2 ;;
    -*) echo "unknown argument $1" >&2; exit 2 ;;
    *) bins+=("$(readlink -f "$1")"); shift ;;
  esac
done
[[ ${#bins[@]} -ge 1 ]] || { sed -n '2,17p' "$0"; exit 2; }
scenario_args "$scenario"
install_missing valgrind:valgrind wrk:wrk node:nodejs
start_work

declare -A IR
for ((round = 1; round <= rounds; round++)); do
  for ((i = 0; i < ${#bins[@]}; i++)); do
    label=$(printf "\\x$(printf %x $((65 + i)))"); bin=${bins[i]}
    sed -e "s|127.0.0.1:@LISTEN@|127.0.0.1:0|" -e "s|127.0.0.1:@ADMIN@|127.0.0.1:0|" \
      -e "s|@UPSTREAM@|127.0.0.1:$up_port|" "$config" >"$work/gw.yaml"
    rm -f "$work/ready.json" "$work"/callgrind.*
    RUST_LOG=warn taskset -c 1 valgrind -q --tool=callgrind --instr-atstart=no \
      --callgrind-out-file="$work/callgrind.%p" \
      "$bin" run -c "$work/gw.yaml" --ready-file "$work/ready.json" >"$work/gw.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 600); do [[ -s $work/ready.json ]] && break; sleep 0.1; done
    port=$(grep -o '"listen":\["127.0.0.1:[0-9]*' "$work/ready.json" | grep -o '[0-9]*$')
    url="http://127.0.0.1:$port"
    taskset -c 0 wrk -t1 -c8 -d4s -s "$here/origins.lua" "$url" -- "${wrk_args[@]}" >/dev/null
    callgrind_control -i on "$pid" >/dev/null
    out=$(taskset -c 0 wrk -t1 -c8 -d"${seconds}s" -s "$here/origins.lua" "$url" -- "${wrk_args[@]}")
    callgrind_control -i off "$pid" >/dev/null
    callgrind_control -d "$pid" >/dev/null
    kill "$pid"; wait "$pid" 2>/dev/null || true
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    # Every dump's totals (one per thread that ran), summed.
    ir=$(cat "$work"/callgrind.* | awk '/^totals:|^summary:/ {s += $2} END {print s}')
    per=$(awk -v ir="$ir" -v n="$requests" 'BEGIN { printf "%.0f", ir / n }')
    echo "round $round $label: $requests requests, $per instructions/request" >&2
    IR[$label]+="$per "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '\n| binary | scenario | instructions/request (median of %s) | rounds |\n| --- | --- | ---: | --- |\n' "$rounds"
for ((i = 0; i < ${#bins[@]}; i++)); do
  label=$(printf "\\x$(printf %x $((65 + i)))")
  printf '| %s `%s` | %s | %s | %s |\n' "$label" "${bins[i]}" "$scenario" \
    "$(median <<<"${IR[$label]}")" "${IR[$label]}"
done
