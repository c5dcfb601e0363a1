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

# fuzz/Cargo.lock is the root one plus libFuzzer's crates: every crate both use must
# be at the root's version, so the targets test what the binaries run.
lock_pairs() { awk '/^name = /{n=$3} /^version = /{print n " " $3}' "$1"; }
stale=$(awk 'NR == FNR {have[$0] = 1; name[$1] = 1; next} ($1 in name) && !($0 in have)' \
  <(lock_pairs Cargo.lock) <(lock_pairs fuzz/Cargo.lock) | tr -d '"' | paste -sd, -)
if [ -n "$stale" ]; then
  echo "fuzz/Cargo.lock has other versions than Cargo.lock ($stale): refresh it with" >&2
  echo "  cp Cargo.lock fuzz/Cargo.lock && cargo +nightly fetch --manifest-path fuzz/Cargo.toml" >&2
  exit 1
fi
lock_before=$(cksum <fuzz/Cargo.lock)

started=$SECONDS
cargo +nightly fuzz build "${flags[@]}"
echo "fuzz: built in $((SECONDS - started)) s"
if [ "$(cksum <fuzz/Cargo.lock)" != "$lock_before" ]; then
  echo "fuzz/Cargo.lock was out of date (a dependency changed) and cargo rewrote it: commit it" >&2
  exit 1
fi
# FUZZ_BUILD_ONLY=1: stop here (CI builds the targets in the background, early).
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

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
    printf 'fuzz %-12s FAILED after %s runs:\n' "$t" "$(stat number_of_executed_units)"
    # What failed (a panic's message, or libFuzzer's or the sanitizer's verdict), and
    # the input that did it.
    { grep -m1 -A6 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)" "$log" ||
      tail -n 20 "$log"; } | sed 's/^/    /'
    grep -m1 -A2 "Failing input:" "$log" | sed 's/^/    /' || true
  fi
done

echo "fuzz: done in $((SECONDS - started)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
