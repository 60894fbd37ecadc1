#!/usr/bin/env python3
"""Static checks for deploy/: run by deploy/validate.sh.

    python3 deploy/checks.py              all checks below; exit 1 on any failure
    python3 deploy/checks.py promql FILE  write every dashboard query as a Prometheus
                                          recording rule to FILE, for `promtool check rules`

Checks: every YAML and JSON file parses; the Kubernetes manifests agree with each
other and with the gateway config they mount; the container and systemd pieces agree
with their configs; the dashboard and the alert rules use only the metric names,
labels and label values the gateway really exposes (a /metrics scrape of the built
binary, started on loopback port 0 with --ready-file).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------
# The metrics contract: taken from a real /metrics scrape of the built gateway
# (scrape_contract below), never from a hand-copied list. The scrape starts the
# binary on loopback port 0 with --ready-file, drives traffic that makes every
# enumerated label value appear (cache statuses, preflight results, CORS
# decisions, unsafe-upstream reasons, purge selectors), then reads /metrics.
# Labels whose values are free (route) are not in VALUES.
COUNTERS: dict[str, set[str]] = {}
GAUGES: dict[str, set[str]] = {}
HISTOGRAMS: dict[str, set[str]] = {}
VALUES: dict[str, set[str]] = {}
FREE_LABELS = {"route", "le"}
# Metrics the dashboard need not show: the cluster's (only with `cluster:` set).
OPTIONAL_ON_DASHBOARD_PREFIX = "cors_edge_cluster_"
# Labels whose values are matched case-insensitively, with (?i): `cache` carries
# the X-Cache value (HIT, MISS, ...).
CASELESS = {"cache"}
# Labels Prometheus or Kubernetes service discovery attach to every series.
TARGET_LABELS = {"instance", "job", "namespace", "pod"}

SERIES: dict[str, set[str]] = {}
BASE_METRICS: set[str] = set()


def find_binary() -> Path | None:
    import os
    env = os.environ.get("CORS_EDGE_BIN")
    if env:
        return Path(env)
    for b in (DEPLOY.parent / "target" / "release" / "cors-edge", DEPLOY.parent / "target" / "debug" / "cors-edge"):
        if b.exists():
            return b
    return None


def scrape_metrics(binary: Path) -> str:
    """Runs the gateway on loopback with traffic that exercises every label value; returns /metrics."""
    import http.client
    import os
    import signal
    import socket
    import subprocess
    import tempfile
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Api(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_OPTIONS(self):
            self.send_response(204)
            origin = self.headers.get("origin")
            if origin:
                self.send_header("access-control-allow-origin", origin)
                self.send_header("access-control-allow-methods", "GET, PUT")
            self.send_header("access-control-max-age", "60")
            self.end_headers()

        def do_GET(self):
            origin = self.headers.get("origin")
            path = self.path
            self.send_response(200)
            self.send_header("cache-control", "max-age=60")
            self.send_header("surrogate-key", "t1")
            if "/up/echo" in path and origin:
                self.send_header("access-control-allow-origin", origin)
                self.send_header("vary", "Origin")
            elif "/up/star" in path:
                self.send_header("access-control-allow-origin", "*")
            elif "/up/novary" in path and origin:
                self.send_header("access-control-allow-origin", origin)
            elif "/up/credstar" in path:
                self.send_header("access-control-allow-origin", "*")
                self.send_header("access-control-allow-credentials", "true")
            elif "/up/other" in path:
                self.send_header("access-control-allow-origin", "https://other.example")
                self.send_header("vary", "Origin")
            elif "/up/multi" in path:
                self.send_header("access-control-allow-origin", "https://a.example")
                self.send_header("access-control-allow-origin", "https://b.example")
                self.send_header("vary", "Origin")
            elif "/up/noorigin" in path:
                self.send_header("access-control-allow-origin", "https://a.example")
                self.send_header("vary", "Origin")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    # A Redis address that refuses connections, held bound for the run (cluster_* metrics).
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))
    work = Path(tempfile.mkdtemp(prefix="cors-edge-checks-"))
    cfg = work / "gateway.yaml"
    ready = work / "ready.json"
    cfg.write_text(f"""listen: ["127.0.0.1:0"]
admin: {{ listen: "127.0.0.1:0" }}
upstreams:
  api:
    servers: ["127.0.0.1:{api.server_address[1]}"]
routes:
  - name: up
    match: {{ path_prefix: "/up/" }}
    upstream: api
  - name: edge
    match: {{ path_prefix: "/edge/" }}
    upstream: api
    cors:
      mode: edge
      allow_origins: ["https://a.example"]
      allow_methods: [GET, PUT]
      allow_headers: [x-a]
  - name: any
    match: {{ path_prefix: "/any/" }}
    upstream: api
    cors: {{ mode: edge, allow_any_origin: true }}
cluster:
  redis_url: "redis://127.0.0.1:{refusing.getsockname()[1]}"
  channel: checks
""")
    env = {k: v for k, v in os.environ.items() if k != "CORS_EDGE_ADMIN_TOKEN"}
    child = subprocess.Popen([str(binary), "run", "-c", str(cfg), "--ready-file", str(ready)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        info = None
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise RuntimeError(f"{binary} exited with {child.returncode}: {child.stderr.read().decode()}")
            if ready.exists():
                info = json.loads(ready.read_text())
                if info["pid"] != child.pid:
                    raise RuntimeError(f"ready file names pid {info['pid']}, not {child.pid}")
                break
            time.sleep(0.05)
        if info is None:
            raise RuntimeError(f"{binary} wrote no ready file within 30s")
        gw = port_of(info["listen"][0])
        admin = port_of(info["admin"])

        def req(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: str | None = None):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(method, path, body=body, headers=headers or {})
            answer = conn.getresponse()
            data = answer.read()
            conn.close()
            return answer.status, data

        a = {"origin": "https://a.example"}
        for path, headers in [
            ("/up/echo", a), ("/up/echo", a), ("/up/echo", {}), ("/up/star", a), ("/up/novary", a),
            ("/up/credstar", a), ("/up/other", a), ("/up/multi", a), ("/up/noorigin", {}),
            ("/edge/x", a), ("/edge/x", {"origin": "https://evil.example"}), ("/edge/x", {"origin": "bad origin"}),
            ("/edge/x", {}), ("/any/x", {"origin": "https://b.example"}),
        ]:
            req(gw, "GET", path, headers)
        req(gw, "GET", "/up/echo", {**a, "cache-control": "no-cache"})
        req(gw, "POST", "/up/post", a, "x")
        pf = {**a, "access-control-request-method": "PUT"}
        req(gw, "OPTIONS", "/up/p", pf)
        req(gw, "OPTIONS", "/up/p", pf)
        req(gw, "OPTIONS", "/edge/p", pf)
        req(gw, "OPTIONS", "/edge/p", {**a, "access-control-request-method": "DELETE"})
        req(gw, "OPTIONS", "/edge/p", {**pf, "access-control-request-headers": "x-b"})
        for selector in ('{"origin": "https://a.example"}', '{"host": "h"}', '{"prefix": "/up/"}',
                         '{"url": "/up/echo"}', '{"tag": "t1"}', '{"all": true}',
                         '{"origin": "https://a.example", "prefix": "/up/"}'):
            req(admin, "POST", "/purge", {"content-type": "application/json"}, selector)
        time.sleep(0.5)  # counted when each request is logged, after its answer
        status, text = req(admin, "GET", "/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return text.decode()
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        api.shutdown()
        refusing.close()
        import shutil
        shutil.rmtree(work, ignore_errors=True)


SAMPLE = re.compile(r'^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+\S+$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def load_contract(text: str) -> None:
    """Fills COUNTERS, GAUGES, HISTOGRAMS, VALUES, SERIES and BASE_METRICS from /metrics text."""
    types = dict(re.findall(r"^# TYPE (cors_edge_\w+) (\w+)$", text, re.M))
    labels: dict[str, set[str]] = {name: set() for name in types}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m or not m.group(1).startswith("cors_edge_"):
            continue
        name = m.group(1)
        family = name if name in types else re.sub(r"_(bucket|sum|count)$", "", name)
        for label, value in LABEL.findall(m.group(2) or ""):
            if label == "le":
                continue
            labels.setdefault(family, set()).add(label)
            if label not in FREE_LABELS:
                VALUES.setdefault(label, set()).add(value.lower() if label in CASELESS else value)
    for name, kind in types.items():
        {"counter": COUNTERS, "gauge": GAUGES, "histogram": HISTOGRAMS}.get(kind, GAUGES)[name] = labels[name]
    SERIES.clear()
    SERIES.update(COUNTERS)
    SERIES.update(GAUGES)
    for name, family_labels in HISTOGRAMS.items():
        SERIES[name + "_bucket"] = family_labels | {"le"}
        SERIES[name + "_sum"] = set(family_labels)
        SERIES[name + "_count"] = set(family_labels)
    BASE_METRICS.clear()
    BASE_METRICS.update(n for n in set(COUNTERS) | set(GAUGES) | set(HISTOGRAMS)
                        if not n.startswith(OPTIONAL_ON_DASHBOARD_PREFIX))


# The gateway config keys of SPEC.md (plus `server`, for the drain timings).
CONFIG_KEYS = {"listen", "admin", "server", "cache", "upstreams", "routes", "tls", "cluster"}
DURATION = re.compile(r"^\d+(ms|s|m|h)$")
SIZE = re.compile(r"^\d+(B|KiB|MiB|GiB)$")

failures: list[str] = []
passes = 0


def fail(msg: str) -> None:
    failures.append(msg)
    print(f"  FAIL {msg}")


def ok(msg: str) -> None:
    global passes
    passes += 1
    print(f"  ok   {msg}")


def check(cond: bool, msg: str) -> bool:
    (ok if cond else fail)(msg)
    return cond


def rel(p: Path) -> str:
    return str(p.relative_to(DEPLOY.parent))


def seconds(d: str) -> float:
    m = re.match(r"^(\d+)(ms|s|m|h)$", str(d))
    if not m:
        raise ValueError(f"not a duration: {d!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def port_of(addr: str) -> int:
    return int(str(addr).rsplit(":", 1)[1])


# ---------------------------------------------------------------------------
def load_all() -> dict[Path, list]:
    print("== YAML and JSON parse")
    docs: dict[Path, list] = {}
    for p in sorted(DEPLOY.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix in (".yaml", ".yml"):
            try:
                docs[p] = [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
                ok(f"{rel(p)} parses ({len(docs[p])} document(s))")
            except yaml.YAMLError as e:
                fail(f"{rel(p)} does not parse: {e}")
        elif p.suffix == ".json":
            try:
                docs[p] = [json.loads(p.read_text())]
                ok(f"{rel(p)} parses")
            except json.JSONDecodeError as e:
                fail(f"{rel(p)} does not parse: {e}")
    return docs


def check_gateway_config(cfg: dict, where: str) -> None:
    unknown = set(cfg) - CONFIG_KEYS
    check(not unknown, f"{where}: only known top-level keys (unknown: {sorted(unknown) or 'none'})")
    ups = cfg.get("upstreams") or {}
    routes = cfg.get("routes") or []
    check(bool(routes) and all(r.get("upstream") in ups for r in routes),
          f"{where}: every route names a defined upstream")
    names = [r.get("name") for r in routes]
    check(len(names) == len(set(names)), f"{where}: route names are unique")
    durations, sizes = [], []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
        elif re.search(r"(timeout|period|max_age|max_ttl|stale_while_revalidate|stale_if_error)$", path):
            durations.append((path, node))
        elif path.endswith("max_bytes"):
            sizes.append((path, node))

    walk(cfg, "")
    bad = [f"{p}={v!r}" for p, v in durations if not DURATION.match(str(v))]
    bad += [f"{p}={v!r}" for p, v in sizes if not SIZE.match(str(v))]
    check(not bad, f"{where}: durations and sizes use the spec's units ({', '.join(bad) or 'all fine'})")
    admin = cfg.get("admin") or {}
    host = str(admin.get("listen", "127.0.0.1:9901")).rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "[::1]", "localhost"):
        check(bool(admin.get("token_env")), f"{where}: admin off loopback has token_env")


# ---------------------------------------------------------------------------
def check_kubernetes(docs: dict[Path, list]) -> None:
    print("== Kubernetes manifests")
    kdir = DEPLOY / "kubernetes"
    kust = docs.get(kdir / "kustomization.yaml", [{}])[0]
    resources = kust.get("resources", [])
    for r in resources:
        check((kdir / r).is_file(), f"kustomization resource {r} exists")
    check("secret.example.yaml" not in resources,
          "secret.example.yaml is not applied by kustomize (no placeholder token)")
    listed = {p.name for p in kdir.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    check(listed <= set(resources), f"every manifest is listed in kustomization.yaml ({sorted(listed - set(resources)) or 'all'})")

    objs: dict[tuple[str, str], dict] = {}
    for p in sorted(kdir.glob("*.yaml")):
        if p.name == "kustomization.yaml":
            continue
        for d in docs.get(p, []):
            kind, name = d.get("kind"), (d.get("metadata") or {}).get("name")
            if not (d.get("apiVersion") and kind and name):
                fail(f"{rel(p)}: a document lacks apiVersion, kind or metadata.name")
                continue
            if "namespace" in d["metadata"]:
                fail(f"{rel(p)}: {kind}/{name} pins a namespace (manifests must be namespace-agnostic)")
            objs[(kind, name)] = d
    ok(f"{len(objs)} objects, none pins a namespace")

    dep = objs.get(("Deployment", "cors-edge"))
    cm = objs.get(("ConfigMap", "cors-edge-config"))
    if not check(dep is not None and cm is not None, "Deployment cors-edge and ConfigMap cors-edge-config exist"):
        return
    pod = dep["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    sel = dep["spec"]["selector"]["matchLabels"]
    check(sel.items() <= pod_labels.items(), "Deployment selector matches its pod labels")
    check(dep["spec"].get("replicas") == 3, "Deployment has 3 replicas")

    def selects_pods(match: dict) -> bool:
        return bool(match) and match.items() <= pod_labels.items()

    for kind, name in objs:
        o = objs[(kind, name)]
        if kind == "Service" and name.startswith("cors-edge") and "redis" not in name:
            check(selects_pods(o["spec"]["selector"]), f"Service {name} selects the gateway pods")
        if kind == "PodDisruptionBudget":
            check(selects_pods(o["spec"]["selector"]["matchLabels"]), f"PDB {name} selects the gateway pods")
            mu = o["spec"].get("maxUnavailable")
            check(mu is None or (isinstance(mu, int) and mu < dep["spec"]["replicas"]),
                  f"PDB {name} leaves pods available")
        if kind == "HorizontalPodAutoscaler":
            t = o["spec"]["scaleTargetRef"]
            check(t["kind"] == "Deployment" and t["name"] == "cors-edge", f"HPA {name} targets Deployment cors-edge")
            check(o["spec"]["minReplicas"] <= dep["spec"]["replicas"] <= o["spec"]["maxReplicas"],
                  f"HPA {name} range contains the Deployment's replicas")

    c = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    cfg = yaml.safe_load(cm["data"]["gateway.yaml"])
    check_gateway_config(cfg, "configmap gateway.yaml")
    check(ports.get("http") == port_of(cfg["listen"][0]), "container port http matches the config's listen port")
    check(ports.get("admin") == port_of(cfg["admin"]["listen"]), "container port admin matches admin.listen")
    check(str(cfg["admin"]["listen"]).startswith("0.0.0.0:"),
          "admin listens on 0.0.0.0 in Kubernetes (probes and scraping reach it)")

    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        pr = (c.get(probe) or {}).get("httpGet") or {}
        check(pr.get("path") == path and pr.get("port") in ("admin", ports.get("admin")),
              f"{probe} is GET {path} on the admin port")

    ann = pod["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(ports.get("admin"))
          and ann.get("prometheus.io/path") == "/metrics", "prometheus.io annotations point at admin /metrics")

    env = {e["name"]: e for e in c.get("env", [])}
    tok = env.get(cfg["admin"].get("token_env", ""), {})
    ref = ((tok.get("valueFrom") or {}).get("secretKeyRef") or {})
    secret = next((d for d in docs.get(kdir / "secret.example.yaml", []) if d.get("kind") == "Secret"), {})
    check(bool(ref) and ref.get("name") == secret.get("metadata", {}).get("name")
          and ref.get("key") in (secret.get("stringData") or {}),
          f"{cfg['admin'].get('token_env')} comes from the Secret in secret.example.yaml")

    psc, csc = pod["spec"].get("securityContext", {}), c.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and csc.get("runAsNonRoot") is True, "runAsNonRoot")
    check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
    check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault")
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    check("/tmp" in mounts, "a writable /tmp is mounted (read-only root filesystem)")
    check(any(m["mountPath"] == "/etc/cors-edge" and "subPath" not in m for m in c["volumeMounts"]),
          "config mounted as a directory (ConfigMap updates reach the pod)")
    args = c.get("args", [])
    check(args[:1] == ["run"] and "/etc/cors-edge/gateway.yaml" in args, "container runs `run -c /etc/cors-edge/gateway.yaml`")
    res = c.get("resources", {})
    check(bool(res.get("requests", {}).get("cpu")) and bool(res.get("limits", {}).get("memory")),
          "resources: CPU request and memory limit set")

    sleep = 0
    pre = (c.get("lifecycle") or {}).get("preStop") or {}
    cmd = (pre.get("exec") or {}).get("command") or []
    if cmd[:1] == ["sleep"]:
        sleep = float(cmd[1])
    elif "sleep" in pre:
        sleep = float(pre["sleep"]["seconds"])
    check(sleep > 0, "preStop sleeps for endpoint propagation")
    srv = cfg.get("server") or {}
    drain = sleep + seconds(srv.get("grace_period", "0s")) + seconds(srv.get("shutdown_timeout", "0s"))
    tgps = pod["spec"].get("terminationGracePeriodSeconds", 30)
    check(tgps > drain, f"terminationGracePeriodSeconds {tgps} > preStop + grace_period + shutdown_timeout ({drain:g}s)")

    cl = cfg.get("cluster") or {}
    m = re.match(r"^redis://([^:/]+):(\d+)", str(cl.get("redis_url", "")))
    rsvc = objs.get(("Service", m.group(1))) if m else None
    check(bool(rsvc) and any(p["port"] == int(m.group(2)) for p in rsvc["spec"]["ports"]),
          f"cluster.redis_url {cl.get('redis_url')} names the Redis Service and its port")
    check(bool(cl.get("channel")), "cluster.channel is set")
    rdep = objs.get(("Deployment", m.group(1) if m else ""))
    if check(rdep is not None, "a Redis Deployment backs that Service"):
        rl = rdep["spec"]["template"]["metadata"]["labels"]
        check(rsvc["spec"]["selector"].items() <= rl.items(), "Redis Service selects the Redis pods")
        rsc = rdep["spec"]["template"]["spec"]["containers"][0].get("securityContext", {})
        check(rsc.get("readOnlyRootFilesystem") is True and rsc.get("capabilities", {}).get("drop") == ["ALL"],
              "Redis container is read-only and drops ALL capabilities")
        # Durable purges (issue 14): append-only file on a claimed volume.
        rargs = [str(a) for a in rdep["spec"]["template"]["spec"]["containers"][0].get("args", [])]
        rvols = {v["name"]: v for v in rdep["spec"]["template"]["spec"].get("volumes", [])}
        check("--appendonly" in rargs and rargs[rargs.index("--appendonly") + 1] == "yes"
              and "persistentVolumeClaim" in rvols.get("data", {})
              and ("PersistentVolumeClaim", rvols["data"]["persistentVolumeClaim"]["claimName"]) in objs,
              "Redis keeps purges: appendonly yes, /data on a PersistentVolumeClaim")
    for (kind, name), o in objs.items():
        if kind == "NetworkPolicy":
            peers = [f.get("podSelector", {}).get("matchLabels", {}) for r in o["spec"].get("ingress", []) for f in r.get("from", [])]
            check(any(selects_pods(p) for p in peers), f"NetworkPolicy {name} admits the gateway pods")


# ---------------------------------------------------------------------------
def check_container_and_systemd(docs: dict[Path, list]) -> None:
    print("== Dockerfile and systemd unit")
    df = (DEPLOY / "Dockerfile").read_text()
    cfg = docs.get(DEPLOY / "docker" / "gateway.yaml", [{}])[0]
    check_gateway_config(cfg, "docker/gateway.yaml")
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", df, re.M | re.I)
    check(len(stages) >= 2, f"Dockerfile is multi-stage ({', '.join(stages)})")
    user = re.findall(r"^USER\s+(\S+)", df, re.M)
    check(bool(user) and not user[-1].split(":")[0] in ("root", "0"), "runtime stage runs as a non-root USER")
    exposed = {int(p) for line in re.findall(r"^EXPOSE\s+(.+)$", df, re.M) for p in line.split()}
    want = {port_of(cfg["listen"][0]), port_of(cfg["admin"]["listen"])}
    check(want <= exposed, f"EXPOSE covers the config's ports {sorted(want)}")
    hc = re.search(r"/dev/tcp/127\.0\.0\.1/(\d+)", df)
    check(bool(hc) and int(hc.group(1)) == port_of(cfg["admin"]["listen"]), "HEALTHCHECK probes the admin port")
    for src in re.findall(r"^COPY\s+(?!--from)(\S+)\s", df, re.M):
        if src != ".":
            check((DEPLOY.parent / src).exists(), f"COPY source {src} exists")
    ign = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    check("target" in ign and ".git" in ign, "Dockerfile.dockerignore keeps target/ and .git out of the context")

    unit = (DEPLOY / "systemd" / "cors-edge.service").read_text()
    kv: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            k, v = line.split("=", 1)
            kv.setdefault(k.strip(), []).append(v.strip())
    for key, val in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                     ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("KillSignal", "SIGTERM"),
                     ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
                     ("SystemCallFilter", "@system-service")):
        check(val in kv.get(key, []), f"unit sets {key}={val}")
    check(kv.get("DynamicUser") == ["yes"] or bool(kv.get("User")), "unit runs as DynamicUser or a dedicated User")
    check("/bin/kill -HUP $MAINPID" in kv.get("ExecReload", []), "ExecReload sends SIGHUP")
    check(kv.get("CapabilityBoundingSet") == [""] and kv.get("AmbientCapabilities") == [""],
          "unit holds no capabilities (ports >= 1024)")
    check(bool(kv.get("MemoryMax")) and bool(kv.get("LimitNOFILE")), "MemoryMax and LimitNOFILE set")
    srv = cfg.get("server") or {}
    drain = seconds(srv.get("grace_period", "0s")) + seconds(srv.get("shutdown_timeout", "0s"))
    tss = seconds(kv.get("TimeoutStopSec", ["90s"])[0])
    check(tss > drain, f"TimeoutStopSec {tss:g}s > grace_period + shutdown_timeout ({drain:g}s)")


# ---------------------------------------------------------------------------
SELECTOR = re.compile(r"\b(cors_edge_[a-z_]+)\b(\s*\{([^}]*)\})?")
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def check_promql(expr: str, where: str) -> set[str]:
    """Metric names, label names and literal label values in one expression."""
    used = set()
    problems = []
    for m in SELECTOR.finditer(expr):
        name = m.group(1)
        if name not in SERIES:
            problems.append(f"unknown metric {name}")
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        used.add(base if base in HISTOGRAMS else name)
        for label, op, value in MATCHER.findall(m.group(3) or ""):
            if label not in SERIES[name] | TARGET_LABELS:
                problems.append(f"{name} has no label {label}")
            elif label in VALUES and "$" not in value:
                caseless = value.startswith("(?i)")
                if label in CASELESS and not caseless:
                    problems.append(f"{name}{{{label}}} must be matched with (?i)")
                value = value.removeprefix("(?i)")
                alts = value.split("|") if op in ("=~", "!~") else [value]
                bad = [a for a in alts if (a.lower() if caseless else a) not in VALUES[label]]
                if bad:
                    problems.append(f"{name}{{{label}}} never takes {bad}")
    # by/without clauses may only name labels some metric of the expression has
    names = {m.group(1) for m in SELECTOR.finditer(expr) if m.group(1) in SERIES}
    known = set().union(*(SERIES[n] for n in names)) | TARGET_LABELS | {"le"}
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        for label in filter(None, (s.strip() for s in clause.split(","))):
            if label not in known:
                problems.append(f"grouping by unknown label {label}")
    if problems:
        fail(f"{where}: " + "; ".join(sorted(set(problems))))
    return used


def dashboard_exprs(dash: dict) -> list[tuple[str, str]]:
    out = []
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            out.append((p.get("title", "?"), t.get("expr", "")))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append((f"annotation {a.get('name')}", a["expr"]))
    return out


def check_dashboard(docs: dict[Path, list]) -> None:
    print("== Grafana dashboard")
    path = DEPLOY / "grafana" / "cors-edge-dashboard.json"
    dash = docs.get(path, [None])[0]
    if not check(isinstance(dash, dict), f"{rel(path)} loads as a JSON object"):
        return
    check(38 <= dash.get("schemaVersion", 0) <= 41, f"schemaVersion {dash.get('schemaVersion')} (Grafana 10/11)")
    check(any(i.get("name") == "DS_PROMETHEUS" and i.get("pluginId") == "prometheus" for i in dash.get("__inputs", [])),
          "declares the DS_PROMETHEUS datasource input")
    check(bool(dash.get("uid")) and bool(dash.get("title")), "has a uid and a title")
    panels = dash.get("panels", [])
    ids = [p.get("id") for p in panels]
    check(len(ids) == len(set(ids)), "panel ids are unique")
    cells = set()
    overlap = []
    for p in panels:
        g = p.get("gridPos", {})
        if g.get("x", 0) + g.get("w", 0) > 24:
            overlap.append(f"{p.get('title')} wider than the grid")
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    overlap.append(p.get("title"))
                cells.add((x, y))
    check(not overlap, f"panels do not overlap ({sorted(set(map(str, overlap))) or 'none'})")
    graphs = [p for p in panels if p.get("type") != "row"]
    check(all(p.get("datasource", {}).get("uid") == "${datasource}" and p.get("targets") for p in graphs),
          "every panel queries the ${datasource} variable")
    var = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    check(var.get("datasource", {}).get("type") == "datasource"
          and "${DS_PROMETHEUS}" in json.dumps(var.get("datasource", {}).get("current")),
          "the datasource variable defaults to ${DS_PROMETHEUS}")
    for name in ("route", "instance"):
        check(name in var, f"template variable ${name} exists")

    used = set()
    exprs = dashboard_exprs(dash)
    before = len(failures)
    for where, expr in exprs:
        used |= check_promql(expr, f"dashboard {where!r}")
    for v in var.values():
        q = v.get("definition") or ""
        if q:
            used |= check_promql(q, f"variable {v['name']}")
    check(len(failures) == before, f"{len(exprs)} dashboard queries use only SPEC metric names, labels and values")
    missing = BASE_METRICS - used
    check(not missing, f"every SPEC metric is on the dashboard (missing: {sorted(missing) or 'none'})")
    titles = " | ".join(p.get("title", "").lower() for p in graphs)
    for topic in ("cache status", "hit ratio", "preflight rate", "preflight latency", "preflight cache hit ratio",
                  "cors decisions", "denied origins", "wildcard", "unsafe upstream", "purges", "purged entries",
                  "upstream latency", "cache entries", "cache bytes", "evictions"):
        check(topic in titles, f"a panel covers {topic!r}")


def check_alerts(docs: dict[Path, list]) -> None:
    print("== Prometheus alert rules")
    path = DEPLOY / "prometheus" / "alerts.yaml"
    rules = docs.get(path, [{}])[0]
    alerts = [r for g in rules.get("groups", []) for r in g.get("rules", []) if "alert" in r]
    before = len(failures)
    for r in alerts:
        check_promql(r["expr"], f"alert {r['alert']}")
        if not (r.get("labels", {}).get("severity") and r.get("annotations", {}).get("summary")):
            fail(f"alert {r['alert']} lacks a severity label or a summary")
    check(len(failures) == before, f"{len(alerts)} alerts use only SPEC metric names, labels and values, each with severity and summary")
    names = {r["alert"] for r in alerts}
    want = {"unsafe upstream": "unsafe_upstream_responses_total", "hit ratio": 'cache=~"(?i)hit',
            "preflight p99": 'kind="preflight"', "denied origins": 'decision="denied_origin"',
            "upstream latency": "upstream_duration_seconds_bucket", "gateway down": "up{"}
    for topic, needle in want.items():
        check(any(needle in r["expr"] for r in alerts), f"an alert covers {topic}")
    tests = (DEPLOY / "prometheus" / "alerts.test.yaml").read_text()
    untested = sorted(n for n in names if f"alertname: {n}\n" not in tests + "\n")
    check(not untested, f"every alert has a promtool unit test (untested: {untested or 'none'})")


def write_promql_rules(out: Path) -> None:
    dash = json.loads((DEPLOY / "grafana" / "cors-edge-dashboard.json").read_text())
    subst = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m",
             "$route": ".*", "$instance": ".*"}
    rules = []
    for i, (where, expr) in enumerate(dashboard_exprs(dash)):
        for k, v in subst.items():
            expr = expr.replace(k, v)
        rules.append({"record": f"dashboard:query_{i}", "expr": expr, "labels": {"panel": where}})
    out.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, sort_keys=False))
    print(f"wrote {len(rules)} dashboard queries to {out}")


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "promql":
        write_promql_rules(Path(sys.argv[2]))
        return 0
    if len(sys.argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    binary = find_binary()
    if binary is None or not binary.exists():
        fail("no cors-edge binary to scrape /metrics from (cargo build --release -p cors-edge, or CORS_EDGE_BIN)")
        print(f"checks: {passes} ok, {len(failures)} failed")
        return 1
    try:
        load_contract(scrape_metrics(binary))
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        fail(f"could not scrape /metrics from {binary}: {e}")
        print(f"checks: {passes} ok, {len(failures)} failed")
        return 1
    ok(f"metrics contract scraped from {binary}: {len(SERIES)} series, "
       + ", ".join(f"{k}={sorted(v)}" for k, v in sorted(VALUES.items())))
    docs = load_all()
    for step in (check_kubernetes, check_container_and_systemd, check_dashboard, check_alerts):
        try:
            step(docs)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            fail(f"{step.__name__} could not read an expected field: {type(e).__name__}: {e}")
    print(f"checks: {passes} ok, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
