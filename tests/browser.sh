#!/usr/bin/env bash
# A real browser against a real gateway: headless Chromium opens a page served from
# a Mosaic directory (/p/ID/), plays a WebM video stored beside it, seeks to the
# middle, and reports currentTime and readyState; the test asserts that playback
# reached the target and that the gateway answered with 206s.
#
# Needs chromium and ffmpeg (Debian packages) and websocket-client (PyPI), which
# .ci/run installs, and a built
# `mosaic` (MOSAIC_BIN, default target/debug/mosaic). Uses loopback only: a devnet of
# 5 nodes (QUIC 4919-4923, DHT 6881-6885) and a gateway on a free port.
set -euo pipefail

cd "$(dirname "$0")/.."
MOSAIC="${MOSAIC_BIN:-$PWD/target/debug/mosaic}"
. tests/browser_env.sh
start_devnet

# The page and a 20 s video.
mkdir -p "$work/site"
make_video "$work/site/video.webm"
cat >"$work/site/index.html" <<'HTML'
<!doctype html>
<meta charset="utf-8">
<title>pending</title>
<video id="v" src="video.webm" muted playsinline preload="metadata"></video>
<pre id="result">pending</pre>
<script>
  const v = document.getElementById("v");
  const out = document.getElementById("result");
  let target = null;
  v.addEventListener("loadedmetadata", () => {
    target = v.duration / 2;
    v.currentTime = target;
  });
  v.addEventListener("seeked", () => { v.play().catch(e => { out.textContent = "play failed: " + e; }); });
  v.addEventListener("timeupdate", () => {
    if (target !== null && v.currentTime >= target + 0.5 && !v.paused) {
      out.textContent = `reached currentTime=${v.currentTime.toFixed(2)} target=${target.toFixed(2)} duration=${v.duration.toFixed(2)} readyState=${v.readyState}`;
      document.title = "done";
      v.pause();
    }
  });
  v.addEventListener("error", () => { out.textContent = "media error " + (v.error && v.error.code); });
</script>
HTML

# Wait for the devnet, upload the site with small segments (the video spans many).
wait_devnet
id="$("$MOSAIC" put -r "$work/site" --public --segment-size 65536)"
echo "site: $id"

port="$(free_port)"
start_gateway "$port"

# Chromium under the DevTools protocol: open the page, then poll the result the page
# writes (real time, real network: virtual-time flags would stop before playback).
cdp_port="$(free_port)"
start_chromium "$cdp_port"
result="$(python3 - "$cdp_port" "http://127.0.0.1:$port/p/$id/" <<'PY'
import json, sys, time, urllib.request
import websocket  # websocket-client, from PyPI

port, url = sys.argv[1], sys.argv[2]
deadline = time.time() + 30
while True:
    try:
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
        page = next(p for p in pages if p.get("type") == "page")
        break
    except Exception:
        if time.time() > deadline:
            print("chromium did not start"); sys.exit(0)
        time.sleep(0.3)
ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
ids = iter(range(1, 1_000_000))
def call(method, **params):
    i = next(ids)
    ws.send(json.dumps({"id": i, "method": method, "params": params}))
    while True:
        msg = json.loads(ws.recv())
        if msg.get("id") == i:
            return msg.get("result", {})
call("Page.navigate", url=url)
deadline = time.time() + 60
text = "no result"
while time.time() < deadline:
    r = call("Runtime.evaluate", expression="(document.getElementById('result')||{}).textContent || 'loading'")
    text = r.get("result", {}).get("value", "no value")
    if text.startswith("reached") or text.startswith("media error") or text.startswith("play failed"):
        break
    time.sleep(0.5)
print(text)
PY
)"
echo "browser: $result"
metrics="$(curl -fs "http://127.0.0.1:$port/metrics")"
partial="$(printf '%s\n' "$metrics" | sed -n 's/^mosaic_gateway_http_requests_total{status="206"} \([0-9]*\)$/\1/p')"
echo "gateway 206 responses: ${partial:-0}"

fail() {
  echo "browser test FAILED: $1"
  echo "--- gateway log ---"; tail -n 40 "$work/gateway.log"
  echo "--- chromium log ---"; tail -n 20 "$work/chromium.log"
  exit 1
}
case "$result" in
  reached*) ;;
  *) fail "playback did not reach the middle of the video (${result:-no result})" ;;
esac
current="$(printf '%s' "$result" | sed -n 's/.*currentTime=\([0-9.]*\).*/\1/p')"
target="$(printf '%s' "$result" | sed -n 's/.*target=\([0-9.]*\).*/\1/p')"
ready="$(printf '%s' "$result" | sed -n 's/.*readyState=\([0-9]*\).*/\1/p')"
python3 - "$current" "$target" "$ready" <<'PY' || fail "currentTime/readyState out of bounds"
import sys
current, target, ready = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
assert target > 5 and current >= target, (current, target)
assert ready >= 2, ready  # HAVE_CURRENT_DATA or better
PY
[ "${partial:-0}" -ge 1 ] || fail "the gateway answered no 206 (Range) request"
echo "browser test passed"
