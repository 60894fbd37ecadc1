#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for a bounded time each, installing
# cargo-fuzz on the nightly toolchain when it is missing. One build for all targets, in one
# target dir (fuzz/target, or $FUZZ_TARGET_DIR), reused between runs.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default 30 s, every target
#
# The seed is fixed (FUZZ_SEED, default 1) and FUZZ_RUNS (when set) caps the inputs per
# target: a run then explores the same inputs in the same order on any machine, so a CI run
# (scripts/test-all.sh: 100,000 inputs, at most 30 s per target) cannot find a crash that the
# same command did not find here (FUZZ_SEED=0 gives libFuzzer's random seed, for exploring).
#
# Exit status: 0 when no target found a crash; 1 otherwise (the input is in
# fuzz/artifacts/<target>/; replay with `cargo +nightly fuzz run <target> <file>`).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-30}
shift || true

if ! command -v rustup >/dev/null || ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh: needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz: cargo +nightly install cargo-fuzz --locked"
  cargo +nightly install cargo-fuzz --locked
fi
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "fuzz.sh: building ${#targets[@]} targets"
cargo +nightly fuzz build

failed=()
summary=()
for target in "${targets[@]}"; do
  case $target in
    origin) dict=(-dict=dictionaries/origin.dict) ;;
    request_headers | vary | cache_control) dict=(-dict=dictionaries/headers.dict) ;;
    *) dict=() ;;
  esac
  mkdir -p "corpus/$target"
  log=$(mktemp)
  echo "fuzz.sh: $target for ${seconds}s"
  if cargo +nightly fuzz run "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -seed="${FUZZ_SEED:-1}" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} \
      -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
    summary+=("$target: ${runs:-?} runs (at most ${seconds}s), no crash")
  else
    failed+=("$target")
    summary+=("$target: FAILED")
    tail -40 "$log"
  fi
  rm -f "$log"
done

printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashes in ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
