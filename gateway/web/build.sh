#!/usr/bin/env bash
# Builds the share page's codec module, gateway/assets/mosaic.wasm, from this crate
# (mosaic-web, which wraps mosaic-codec): the gateway binary embeds that file.
#
# rustup cannot fetch the wasm32 target here; Debian's rustc-web toolchain builds std
# for it from source (docs/architecture.md). Paths are remapped so the module's bytes
# do not depend on where the tree or the registry lives: `tests/wasm.sh` rebuilds it in
# CI and fails if the committed module differs from what this source builds.
#   apt-get install rustc-web cargo-web rust-web-src lld-22
set -euo pipefail
cd "$(dirname "$0")/../.."
for f in /usr/bin/rustc /usr/bin/cargo /usr/bin/wasm-ld-22; do
  [ -x "$f" ] || { echo "missing $f: apt-get install rustc-web cargo-web rust-web-src lld-22" >&2; exit 1; }
done
root="$PWD"
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/bin/wasm-ld-22 \
  RUSTC_BOOTSTRAP=1 \
  RUSTFLAGS="--cfg getrandom_backend=\"custom\" --remap-path-prefix=$root=/mosaic --remap-path-prefix=$registry=/registry -Zunstable-options -C panic=immediate-abort -C strip=symbols -C codegen-units=1"
# Full paths: plain `cargo` would pick rustup's toolchain, which has no wasm32 std.
/usr/bin/cargo build --locked --release -Zbuild-std=std,panic_abort \
  --target wasm32-unknown-unknown -p mosaic-web --lib --target-dir target/wasm32
cp target/wasm32/wasm32-unknown-unknown/release/mosaic_web.wasm gateway/assets/mosaic.wasm
echo "gateway/assets/mosaic.wasm: $(stat -c %s gateway/assets/mosaic.wasm) bytes"
