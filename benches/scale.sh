#!/usr/bin/env bash
# End-to-end lookups at scale: N real `mosaic node run` processes on loopback
# (127.0.0.1, a port pair each), one 1 KB file put, then GETS `mosaic get` runs; prints each get's wall time, failures and the
# median, and one `--timings` breakdown. Usage: benches/scale.sh [N] [GETS] [BIN]
# (BIN defaults to target/release/mosaic; build it first with `cargo build --release`).
set -euo pipefail
N=${1:-20}
GETS=${2:-8}
BIN=${3:-target/release/mosaic}
BIN=$(realpath "$BIN")
WORK=$(mktemp -d)
NET="scale-$$"
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

export XDG_CONFIG_HOME=$WORK/client XDG_DATA_HOME=$WORK/client/data HOME=$WORK
export MOSAIC_NETWORK=$NET MOSAIC_BIND=127.0.0.1:0
BOOT=127.0.0.1:26000
export MOSAIC_BOOTSTRAP=$BOOT

for i in $(seq 0 $((N - 1))); do
    args=(node run --data-dir "$WORK/node$i" --listen "127.0.0.1:$((25000 + i))"
        --dht-listen "127.0.0.1:$((26000 + i))"
        --network "$NET" --open --capacity 1GiB)
    [ "$i" -gt 0 ] && args+=(--bootstrap "$BOOT")
    "$BIN" "${args[@]}" >"$WORK/node$i.log" 2>&1 &
    pids+=($!)
done
# Wait until every node is announced and answers.
for _ in $(seq 1 120); do
    up=$("$BIN" nodes 2>/dev/null | wc -l || true)
    [ "$up" -ge "$N" ] && break
    sleep 0.5
done
echo "nodes: $N started, $up reachable"

head -c 1000 /dev/urandom >"$WORK/small.bin"
t0=$(date +%s%N)
cap=$("$BIN" put "$WORK/small.bin" 2>"$WORK/put.err" | tail -1)
echo "put: $(( ($(date +%s%N) - t0) / 1000000 )) ms"

times=()
fails=0
for g in $(seq 1 "$GETS"); do
    t0=$(date +%s%N)
    if "$BIN" get "$cap" -o "$WORK/out.bin" 2>"$WORK/get.err" && cmp -s "$WORK/small.bin" "$WORK/out.bin"; then
        times+=($(( ($(date +%s%N) - t0) / 1000000 )))
    else
        fails=$((fails + 1))
        echo "get $g failed: $(tail -2 "$WORK/get.err")"
    fi
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}')
echo "gets (ms): ${times[*]}"
echo "failures: $fails of $GETS; median: $median ms"
if "$BIN" get --help 2>/dev/null | grep -q -- --timings || "$BIN" --help | grep -q -- --timings; then
    echo "one get, --timings:"
    "$BIN" --timings get "$cap" -o "$WORK/out.bin" 2>&1 >/dev/null | tail -40
fi
