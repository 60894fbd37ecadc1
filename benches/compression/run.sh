#!/usr/bin/env bash
# CPU per cache hit with compression at the edge, and the compression ratio, on this machine.
#
#   benches/compression/run.sh [GATEWAY_BIN] [DOWNSTREAM_BIN]
#
# One JSON document (about 64 KiB of API-like JSON, generated with a fixed seed) behind a tiny
# Python upstream (max-age=3600, a strong ETag). For each case the gateway (`server: { threads:
# 1 }`) runs pinned to CPU 1 and wrk (1 thread, 16 connections, 10 s) to CPU 0, on loopback; the
# gateway's CPU time (utime+stime from /proc/PID/stat) over the run divided by the requests
# wrk completed is the CPU per hit. Every run is preceded by a warm-up request that stores the
# variant, and checked to be all hits (X-Cache) before and after.
#
# Cases: the stored-per-coding design (this gateway: identity, gzip, br, zstd hits), and, when
# DOWNSTREAM_BIN is given, a build whose route compression is off and Pingora's
# ResponseCompression downstream module compresses every answer at the same level (the
# compress-on-the-fly design; the probe patch is benches/compression/downstream-probe.patch).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$(readlink -f "${1:-$here/../../target/release/cors-edge}")"
downstream_bin="${2:-}"
dir="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

python3 - "$dir/doc.json" <<'PY'
import json, random, sys
random.seed(7)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
items = [{"id": i, "sku": f"SKU-{random.randint(10000, 99999)}",
          "name": " ".join(random.choice(words) for _ in range(3)),
          "price": round(random.uniform(1, 500), 2), "stock": random.randint(0, 900),
          "tags": random.sample(words, 3), "active": random.random() < 0.8,
          "updated": f"2026-11-{random.randint(1, 27):02d}T{random.randint(0, 23):02d}:00:00Z"}
         for i in range(420)]
open(sys.argv[1], "w").write(json.dumps({"items": items, "count": len(items)}))
PY

cat > "$dir/upstream.py" <<'PY'
import http.server, sys
body = open(sys.argv[1], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("cache-control", "max-age=3600")
        self.send_header("etag", '"doc-1"')
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
coproc UP { exec taskset -c 0 python3 "$dir/upstream.py" "$dir/doc.json"; }
pids+=("$UP_PID")
read -r up_port <&"${UP[0]}"

start_gateway() { # bin compression_yaml -> sets gw_pid gw_port
  local gbin="$1" comp="$2"
  rm -f "$dir/ready.json"
  cat > "$dir/gw.yaml" <<YAML
listen: ["127.0.0.1:0"]
admin: { listen: "127.0.0.1:0" }
server: { threads: 1, grace_period: 0s, shutdown_timeout: 0s }
upstreams:
  api:
    servers: ["127.0.0.1:$up_port"]
routes:
  - name: api
    upstream: api
    compression: $comp
YAML
  BENCH_DOWNSTREAM_LEVEL="${BENCH_DOWNSTREAM_LEVEL:-0}" taskset -c 1 "$gbin" run -c "$dir/gw.yaml" --ready-file "$dir/ready.json" >"$dir/gw.log" 2>&1 &
  gw_pid=$!
  pids+=("$gw_pid")
  for _ in $(seq 200); do [ -s "$dir/ready.json" ] && break; sleep 0.05; done
  gw_port="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"][0].rsplit(":",1)[1])' "$dir/ready.json")"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

measure() { # label accept-encoding
  local label="$1" ae="$2" hdr=()
  [ -n "$ae" ] && hdr=(-H "Accept-Encoding: $ae")
  local url="http://127.0.0.1:$gw_port/doc.json"
  curl -s -o /dev/null "${hdr[@]}" "$url"
  local size enc cache
  read -r size enc cache < <(curl -s -o "$dir/body" -D "$dir/h" "${hdr[@]}" "$url"; \
    echo "$(stat -c %s "$dir/body") $(grep -i '^content-encoding:' "$dir/h" | tr -d '\r' | awk '{print $2}')- $(grep -i '^x-cache:' "$dir/h" | tr -d '\r' | awk '{print $2}')")
  local before after hz=$(getconf CLK_TCK)
  before=$(cpu_ticks "$gw_pid")
  local out; out=$(taskset -c 0 wrk -t1 -c16 -d10s "${hdr[@]}" "$url")
  after=$(cpu_ticks "$gw_pid")
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local us; us=$(python3 -c "print(round(($after-$before)/$hz*1e6/$reqs, 1))")
  local orig; orig=$(stat -c %s "$dir/doc.json")
  printf '| %-34s | %-5s | %8s B | %5.1f%% | %s | %9s | %7s |\n' "$label" "${enc%-}" "$size" \
    "$(python3 -c "print($size*100/$orig)")" "$cache" "$rps" "$us"
}

echo "document: $(stat -c %s "$dir/doc.json") bytes of JSON"
echo '| case | coding | body | of identity | X-Cache | req/s | CPU µs/hit |'
echo '| --- | --- | --- | --- | --- | --- | --- |'
start_gateway "$bin" "{ enabled: true, level: 6 }"
measure "stored per coding: identity hit" ""
measure "stored per coding: gzip hit" "gzip"
measure "stored per coding: br hit" "br"
measure "stored per coding: zstd hit" "zstd"
kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true
if [ -n "$downstream_bin" ]; then
  BENCH_DOWNSTREAM_LEVEL=6 start_gateway "$(readlink -f "$downstream_bin")" "{ enabled: false }"
  measure "on the fly (Pingora module): identity" ""
  measure "on the fly (Pingora module): gzip" "gzip"
  measure "on the fly (Pingora module): br" "br"
  measure "on the fly (Pingora module): zstd" "zstd"
  kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true
fi
