#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol through the gateway's home page (/).

Called by tests/ui.sh, which runs the network and a gateway with --allow-uploads and
uploads the content named in SPEC_JSON. Every check prints one line ("ok   …" or
"FAIL …"); the exit status is 1 if any failed. It records every request the page (and
any service worker) made, so it can prove no readcap left the browser and nothing was
fetched from another origin.

    ui_browser.py CDP_PORT SPEC_JSON

SPEC_JSON: {"gateway": "http://127.0.0.1:PORT", "nodes": N,
            "site": "mi1…", "name": "mn1…", "subdir": "docs",
            "index": [NAME, PATH], "text": [NAME, PATH], "media": NAME,
            "upload": PATH, "private_upload": PATH, "private_cap_out": PATH,
            "readcap": "mr1…", "readcap_name": NAME, "private_name": "ms1…",
            "requests_out": PATH}

"private_upload" is uploaded privately (sealed in the page); the readcap the page made
is written to "private_cap_out", for the caller's checks of the gateway's log.
"""

import base64
import hashlib
import json
import os
import sys
import time

import cdp  # tests/cdp.py

port, spec = sys.argv[1], json.loads(sys.argv[2])
gw = spec["gateway"].rstrip("/")
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


browser = cdp.Browser(port)
send, call, pump = browser.send, browser.call, browser.pump
requests, documents, problems = browser.requests, browser.documents, browser.problems
browser.discover()
page = browser.open_page()


def evaluate(expression):
    try:
        r = call("Runtime.evaluate", page, expression=expression, awaitPromise=True, returnByValue=True)
    except RuntimeError:  # the page is navigating: its context went away
        return None
    if "exceptionDetails" in r:
        return None
    return r.get("result", {}).get("value")


def wait_for(expression, limit, every=0.3, between=None):
    """Polls EXPRESSION until it is truthy (returns it) or LIMIT seconds pass (returns the
    last value); calls BETWEEN() every 5 s while waiting, if given."""
    end = time.time() + limit
    nudge = time.time() + 5
    value = None
    while time.time() < end:
        value = evaluate(expression)
        if value:
            return value
        if between and time.time() > nudge:
            between()
            nudge = time.time() + 5
        pump(every)
    return value


def navigate(url):
    call("Page.navigate", page, url="about:blank")
    pump(0.2)
    call("Page.navigate", page, url=url)
    return wait_for("document.readyState === 'complete' && !!document.getElementById('open-form')", 30)


def type_and_enter(text):
    """Types TEXT into #open-input as a user would and presses Enter (form submission)."""
    evaluate("(() => { const i = document.getElementById('open-input'); i.value = ''; i.focus();"
             " const e = document.getElementById('open-error'); e.hidden = true; e.textContent = ''; return true; })()")
    call("Input.insertText", page, text=text)
    typed = evaluate("document.getElementById('open-input').value")
    if typed != text:
        print(f"  (typing gave {typed!r}; setting the value instead)")
        evaluate(f"document.getElementById('open-input').value = {json.dumps(text)}")
    for kind in ("keyDown", "keyUp"):
        params = dict(type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13, nativeVirtualKeyCode=13)
        if kind == "keyDown":
            params.update(text="\r", unmodifiedText="\r")
        try:
            call("Input.dispatchKeyEvent", page, **params)
        except RuntimeError as e:  # the key-up after a navigation it started
            print(f"  ({e})")


def js(value):
    return json.dumps(value)


def listing_names():
    return "[...document.querySelectorAll('#listing li')].map(li => li.dataset.name)"


def read(path):
    with open(path, "rb") as f:
        return f.read()


def sha256(path):
    return hashlib.sha256(read(path)).hexdigest()


def open_error():
    return "(() => { const e = document.getElementById('open-error'); return e && !e.hidden ? e.textContent : ''; })()"


# 0. The page loads under the gateway's Content-Security-Policy.
if spec.get("bench_file"):
    # Bench mode (benches/upload.sh): time uploads of one file through the page, private
    # (sealed and coded in the page) then public, and stop. Nothing is asserted.
    def timed_upload(choice):
        navigate(gw + "/")
        # The DevTools copy of every request body (MiBs of shards) would slow the page.
        call("Network.disable", page)
        wait_for("!document.getElementById('upload-button').disabled", 20)
        evaluate(f"document.getElementById('upload-{choice}').click(), true")
        handle = call("Runtime.evaluate", page, expression="document.getElementById('upload-file')")["result"]
        call("DOM.setFileInputFiles", page, files=[spec["bench_file"]], objectId=handle["objectId"])
        evaluate("window.benchStart = performance.now(), document.getElementById('upload-button').click(), true")
        link = wait_for("(() => { const a = document.getElementById('upload-link'); return a ? a.getAttribute('href') : null; })()",
                        600, every=0.05)
        if not link:
            print(f"FAIL the {choice} upload gave no link: {evaluate('document.getElementById(`upload-result`).textContent')}")
            sys.exit(1)
        # From the click to the end of the gateway's last answer, by the page's own clock.
        took = evaluate("""(() => { const ends = performance.getEntriesByType('resource')
          .filter(e => /api\\/(private-)?upload/.test(e.name)).map(e => e.responseEnd);
          return (Math.max(...ends) - window.benchStart) / 1000; })()""")
        return took

    mib = os.path.getsize(spec["bench_file"]) / (1 << 20)
    for choice in ("private", "public"):
        took = timed_upload(choice)
        print(f"bench {choice} upload through the page: {mib:.0f} MiB in {took:.2f} s = {mib / took:.1f} MiB/s", flush=True)
    sys.exit(0)

ready = navigate(gw + "/")
check(bool(ready) and evaluate("document.title") == "Mosaic gateway", f"the home page loads ({evaluate('document.title')})")
csp = documents.get(gw + "/", {}).get("content-security-policy", "")
check("script-src 'self'" in csp and "unsafe-inline" not in csp,
      f"the home page is served with a Content-Security-Policy without inline script ({csp or 'none'})")
a11y = evaluate("""[...document.querySelectorAll('input')].filter(i => !i.labels.length).map(i => i.id)
  .concat(['open-error'].filter(id => document.getElementById(id).getAttribute('role') !== 'alert'))
  .concat(['network-status', 'open-status', 'upload-note'].filter(id => document.getElementById(id).getAttribute('aria-live') !== 'polite'))""")
check(a11y == [], f"every input has a <label>; errors are alerts, statuses aria-live ({a11y})")
kind = evaluate("""(() => { const f = document.getElementById('upload-kind');
  const radios = [...f.querySelectorAll('input[type=radio]')];
  return [f.tagName, (f.querySelector('legend') || {}).textContent,
          radios.map(r => r.id + (r.checked ? ':checked' : '') + '=' + r.labels[0].textContent.trim().replace(/\\s+/g, ' '))]; })()""")
check(bool(kind) and kind[0] == "FIELDSET" and kind[1] and len(kind[2]) == 2 and kind[2][0].startswith("upload-private:checked=Private")
      and kind[2][1].startswith("upload-public=Public"), f"uploads: a fieldset with a legend, Private (checked) or Public ({kind})")
# The colours as the browser resolves them ([r, g, b]).
colours = evaluate("""['--focus', '--field-line', '--bg', '--box'].map(v => {
  const e = document.createElement('span'); e.style.color = `var(${v})`; document.body.append(e);
  const c = getComputedStyle(e).color; e.remove(); return (c.match(/\\d+/g) || []).slice(0, 3).map(Number); })""")


def contrast(a, b):
    def lum(rgb):
        c = [x / 255 for x in rgb]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    hi, lo = sorted([lum(a), lum(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


ratios = [round(contrast(c, bg), 2) for c in colours[:2] for bg in colours[2:]] if colours and all(len(c) == 3 for c in colours) else []
check(bool(ratios) and min(ratios) >= 3, f"the focus ring and field borders have at least 3:1 contrast ({colours}: {ratios})")

# (a) Every storage node is listed with a round-trip time.
nodes = spec["nodes"]
state = wait_for(f"""(() => {{
  const rows = [...document.querySelectorAll('#nodes tbody tr.node')];
  const timed = rows.filter(r => /^\\d+(\\.\\d+)? ms$/.test(r.querySelector('td.rtt').textContent));
  return rows.length === {nodes} && timed.length >= {nodes} ? {{rows: rows.length, timed: timed.length}} : null;
}})()""", 60, between=lambda: evaluate("document.getElementById('network-refresh').click(), true"))
rows = evaluate("document.querySelectorAll('#nodes tbody tr.node').length")
timed = evaluate("[...document.querySelectorAll('#nodes tbody td.rtt')].filter(td => / ms$/.test(td.textContent)).length")
check(bool(state), f"#nodes lists {nodes} storage nodes, each with a round-trip time ({rows} rows, {timed} timed)")
# (Only the home page loaded so far: the share page, not checked here, asks for one.)
icons = [r[1] for r in requests if "favicon" in r[1]]
check(not icons, f"the home page does not ask for a favicon ({icons})")
count = evaluate("document.getElementById('node-count').textContent") or ""
check(str(nodes) in count and "answering" in count, f"#node-count gives the count ({count})")
stats = evaluate("document.getElementById('gateway-stats').textContent") or ""
check("DHT peers" in stats and "Cache" in stats and "Bytes sent" in stats, f"#gateway-stats shows the gateway's counters ({stats[:120]})")
first_id = evaluate("(() => { const c = document.querySelector('#nodes tbody tr.node td.id'); return c ? [c.textContent, c.title] : null; })()")
check(bool(first_id) and len(first_id[1]) == 64 and first_id[0] == first_id[1][:10] + "…",
      f"a node's cell shows 10 hex digits and the whole id in its title ({first_id})")
aligned = evaluate("""[...document.querySelectorAll('#nodes thead th')].map(th => th.textContent + ':' + getComputedStyle(th).textAlign)""")
check(bool(aligned) and all(a.endswith(":right") for a in aligned if a.split(":")[0] in ("RTT", "Blobs", "Announce", "Repair")),
      f"number columns' headers are right-aligned ({aligned})")
DETAILS = """(() => { const b = document.querySelector('#nodes tbody tr.node td.id button');
  const row = b && document.getElementById(b.getAttribute('aria-controls'));
  return b && row ? [b.getAttribute('aria-expanded'), !row.hidden && row.offsetHeight > 0, row.textContent] : null; })()"""
evaluate("document.querySelector('#nodes tbody tr.node td.id button').focus(), true")
for kind in ("keyDown", "keyUp"):
    params = dict(type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13, nativeVirtualKeyCode=13)
    if kind == "keyDown":
        params.update(text="\r", unmodifiedText="\r")
    call("Input.dispatchKeyEvent", page, **params)
details = evaluate(DETAILS)
check(bool(details and first_id) and details[0] == "true" and details[1] and first_id[1] in details[2] and "Blobs" in details[2],
      f"Enter on a node's id opens its details: the whole id and its counters ({details and details[:2]})")
# On a 390 px phone: no sideways scrolling, the counters only in the details row.
call("Emulation.setDeviceMetricsOverride", page, width=390, height=844, deviceScaleFactor=2, mobile=True)
pump(0.5)
phone = evaluate("""(() => { const box = document.querySelector('#nodes').closest('.scroll');
  const extra = document.querySelector('#nodes td.extra');
  return [innerWidth, document.documentElement.scrollWidth, box.scrollWidth, box.clientWidth,
          extra ? getComputedStyle(extra).display : null]; })()""")
details = evaluate(DETAILS)
check(bool(phone) and phone[0] == 390 and phone[1] <= 390 and phone[2] <= phone[3] and phone[4] == "none"
      and bool(details) and details[1] and first_id[1] in details[2],
      f"at 390 px the node table needs no sideways scrolling; the id's details still show ({phone})")
call("Emulation.clearDeviceMetricsOverride", page)
pump(0.3)

# (b) The public directory through the form, then its sub-directory.
site, subdir = spec["site"], spec["subdir"]
index_name, index_path = spec["index"]
text_name, text_path = spec["text"]
type_and_enter(site)
names = wait_for(f"(() => {{ const n = {listing_names()}; return n.includes({js(index_name)}) && n.includes({js(subdir)}) ? n : null; }})()", 45)
check(bool(names), f"opening the directory's id lists {index_name} and {subdir}/ ({names or evaluate(open_error())})")
evaluate(f"document.querySelector('#listing li.dir[data-name={js(subdir)}] button').click(), true")
heading = wait_for(f"""(() => {{ const h = document.getElementById('listing-path');
  return h && h.textContent.includes({js(subdir)}) && {listing_names()}.includes({js(text_name)}) ? h.textContent : null; }})()""", 45)
check(bool(heading), f"the sub-directory opens: #listing-path {heading!r} lists {text_name}")
check(bool(evaluate("!!document.querySelector('#listing li[data-name=\"..\"] button')")), "the sub-directory has a '..' entry")
got = evaluate(f"""(async () => {{ const a = document.querySelector('#listing li[data-name={js(text_name)}] a');
  const r = await fetch(a.href); return [r.status, a.getAttribute('href'), await r.text()]; }})()""")
want = read(text_path).decode()
check(bool(got) and got[0] == 200 and got[2] == want and got[1].endswith(f"/{subdir}/{text_name}"),
      f"the text file's link serves what was uploaded ({got and got[:2]})")

# The media file plays in the page's player.
evaluate(f"document.querySelector('#listing li[data-name=\"..\"] button').click(), true")
wait_for(f"{listing_names()}.includes({js(spec['media'])})", 30)
evaluate(f"document.querySelector('#listing li[data-name={js(spec['media'])}] button.play').click(), true")
player = wait_for("""(() => { const p = document.getElementById('player');
  return p && (p.error || p.readyState >= 1) ? p.tagName + ' readyState=' + p.readyState + (p.error ? ' error ' + p.error.code : '') : null; })()""", 45)
check(bool(player) and player.startswith("VIDEO") and "error" not in player, f"the media file plays in #player ({player})")

# Deep link: #open=ID&path=DIR/ opens the directory on load.
navigate(f"{gw}/#open={site}&path={subdir}%2F")
deep = wait_for(f"{listing_names()}.includes({js(text_name)}) ? document.getElementById('listing-path').textContent : null", 45)
check(bool(deep), f"a #open= link opens the directory on load ({deep})")

# (c) The name, through the form.
name = spec["name"]
navigate(gw + "/")
type_and_enter(name)
via = None
end = time.time() + 60
while time.time() < end:
    via = wait_for(f"""(() => {{ const v = document.querySelector('#open-result .via'); const n = {listing_names()};
      return v && n.includes({js(index_name)}) && n.includes({js(subdir)}) ? v.textContent : null; }})()""", 4)
    if via:
        break
    if evaluate(open_error()):  # not published yet, or the DHT not settled: ask again
        print(f"  (name not open yet: {evaluate(open_error())}; asking again)")
        type_and_enter(name)
check(bool(via) and "via name" in via and name in via, f"the name opens the same directory ({via or evaluate(open_error())})")
got = evaluate(f"""(async () => {{ const a = document.querySelector('#listing li[data-name={js(index_name)}] a');
  if (!a) return null; const r = await fetch(a.href); return [r.status, a.getAttribute('href'), await r.text()]; }})()""")
check(bool(got) and got[0] == 200 and got[2] == read(index_path).decode() and got[1].startswith(f"/n/{name}/"),
      f"through the name, {index_name}'s link is under /n/ and serves the uploaded page ({got and got[:2]})")

# (d) Upload through the page.
enabled = wait_for("!document.getElementById('upload-button').disabled", 20)
check(bool(enabled), "uploads are enabled (the gateway runs with --allow-uploads)")
evaluate("document.getElementById('upload-public').click(), true")
check(evaluate("document.getElementById('upload-public').checked") is True, "the Public choice is selected")
handle = call("Runtime.evaluate", page, expression="document.getElementById('upload-file')")["result"]
call("DOM.setFileInputFiles", page, files=[spec["upload"]], objectId=handle["objectId"])
check(evaluate("document.getElementById('upload-file').files.length") == 1, "the file input holds the file")
evaluate("document.getElementById('upload-button').click(), true")
link = wait_for("(() => { const a = document.getElementById('upload-link'); return a ? a.getAttribute('href') : null; })()", 90)
result = link or evaluate("document.getElementById('upload-result').textContent")
check(bool(link), f"the upload gives a link ({result})")
if link:
    digest = evaluate("""(async () => {
      const r = await fetch(document.getElementById('upload-link').href); const b = await r.arrayBuffer();
      const d = await crypto.subtle.digest('SHA-256', b);
      return [r.status, b.byteLength, [...new Uint8Array(d)].map(x => x.toString(16).padStart(2, '0')).join('')]; })()""")
    size = len(read(spec["upload"]))
    check(bool(digest) and digest == [200, size, sha256(spec["upload"])],
          f"the uploaded file read back through its link has the same SHA-256 ({digest and digest[:2]}, {size} bytes sent)")
    bar = evaluate("(() => { const p = document.getElementById('upload-progress'); return [p.value, p.max]; })()")
    check(bool(bar) and bar[1] > 0 and bar[0] == bar[1], f"#upload-progress is full ({bar})")
    posts = [r for r in requests if r[4] == "POST" and "/api/upload?name=" in r[1]]
    check(len(posts) == 1, f"one POST /api/upload?name=… ({[r[1] for r in posts]})")
    evaluate("document.getElementById('upload-open').click(), true")
    opened = wait_for(f"""(() => {{ const a = document.getElementById('open-link');
      return a && a.getAttribute('href') === {js(link)} ? a.getAttribute('href') : null; }})()""", 45)
    check(bool(opened), f"the upload's Open button shows it in the Open section ({opened or evaluate(open_error())})")

# (d2) A private upload: sealed and erasure-coded in the page (3 segments), read back
# through its share link; the gateway gets shards and the manifest, never the key.
private_cap = None
private_path = spec["private_upload"]
sealed_name = private_path.rsplit("/", 1)[-1]
navigate(gw + "/")
wait_for("!document.getElementById('upload-button').disabled", 20)
check(evaluate("document.getElementById('upload-private').checked") is True, "Private is the default choice")
# The radio group works from the keyboard: arrows move the choice.
evaluate("document.getElementById('upload-public').click(), document.getElementById('upload-public').focus(), true")
for kind in ("keyDown", "keyUp"):
    call("Input.dispatchKeyEvent", page, type=kind, key="ArrowUp", code="ArrowUp",
         windowsVirtualKeyCode=38, nativeVirtualKeyCode=38)
chosen = evaluate("[document.activeElement.id, document.getElementById('upload-private').checked]")
check(chosen == ["upload-private", True], f"the arrow keys move the choice back to Private ({chosen})")
handle = call("Runtime.evaluate", page, expression="document.getElementById('upload-file')")["result"]
call("DOM.setFileInputFiles", page, files=[private_path], objectId=handle["objectId"])
first_request = len(requests)
evaluate("document.getElementById('upload-button').click(), true")
share = wait_for(f"""(() => {{ const a = document.getElementById('upload-link'); const h = a ? a.getAttribute('href') : '';
  return h.startsWith({js(gw + "/s/#mr1")}) ? h : null; }})()""", 120)
result = share or evaluate("document.getElementById('upload-result').textContent")
check(bool(share) and share.endswith("/" + sealed_name),
      f"the private upload gives a share link {gw}/s/#mr1…/{sealed_name} ({result if not share else share[:len(gw) + 10] + '…'})")
if share:
    private_cap = share.split("#", 1)[1].split("/", 1)[0]
    with open(spec["private_cap_out"], "w") as f:
        f.write(private_cap)
    bar = evaluate("""(() => { const p = document.getElementById('upload-progress');
      return [p.value, p.max, document.getElementById('upload-progress-text').textContent]; })()""")
    check(bool(bar) and bar[0] == bar[1] == 3, f"#upload-progress counts the 3 segments ({bar})")
    note = evaluate("document.getElementById('upload-result').textContent") or ""
    check("key" in note and "whoever has it" in note, f"the result says the link holds the key ({note[:60]}…)")
    pump(0.5)
    during = [r for r in requests[first_request:] if r[1] != "(extra info)"]
    posts = [r[1][len(gw):] for r in during if r[4] == "POST"]
    size = len(read(private_path))
    session = posts[1].split("/")[3] if len(posts) > 1 else "?"
    want = [f"/api/private-upload/begin?length={size}"] + \
        [f"/api/private-upload/{session}/segment/{i}" for i in range(3)] + [f"/api/private-upload/{session}/manifest"]
    check(posts == want, f"the page POSTed begin, segments 0-2 in order and the manifest ({posts})")
    public = [r[1] for r in during if "/api/upload" in r[1]]
    check(not public, f"nothing went to the public /api/upload during the private upload ({public})")
    # The share link, through the page's Open button: the share page's worker decrypts.
    evaluate("document.getElementById('upload-open').click(), true")
    where = wait_for("location.pathname === '/s/' ? location.hash : null", 20)
    check(where == share[share.index("#"):], f"the Open button goes to the share link ({where and where[:12]}…)")
    state = wait_for("(document.body && ['ready', 'error'].includes(document.body.dataset.state)) ? document.body.dataset.state : null", 60)
    shown = evaluate("[(document.getElementById('name') || {}).textContent, (document.getElementById('status') || {}).textContent]")
    check(state == "ready" and shown and shown[0] == sealed_name, f"the share page opens the private upload ({state}: {shown})")
    digest = evaluate("""(async () => {
      const r = await fetch(document.getElementById('download').href.replace('?download=1', ''));
      const b = await r.arrayBuffer(); const d = await crypto.subtle.digest('SHA-256', b);
      return [r.status, b.byteLength, [...new Uint8Array(d)].map(x => x.toString(16).padStart(2, '0')).join('')]; })()""")
    check(digest == [200, size, sha256(private_path)],
          f"the private upload read back through the share page has the same SHA-256 ({digest and digest[:2]}, {size} bytes sealed)")
navigate(gw + "/")

# (e) Garbage: the page's own error, then the gateway's.
type_and_enter("this is not an id")
err = wait_for(open_error(), 10)
check(bool(err and err.strip()), f"text that names nothing shows #open-error ({err})")
type_and_enter("mi1notarealid")
err = wait_for(open_error(), 30)
asked = any("/api/open/mi1notarealid" in r[1] for r in requests)
check(bool(err and err.strip()) and asked, f"a malformed id shows the gateway's error in #open-error ({err}; asked: {asked})")
private = spec["private_name"]
type_and_enter(private)
err = wait_for(open_error(), 10)
check(bool(err) and "private name" in err and "mosaic name resolve" in err, f"a private name is not sent ({err})")

# (f) A share link and a bare readcap go to the share page; the cap is never sent.
cap, cap_name = spec["readcap"], spec["readcap_name"]
type_and_enter(f"{gw}/s/#{cap}/{cap_name}")
where = wait_for("location.pathname === '/s/' ? location.pathname + location.hash : null", 20)
check(where == f"/s/#{cap}/{cap_name}", f"a share link typed in the form opens the share page ({where and where[:24]}…)")
state = wait_for("(document.body && ['ready', 'error'].includes(document.body.dataset.state)) ? document.body.dataset.state : null", 45)
status = evaluate("(document.getElementById('status') || {}).textContent || ''")
check(state == "ready", f"the share page opens the private file ({state}: {status})")
navigate(gw + "/")
type_and_enter(cap)
where = wait_for("location.pathname === '/s/' ? location.pathname + location.hash : null", 20)
check(where == f"/s/#{cap}", f"a bare readcap typed in the form opens the share page ({where and where[:24]}…)")
pump(1)

# What the browser sent: no readcap or its key, no private name, nothing to another origin.
def secret_forms(cap):
    """The readcap, a piece of it, and its key in the usual encodings."""
    raw = base64.b32decode(cap[3:].upper() + "=" * (-len(cap[3:]) % 8))
    key = raw[32:64]
    return [cap, cap[56:100], key.hex(), base64.b64encode(key).decode(),
            base64.urlsafe_b64encode(key).decode().rstrip("="), base64.b32encode(key).decode().rstrip("=").lower()]


forms = secret_forms(cap) + (secret_forms(private_cap) if private_cap else []) + [private]
text = json.dumps(requests).lower()
leaks = [f for f in forms if f.lower() in text]
sent = [r for r in requests if r[1] != "(extra info)"]
check(not leaks and any("/api/open/" in r[1] for r in sent) and bool(private_cap),
      f"no request holds a readcap (typed in, or made by the page's upload), its key or the private name ({len(sent)} requests; leaks: {leaks})")
foreign = sorted({r[1] for r in sent if not r[1].startswith(gw + "/") and not r[1].startswith(("data:", "blob:", "about:"))})
check(not foreign, f"every request went to the gateway ({foreign[:5]})")
check(not problems, f"no script error or Content-Security-Policy violation in the pages ({problems[:3]})")

with open(spec["requests_out"], "w") as f:
    json.dump(requests, f)
sys.exit(1 if failures else 0)
