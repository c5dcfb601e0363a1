#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol through Mosaic's share page.

Called by tests/share.sh, which runs the network, the gateway and a tampering proxy.
Every check prints one line; the exit status is 1 if any failed. It records every
request the page and its service worker made, so the caller can prove no key material
left the browser.

    share_browser.py CDP_PORT SPEC_JSON

SPEC_JSON: {"video": LINK, "file": [LINK, PATH], "tampered": [LINK, PATH],
            "wrong_key": LINK, "truncated": LINK, "downloads": DIR,
            "requests_out": PATH, "bench": bool}
"""

import hashlib
import json
import os
import sys
import time

import cdp  # tests/cdp.py

port, spec = sys.argv[1], json.loads(sys.argv[2])
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


browser = cdp.Browser(port, keep_events=True)
send, call, pump = browser.send, browser.call, browser.pump
requests, events = browser.requests, browser.events
browser.discover()
call("Browser.setDownloadBehavior", behavior="allow", downloadPath=spec["downloads"], eventsEnabled=True)
page = browser.open_page()


def evaluate(expression):
    r = call("Runtime.evaluate", page, expression=expression, awaitPromise=True, returnByValue=True)
    return r.get("result", {}).get("value")


def open_link(link, want=("ready", "error"), limit=60):
    call("Page.navigate", page, url="about:blank")
    pump(0.2)
    call("Page.navigate", page, url=link)
    end = time.time() + limit
    state = None
    while time.time() < end:
        pump(0.3)
        state = evaluate("document.body ? (document.body.dataset.state || 'loading') : 'loading'")
        if state in want:
            break
    status = evaluate("(document.getElementById('status')||{}).textContent || ''")
    kind = evaluate("document.body ? (document.body.dataset.kind || '') : ''")
    return state, kind, status


if "bench" in spec:
    bench = spec["bench"]
    # Time to first video frame: the share link (page, worker, module, manifest,
    # verified and decrypted segments) beside /f/ (the gateway decrypts).
    state, kind, status = open_link(bench["share_video"])
    assert state == "ready", status
    for _ in range(100):
        pump(0.2)
        first = evaluate("document.body.dataset.firstFrameMs || ''")
        if first:
            break
    created = evaluate("document.body.dataset.mediaCreatedMs")
    print(f"share link: first frame {first} ms after navigation, {int(first) - int(created)} ms after the <video> was created")
    call("Page.navigate", page, url=bench["plain_page"])
    pump(1)
    f_ms = evaluate("""new Promise((resolve) => {
      const v = document.createElement('video'); v.muted = true; const t0 = performance.now();
      v.addEventListener('loadeddata', () => resolve(Math.round(performance.now() - t0)), { once: true });
      v.addEventListener('error', () => resolve('error ' + (v.error && v.error.message)));
      v.src = '%s'; document.body.append(v); })""" % bench["f_video"])
    print(f"/f/ link: first frame {f_ms} ms after the <video> was created")
    # Decode rate in the page: read a whole file through the worker.
    state, kind, status = open_link(bench["share_file"])
    assert state == "ready", status
    result = evaluate("""(async () => {
      const t0 = performance.now();
      const r = await fetch(document.getElementById('download').href.replace('?download=1', ''));
      const reader = r.body.getReader(); let n = 0;
      for (;;) { const { done, value } = await reader.read(); if (done) break; n += value.length; }
      const ms = performance.now() - t0;
      const stats = await new Promise((res) => { const ch = new MessageChannel(); ch.port1.onmessage = (e) => res(e.data);
        navigator.serviceWorker.controller.postMessage({ type: 'stats', token: document.body.dataset.token }, [ch.port2]); });
      return { bytes: n, ms, stats: stats.stats };
    })()""")
    mib = result["bytes"] / 1048576
    print(f"in the page: {mib:.0f} MiB read in {result['ms']:.0f} ms = {mib / result['ms'] * 1000:.1f} MiB/s end to end; "
          f"the codec's wasm calls (verify + open) {result['stats']['wasmMs']:.0f} ms = "
          f"{mib / result['stats']['wasmMs'] * 1000:.1f} MiB/s of plaintext; {result['stats']['requests']} column requests")
    sys.exit(0)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(name, original, limit=120):
    target_path = os.path.join(spec["downloads"], name)
    if os.path.exists(target_path):
        os.remove(target_path)
    evaluate("document.getElementById('download').click(), true")
    end = time.time() + limit
    while time.time() < end:
        pump(0.5)
        done = [e for e in events if e.get("method") == "Browser.downloadProgress"
                and e["params"].get("state") in ("completed", "canceled")]
        if done and done[-1]["params"]["state"] == "canceled":
            return "download canceled"
        if done and os.path.exists(target_path):
            events.clear()
            return sha256(target_path) == sha256(original) and os.path.getsize(target_path) == os.path.getsize(original)
    return "download did not finish"


PLAY = """
new Promise((resolve) => {
  const v = document.getElementById('media');
  if (!v) { resolve('no video element'); return; }
  v.muted = true;
  let target = null;
  const t0 = performance.now();
  let firstFrame = null;
  const start = () => { target = v.duration / 2; v.currentTime = target; };
  v.addEventListener('loadeddata', () => { if (firstFrame === null) firstFrame = performance.now() - t0; });
  if (v.readyState >= 1) start(); else v.addEventListener('loadedmetadata', start, { once: true });
  v.addEventListener('seeked', () => { v.play().catch((e) => resolve('play failed: ' + e)); });
  v.addEventListener('timeupdate', () => {
    if (target !== null && v.currentTime >= target + 0.5 && !v.paused) {
      v.pause();
      resolve(`reached currentTime=${v.currentTime.toFixed(2)} target=${target.toFixed(2)} readyState=${v.readyState}`);
    }
  });
  v.addEventListener('error', () => resolve('media error ' + (v.error && v.error.code)));
  setTimeout(() => resolve('timeout at currentTime=' + v.currentTime + ' readyState=' + v.readyState + ' networkState=' + v.networkState), 45000);
})
"""

# 1. A private video through its fragment link plays and seeks to the middle.
state, kind, status = open_link(spec["video"])
check(state == "ready", f"video link opens in the page ({state}: {status})")
if state == "ready":
    probe = evaluate("""(async () => {
      const src = document.getElementById('media').src;
      const ctl = new AbortController(); setTimeout(() => ctl.abort(), 20000);
      try { const r = await fetch(src, {headers: {Range: 'bytes=100-199'}, signal: ctl.signal});
            const b = await r.arrayBuffer(); return r.status + ' ' + r.headers.get('content-range') + ' ' + b.byteLength; }
      catch (e) { return 'failed: ' + e; } })()""")
    check(probe.startswith("206 bytes 100-199/") and probe.endswith(" 100"),
          f"the worker answers a Range request with 206 and exactly the bytes asked ({probe})")
    result = evaluate(PLAY) or "no result"
    ok = result.startswith("reached")
    if ok:
        fields = dict(p.split("=") for p in result.split()[1:])
        ok = float(fields["target"]) > 5 and float(fields["currentTime"]) >= float(fields["target"]) \
            and int(fields["readyState"]) >= 2
    check(ok, f"private video plays from the middle ({result})")

# 2. A private file downloaded through the page equals the original.
link, original = spec["file"]
state, kind, status = open_link(link)
check(state == "ready", f"file link opens ({state}: {status})")
if state == "ready":
    same = download(os.path.basename(original), original)
    check(same is True, f"downloaded through the page, byte for byte equal to the original ({same})")

# 3. Through a gateway that flips a byte in a column: detected, recovered from the others.
link, original = spec["tampered"]
state, kind, status = open_link(link)
check(state == "ready", f"file link through the tampering gateway opens ({state}: {status})")
if state == "ready":
    same = download(os.path.basename(original), original)
    faults = evaluate("Number(document.body.dataset.faults || 0)")
    first = evaluate("(document.querySelector('#faults li')||{}).textContent || ''")
    check(same is True, f"tampered columns: the download is still byte for byte equal ({same})")
    check(faults and faults >= 1 and "hash" in first, f"the page detected the flipped byte ({faults} rejections: {first})")

# 4. A wrong key and a truncated cap: the page's errors.
state, kind, status = open_link(spec["wrong_key"])
check(state == "error" and kind == "key" and "does not open" in status,
      f"a wrong key gives the page's error ({state}/{kind}: {status})")
state, kind, status = open_link(spec["truncated"])
check(state == "error" and kind == "cap" and "long" in status,
      f"a truncated cap gives the page's error ({state}/{kind}: {status})")

if spec.get("all_tampered"):
    link = spec["all_tampered"]
    state, kind, status = open_link(link)
    if state == "ready":
        evaluate("fetch(document.getElementById('download').href).then(r => r.status).catch(e => 'failed')")
        pump(3)
        state = evaluate("document.body.dataset.state")
        kind = evaluate("document.body.dataset.kind || ''")
        status = evaluate("document.getElementById('status').textContent")
    check(state == "error" and kind == "corrupt", f"every column tampered: the page reports the failure ({state}/{kind}: {status})")

pump(1)
with open(spec["requests_out"], "w") as f:
    json.dump(requests, f)
kinds = sorted({k for k, *_ in requests})
check("service_worker" in kinds and "page" in kinds,
      f"requests recorded from the page and its service worker ({len(requests)} records from {kinds})")
icons = [r[1] for r in requests if "favicon" in r[1]]
check(not icons, f"the share page does not ask for a favicon ({icons})")
check(not browser.problems,
      f"no script error or Content-Security-Policy violation in the share page ({browser.problems[:3]})")
sys.exit(1 if failures else 0)
