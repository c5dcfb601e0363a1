#!/usr/bin/env bash
# Fuzzing, bounded: builds every cargo-fuzz target in fuzz/ and runs each for
# FUZZ_SECONDS (default 20) on a scratch copy of its committed seed corpus
# (fuzz/corpus/TARGET), FUZZ_JOBS targets at a time (default: one per core; a libFuzzer
# run uses one). Prints one line per target (runs, runs a second, coverage, corpus);
# exits non-zero naming every target that crashed, timed out or ran out of memory,
# whose input libFuzzer keeps in fuzz/artifacts/TARGET/ (replay it with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…`, then turn it into a
# regression test in the crate that owns the parser).
#
# The committed corpus is only read: what a run finds goes to the scratch directory
# and is dropped, so CI never dirties the tree. Installs cargo-fuzz if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-$(nproc)}

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

# Optimized, with debug assertions and overflow checks, under AddressSanitizer: the
# project's code is safe Rust, but its dependencies' unsafe code runs on the same
# inputs, and ASan makes libFuzzer refuse any single allocation over its memory limit
# (a length prefix believed) even if it is never touched. It costs about a quarter
# more build time than none.
flags=(--release --debug-assertions --sanitizer address)
started=$SECONDS
cargo +nightly fuzz build "${flags[@]}"
echo "fuzz: built in $((SECONDS - started)) s"

mapfile -t targets < <(cargo +nightly fuzz list)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# One target: fuzz it, then print its summary from libFuzzer's final statistics.
run() {
  local t=$1 log="$scratch/$1.log"
  mkdir -p "$scratch/$t"
  # New inputs go to the first corpus directory (the scratch one); the second, the
  # committed seeds, is only read.
  if cargo +nightly fuzz run "${flags[@]}" "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1; then
    echo ok >"$scratch/$t.status"
  else
    echo failed >"$scratch/$t.status"
  fi
}

running=0
for t in "${targets[@]}"; do
  run "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=()
for t in "${targets[@]}"; do
  log="$scratch/$t.log"
  stat() { grep -o "^stat::$1: *[0-9]*" "$log" | grep -o '[0-9]*$' | tail -1; }
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  corp=$(grep -o 'corp: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
  seeds=$(find "fuzz/corpus/$t" -type f | wc -l)
  if [ "$(cat "$scratch/$t.status")" = ok ]; then
    printf 'fuzz %-12s ok: %s runs (%s/s) in %s s, coverage %s edges %s features, corpus %s (%s seeds)\n' \
      "$t" "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" "$seconds" \
      "${cov:-?}" "${ft:-?}" "${corp:-?}" "$seeds"
  else
    failed+=("$t")
    printf 'fuzz %-12s FAILED after %s runs; the end of its log:\n' "$t" "$(stat number_of_executed_units)"
    tail -n 40 "$log" | sed 's/^/    /'
  fi
done

echo "fuzz: done in $((SECONDS - started)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
