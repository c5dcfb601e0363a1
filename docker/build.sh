#!/usr/bin/env bash
# Builds the statically linked `mosaic` (docker/cargo-static.sh) and the `mosaic:latest`
# image (FROM scratch). A binary already built with the same flags is reused as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
docker/cargo-static.sh build --release --locked --bin mosaic
mkdir -p docker/build/data
cp "target/${MOSAIC_STATIC_TARGET:-x86_64-unknown-linux-gnu}/release/mosaic" docker/build/mosaic
strip docker/build/mosaic 2>/dev/null || true
docker build -q -t mosaic:latest docker
docker image ls mosaic:latest --format 'mosaic:latest {{.Size}}'
