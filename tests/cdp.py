"""The DevTools-protocol plumbing the browser tests share (tests/share_browser.py,
tests/ui_browser.py): connect to a headless Chromium, attach a page and every service
worker explicitly, record what they request, report their errors.

Targets are attached one by one rather than with a browser-level
`Target.setAutoAttach`, which in Chromium 156 stops <video> requests from reaching a
service worker. A worker is attached as it is created; requests it makes before its
`Network.enable` lands (its module fetch, at most) are only in the gateway's log.
"""

import json
import sys
import time
import urllib.request

import websocket  # websocket-client, from PyPI


class Browser:
    """One DevTools connection. `requests` holds (target type, url, headers, post data,
    method) for every request of the attached targets; `documents` the response headers
    of every document (by URL); `problems` the page's exceptions and policy reports;
    `events` every event when `keep_events`."""

    def __init__(self, port, keep_events=False):
        deadline = time.time() + 30
        while True:
            try:
                url = f"http://127.0.0.1:{port}/json/version"
                version = json.load(urllib.request.urlopen(url))
                break
            except Exception:
                if time.time() > deadline:
                    print("FAIL chromium did not start")
                    sys.exit(1)
                time.sleep(0.3)
        self.ws = websocket.create_connection(version["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0
        self.requests = []
        self.documents = {}
        self.problems = []
        self.sessions = {}  # session id -> target type
        self.events = []
        self.keep_events = keep_events

    def send(self, method, session=None, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        return self.next_id

    def on_event(self, msg):
        method, params, session = msg.get("method"), msg.get("params", {}), msg.get("sessionId")
        kind = self.sessions.get(session)
        if method == "Target.attachedToTarget":
            sid, new = params["sessionId"], params["targetInfo"]["type"]
            self.sessions[sid] = new
            self.send("Network.enable", sid)
            if new == "page":
                self.send("Page.enable", sid)
                self.send("Log.enable", sid)
            self.send("Runtime.enable", sid)
            self.send("Runtime.runIfWaitingForDebugger", sid)
        elif method == "Target.targetCreated" and params["targetInfo"]["type"] == "service_worker":
            self.send("Target.attachToTarget", targetId=params["targetInfo"]["targetId"], flatten=True)
        elif method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text")
            print(f"  ({kind}) exception: {text}", flush=True)
            if kind == "page":
                self.problems.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            print(f"  ({kind}) console.{params['type']}: {args}", flush=True)
        elif method == "Log.entryAdded":
            entry = params["entry"]
            if "Content Security Policy" in entry.get("text", "") and kind == "page":
                print(f"  ({kind}) {entry['text']}", flush=True)
                self.problems.append(entry["text"])
        elif method == "Network.requestWillBeSent":
            r = params["request"]
            # request.url never holds the fragment (CDP keeps it in urlFragment): what was sent.
            self.requests.append((self.sessions.get(session, "?"), r["url"], r.get("headers", {}),
                                  r.get("postData", ""), r.get("method", "")))
        elif method == "Network.requestWillBeSentExtraInfo":
            self.requests.append((self.sessions.get(session, "?"), "(extra info)", params.get("headers", {}), "", ""))
        elif method == "Network.responseReceived" and params.get("type") == "Document":
            r = params["response"]
            self.documents[r["url"]] = {k.lower(): v for k, v in r.get("headers", {}).items()}
        if self.keep_events:
            self.events.append(msg)

    def call(self, method, session=None, **params):
        i = self.send(method, session, **params)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.on_event(msg)

    def pump(self, seconds):
        """Handles events for `seconds`."""
        self.ws.settimeout(seconds)
        try:
            while True:
                self.on_event(json.loads(self.ws.recv()))
        except websocket.WebSocketTimeoutException:
            pass
        finally:
            self.ws.settimeout(60)

    def discover(self):
        """Service workers are attached as they are created from now on."""
        self.call("Target.setDiscoverTargets", discover=True)

    def open_page(self):
        """A new blank page, attached; its session id."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.call("Target.attachToTarget", targetId=target, flatten=True)
        for _ in range(50):
            self.pump(0.1)
            page = next((s for s, k in self.sessions.items() if k == "page"), None)
            if page:
                return page
        print("FAIL no page session")
        sys.exit(1)
