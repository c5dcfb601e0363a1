#!/usr/bin/env bash
# Cargo for the one optimized build: a statically linked `mosaic` for this machine's
# target, the binary the Docker image holds (`FROM scratch`). The benches and release
# checks build through this too, so CI compiles the workspace optimized once:
#   docker/cargo-static.sh build --release --bin mosaic   # target/x86_64-unknown-linux-gnu/release/mosaic
#   docker/cargo-static.sh bench --bench codec -- --mib 8
# Static glibc needs `--target` (without it the flag would reach build scripts and
# proc-macros too, which cannot link statically); RUSTFLAGS replaces .cargo/config.toml's
# flags, so its ChaCha20 cfg is repeated here.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: docker/cargo-static.sh COMMAND [ARGS...]" >&2; exit 2; }
command=$1
shift
export RUSTFLAGS="-C target-feature=+crt-static --cfg chacha20_avx512"
exec cargo "$command" --target "${MOSAIC_STATIC_TARGET:-x86_64-unknown-linux-gnu}" "$@"
