#!/usr/bin/env bash
# The gateway's home page (/) in a real browser: headless Chromium, driven over the
# DevTools protocol by tests/ui_browser.py, checks that
#   - the Network section lists every storage node with its round-trip time;
#   - a public directory opened through the form lists its files, a sub-directory
#     opens, a file's link serves what was uploaded, a video plays in the page, and a
#     #open= link opens the directory on load;
#   - a name (mosaic name new / publish) opens the same directory "via name";
#   - a file uploaded through the page (the gateway runs with --allow-uploads) reads
#     back with the same SHA-256: a public one through its /p/ link, a private one
#     (sealed and erasure-coded in the page, 3 segments) through its share link; the
#     private file's content is then nowhere in the nodes' data, the gateway's cache or
#     its log (the public file's is: the search looks where the data is);
#   - garbage and a private name give errors, and a share link or a readcap typed in
#     the form opens the share page without the cap in any request the browser made
#     (nor in the gateway's access log); every request goes to the gateway itself.
#
# Needs chromium, ffmpeg, python3 with websocket-client (.ci/run installs them) and a
# built `mosaic` (MOSAIC_BIN, default target/debug/mosaic). Loopback only: a devnet of
# DEVNET_NODES nodes (default 20: QUIC 4919-4938, DHT 6881-6900), a gateway and
# Chromium on free ports. Bounded: every wait has a limit; about a minute in all.
set -euo pipefail

cd "$(dirname "$0")/.."
MOSAIC="${MOSAIC_BIN:-$PWD/target/debug/mosaic}"
DEVNET_NODES="${DEVNET_NODES:-20}"
. tests/browser_env.sh
start_devnet

fail() { echo "ui test FAILED: $*"; exit 1; }

# The content: a small site with a sub-directory and a video, a file to upload through
# the page, and a private file whose readcap is typed into the form.
mkdir -p "$work/site/docs"
cat >"$work/site/index.html" <<'HTML'
<!doctype html>
<meta charset="utf-8">
<title>A Mosaic site</title>
<h1>Hello from a public directory</h1>
<p><a href="docs/note.txt">A note</a>, <a href="clip.webm">a clip</a>.</p>
HTML
printf 'A note in a sub-directory.\nSecond line, with UTF-8: ünïcødé ✓\n' >"$work/site/docs/note.txt"
make_video "$work/site/clip.webm"
public_marker="MOSAIC-PUBLIC-MARKER-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
private_marker="MOSAIC-PRIVATE-MARKER-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# repeat LINE BYTES: LINE over and over, BYTES bytes in all.
repeat() { python3 -c 'import sys; l = (sys.argv[1] + "\n").encode(); n = int(sys.argv[2]); sys.stdout.buffer.write((l * (n // len(l) + 1))[:n])' "$@"; }
{ head -c $((300 * 1024 + 123)) /dev/urandom; repeat "$public_marker" 60000; } >"$work/upload.bin"
# About 2.5 MiB (3 segments of 1 MiB) of one recognizable line, uploaded privately.
repeat "$private_marker, a line of the private upload" $((2560 * 1024 + 77)) >"$work/private.txt"
printf 'A private file, opened in the share page.\n' >"$work/secret.txt"

wait_devnet
# The devnet's fixed ports may be taken (another devnet): this one would have exited.
kill -0 "${pids[0]}" 2>/dev/null || fail "the devnet did not start (ports 4919/6881 taken?): $(tail -n 3 "$work/devnet.log")"
site_id="$(timeout 90 "$MOSAIC" put -r "$work/site" --public | tail -n 1)" || fail "mosaic put -r --public"
case "$site_id" in mi1*) ;; *) fail "mosaic put -r --public printed '$site_id', not an id" ;; esac
secret_cap="$(timeout 60 "$MOSAIC" put "$work/secret.txt" | tail -n 1)" || fail "mosaic put"
case "$secret_cap" in mr1*) ;; *) fail "mosaic put printed '$secret_cap', not a readcap" ;; esac
name_key="$(timeout 60 "$MOSAIC" name new site | tail -n 1)" || fail "mosaic name new site"
case "$name_key" in mn1*) ;; *) fail "mosaic name new printed '$name_key', not a name" ;; esac
timeout 60 "$MOSAIC" name publish site "$site_id" >/dev/null || fail "mosaic name publish site $site_id"
echo "site $site_id, name $name_key"

port="$(free_port)"
GATEWAY_ARGS="--allow-uploads" start_gateway "$port" RUST_LOG=info,mosaic::access=debug
gw="http://127.0.0.1:$port"
curl -fs "$gw/health" >/dev/null || fail "the gateway is not healthy: $(tail -n 5 "$work/gateway.log")"
# The page is compiled into the binary: an older build would test an older page.
for asset in "/ ui.html" "/ui/ui.js ui.js" "/ui/ui.css ui.css"; do
  read -r path file <<<"$asset"
  curl -fs "$gw$path" | cmp -s - "gateway/assets/$file" ||
    fail "$MOSAIC serves another $file than gateway/assets/$file: rebuild it (cargo build)"
done

cdp_port="$(free_port)"
start_chromium "$cdp_port"
# A private name's form (never sent anywhere: the page must refuse it).
private_name="ms1$(head -c 32 /dev/urandom | base32 | tr -d '=' | tr 'A-Z' 'a-z')"
spec="$(python3 - "$gw" "$DEVNET_NODES" "$site_id" "$name_key" "$work" "$secret_cap" "$private_name" <<'PY'
import json, sys
gw, nodes, site, name, work, cap, private = sys.argv[1:]
print(json.dumps({
  "gateway": gw, "nodes": int(nodes), "site": site, "name": name, "subdir": "docs",
  "index": ["index.html", f"{work}/site/index.html"],
  "text": ["note.txt", f"{work}/site/docs/note.txt"],
  "media": "clip.webm", "upload": f"{work}/upload.bin",
  "private_upload": f"{work}/private.txt", "private_cap_out": f"{work}/private_cap.txt",
  "readcap": cap, "readcap_name": "secret.txt", "private_name": private,
  "requests_out": f"{work}/requests.json",
}))
PY
)"
status=0
timeout 200 python3 tests/ui_browser.py "$cdp_port" "$spec" || status=1

# Neither the readcaps (typed in, made by the page) nor the private name reached the
# gateway (its access log has every request's URI and Referer).
private_cap="$(cat "$work/private_cap.txt" 2>/dev/null || true)"
case "$private_cap" in mr1*) ;; *) echo "FAIL the page's private upload gave no readcap"; status=1; private_cap="$secret_cap" ;; esac
if grep -qF -e "$secret_cap" -e "$private_cap" -e "$private_name" "$work/gateway.log"; then
  echo "FAIL the readcap or the private name is in the gateway's log"; status=1
elif ! grep -q "/api/open/" "$work/gateway.log"; then
  echo "FAIL the gateway's access log has no /api/open/ request: the check would be vacuous"; status=1
else
  echo "ok   no readcap or private name in the gateway's access log ($(grep -c 'mosaic::access' "$work/gateway.log" || true) requests logged)"
fi

# The private upload's content is nowhere the gateway or the nodes keep anything: only
# ciphertext reached them. The public upload's is (the search is not vacuous).
stores=("$work/devnet" "$work/cache" "$work/data" "$work/gateway.log" "$work/devnet.log")
found="$(grep -r -a -l -F "$private_marker" "${stores[@]}" 2>/dev/null || true)"
public_found="$( (grep -r -a -l -F "$public_marker" "$work/devnet" 2>/dev/null || true) | wc -l)"
if [ -n "$found" ]; then
  echo "FAIL the private upload's plaintext is stored in: $(echo "$found" | head -n 5 | tr '\n' ' ')"; status=1
elif [ "$public_found" -eq 0 ]; then
  echo "FAIL the public upload's content is not found in the nodes' data either: the search would be vacuous"; status=1
else
  echo "ok   the private upload's content is nowhere in the nodes' data, the gateway's cache or its log; the public one's is in $public_found file(s) of the nodes"
fi

if [ "$status" -ne 0 ]; then
  echo "ui test FAILED"
  echo "--- gateway log ---"; tail -n 30 "$work/gateway.log"
  echo "--- chromium log ---"; tail -n 20 "$work/chromium.log"
  exit 1
fi
echo "ui test passed"
