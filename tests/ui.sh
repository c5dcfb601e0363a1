#!/usr/bin/env bash
# The gateway's home page (/) in a real browser: headless Chromium, driven over the
# DevTools protocol by tests/ui_browser.py, checks that
#   - the Network section lists every storage node with its round-trip time;
#   - a public directory opened through the form lists its files, a sub-directory
#     opens, a file's link serves what was uploaded, a video plays in the page, and a
#     #open= link opens the directory on load;
#   - a name (mosaic name new / publish) opens the same directory "via name";
#   - a file uploaded through the page (the gateway runs with --allow-uploads) reads
#     back with the same SHA-256;
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
head -c $((300 * 1024 + 123)) /dev/urandom >"$work/upload.bin"
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
  "readcap": cap, "readcap_name": "secret.txt", "private_name": private,
  "requests_out": f"{work}/requests.json",
}))
PY
)"
status=0
timeout 200 python3 tests/ui_browser.py "$cdp_port" "$spec" || status=1

# Neither the readcap nor the private name reached the gateway (its access log has
# every request's URI and Referer).
if grep -qF -e "$secret_cap" -e "$private_name" "$work/gateway.log"; then
  echo "FAIL the readcap or the private name is in the gateway's log"; status=1
elif ! grep -q "/api/open/" "$work/gateway.log"; then
  echo "FAIL the gateway's access log has no /api/open/ request: the check would be vacuous"; status=1
else
  echo "ok   no readcap or private name in the gateway's access log ($(grep -c 'mosaic::access' "$work/gateway.log" || true) requests logged)"
fi

if [ "$status" -ne 0 ]; then
  echo "ui test FAILED"
  echo "--- gateway log ---"; tail -n 30 "$work/gateway.log"
  echo "--- chromium log ---"; tail -n 20 "$work/chromium.log"
  exit 1
fi
echo "ui test passed"
