#!/usr/bin/env bash
# Flamegraphs of a server under the benches' hit load: where a hit's CPU goes.
#
#   benches/compare/flamegraph.sh [--bin PATH] [--floor PATH] [--seconds 5] [--out DIR]
#                                 [--scenario 1k-10o|1k-100o|edge-preflight|edge-1000o|preflight]
#
# Starts the upstream (upstream.mjs), cors-edge (cors-edge.yaml) and the Pingora floor, each
# alone on CPU 1, drives each with wrk on CPU 0 (64 connections, 10 origins, 10 paths, 1 KiB
# per-origin hits; the floor answers the same requests with its fixed 1 KiB), and samples the
# server with `perf record` (DWARF call graphs, 999 Hz) while the load runs. Writes
# DIR/cors-edge-hit.svg and DIR/pingora-floor.svg (other scenarios: DIR/cors-edge-SCENARIO.svg and
# DIR/pingora-floor-SCENARIO.svg) (inferno; KEEP_FOLDED=1 also keeps the
# folded stacks, for inferno-diff-folded). Default DIR: benches/flamegraphs. Needs perf (the
# linux-perf Debian package) and inferno (`cargo install inferno`); installs both when
# missing. Loopback only; stops what it started.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/target/release/cors-edge"
floor="$root/target/release/examples/pingora_floor"
seconds=5
out="$root/benches/flamegraphs"
scenario=1k-10o
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --floor) floor=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --scenario) scenario=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case $scenario in
  1k-10o) wrk_args=(10 10 /o/1k); what="1 KiB per-origin hits"; suffix="" ;;
  1k-100o) wrk_args=(100 10 /o/1k); what="1 KiB per-origin hits, 100 origins"; suffix="-$scenario" ;;
  preflight) wrk_args=(10 10 /o/1k preflight); what="cached preflights"; suffix="-$scenario" ;;
  edge-preflight) wrk_args=(10 10 /e/1k preflight); what="preflights answered by the policy"; suffix="-$scenario" ;;
  edge-1000o) wrk_args=(1000 10 /e/1k); what="edge mode, 1000 origins"; suffix="-$scenario" ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
[[ -x $bin && -x $floor ]] || { echo "build first: cargo build --release -p cors-edge -p cors-edge-gateway --bin cors-edge --example pingora_floor" >&2; exit 1; }
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
missing=()
command -v perf >/dev/null || missing+=(linux-perf)
command -v wrk >/dev/null || missing+=(wrk)
command -v node >/dev/null || missing+=(nodejs)
if [[ ${#missing[@]} -gt 0 ]]; then
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v inferno-flamegraph >/dev/null || cargo install --locked -q inferno
mkdir -p "$out"
commit=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

taskset -c 0 node "$here/upstream.mjs" 0 >"$work/upstream.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening' "$work/upstream.log" && break; sleep 0.1; done
up_port=$(awk '/^listening/ {print $2}' "$work/upstream.log")
[[ -n $up_port ]] || { cat "$work/upstream.log" >&2; exit 1; }

sed -e "s|@LISTEN@|0|" -e "s|@ADMIN@|0|" -e "s|@UPSTREAM@|127.0.0.1:$up_port|" "$here/cors-edge.yaml" >"$work/gw.yaml"
RUST_LOG=warn taskset -c 1 "$bin" run -c "$work/gw.yaml" --ready-file "$work/ready.json" >"$work/gw.log" 2>&1 &
gw=$!
pids+=("$gw")
for _ in $(seq 200); do [[ -s $work/ready.json ]] && break; sleep 0.05; done
gw_port=$(grep -o '"listen":\["127.0.0.1:[0-9]*' "$work/ready.json" | grep -o '[0-9]*$')

# The floor cannot report a port the OS chose: one that was free a moment ago.
floor_port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
taskset -c 1 "$floor" "127.0.0.1:$floor_port" >"$work/floor.log" 2>&1 &
fl=$!
pids+=("$fl")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$floor_port") 2>/dev/null && break; sleep 0.1; done

profile() { # NAME PID PORT
  local name=$1 pid=$2 port=$3 load
  taskset -c 0 wrk -t1 -c64 -d2s -s "$here/origins.lua" "http://127.0.0.1:$port" -- "${wrk_args[@]}" >/dev/null
  taskset -c 0 wrk -t1 -c64 -d"$((seconds + 2))s" -s "$here/origins.lua" "http://127.0.0.1:$port" -- "${wrk_args[@]}" >/dev/null &
  load=$!
  sleep 1
  perf record -q -F 999 --call-graph dwarf,32768 -p "$pid" -o "$work/$name.data" -- sleep "$seconds" >/dev/null 2>&1
  wait "$load"
  perf script -i "$work/$name.data" 2>/dev/null | inferno-collapse-perf >"$work/$name.folded"
  # Frames under 2 px are left out: the picture stays small enough to commit.
  inferno-flamegraph --title "$name: $what, wrk, one core ($(date -u +%Y-%m-%d), $commit)" \
    --width 1600 --minwidth 2 <"$work/$name.folded" >"$out/$name.svg"
  echo "wrote $out/$name.svg" >&2
  [[ -z ${KEEP_FOLDED:-} ]] || cp "$work/$name.folded" "$out/"
}
if [[ -z $suffix ]]; then
  profile cors-edge-hit "$gw" "$gw_port"
else
  profile "cors-edge$suffix" "$gw" "$gw_port"
fi
profile "pingora-floor$suffix" "$fl" "$floor_port"
