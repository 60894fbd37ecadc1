#!/usr/bin/env bash
# The p99 of cache hits while `GET /cache?prefix=/&limit=10000` walks and lists 10,000 entries
# over and over, against the p99 of the same hits without a walk (issue 21). A benchmark, not a
# test: its figures depend on the machine and on what else runs on it.
#
#   benches/inspect/run.sh [--duration 10s] [--rounds 2] [--entries 10000] [--no-build]
#
# Starts benches/compare/upstream.mjs (Node) and one cors-edge (`server: { threads: 1 }`) on
# loopback, fills the cache with --entries per-origin 1 KiB answers (/o/1k/N, one origin),
# checks /stats counts them, then alternates, --rounds times: a `cors-edge loadtest` of hits
# alone (10 hot paths, 8 connections), and the same load while a loop of curl asks the admin
# API for `/cache?prefix=/&limit=10000` back to back. Prints the p50/p99 of the hits per run,
# the walks completed and their mean duration, and saves the table to
# benches/inspect/results-DATE.md. Stops only what it started.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
duration=10s
rounds=2
entries=10000
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --entries) entries="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

if [ "$build" = 1 ]; then
  (cd "$root" && cargo build --release -p cors-edge)
fi
bin="${CORS_EDGE_BIN:-$root/target/release/cors-edge}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

node "$root/benches/compare/upstream.mjs" 0 >"$work/upstream.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$work/upstream.log" && break; sleep 0.1; done
upstream_port="$(awk '/listening/ {print $2}' "$work/upstream.log")"

cat >"$work/gateway.yaml" <<YAML
listen: ["127.0.0.1:0"]
admin: { listen: "127.0.0.1:0" }
server: { threads: 1 }
cache: { max_bytes: 512MiB }
upstreams:
  api:
    servers: ["127.0.0.1:$upstream_port"]
routes:
  - name: api
    upstream: api
YAML
"$bin" run -c "$work/gateway.yaml" --ready-file "$work/ready.json" >"$work/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
read -r listen admin < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["listen"][0], r["admin"])' "$work/ready.json")

echo "filling $entries entries through $listen ..."
python3 - "$listen" "$entries" <<'PY'
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port))
for i in range(int(sys.argv[2])):
    conn.request("GET", f"/o/1k/{i}", headers={"Origin": "https://o1.loadtest.example"})
    r = conn.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"/o/1k/{i}: {r.status}")
PY
stored="$(curl -s "http://$admin/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')"
echo "stored entries: $stored"
[ "$stored" -ge "$entries" ] || { echo "the cache holds $stored entries, not $entries" >&2; exit 1; }

# One walk at a time with nothing else asked of the gateway: the cost of the walk itself.
alone=()
for _ in 1 2 3; do
  alone+=("$(curl -s -o /dev/null -w '%{time_total}' "http://$admin/cache?prefix=/&limit=10000")")
done
echo "walks alone (s): ${alone[*]}"

load() {
  "$bin" loadtest "http://$listen/o/1k/hot" --paths 10 --origins 1 --no-origin-share 0 \
    --preflight-share 0 --concurrency 8 --duration "$duration" --json >"$work/load.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); l=r["latency_us"]; print(l["p50"], l["p99"], r["requests"], r["cache"]["hit_ratio"])' "$work/load.json"
}

rows=()
for round in $(seq "$rounds"); do
  read -r p50 p99 requests ratio < <(load)
  rows+=("| $round | no walk | $requests | $ratio | $p50 | $p99 | - | - |")
  : >"$work/walks"
  (
    while :; do
      curl -s -o /dev/null -w '%{time_total} %{size_download}\n' \
        "http://$admin/cache?prefix=/&limit=10000" >>"$work/walks"
    done
  ) &
  walker=$!
  read -r p50 p99 requests ratio < <(load)
  kill "$walker"; wait "$walker" 2>/dev/null || true
  read -r walks mean size < <(awk '{n++; t+=$1; s=$2} END {printf "%d %.1f %d\n", n, n ? 1000*t/n : 0, s}' "$work/walks")
  rows+=("| $round | ?prefix=/ walking | $requests | $ratio | $p50 | $p99 | $walks | $mean ms ($size bytes) |")
done

out="$here/results-$(date -u +%Y-%m-%d).md"
{
  echo "# GET /cache walk vs hits, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $stored entries"
  echo
  echo "cors-edge at $(cd "$root" && git rev-parse --short HEAD), one worker thread; loadtest: 10 hot paths,"
  echo "8 connections, $duration per run; walker: curl of /cache?prefix=/&limit=10000 back to back."
  echo "Three walks with no load, seconds each (curl's time_total): ${alone[*]}."
  echo
  echo "| round | during | hit requests | hit ratio | p50 µs | p99 µs | walks | mean walk |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  printf '%s\n' "${rows[@]}"
} | tee "$out"
