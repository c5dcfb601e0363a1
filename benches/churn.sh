#!/usr/bin/env bash
# Churn benchmark (benches/churn.py): 20 storage nodes and a gateway on loopback, measured
# phase by phase: healthy; 2 nodes killed; 2 frozen (SIGSTOP); a node resumed after a
# 60 s freeze; 2 dead + 2 frozen + 1 just resumed at once. Per phase: gets and gateway
# reads ok / tried, get and put p50 / p99, the nodes' DHT request timeout (their metric
# mosaic_dht_request_timeout_seconds; n/a where absent). Files are 1 MiB, 3-of-5; reads
# are SHA-256 checked (a wrong byte fails the run; failed reads are only counted).
# Prints a markdown table with the issue's targets beside the figures (not asserted);
# --json PATH (or MOSAIC_CHURN_JSON) writes it as JSON.
#
#   benches/churn.sh                   # the default run: 5-6 minutes
#   benches/churn.sh --quick           # CI: about 2 minutes (3 if operations take 10-20 s)
#   benches/churn.sh --gets 40 --freeze 90s --seed N --json out.json
#
# Builds nothing: uses MOSAIC_BIN, default target/debug/mosaic (copied at start, so a
# rebuild during the run does not matter). Needs no root.
# Ports: 127.0.0.1, UDP 19000-19019 and 19100-19119, TCP 19200 and 19300-19319
# (--base-port to move).
set -euo pipefail
cd "$(dirname "$0")/.."
MOSAIC_BIN="${MOSAIC_BIN:-$PWD/target/debug/mosaic}"
[ -x "$MOSAIC_BIN" ] || { echo "benches/churn.sh: $MOSAIC_BIN is not built (cargo build)" >&2; exit 1; }
export MOSAIC_BIN
exec python3 -u benches/churn.py "$@"
