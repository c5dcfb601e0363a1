#!/usr/bin/env bash
# Uploads through the gateway's home page, measured in one run on this machine
# (nothing asserted; figures go to docs/performance.md): one file of MIB random bytes
#   - private, sealed and erasure-coded in the page by the WebAssembly codec, its
#     shards sent segment by segment (POST /api/private-upload/…);
#   - public, the file sent as it is (POST /api/upload), coded by the gateway;
#   - `mosaic put` of the same file (the CLI codes it natively), for comparison;
# on a devnet of DEVNET_NODES nodes (default 5), a release build, headless Chromium.
#   benches/upload.sh [MIB]     (default 64; needs what tests/ui.sh needs; MOSAIC_BIN)
set -euo pipefail
cd "$(dirname "$0")/.."
mib="${1:-64}"
# MOSAIC_BIN: a release binary built already (CI passes the static one it built once).
if [ -z "${MOSAIC_BIN:-}" ]; then
  cargo build --locked --release --bin mosaic
  MOSAIC_BIN="$PWD/target/release/mosaic"
fi
MOSAIC="$MOSAIC_BIN"
DEVNET_NODES="${DEVNET_NODES:-5}"
. tests/browser_env.sh
start_devnet
head -c "$((mib << 20))" /dev/urandom >"$work/bench.bin"
wait_devnet
port="$(free_port)"
GATEWAY_ARGS="--allow-uploads --upload-max 4GiB" start_gateway "$port"
cdp_port="$(free_port)"
start_chromium "$cdp_port"
spec="$(python3 -c 'import json,sys; print(json.dumps({"gateway": sys.argv[1], "bench_file": sys.argv[2]}))' \
  "http://127.0.0.1:$port" "$work/bench.bin")"
timeout 900 python3 tests/ui_browser.py "$cdp_port" "$spec"
start=$(date +%s.%N)
"$MOSAIC" put "$work/bench.bin" --name bench-cli >/dev/null 2>&1
end=$(date +%s.%N)
python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print(f'bench mosaic put (CLI): {sys.argv[3]} MiB in {t:.2f} s = {int(sys.argv[3])/t:.1f} MiB/s')" "$start" "$end" "$mib"
