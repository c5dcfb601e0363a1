#!/usr/bin/env bash
# Builds the statically linked `mosaic` and the `mosaic:latest` image (FROM scratch).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static --cfg chacha20_avx512" \
  cargo build --release --locked --target "$target" --bin mosaic
mkdir -p docker/build/data
cp "target/$target/release/mosaic" docker/build/mosaic
strip docker/build/mosaic 2>/dev/null || true
docker build -q -t mosaic:latest docker
docker image ls mosaic:latest --format 'mosaic:latest {{.Size}}'
