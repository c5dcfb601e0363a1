#!/usr/bin/env bash
# The share page's speed, measured in one run on this machine (nothing asserted;
# figures go to docs/performance.md):
#   - the codec natively: `cargo bench --bench web` (the same mosaic-web code the page
#     runs, verify + open), beside BLAKE3 alone;
#   - in headless Chromium: a private file read through the page's service worker
#     (end to end MiB/s, and MiB/s of the module's own calls), time to the first video
#     frame through a share link beside /f/, and the same file through /f/ and
#     `mosaic get` for comparison.
#   benches/share.sh [MIB]     (default 64; needs what tests/share.sh needs)
set -euo pipefail
cd "$(dirname "$0")/.."
mib="${1:-64}"
cargo bench --locked --bench web -- --mib "$mib" --rounds 3
cargo build --locked --release --bin mosaic
SHARE_BENCH="$mib" MOSAIC_BIN="$PWD/target/release/mosaic" tests/share.sh
