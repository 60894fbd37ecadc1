#!/usr/bin/env bash
# One cache across the cluster (issue 19): origin requests and hit ratio with 1, 3 and 5 nodes
# (goal: flat), and the cost of the hop to a key's owner.
#
#   benches/cluster/run.sh [--nodes "1 3 5"] [--requests 30000] [--paths 300] [--origins 3]
#                          [--concurrency 30] [--hop-requests 20000] [--out FILE] [--no-build]
#
# Starts a redis-server (unix socket), the upstream of benches/compare (upstream.mjs, which
# counts what it serves: GET /__count) and, for each node count, that many `cors-edge run`
# processes on port 0 that join into one ring after start (configs rewritten with every
# node's address as cluster.peers, then SIGHUP; the script waits until every node's /stats
# shows the whole ring healthy). Then one `cors-edge loadtest` run spreads its connections
# over the nodes (one --connect-to per node, worker i on node i mod N; same seed, paths and
# origins every time): per-origin answers (/o/1k/..., Vary: Origin), so a node makes one
# origin fetch per path and origin. Origin requests = the upstream's counter after - before.
#
# The hop: with 3 nodes, the owner of one URL is found from the debug header; a loadtest of
# that one URL against the owner measures a hit there; the same against a non-owner whose
# cluster.local_ttl is reloaded to 0s measures a hit served through the hop (every request
# forwarded to the owner, which answers from its cache); with local_ttl 2s (the default) a
# non-owner answers from its local copy.
#
# Prints a Markdown table and saves it to benches/cluster/results-DATE.md (or --out).
# Needs redis-server, node, curl, python3. Stops only what it started.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

node_counts="1 3 5"
requests=30000
paths=300
origins=3
concurrency=30
hop_requests=20000
out="$here/results-$(date -u +%Y-%m-%d).md"
build=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --nodes) node_counts=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --paths) paths=$2; shift 2 ;;
    --origins) origins=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --hop-requests) hop_requests=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }
for tool in redis-server node curl python3; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
if [[ $build -eq 1 ]]; then
  (cd "$root" && cargo build --release -q -p cors-edge)
fi
BIN=${CORS_EDGE_BIN:-$root/target/release/cors-edge}
[[ -x $BIN ]] || die "$BIN is missing (cargo build --release -p cors-edge)"

work=$(mktemp -d "${TMPDIR:-/tmp}/cors-edge-cluster-bench.XXXXXX")
STARTED=()
cleanup() {
  local pid
  for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

redis-server --port 0 --unixsocket "$work/redis.sock" --unixsocketperm 700 --save "" \
  --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
STARTED+=($!)
node "$root/benches/compare/upstream.mjs" 0 >"$work/upstream.log" 2>&1 &
STARTED+=($!)
for _ in $(seq 100); do grep -q '^listening' "$work/upstream.log" && [[ -S $work/redis.sock ]] && break; sleep 0.1; done
up_port=$(awk '/^listening/ {print $2}' "$work/upstream.log")
[[ -n $up_port && -S $work/redis.sock ]] || die "the upstream or redis did not start"
upstream_count() { curl -fsS "http://127.0.0.1:$up_port/__count"; }
export CORS_EDGE_PEER_TOKEN=bench-peer-token CORS_EDGE_ADMIN_TOKEN=bench-admin-token

# config NODE LISTEN PEERS SELF LOCAL_TTL: one node's YAML.
config() {
  local channel=$1 listen=$2 peers=$3 self=$4 ttl=$5
  cat <<EOF
listen: ["$listen"]
admin: { listen: "127.0.0.1:0" }
server: { grace_period: 0s, shutdown_timeout: 1s }
upstreams:
  api: { servers: ["127.0.0.1:$up_port"] }
routes:
  - name: api
    upstream: api
cluster:
  redis_url: "redis+unix://$work/redis.sock"
  channel: $channel
  local_ttl: $ttl
EOF
  if [[ -n $peers ]]; then printf '  peers: [%s]\n  self: "%s"\n' "$peers" "$self"; fi
}

declare -a ADDR ADMIN NODE_PID
# start_ring N CHANNEL: N nodes joined into one ring.
start_ring() {
  local n=$1 channel=$2 i peers=""
  ADDR=() ADMIN=() NODE_PID=()
  for ((i = 0; i < n; i++)); do
    config "$channel" 127.0.0.1:0 "" "" 2s >"$work/node$i.yaml"
    RUST_LOG=warn "$BIN" run -c "$work/node$i.yaml" --ready-file "$work/node$i.ready" >"$work/node$i.log" 2>&1 &
    NODE_PID[i]=$!
    STARTED+=("${NODE_PID[i]}")
    for _ in $(seq 200); do grep -q "\"pid\":${NODE_PID[i]}," "$work/node$i.ready" 2>/dev/null && break; sleep 0.05; done
    ADDR[i]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"][0])' "$work/node$i.ready")
    ADMIN[i]=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"])' "$work/node$i.ready")
    peers+="${peers:+, }\"${ADDR[i]}\""
  done
  for ((i = 0; i < n; i++)); do
    config "$channel" 127.0.0.1:0 "$peers" "${ADDR[i]}" 2s >"$work/node$i.yaml"
    kill -HUP "${NODE_PID[i]}"
  done
  for ((i = 0; i < n; i++)); do
    for _ in $(seq 200); do
      healthy=$(curl -fsS -H "authorization: Bearer $CORS_EDGE_ADMIN_TOKEN" "http://${ADMIN[i]}/stats" \
        | python3 -c 'import json,sys; print((json.load(sys.stdin)["ring"] or {}).get("healthy", 0))')
      [[ $healthy == "$n" ]] && break
      sleep 0.1
    done
    [[ $healthy == "$n" ]] || die "node $i never saw $n healthy members"
  done
}
stop_ring() {
  local pid
  for pid in "${NODE_PID[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${NODE_PID[@]}"; do wait "$pid" 2>/dev/null || true; done
}
# loadtest ARGS...: JSON report on stdout.
loadtest() { "$BIN" loadtest --json "$@" 2>/dev/null || true; }
field() { python3 -c "import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

rows=()
for n in $node_counts; do
  log "$n node(s)"
  start_ring "$n" "bench-$n"
  connect=()
  for ((i = 0; i < n; i++)); do connect+=(--connect-to "api.bench:80:${ADDR[i]%:*}:${ADDR[i]##*:}"); done
  before=$(upstream_count)
  report=$(loadtest "http://api.bench/o/1k" --paths "$paths" --origins "$origins" \
    --requests "$requests" --concurrency "$concurrency" "${connect[@]}")
  after=$(upstream_count)
  ratio=$(field '"%.1f%%" % (100 * r["cache"]["hit_ratio"])' <<<"$report")
  per_node=$(field '" / ".join("%.0f%%" % (100 * (x["cache"]["hit_ratio"] or 0)) for x in r["nodes"]) or "-"' <<<"$report")
  errors=$(field 'r["errors"]' <<<"$report")
  rows+=("| $n | $requests | $((paths * origins)) | $((after - before)) | $ratio | $per_node | $errors |")
  log "$n node(s): $((after - before)) origin requests, hit ratio $ratio ($per_node), $errors errors"
  stop_ring
done

log "the hop (3 nodes)"
start_ring 3 bench-hop
url=http://api.bench/o/1k/hop
owner=$(curl -fsS -o /dev/null -D - -H "host: api.bench" -H "origin: https://o1.loadtest.example" \
  -H "x-cors-edge-debug: $CORS_EDGE_ADMIN_TOKEN" "http://${ADDR[0]}/o/1k/hop" \
  | tr -d '\r' | grep -io 'owner=[^;]*' | head -1 | cut -d= -f2 | cut -d' ' -f1)
[[ $owner == self ]] && owner=${ADDR[0]}
other=""
for a in "${ADDR[@]}"; do [[ $a != "$owner" ]] && { other=$a; break; }; done
hop_run() { # ADDR LABEL
  local report
  report=$(loadtest "$url" --origins 1 --requests "$hop_requests" --concurrency 8 \
    --connect-to "api.bench:80:${1%:*}:${1##*:}")
  hop_rows+=("| $2 | $(field 'r["latency_us"]["p50"]' <<<"$report") | $(field 'r["latency_us"]["p99"]' <<<"$report") | $(field '"%.1f%%" % (100 * r["cache"]["hit_ratio"])' <<<"$report") | $(field '"%.0f" % r["requests_per_second"]' <<<"$report") |")
}
hop_rows=()
hop_run "$owner" "hit on the owner"
hop_run "$other" "non-owner, local copy (local_ttl 2s)"
i=0
for ((j = 0; j < 3; j++)); do [[ ${ADDR[j]} == "$other" ]] && i=$j; done
peers=$(printf '"%s", ' "${ADDR[@]}")
config bench-hop 127.0.0.1:0 "${peers%, }" "$other" 0s >"$work/node$i.yaml"
kill -HUP "${NODE_PID[i]}"
sleep 1
# Its local copy from the run before is gone too (a purge of everything reaches every node;
# the owner fetches the URL once more on the first forwarded request).
curl -fsS -o /dev/null -X POST -H "authorization: Bearer $CORS_EDGE_ADMIN_TOKEN" \
  -d '{"all": true}' "http://${ADMIN[i]}/purge"
sleep 0.5
curl -fsS -o /dev/null -H "host: api.bench" -H "origin: https://o1.loadtest.example" "http://$other/o/1k/hop"
hop_run "$other" "non-owner, through the hop (local_ttl 0s)"
stop_ring

{
  echo "## Cluster: origin requests with 1, 3 and 5 nodes ($(date -u +%Y-%m-%d), $(nproc) CPUs, $(git -C "$root" rev-parse --short HEAD))"
  echo
  echo "\`benches/cluster/run.sh\`: loadtest --requests $requests --paths $paths --origins $origins --concurrency $concurrency, connections spread over the nodes (--connect-to per node); per-origin 1 KiB answers."
  echo
  echo "| nodes | requests | distinct keys | origin requests | hit ratio (cluster) | hit ratio per node | errors |"
  echo "| ---: | ---: | ---: | ---: | ---: | --- | ---: |"
  printf '%s\n' "${rows[@]}"
  echo
  echo "The hop: one URL, one origin, loadtest --requests $hop_requests --concurrency 8 against one node (µs)."
  echo
  echo "| served as | p50 | p99 | hit ratio (the node's own X-Cache) | req/s |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  printf '%s\n' "${hop_rows[@]}"
} | tee "$out"
