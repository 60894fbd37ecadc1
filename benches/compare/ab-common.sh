# What hits-ab.sh and instructions-ab.sh share (sourced, not run): the scenarios' wrk
# arguments, installing missing Debian packages, the run's temp dir with cleanup, and the
# upstream (upstream.mjs) on CPU 0. Expects `here` (this directory) to be set.

# scenario_args SCENARIO: sets wrk_args for origins.lua (origins, paths, prefix[, mode]).
scenario_args() {
  case $1 in
    1k-10o) wrk_args=(10 10 /o/1k) ;;
    1k-100o) wrk_args=(100 10 /o/1k) ;;
    preflight) wrk_args=(10 10 /o/1k preflight) ;;
    miss) wrk_args=(10 10 /o/1k miss) ;;
    edge-preflight) wrk_args=(10 10 /e/1k preflight) ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
  esac
}

# install_missing COMMAND:PACKAGE ...: installs the packages whose command is missing.
install_missing() {
  local sudo="" missing=() pair
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    echo "installing ${missing[*]}" >&2
    $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# start_work: a temp dir ($work) removed on exit (KEEP_WORK=1 keeps it), with every pid in
# $pids stopped; then the upstream on CPU 0, its port in $up_port.
start_work() {
  work=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; if [[ -n ${KEEP_WORK:-} ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi' EXIT
  taskset -c 0 node "$here/upstream.mjs" 0 >"$work/upstream.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q '^listening' "$work/upstream.log" && break; sleep 0.1; done
  up_port=$(awk '/^listening/ {print $2}' "$work/upstream.log")
  [[ -n $up_port ]] || { cat "$work/upstream.log"; exit 1; }
}
