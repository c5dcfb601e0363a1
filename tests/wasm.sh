#!/usr/bin/env bash
# The codec's layer rule, proven by the compiler: mosaic-codec compiles for
# wasm32-unknown-unknown (pure-Rust Reed-Solomon kernels, the browser's randomness).
# rustup cannot fetch the wasm32 target here; Debian's rustc-web toolchain builds std
# for it from source (docs/architecture.md). .ci/run installs the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in /usr/bin/rustc /usr/bin/cargo /usr/bin/wasm-ld-22; do
  [ -x "$f" ] || { echo "missing $f: apt-get install rustc-web cargo-web rust-web-src lld-22" >&2; exit 1; }
done
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/bin/wasm-ld-22 \
  RUSTFLAGS='--cfg getrandom_backend="wasm_js"' RUSTC_BOOTSTRAP=1
# Full paths: plain `cargo` would pick rustup's toolchain, which has no wasm32 std.
/usr/bin/cargo check --locked -Zbuild-std=std,panic_abort --target wasm32-unknown-unknown \
  --no-default-features -p mosaic-codec --target-dir target/wasm32
echo "mosaic-codec compiles for wasm32-unknown-unknown"
