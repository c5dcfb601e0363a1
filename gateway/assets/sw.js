// Mosaic's share page service worker (served by the gateway at /s/sw.js).
//
// It reads private files without the gateway learning their key: the page hands it the
// readcap from the URL fragment (which browsers never send), and it answers the page's
// requests for /s/file/TOKEN/NAME (Range included, so <video> seeks) by fetching the
// manifest and the needed byte ranges of k columns from the gateway's trustless
// endpoint (/blob/HASH?format=bao&start=S&end=E), verifying every 16 KiB chunk group
// against its BLAKE3 hash, rebuilding with Reed-Solomon from other columns when one is
// missing or fails, and opening each segment (XChaCha20-Poly1305), all in mosaic.wasm:
// Mosaic's codec compiled from the same Rust crate as the native one.
//
// Memory is bounded: a response holds at most READ_AHEAD segments (4 MiB at the
// default segment size), whatever the file size.
"use strict";

const SCOPE = new URL("./", self.location).pathname; // "/s/"
const FILE_PREFIX = SCOPE + "file/";
const FETCH_TIMEOUT_MS = 30000;
// Segments in flight per response: enough to hide a round trip to the gateway.
const READ_AHEAD = 4;

let wasm = null;
const wasmReady = (async () => {
  const imports = {
    env: {
      // The module's only import: the page's CSPRNG (for uploads; reading needs none).
      mosaic_random(ptr, len) {
        for (let at = 0; at < len; at += 65536) {
          const n = Math.min(65536, len - at);
          crypto.getRandomValues(new Uint8Array(wasm.memory.buffer, (ptr >>> 0) + at, n));
        }
      },
    },
  };
  const { instance } = await WebAssembly.instantiateStreaming(fetch(SCOPE + "mosaic.wasm"), imports);
  wasm = instance.exports;
  return wasm;
})();

// --- the module's calling convention: one input buffer, one output buffer ---

function input(bytes) {
  const ptr = wasm.mosaic_input(bytes.length) >>> 0;
  new Uint8Array(wasm.memory.buffer, ptr, bytes.length).set(bytes);
}

function output() {
  return new Uint8Array(wasm.memory.buffer, wasm.mosaic_output_ptr() >>> 0, wasm.mosaic_output_len() >>> 0);
}

function failure() {
  const text = new TextDecoder().decode(output());
  const nl = text.indexOf("\n");
  const e = new Error(text.slice(nl + 1));
  e.kind = text.slice(0, nl);
  return e;
}

// --- files opened by pages, by the random token the page chose ---

const files = new Map();

async function gatewayError(response) {
  const text = (await response.text()).trim();
  return new Error(`the gateway answered ${response.status}${text ? ": " + text : ""}`);
}

async function trustless(hash, start, end) {
  const range = start === undefined ? "" : `&start=${start}&end=${end}`;
  const r = await fetch(`/blob/${hash}?format=bao${range}`, {
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    cache: "no-store",
    referrerPolicy: "no-referrer",
  });
  if (!r.ok) throw await gatewayError(r);
  return new Uint8Array(await r.arrayBuffer());
}

async function openFile(token, cap) {
  const known = files.get(token);
  if (known) return known.info;
  await wasmReady;
  const capBytes = new TextEncoder().encode(cap);
  input(capBytes);
  if (wasm.mosaic_parse_cap(capBytes.length) < 0) throw failure();
  const id = new TextDecoder().decode(output());
  let manifest;
  try {
    manifest = await trustless(id);
  } catch (e) {
    e.kind = e.kind || "network";
    e.message = `the file's manifest could not be fetched: ${e.message}`;
    throw e;
  }
  const both = new Uint8Array(capBytes.length + manifest.length);
  both.set(capBytes);
  both.set(manifest, capBytes.length);
  input(both);
  const handle = wasm.mosaic_open(capBytes.length, manifest.length);
  input(new Uint8Array(capBytes.length)); // do not leave the cap in the input buffer
  if (handle < 0) throw failure();
  const info = JSON.parse(new TextDecoder().decode(output()));
  files.set(token, {
    handle,
    info,
    bad: new Set(),
    stats: { bytes: 0, wasmMs: 0, segments: 0, faults: 0, requests: 0 },
  });
  return info;
}

async function tell(message) {
  for (const client of await self.clients.matchAll({ includeUncontrolled: true })) {
    client.postMessage(message);
  }
}

// The plaintext of segment `i`: answers for k columns fetched, then, in one
// synchronous step (so no other segment interleaves in the module), each verified
// straight into the decoder and the segment opened. A column that fails, on the network
// or in verification, is replaced by the next one (parity: Reed-Solomon rebuilds).
async function segment(token, file, i) {
  const { k, n, stride, last_shard, segments, columns } = file.info;
  const start = i * stride;
  const end = start + (i === segments - 1 ? last_shard : stride);
  // Data columns first (no rebuild needed), columns that failed before last.
  const order = [...Array(n).keys()].sort((a, b) => (file.bad.has(a) - file.bad.has(b)) || a - b);
  const answers = new Map();
  const faults = [];
  let forged = false; // a column failed verification (not only the network)
  let next = 0;
  const fault = (c, e) => {
    forged = forged || e.kind === "corrupt";
    file.bad.add(c);
    file.stats.faults++;
    faults.push(`column ${c}: ${e.message}`);
    tell({ type: "fault", token, segment: i, column: c, message: e.message });
  };
  for (;;) {
    const batch = order.slice(next, next + (k - answers.size));
    next += batch.length;
    await Promise.all(batch.map(async (c) => {
      try {
        answers.set(c, await trustless(columns[c], start, end));
        file.stats.requests++;
      } catch (e) {
        fault(c, e);
      }
    }));
    if (answers.size < k) {
      if (next < n) continue;
      const e = new Error(`segment ${i}: fewer than the ${k} columns needed are usable (${faults.length} of ${n} failed: ${faults.join("; ")})`);
      e.kind = forged ? "corrupt" : "network";
      throw e;
    }
    const t0 = performance.now();
    if (wasm.mosaic_begin(file.handle, i) < 0) throw failure();
    for (const [c, answer] of answers) {
      input(answer);
      if (wasm.mosaic_verify(file.handle, c, i, answer.length) < 0) {
        fault(c, failure());
        answers.delete(c);
      }
    }
    if (answers.size < k) {
      file.stats.wasmMs += performance.now() - t0;
      continue; // fetch replacements, then verify all again from a fresh segment
    }
    if (wasm.mosaic_open_segment(file.handle, i) < 0) throw failure();
    const plain = new Uint8Array(wasm.memory.buffer, wasm.mosaic_plain_ptr() >>> 0, wasm.mosaic_plain_len() >>> 0).slice();
    file.stats.wasmMs += performance.now() - t0;
    file.stats.bytes += plain.length;
    file.stats.segments++;
    return plain;
  }
}

function contentDisposition(name) {
  const safe = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${safe}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

// One byte range; null for none, "bad" for a header this cannot satisfy.
function parseRange(header, length) {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return "bad";
  let start, end;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "bad";
    start = Math.max(0, length - suffix);
    end = length;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? length : Math.min(length, Number(m[2]) + 1);
  }
  if (start >= length || start >= end) return "bad";
  return { start, end };
}

function textResponse(status, text, headers = {}) {
  return new Response(text + "\n", {
    status,
    headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store", ...headers },
  });
}

async function serve(request, url) {
  const rest = url.pathname.slice(FILE_PREFIX.length);
  const token = rest.split("/")[0];
  const file = files.get(token);
  if (!file) {
    return textResponse(404, "this file is not open in this browser any more: open the share link again");
  }
  const { length, segment_size: S } = file.info;
  const range = parseRange(request.headers.get("Range"), length);
  if (range === "bad") {
    return textResponse(416, "range not satisfiable", { "Content-Range": `bytes */${length}` });
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : length;
  const headers = {
    "Content-Type": file.info.type || "application/octet-stream",
    "Content-Length": String(end - start),
    "Accept-Ranges": "bytes",
    "Cache-Control": "no-store",
  };
  if (range) headers["Content-Range"] = `bytes ${start}-${end - 1}/${length}`;
  if (url.searchParams.get("download") === "1") {
    headers["Content-Disposition"] = contentDisposition(file.info.name || decodeURIComponent(rest.split("/")[1] || "file"));
  }
  const status = range ? 206 : 200;
  if (request.method === "HEAD" || end === start) return new Response(null, { status, headers });

  // Segments are fetched and opened up to READ_AHEAD at a time (their wasm work is
  // synchronous, so they never interleave); the response holds at most that many.
  let seg = Math.floor(start / S);
  const lastSeg = Math.floor((end - 1) / S);
  const pending = new Map();
  const want = (from) => {
    for (let i = from; i < from + READ_AHEAD && i <= lastSeg; i++) {
      if (!pending.has(i)) {
        const p = segment(token, file, i);
        p.catch(() => {}); // awaited below; a cancelled response may never await it
        pending.set(i, p);
      }
    }
  };
  const take = (i) => {
    want(i);
    const p = pending.get(i);
    pending.delete(i);
    return p;
  };
  // The first segment is in hand before the head is sent, so a file that cannot be
  // read gets an error status rather than a truncated body.
  let first;
  try {
    first = await take(seg);
  } catch (e) {
    tell({ type: "error", token, kind: e.kind || "network", message: e.message });
    return textResponse(502, e.message);
  }
  let pos = start;
  // A media element often stops reading mid-response (it seeks, or has enough):
  // that cancels the stream, and is not an error.
  let cancelled = false;
  const body = new ReadableStream({
    async pull(controller) {
      let plain;
      try {
        plain = first || (await take(seg));
      } catch (e) {
        if (!cancelled) {
          tell({ type: "error", token, kind: e.kind || "network", message: e.message });
          controller.error(e);
        }
        return;
      }
      first = null;
      if (cancelled) return;
      const base = seg * S;
      const to = Math.min(end - base, plain.length);
      controller.enqueue(plain.subarray(pos - base, to));
      pos = base + to;
      seg++;
      if (pos >= end) controller.close();
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 1 });
  return new Response(body, { status, headers });
}

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(FILE_PREFIX)) return;
  event.respondWith(serve(event.request, url));
});

self.addEventListener("message", (event) => {
  const msg = event.data || {};
  const port = event.ports[0];
  const reply = (value) => port && port.postMessage(value);
  if (msg.type === "open") {
    event.waitUntil(openFile(msg.token, msg.cap).then(
      (info) => reply({ info }),
      (e) => reply({ error: e.message, kind: e.kind || "network" }),
    ));
  } else if (msg.type === "stats") {
    const file = files.get(msg.token);
    reply(file ? { stats: file.stats } : { error: "no such file" });
  } else if (msg.type === "close") {
    const file = files.get(msg.token);
    if (file) {
      wasm.mosaic_close(file.handle);
      files.delete(msg.token);
    }
    reply({});
  }
});
