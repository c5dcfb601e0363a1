# Sourced by the browser tests (tests/browser.sh, tests/share.sh): a scratch HOME, the
# processes to stop on exit, a devnet of 5 nodes on loopback (QUIC 4919-4923, DHT
# 6881-6885; DEVNET_NODES=N for N nodes, 4919+i and 6881+i), a gateway and headless
# Chromium on free ports.
# Needs: MOSAIC (the binary), and chromium, ffmpeg and curl on PATH.
for tool in chromium ffmpeg curl; do
  command -v "$tool" >/dev/null || { echo "$(basename "$0"): $tool is missing (apt-get install $tool)"; exit 1; }
done
[ -x "$MOSAIC" ] || { echo "$(basename "$0"): $MOSAIC not built (cargo build)"; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # Chromium's helper processes outlive its main one for a moment and may still write
  # into the profile: retry rather than fail the test on its way out.
  for _ in 1 2 3 4 5; do
    rm -rf "$work" 2>/dev/null && break
    sleep 1
  done
  return 0
}
trap cleanup EXIT
export HOME="$work" XDG_CONFIG_HOME="$work/config" XDG_DATA_HOME="$work/data"
export MOSAIC_BIND=127.0.0.1:0

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_devnet: 5 nodes in one process (in the background; wait_devnet waits for them).
start_devnet() {
  "$MOSAIC" devnet --nodes "${DEVNET_NODES:-5}" --data-dir "$work/devnet" >"$work/devnet.log" 2>&1 &
  pids+=($!)
}
# wait_devnet: returns once `mosaic nodes` sees every node (60 s at most).
wait_devnet() {
  for _ in $(seq 1 60); do
    if [ "$("$MOSAIC" nodes 2>/dev/null | wc -l)" -ge "${DEVNET_NODES:-5}" ]; then return; fi
    sleep 1
  done
}

# start_gateway PORT [env...]: a gateway on 127.0.0.1:PORT, healthy within 30 s.
# GATEWAY_ARGS: more flags for `gateway run` (split on spaces), e.g. --allow-uploads.
start_gateway() {
  local port=$1; shift
  # shellcheck disable=SC2086
  env "$@" "$MOSAIC" gateway run --listen "127.0.0.1:$port" --cache-dir "$work/cache" ${GATEWAY_ARGS:-} \
    >"$work/gateway.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 60); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null && return
    sleep 0.5
  done
}

# start_chromium PORT: headless Chromium driven over the DevTools protocol on PORT.
start_chromium() {
  chromium --headless=new --no-sandbox --disable-gpu --no-first-run --mute-audio \
    --user-data-dir="$work/chromium" --autoplay-policy=no-user-gesture-required \
    --remote-debugging-address=127.0.0.1 --remote-debugging-port="$1" about:blank \
    >"$work/chromium.log" 2>&1 &
  pids+=($!)
}

# make_video PATH: a 20 s VP9 test pattern (made now: no binary fixture in the tree).
make_video() {
  ffmpeg -hide_banner -loglevel error -y -f lavfi \
    -i testsrc=duration=20:size=320x240:rate=25 \
    -c:v libvpx-vp9 -b:v 1M -deadline realtime -cpu-used 8 "$1"
}
