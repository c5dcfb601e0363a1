#!/usr/bin/env bash
# Cross-check the format: files encoded by the real `mosaic` binary must decode with the
# independent Python decoder (tests/format_reference.py, written from docs/format.md
# alone), also with m columns deleted. Needs: python3 with blake3 and pycryptodome.
set -euo pipefail
cd "$(dirname "$0")/.."
# The binary `cargo test --workspace` built (CI runs this after it). A plain `cargo
# build` here resolved the root package's features alone and compiled the dependencies
# a second time.
bin=${MOSAIC_BIN:-target/debug/mosaic}
[ -x "$bin" ] || cargo build --workspace --locked --quiet --bin mosaic
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_CONFIG_HOME=$work/config

# The reference decoder, quiet unless it fails.
decode() {
  python3 tests/format_reference.py --decode "$1" "$2" "$work/out" >"$work/log" 2>&1 || {
    cat "$work/log"
    exit 1
  }
}

cases=0
for size in 0 1 4095 4096 4097 1048577 3158073; do
  head -c "$size" /dev/urandom >"$work/in"
  for opts in "" "--public" "--convergent" "-k 1 -m 2" "-k 3 -m 2 --segment-size 4096" "-k 10 -m 4"; do
    store=$work/store-$cases
    # shellcheck disable=SC2086 # $opts is a list of flags
    cap=$(MOSAIC_LOCAL_DIR=$store "$bin" encode "$work/in" $opts 2>/dev/null)
    MOSAIC_LOCAL_DIR=$store "$bin" inspect "$cap" | awk '/^column [0-9]/ {print $3}' >"$work/cols"
    m=$(MOSAIC_LOCAL_DIR=$store "$bin" inspect "$cap" | sed -n 's/^coding .* m=\([0-9]*\),.*/\1/p')
    decode "$store" "$cap"
    cmp -s "$work/in" "$work/out" || { echo "MISMATCH: size $size, options '$opts'"; exit 1; }
    # Now lose the first m columns (all data columns when m >= k: forces Reed–Solomon),
    # unless a deleted blob is also another column's (tiny files share zero columns).
    head -n "$m" "$work/cols" >"$work/gone"
    if ! tail -n "+$((m + 1))" "$work/cols" | grep -qxFf "$work/gone"; then
      while read -r h; do rm -f "$store/blobs/$h"; done <"$work/gone"
      decode "$store" "$cap"
      cmp -s "$work/in" "$work/out" || { echo "MISMATCH after losing $m columns: size $size, options '$opts'"; exit 1; }
    fi
    cases=$((cases + 1))
  done
done
echo "format cross-check: $cases files encoded by mosaic decoded by the independent decoder"
