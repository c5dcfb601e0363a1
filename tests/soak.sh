#!/usr/bin/env bash
# Soak test (tests/soak.py): 20 storage nodes and a gateway on loopback under a steady
# stream of puts, gets and gateway range reads while nodes are killed, frozen,
# restarted and cut off (iptables) at random, at most 2 at once (the 3-of-5 code's
# margin). Fails on any wrong byte, on an acknowledged file that does not read back
# after healing, and on a process whose RSS ends above 3 x its warm-up RSS + 100 MiB.
# Prints a summary table; --json PATH (or MOSAIC_SOAK_JSON) writes it as JSON.
#
#   tests/soak.sh                      # the full run: 30 minutes of chaos
#   tests/soak.sh --duration 3m --large-mib 8   # the short one CI runs
#   tests/soak.sh --seed N             # replay a run's files and chaos choices
#   tests/soak.sh --events kill,isolate,restart   # only some kinds of disturbance
#
# Builds nothing: uses MOSAIC_BIN, default target/debug/mosaic (copied at start, so a
# rebuild during the run does not matter). Needs root for iptables (else --no-isolate).
# Ports: 127.0.0.1, UDP 17000-17019 and 17100-17119, TCP 17200 (--base-port to move).
set -euo pipefail
cd "$(dirname "$0")/.."
MOSAIC_BIN="${MOSAIC_BIN:-$PWD/target/debug/mosaic}"
[ -x "$MOSAIC_BIN" ] || { echo "tests/soak.sh: $MOSAIC_BIN is not built (cargo build)" >&2; exit 1; }
export MOSAIC_BIN
exec python3 -u tests/soak.py "$@"
