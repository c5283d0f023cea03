#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of fuzz/ (see docs/fuzzing.md), one at a time, each for
# a given time, on one core. Stops at the first crash, printing the input that caused it.
#
# Usage: scripts/fuzz.sh [SECONDS_EACH] [TARGET ...]
#   scripts/fuzz.sh                  every target, 60 s each
#   scripts/fuzz.sh 1800             every target, 30 minutes each
#   scripts/fuzz.sh 300 wal_recovery one target, 5 minutes
# Environment (all optional):
#   MAX_LEN_BYTES=4096     largest input libFuzzer generates
#   SANITIZER=address      address, none, ... (cargo fuzz --sanitizer)
#
# Corpora grow in fuzz/corpus/<target> (not committed); the committed seeds in
# fuzz/seeds/<target> and crash inputs of fixed findings in fuzz/regressions/<target> are read too. Crashing inputs land in fuzz/artifacts/<target>, logs in
# fuzz/logs/<target>.log. Replay a crash with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a <target> <artifact>` in fuzz/.
#
# The machine has a stable toolchain only; cargo-fuzz needs nightly compiler flags
# (-Zsanitizer, sanitizer coverage), which RUSTC_BOOTSTRAP=1 unlocks on stable.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_EACH=${1:-60}
shift || true
MAX_LEN_BYTES=${MAX_LEN_BYTES:-4096}
SANITIZER=${SANITIZER:-address}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# -O: optimised; -a: with debug assertions and overflow checks, so an arithmetic overflow on
# hostile input is a crash, not a silent wrap.
build_flags=(-O -a --sanitizer "$SANITIZER")
cargo fuzz build "${build_flags[@]}"

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

mkdir -p logs
printf '%-14s %8s %12s %8s %8s\n' target seconds executions corpus crashes
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target" "artifacts/$target"
  regressions=()
  [ -d "regressions/$target" ] && regressions=("regressions/$target")
  log="logs/$target.log"
  status=0
  started=$SECONDS
  # In-process, one worker: the machine is shared. -timeout: an input taking 10 s is a hang.
  cargo fuzz run "${build_flags[@]}" "$target" "corpus/$target" "seeds/$target" "${regressions[@]}" -- \
    -max_total_time="$SECONDS_EACH" -max_len="$MAX_LEN_BYTES" -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  elapsed=$((SECONDS - started))
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  corpus=$(find "corpus/$target" -type f | wc -l)
  if [ "$status" -ne 0 ]; then
    printf '%-14s %8s %12s %8s %8s\n' "$target" "$elapsed" "${executions:-?}" "$corpus" 1
    echo "fuzz target $target failed (exit $status); log: fuzz/$log" >&2
    grep -E 'ERROR|panicked|overflow|Test unit written to' "$log" | head -n 5 >&2 || true
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    [ -n "$artifact" ] && echo "crashing input: $artifact" >&2
    exit 1
  fi
  printf '%-14s %8s %12s %8s %8s\n' "$target" "$elapsed" "${executions:-?}" "$corpus" 0
done
