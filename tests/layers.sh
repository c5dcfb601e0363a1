#!/usr/bin/env bash
# The layering rule, checked on the real dependency graph (cargo tree): the codec
# builds no async runtime, network, database or file store; the client and the gateway
# build no storage (redb, iroh-blobs' file store); the storage node may use the client
# (it repairs files as a client of its peers), never the other way round. Exits non-zero naming the crate and the dependency that broke the rule.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
deps() { cargo tree --locked -p "$1" -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u; }
forbid() {
  local crate=$1; shift
  local all; all=$(deps "$crate")
  for bad in "$@"; do
    if grep -qx "$bad" <<<"$all"; then
      echo "layering broken: $crate depends on $bad"
      fail=1
    fi
  done
}

forbid mosaic-codec tokio iroh iroh-blobs n0-mainline redb mosaic-wire mosaic-client mosaic-server
forbid mosaic-wire redb mosaic-client mosaic-server axum
forbid mosaic-client redb reflink-copy mosaic-server axum
forbid mosaic-server mosaic-gateway axum
forbid mosaic-gateway redb reflink-copy mosaic-server
forbid mosaic-web tokio iroh iroh-blobs n0-mainline redb mosaic-wire mosaic-client mosaic-server

# And the positive: each layer does use the one below it.
grep -qx mosaic-codec <<<"$(deps mosaic-wire)" || { echo "mosaic-wire lost mosaic-codec?"; fail=1; }
grep -qx mosaic-wire <<<"$(deps mosaic-client)" || { echo "mosaic-client lost mosaic-wire?"; fail=1; }

if [ "$fail" -ne 0 ]; then exit 1; fi
echo "layers: codec ⊥ {tokio, iroh, redb}; client, gateway ⊥ redb, server; server ⊥ gateway: ok"
