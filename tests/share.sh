#!/usr/bin/env bash
# Share links in a real browser: headless Chromium opens private files through the
# gateway's share page (/s/#CAP/NAME), where a service worker running Mosaic's codec
# as WebAssembly verifies and decrypts. Checks (tests/share_browser.py does the
# browser side):
#   - a private video plays and seeks to the middle;
#   - a private file downloaded through the page equals the original byte for byte;
#   - through a proxy that flips a byte in one column's answers, the page detects it
#     and still reads the file from the other columns; when it flips every column's,
#     the page reports the failure;
#   - a wrong key and a truncated cap give the page's errors;
#   - no key material appears in any request the browser made (page and worker, as
#     recorded over the DevTools protocol) nor in the gateway's access log.
#
# Needs chromium, ffmpeg, python3 with websocket-client and blake3 (.ci/run installs
# them) and a built `mosaic` (MOSAIC_BIN, default target/debug/mosaic). Loopback only:
# a devnet of 20 nodes (QUIC 4919-4938, DHT 6881-6900), a gateway and the proxy on
# free ports. Bounded: every wait has a limit; the whole takes about a minute.
set -euo pipefail

cd "$(dirname "$0")/.."
MOSAIC="${MOSAIC_BIN:-$PWD/target/debug/mosaic}"
# 20 storage nodes: columns are found among tens of nodes, as users run them.
DEVNET_NODES="${DEVNET_NODES:-20}"
. tests/browser_env.sh
start_devnet
make_video "$work/video.webm"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$work/data.bin"

wait_devnet
# Small segments for the video, so a seek lands many segments in.
video_cap="$("$MOSAIC" put "$work/video.webm" --segment-size 65536 | tail -n 1)"
file_cap="$("$MOSAIC" put "$work/data.bin" | tail -n 1)"

port="$(free_port)"
start_gateway "$port" RUST_LOG=info,mosaic::access=debug
gw="http://127.0.0.1:$port"
video_link="$("$MOSAIC" share video.webm --gateway-url "$gw" | tail -n 1)"
file_link="$("$MOSAIC" share data.bin --gateway-url "$gw" | tail -n 1)"
case "$video_link" in "$gw/s/#$video_cap/video.webm") ;; *) echo "share test FAILED: mosaic share printed $video_link"; exit 1 ;; esac

# A gateway that tampers: on one port it flips a byte in every answer for the first
# column it is asked for; on the other, in every column's answers.
one_port="$(free_port)"; all_port="$(free_port)"
python3 - "$port" "$one_port" "$all_port" >"$work/proxy.log" 2>&1 <<'PY' &
import http.client, http.server, sys, threading
upstream, ports = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
chosen = {}
class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        c = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        c.request("GET", self.path, headers=headers)
        r = c.getresponse()
        body = bytearray(r.read())
        column = self.path.startswith("/blob/") and "format=bao" in self.path and "start=" in self.path
        mode = "one" if self.server.server_port == ports[0] else "all"
        if column and r.status == 200 and len(body) > 200:
            h = self.path.split("/")[2].split("?")[0]
            if mode == "all" or chosen.setdefault("hash", h) == h:
                body[len(body) // 2] ^= 0x01
                print("flipped a byte of", self.path, flush=True)
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
for p in ports:
    s = http.server.ThreadingHTTPServer(("127.0.0.1", p), Proxy)
    threading.Thread(target=s.serve_forever, daemon=True).start()
threading.Event().wait()
PY
pids+=($!)

# A readcap with the right id and another key (valid checksum): a wrong key.
wrong_cap="$(python3 - "$file_cap" <<'PY'
import base64, os, sys, blake3
cap = sys.argv[1]
raw = base64.b32decode(cap[3:].upper() + "=" * (-len(cap[3:]) % 8))
file_id, key = raw[:32], os.urandom(32)
payload = file_id + key + blake3.blake3(b"mr1" + file_id + key).digest()[:4]
print("mr1" + base64.b32encode(payload).decode().rstrip("=").lower())
PY
)"

cdp_port="$(free_port)"
start_chromium "$cdp_port"
mkdir -p "$work/downloads"
spec="$(python3 - <<PY
import json
print(json.dumps({
  "video": "$video_link",
  "file": ["$file_link", "$work/data.bin"],
  "tampered": ["${file_link/$port/$one_port}", "$work/data.bin"],
  "all_tampered": "${file_link/$port/$all_port}",
  "wrong_key": "$gw/s/#$wrong_cap/data.bin",
  "truncated": "$gw/s/#${file_cap:0:100}/data.bin",
  "downloads": "$work/downloads",
  "requests_out": "$work/requests.json",
}))
PY
)"
if [ -n "${SHARE_BENCH:-}" ]; then
  # benches/share.sh: in-page decode rate and time to first frame (nothing asserted).
  mib="${SHARE_BENCH:-64}"
  head -c $((mib << 20)) /dev/urandom >"$work/big.bin"
  cp "$work/video.webm" "$work/video2.webm"   # another upload: another key, another file
  "$MOSAIC" put "$work/big.bin" >/dev/null
  "$MOSAIC" put "$work/video2.webm" --segment-size 65536 >/dev/null
  big_link="$("$MOSAIC" share big.bin --gateway-url "$gw" 2>/dev/null | tail -n 1)"
  f_video="$("$MOSAIC" share video2.webm --gateway-url "$gw" --gateway-decrypts 2>/dev/null | tail -n 1)"
  f_big="$("$MOSAIC" share big.bin --gateway-url "$gw" --gateway-decrypts 2>/dev/null | tail -n 1)"
  bench_spec="$(python3 -c 'import json,sys; print(json.dumps({"downloads": sys.argv[1], "bench": {"share_video": sys.argv[2], "plain_page": sys.argv[3], "f_video": sys.argv[4], "share_file": sys.argv[5]}}))' \
    "$work/downloads" "$video_link" "$gw/health" "$f_video" "$big_link")"
  timeout 300 python3 tests/share_browser.py "$cdp_port" "$bench_spec"
  curl -s -o /dev/null -w "/f/ through the gateway (it decrypts): %{speed_download} B/s, first byte %{time_starttransfer} s\n" "$f_big"
  start=$(date +%s.%N)
  "$MOSAIC" get big.bin -o "$work/big.out" >/dev/null
  python3 -c "import sys; print(f'mosaic get (native, no gateway): {int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])) / 1048576:.1f} MiB/s')" \
    "$((mib << 20))" "$start" "$(date +%s.%N)"
  exit 0
fi
if [ -n "${SHARE_KEEP:-}" ]; then
  printf '%s\n' "$spec" >"$SHARE_KEEP"; echo "cdp $cdp_port" >>"$SHARE_KEEP"; sleep 900
fi
status=0
timeout 400 python3 tests/share_browser.py "$cdp_port" "$spec" || status=1
echo "proxy: $(grep -c flipped "$work/proxy.log" || true) answers tampered"

# No key material in any request the browser made, nor in the gateway's log.
python3 - "$work/requests.json" "$work/gateway.log" "$video_cap" "$file_cap" <<'PY' || status=1
import base64, json, sys
requests_path, log_path, caps = sys.argv[1], sys.argv[2], sys.argv[3:]
forms = []
for cap in caps:
    raw = base64.b32decode(cap[3:].upper() + "=" * (-len(cap[3:]) % 8))
    key = raw[32:64]
    forms += [cap, cap.upper(), cap[56:100], key.hex(), base64.b64encode(key).decode(),
              base64.urlsafe_b64encode(key).decode().rstrip("="), base64.b32encode(key).decode().rstrip("=").lower()]
requests = json.load(open(requests_path))
log = open(log_path, encoding="utf-8", errors="replace").read()
text = json.dumps(requests)
leaks = [f for f in forms if f in text or f.lower() in text.lower()]
log_leaks = [f for f in forms if f in log]
blob_lines = log.count("/blob/")
print(f"{len(requests)} browser request records, {blob_lines} /blob/ lines in the gateway's access log")
assert blob_lines > 0, "the gateway's access log recorded no /blob/ request: the check would be vacuous"
assert any("/blob/" in r[1] for r in requests), "no /blob/ request recorded from the browser"
assert not leaks, f"key material in the browser's requests: {leaks}"
assert not log_leaks, f"key material in the gateway's log: {log_leaks}"
print("ok   no key material in the browser's requests or the gateway's log")
PY

if [ "$status" -ne 0 ]; then
  echo "share test FAILED"
  echo "--- gateway log ---"; tail -n 30 "$work/gateway.log"
  echo "--- chromium log ---"; tail -n 20 "$work/chromium.log"
  exit 1
fi
echo "share test passed"
