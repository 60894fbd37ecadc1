#!/usr/bin/env bash
# Try the sharded cache on one machine: Redis, the demo API and three cors-edge nodes that
# share one cache (cluster.peers), in the foreground until Ctrl-C.
#
#   deploy/local-cluster.sh            (builds target/release/cors-edge when missing)
#
# Nodes: proxies on 127.0.0.1:8181, :8182, :8183 (admin :9181, :9182, :9183); the demo API
# on 127.0.0.1:8081 (its own demo gateway on :8180 is not part of the cluster); Redis on a
# unix socket. Every node's answers carry X-Cors-Edge-Debug with `owner=` (route debug: true).
# Needs redis-server (apt-get install -y redis-server).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN=${CORS_EDGE_BIN:-$root/target/release/cors-edge}
[[ -x $BIN ]] || (cd "$root" && cargo build --release -p cors-edge)
command -v redis-server >/dev/null || { echo "redis-server is required" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cors-edge-local-cluster.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis-server --port 0 --unixsocket "$work/redis.sock" --unixsocketperm 700 --save "" \
  --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
"$BIN" demo --port 8180 --upstream-port 8081 --admin-port 9180 >"$work/demo.log" 2>&1 &
pids+=($!)

export CORS_EDGE_PEER_TOKEN=${CORS_EDGE_PEER_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}
for i in 1 2 3; do
  cat >"$work/node$i.yaml" <<EOF
listen: ["127.0.0.1:818$i"]
admin: { listen: "127.0.0.1:918$i" }
server: { grace_period: 1s, shutdown_timeout: 1s }
upstreams:
  demo: { servers: ["127.0.0.1:8081"] }
routes:
  - name: demo
    upstream: demo
    debug: true
cluster:
  redis_url: "redis+unix://$work/redis.sock"
  peers: ["127.0.0.1:8181", "127.0.0.1:8182", "127.0.0.1:8183"]
  self: "127.0.0.1:818$i"
EOF
  RUST_LOG=info "$BIN" run -c "$work/node$i.yaml" >"$work/node$i.log" 2>&1 &
  pids+=($!)
done
sleep 2
cat <<EOF
Three nodes share one cache (logs in $work). Send one Host to every node (as a Service does):
  curl -si -H 'Host: api.local' -H 'Origin: https://app.example.com' http://127.0.0.1:8181/per-origin | grep -i -e x-cache -e owner
  curl -si -H 'Host: api.local' -H 'Origin: https://app.example.com' http://127.0.0.1:8182/per-origin | grep -i -e x-cache -e owner
  curl -s http://127.0.0.1:9181/stats          # the ring
  curl -s http://127.0.0.1:9181/metrics | grep cors_edge_cluster_peer
  kill -9 <a node's pid> to see failover: $(printf '%s ' "${pids[@]:2}")
Ctrl-C stops everything.
EOF
wait
