#!/usr/bin/env bash
# cors-edge loadtest against wrk on ONE core, against the same loopback upstream.
#
#   cargo build --release -p cors-edge && \
#     cargo build --release -p cors-edge-tools --example bench_upstream
#   crates/tools/bench/vs-wrk.sh [SECONDS] [ROUNDS]
#
# The upstream (examples/bench_upstream.rs: one hyper thread, reflected ACAO and
# Vary: Origin) runs pinned to CPU 1; wrk (-t1 -c32, the same Origin header) and
# `cors-edge loadtest` (32 connections, one origin, every response checked for leaks) take
# turns pinned to CPU 0, for SECONDS each (default 3), ROUNDS times (default 3). Prints
# each run's req/s and CPU seconds, then the median ratio. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../../.."
seconds=${1:-3}
rounds=${2:-3}
target=${CARGO_TARGET_DIR:-target}
bin="$target/release/cors-edge"
upstream="$target/release/examples/bench_upstream"
for tool in wrk taskset python3 "$bin" "$upstream"; do
  command -v "$tool" >/dev/null || [ -x "$tool" ] || { echo "vs-wrk: $tool is missing" >&2; exit 1; }
done
work=$(mktemp -d)
taskset -c 1 "$upstream" 127.0.0.1:0 >"$work/addr" &
up=$!
trap 'kill $up 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/addr" ] && break; sleep 0.1; done
addr=$(head -1 "$work/addr")
echo "upstream $addr on CPU 1; wrk and loadtest on CPU 0, ${seconds}s each; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  /usr/bin/time -f "%U %S" -o "$work/wrk.cpu" taskset -c 0 \
    wrk -t1 -c32 -d"${seconds}s" -H 'Origin: https://o1.loadtest.example' "http://$addr/" >"$work/wrk.out"
  /usr/bin/time -f "%U %S" -o "$work/lt.cpu" taskset -c 0 \
    "$bin" loadtest "http://$addr/" --origins 1 --concurrency 32 --duration "${seconds}s" --json >"$work/lt.json" || true
  python3 - "$work" "$round" <<'PY'
import json, re, sys
work, round_ = sys.argv[1], sys.argv[2]
wrk = float(re.search(r"Requests/sec:\s+([\d.]+)", open(f"{work}/wrk.out").read()).group(1))
report = json.load(open(f"{work}/lt.json"))
lt = report["requests_per_second"]
cpu = lambda name: sum(map(float, open(f"{work}/{name}").read().split()[-2:]))
print(f"round {round_}: wrk {wrk:,.0f} req/s ({cpu('wrk.cpu'):.2f}s CPU), loadtest {lt:,.0f} req/s "
      f"({cpu('lt.cpu'):.2f}s CPU, {report['leaks']['total']} leaks, {report['errors']} errors): {lt / wrk:.2f}x")
open(f"{work}/ratios", "a").write(f"{lt / wrk}\n")
PY
done
python3 -c "import statistics,sys; r=[float(x) for x in open('$work/ratios')]; print(f'median loadtest / wrk: {statistics.median(r):.2f}x over {len(r)} rounds')"
