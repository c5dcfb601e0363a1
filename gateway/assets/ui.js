// The gateway's home page (served at /, this file at /ui/ui.js): the storage nodes and
// this gateway's counters (GET /api/network, every 10 s), opening public ids and names
// and browsing their directories (GET /api/open/TOKEN?path=DIR/), and uploads: private
// ones sealed and erasure-coded in this page by the share page's codec module
// (/s/mosaic.wasm; POST /api/private-upload/…: the gateway gets ciphertext shards and
// the manifest, never the key), public ones as they are (POST /api/upload?name=NAME).
// A readcap (mr1…) or a private name (ms1…) holds a key: neither is ever sent to the
// server. A readcap opens in the share page (/s/#CAP/NAME), whose fragment browsers
// never send, and which decrypts in the browser.
"use strict";

const $ = (id) => document.getElementById(id);

// el("a", {href: "/x", class: "c", "data-name": "n"}, "text", child…)
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k.includes("-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children);
  return e;
}

function human(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  // 1023.95 and up: the next unit (no "1024.0 MiB").
  while (bytes >= 1023.95 && i < units.length - 1) { bytes /= 1024; i++; }
  return `${i ? bytes.toFixed(1) : bytes} ${units[i]}`;
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
const message = (e) => (e && e.message ? e.message : String(e));

// The text of an error answer (the gateway's errors are plain text saying what is wrong).
async function errorText(response) {
  let text = "";
  try { text = (await response.text()).trim(); } catch (_) { /* keep the status */ }
  return (text || `HTTP ${response.status} ${response.statusText}`).slice(0, 1000);
}

async function getJson(url, options = {}) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store", ...options });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new Error(`the gateway did not answer (${message(e)})`);
  }
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

// ---- Network ---------------------------------------------------------------------

let networkBusy = false;

async function refreshNetwork() {
  if (networkBusy) return;
  networkBusy = true;
  $("network-refresh").disabled = true;
  try {
    const net = await getJson("/api/network");
    showGateway(net.gateway || {});
    showNodes(net.nodes || []);
    $("network-status").textContent = "";
    $("network-updated").textContent = `Updated at ${new Date().toLocaleTimeString()}.`;
  } catch (e) {
    $("network-status").textContent = `Could not read the network: ${message(e)}`;
  } finally {
    networkBusy = false;
    $("network-refresh").disabled = false;
  }
}

function showGateway(g) {
  const cache = g.cache || {};
  // The gateway says 0 before any lookup; a lookup (hit or miss) leaves segments cached.
  let ratio = "no lookups yet";
  if (cache.capacity === 0) ratio = "off";
  else if (typeof cache.hit_ratio === "number" && (cache.hit_ratio > 0 || cache.bytes > 0)) {
    ratio = `${(cache.hit_ratio * 100).toFixed(0)} % hits`;
  }
  const pairs = [
    ["Version", g.version || "—"],
    ["DHT peers", String(g.dht_peers ?? "—")],
    ["Cache", `${human(cache.bytes)} of ${human(cache.capacity)}, ${ratio}`],
    ["Responses", String(g.responses ?? "—")],
    ["Bytes sent", human(g.bytes_sent)],
    ["Uploads", g.uploads ? "accepted (private or public)" : "not accepted"],
  ];
  $("gateway-stats").replaceChildren(
    ...pairs.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
  uploadMax = typeof g.upload_max === "number" ? g.upload_max : null;
  setUploads(g.uploads === true);
}

// Nodes whose details row is open, by id (kept across refreshes).
const openNodes = new Set();

function nodeDetails(n, id, rowId) {
  const pair = (k, v) => el("div", {}, el("dt", {}, k), el("dd", {}, v));
  return el("tr", { class: "node-more", id: rowId },
    el("td", { colSpan: 7 }, el("dl", { class: "stats" },
      pair("Node id", el("code", { class: "id-text" }, id)),
      pair("Blobs", String(n.blobs ?? "—")),
      pair("Not yet announced", String(n.announce_backlog ?? "—")),
      pair("Waiting for repair", String(n.repair_backlog ?? "—")),
      pair("Version", n.version || "—"))));
}

function showNodes(nodes) {
  // A refresh replaces the rows: keep the keyboard focus on the same node's button.
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.node : undefined;
  const rows = [];
  nodes.forEach((n, i) => {
    const id = String(n.id || "");
    const free = typeof n.capacity === "number" && typeof n.used === "number" ? Math.max(0, n.capacity - n.used) : null;
    const rtt = typeof n.rtt_ms === "number" ? `${n.rtt_ms.toFixed(n.rtt_ms < 100 ? 1 : 0)} ms` : "—";
    const rowId = `node-more-${i}`;
    const open = openNodes.has(id);
    const toggle = el("button", { type: "button", class: "link", "aria-expanded": String(open),
      "aria-controls": rowId, "data-node": id }, el("code", {}, `${id.slice(0, 10)}…`));
    const details = nodeDetails(n, id, rowId);
    details.hidden = !open;
    toggle.addEventListener("click", () => {
      const now = toggle.getAttribute("aria-expanded") !== "true";
      if (now) openNodes.add(id); else openNodes.delete(id);
      toggle.setAttribute("aria-expanded", String(now));
      details.hidden = !now;
    });
    rows.push(el("tr", { class: `node${n.error ? " down has-error" : ""}` },
      el("td", { class: "id", title: id }, toggle),
      el("td", { class: "rtt" }, rtt),
      el("td", { class: "space" }, `${human(n.used)} / ${human(n.capacity)}`,
        el("span", { class: "free" }, ` (${human(free)} free)`)),
      el("td", { class: "num extra" }, String(n.blobs ?? "—")),
      el("td", { class: "num extra" }, String(n.announce_backlog ?? "—")),
      el("td", { class: "num extra" }, String(n.repair_backlog ?? "—")),
      el("td", { class: "error" }, n.error || "")));
    // On a phone the Error column is hidden: the error gets a row of its own.
    if (n.error) rows.push(el("tr", { class: "node-error" }, el("td", { colSpan: 7, class: "error" }, n.error)));
    rows.push(details);
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colSpan: 7 }, "No storage node found in the DHT yet.")));
  $("nodes").tBodies[0].replaceChildren(...rows);
  if (focused) {
    const again = [...document.querySelectorAll("#nodes button[data-node]")].find((b) => b.dataset.node === focused);
    if (again) again.focus();
  }
  const answering = nodes.filter((n) => !n.error).length;
  $("node-count").textContent = `${plural(nodes.length, "storage node", "storage nodes")}, ${answering} answering`;
}

// ---- Open ------------------------------------------------------------------------

const MEDIA = {
  video: ["mp4", "webm", "mkv", "mov", "ogv"],
  audio: ["mp3", "m4a", "ogg", "oga", "wav", "flac", "opus"],
  image: ["png", "jpg", "jpeg", "gif", "webp", "svg", "avif"],
};

function mediaKind(type, name) {
  const top = (type || "").split("/")[0];
  if (top in MEDIA) return top;
  const ext = (name || "").includes(".") ? name.split(".").pop().toLowerCase() : "";
  return Object.keys(MEDIA).find((k) => MEDIA[k].includes(ext)) || "";
}

const decode = (s) => { try { return decodeURIComponent(s); } catch (_) { return s; } };
const encodePath = (path) => path.split("/").map(encodeURIComponent).join("/");

// What the text names: {kind: "share", cap, name} | {kind: "private"} |
// {kind: "public", token, path} | null.
function parseOpen(input) {
  const text = input.trim();
  let m = text.match(/^(?:\S*#)?(mr1[a-z0-9]+)(?:\/(\S*))?$/i);
  if (m) return { kind: "share", cap: m[1], name: m[2] || "" };
  if (/(?:^|[/#=])ms1[a-z0-9]+/i.test(text)) return { kind: "private" };
  m = text.match(/^(?:https?:\/\/[^/?#\s]+)?(?:\/?[pn]\/)?((?:mi1|mn1)[a-z0-9]+)(?:\/([^?#\s]*))?(?:[?#]\S*)?$/i);
  if (m) {
    // A link into a directory lists the directory the link is in.
    const rest = m[2] || "";
    const dir = rest.slice(0, rest.lastIndexOf("/") + 1);
    return { kind: "public", token: m[1], path: dir.split("/").map(decode).join("/") };
  }
  return null;
}

function showOpenError(text) {
  $("open-status").textContent = "";
  $("open-error").textContent = text;
  $("open-error").hidden = false;
}

function clearOpen() {
  $("open-error").hidden = true;
  $("open-error").textContent = "";
}

// Opens what the form (or a #open= link) names; path: a directory inside it ("a/b/").
function openText(text, path) {
  clearOpen();
  const what = parseOpen(text);
  if (!what) {
    showOpenError("Not something this page can open: paste a share link (…/s/#mr1…), a readcap (mr1…), " +
      "a public id (mi1…), a name (mn1…), or a gateway link to one (/p/mi1…, /n/mn1…/).");
  } else if (what.kind === "private") {
    showOpenError("this is a private name: resolve it with `mosaic name resolve`");
  } else if (what.kind === "share") {
    // The readcap goes into the share page's fragment, which the browser never sends.
    $("open-status").textContent = "Opening the share page, which decrypts in this browser…";
    location.href = `/s/#${what.cap}${what.name ? `/${what.name}` : ""}`;
  } else {
    openToken(what.token, path || what.path);
  }
}

let openAbort = null;

async function openToken(token, path = "", focusHeading = false) {
  clearOpen();
  if (openAbort) openAbort.abort();
  const ctl = (openAbort = new AbortController());
  $("open-status").textContent = `Looking up ${token.slice(0, 16)}…${path ? ` /${path}` : ""} (a DHT lookup can take a few seconds)`;
  const query = path ? `?path=${encodeURIComponent(path)}` : "";
  let info;
  try {
    info = await getJson(`/api/open/${encodeURIComponent(token)}${query}`, { signal: ctl.signal });
  } catch (e) {
    if (e.name !== "AbortError") showOpenError(message(e));
    return;
  }
  if (ctl !== openAbort) return;
  openAbort = null;
  const out = $("open-result");
  out.replaceChildren();
  if (info.name) {
    out.append(el("p", { class: "via" }, "via name ", el("code", {}, info.name.key), ` (sequence ${info.name.seq})`));
  }
  if (info.kind === "directory") showDirectory(out, token, info);
  else showFile(out, info);
  $("open-status").textContent = info.kind === "directory"
    ? `Listed /${info.path || ""}: ${plural((info.entries || []).length, "entry", "entries")}.`
    : `Opened a file of ${human(info.size)}.`;
  history.replaceState(null, "", `#open=${encodeURIComponent(token)}${info.path ? `&path=${encodeURIComponent(info.path)}` : ""}`);
  if (focusHeading) $("listing-path").focus();
}

function showFile(out, info) {
  const kind = mediaKind(info.media_type, info.file_name);
  out.append(
    el("h3", {}, info.file_name || "A public file"),
    el("dl", { class: "stats" },
      el("div", {}, el("dt", {}, "Id"), el("dd", {}, el("code", { class: "id-text" }, info.id || ""))),
      el("div", {}, el("dt", {}, "Size"), el("dd", {}, human(info.size))),
      el("div", {}, el("dt", {}, "Media type"), el("dd", {}, info.media_type || "unknown"))),
    el("p", { class: "links" },
      el("a", { id: "open-link", href: info.href }, "Open the file"), " ",
      el("a", { href: `${info.href}?download=1` }, "Download")));
  if (kind) {
    const box = el("div", { class: "player-box" });
    out.append(box);
    showPlayer(box, kind, info.href, info.file_name || info.id || "file");
  }
}

function showDirectory(out, token, info) {
  const path = info.path || "";
  let base = info.href.endsWith("/") ? info.href : `${info.href}/`;
  // The directory's root (should the gateway's href already name the path, drop it).
  if (path && base.endsWith(`/${encodePath(path)}`)) base = base.slice(0, -encodePath(path).length);
  const list = el("ul", { id: "listing" });
  const box = el("div", { class: "player-box" });
  if (path) {
    const up = path.split("/").slice(0, -2).join("/");
    list.append(el("li", { class: "dir", "data-name": ".." },
      el("button", { type: "button", class: "link", "aria-label": "Up to the parent directory",
        onclick: () => openToken(token, up ? `${up}/` : "", true) }, "..")));
  }
  const entries = [...(info.entries || [])].sort((a, b) => (b.dir - a.dir) || a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.dir) {
      list.append(el("li", { class: "dir", "data-name": e.name },
        el("button", { type: "button", class: "link", onclick: () => openToken(token, `${path}${e.name}/`, true) },
          `${e.name}/`)));
      continue;
    }
    const href = base + encodePath(path + e.name);
    const li = el("li", { class: "file", "data-name": e.name },
      el("a", { href }, e.name), " ", el("span", { class: "size" }, human(e.size)));
    const kind = mediaKind("", e.name);
    if (kind) {
      const verb = kind === "image" ? "view" : "play";
      li.append(" ", el("button", { type: "button", class: "play", "aria-label": `${verb} ${e.name}`,
        onclick: () => showPlayer(box, kind, href, e.name) }, verb));
    }
    list.append(li);
  }
  out.append(
    el("h3", { id: "listing-path", tabIndex: -1 }, `/${path}`),
    el("p", { class: "links" }, el("a", { href: base + encodePath(path) }, "Open this directory as a site")),
    list, box);
}

function showPlayer(box, kind, src, label) {
  const old = $("player");
  if (old) old.remove();
  const media = kind === "image" ? el("img", { alt: label }) : el(kind, { controls: true, preload: "metadata" });
  media.id = "player";
  media.src = src;
  box.replaceChildren(media, el("p", { class: "note" }, label));
  box.scrollIntoView({ block: "nearest" });
}

function openFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const text = params.get("open");
  if (!text) return;
  $("open-input").value = text;
  openText(text, params.get("path") || "");
}

// ---- Upload ----------------------------------------------------------------------

let uploadsAllowed = null;
let uploadMax = null; // bytes, when the gateway says
let uploading = false;

function setUploads(allowed) {
  uploadsAllowed = allowed;
  $("upload-kind").disabled = !allowed || uploading;
  $("upload-file").disabled = !allowed || uploading;
  $("upload-button").disabled = !allowed || uploading;
  $("upload").classList.toggle("off", !allowed);
  const note = allowed
    ? [`This gateway accepts uploads${uploadMax ? ` of up to ${human(uploadMax)}` : ""}.`]
    : ["This gateway does not accept uploads (its operator can allow them with ", el("code", {}, "--allow-uploads"), ")."];
  const text = note.map((n) => n.textContent ?? n).join("");
  if ($("upload-note").textContent !== text) $("upload-note").replaceChildren(...note);
}

function uploadMessage(nodes, isError) {
  const out = $("upload-result");
  out.setAttribute("role", isError ? "alert" : "status");
  out.classList.toggle("error", isError);
  out.replaceChildren(...nodes.filter(Boolean));
}

// The bar and, for private uploads, its words ("segment 3 of 10"): not a live region
// (one announcement per segment would be too many); the bar carries them as its value.
function showProgress(value, max, words = "") {
  const bar = $("upload-progress");
  bar.hidden = false;
  bar.max = max || 1;
  bar.value = value;
  if (words) bar.setAttribute("aria-valuetext", words);
  else bar.removeAttribute("aria-valuetext");
  $("upload-progress-text").textContent = words;
  $("upload-progress-text").hidden = !words;
}

function upload(event) {
  event.preventDefault();
  if (!uploadsAllowed || uploading) return;
  const file = $("upload-file").files[0];
  if (!file) {
    uploadMessage([el("p", {}, "Choose a file first.")], true);
    return;
  }
  if (uploadMax !== null && file.size > uploadMax) {
    uploadMessage([el("p", {}, `${file.name} is ${human(file.size)}: this gateway takes uploads of up to ${human(uploadMax)}.`)], true);
    return;
  }
  if ($("upload-public").checked) uploadPublic(file);
  else uploadPrivate(file);
}

function uploadPublic(file) {
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/upload?name=${encodeURIComponent(file.name)}`);
  xhr.setRequestHeader("X-Mosaic-Upload", "1");
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) showProgress(e.loaded, e.total);
  });
  xhr.upload.addEventListener("load", () => {
    uploadMessage([el("p", {}, "Sent; encoding and storing it on the network…")], false);
  });
  const finish = () => { uploading = false; setUploads(uploadsAllowed); };
  xhr.addEventListener("load", () => {
    finish();
    if (xhr.status < 200 || xhr.status > 299) {
      uploadMessage([el("p", {}, (xhr.responseText || "").trim() || `HTTP ${xhr.status} ${xhr.statusText}`)], true);
      return;
    }
    let info;
    try { info = JSON.parse(xhr.responseText); } catch (e) {
      uploadMessage([el("p", {}, `The gateway's answer is not JSON: ${message(e)}`)], true);
      return;
    }
    const bar = $("upload-progress");
    bar.value = bar.max;
    uploadMessage([
      el("p", {}, `Published ${info.name || file.name} (${human(info.size)}). Its public id:`),
      el("p", {}, el("code", { class: "id-text" }, info.id)),
      el("p", { class: "links" },
        el("a", { id: "upload-link", href: info.href }, new URL(info.href, location.href).href), " ",
        el("button", { type: "button", id: "upload-open", onclick: () => {
          $("open-input").value = info.id;
          openToken(info.id);
          $("open").scrollIntoView({ block: "start" });
        } }, "Open")),
    ], false);
  });
  xhr.addEventListener("error", () => { finish(); uploadMessage([el("p", {}, "The upload failed: the gateway did not answer.")], true); });
  xhr.addEventListener("abort", () => { finish(); uploadMessage([el("p", {}, "The upload was cancelled.")], true); });
  uploading = true;
  setUploads(uploadsAllowed);
  showProgress(0, file.size);
  uploadMessage([el("p", {}, `Uploading ${file.name} (${human(file.size)})…`)], false);
  xhr.send(file);
}

// ---- Private uploads: sealed and coded here by the share page's codec module --------

// The module (/s/mosaic.wasm, the codec compiled from the same Rust as the native one),
// loaded on the first private upload and kept. Its calling convention, as in the share
// page's worker (sw.js): arguments written at mosaic_input(len), the result at
// mosaic_output_ptr/len (valid until the next call); -1 means the result is
// "kind\nmessage". Its memory may grow in any call: views of it are made afresh after.
let codecLoading = null;

function loadCodec() {
  if (!codecLoading) {
    let codec = null;
    const imports = {
      env: {
        // The module's only import: randomness for the file's key (at most 64 KiB a call).
        mosaic_random(ptr, len) {
          for (let at = 0; at < len; at += 65536) {
            crypto.getRandomValues(new Uint8Array(codec.memory.buffer, (ptr >>> 0) + at, Math.min(65536, len - at)));
          }
        },
      },
    };
    codecLoading = WebAssembly.instantiateStreaming(fetch("/s/mosaic.wasm"), imports)
      .then(({ instance }) => (codec = instance.exports));
    codecLoading.catch(() => { codecLoading = null; }); // tried again on the next upload
  }
  return codecLoading;
}

function codecInput(codec, bytes) {
  const ptr = codec.mosaic_input(bytes.length) >>> 0;
  new Uint8Array(codec.memory.buffer, ptr, bytes.length).set(bytes);
}

// A copy of the last result.
function codecOutput(codec) {
  const ptr = codec.mosaic_output_ptr() >>> 0;
  const len = codec.mosaic_output_len() >>> 0;
  return new Uint8Array(codec.memory.buffer, ptr, len).slice();
}

function codecError(codec, what) {
  const text = new TextDecoder().decode(codecOutput(codec));
  return new Error(`${what}: ${text.slice(text.indexOf("\n") + 1)}`);
}

// The file id (hex) a readcap or a public id names; the cap does not stay in the input.
function fileIdOf(codec, text) {
  const bytes = new TextEncoder().encode(text);
  codecInput(codec, bytes);
  const kind = codec.mosaic_parse_cap(bytes.length);
  codecInput(codec, new Uint8Array(bytes.length));
  if (kind < 0) throw codecError(codec, `${text.slice(0, 16)}… is not an id`);
  return new TextDecoder().decode(codecOutput(codec));
}

const READCAP_LEN = 112; // "mr1…", first in mosaic_upload_finish's result

// A POST to the gateway; its JSON answer, or its error's text.
async function postJson(url, body) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST", cache: "no-store", body,
      // The gateway takes uploads only with this header (no other site can send it).
      headers: body ? { "Content-Type": "application/octet-stream", "X-Mosaic-Upload": "1" } : { "X-Mosaic-Upload": "1" },
    });
  } catch (e) {
    throw new Error(`the gateway did not answer (${message(e)})`);
  }
  if (!response.ok) {
    const wait = response.headers.get("Retry-After");
    const text = await errorText(response);
    throw new Error(response.status === 503 && wait && !/try again/i.test(text) ? `${text} (try again in ${wait} s)` : text);
  }
  try {
    return await response.json();
  } catch (e) {
    throw new Error(`the gateway's answer is not JSON: ${message(e)}`);
  }
}

// Seals and codes FILE segment by segment (each read from the file on its own: memory
// stays at a few segments whatever the size), sends each segment's shards in order,
// then the manifest. The key and the plaintext never leave the page.
async function sealAndSend(file) {
  let codec;
  try {
    codec = await loadCodec();
  } catch (e) {
    throw new Error(`the page's codec (/s/mosaic.wasm) did not load: ${message(e)}`);
  }
  if (codec.mosaic_upload_begin(file.size) < 0) throw codecError(codec, "this file cannot be coded");
  const plan = JSON.parse(new TextDecoder().decode(codecOutput(codec)));
  const begun = await postJson(`/api/private-upload/begin?length=${file.size}`);
  if (begun.segments !== plan.segments || begun.segment_size !== plan.segment_size || begun.columns !== plan.columns) {
    throw new Error(`the gateway plans ${begun.segments} segments of ${begun.segment_size} bytes in ${begun.columns} columns, ` +
      `this page ${plan.segments} of ${plan.segment_size} in ${plan.columns}: reload the page`);
  }
  const session = `/api/private-upload/${encodeURIComponent(begun.session)}`;
  try {
    return await sendSegments(codec, file, plan, session);
  } catch (e) {
    // Free the gateway's slot now rather than when the session times out.
    fetch(`${session}/abort`, { method: "POST", headers: { "X-Mosaic-Upload": "1" } }).catch(() => {});
    throw e;
  }
}

// The segments of FILE, then the manifest, to SESSION (see sealAndSend).
async function sendSegments(codec, file, plan, session) {
  const { segments, segment_size: size } = plan;
  const code = async (i) => {
    let plain;
    try {
      const start = i * size;
      plain = new Uint8Array(await file.slice(start, Math.min(file.size, start + size)).arrayBuffer());
    } catch (e) {
      throw new Error(`${file.name} could not be read (did it change?): ${message(e)}`);
    }
    codecInput(codec, plain);
    if (codec.mosaic_upload_segment(plain.length) < 0) throw codecError(codec, `segment ${i + 1} could not be coded`);
    return codecOutput(codec);
  };
  let shards = await code(0);
  for (let i = 0; i < segments; i++) {
    showProgress(i, segments, `segment ${i + 1} of ${segments}`);
    const sent = postJson(`${session}/segment/${i}`, shards);
    sent.catch(() => {}); // awaited below, unless coding the next one fails first
    // The next segment is coded while this one travels; the gateway takes them in order.
    const next = i + 1 < segments ? await code(i + 1) : null;
    const answer = await sent;
    if (answer.next !== i + 1) throw new Error(`the gateway expects segment ${answer.next}, not ${i + 1}`);
    shards = next;
  }
  showProgress(segments, segments, `segment ${segments} of ${segments} sent; storing the manifest`);
  const enc = new TextEncoder();
  const name = enc.encode(file.name);
  const type = enc.encode(file.type || "");
  const args = new Uint8Array(name.length + type.length);
  args.set(name);
  args.set(type, name.length);
  codecInput(codec, args);
  if (codec.mosaic_upload_finish(name.length, type.length) < 0) throw codecError(codec, "the file could not be finished");
  const out = codecOutput(codec);
  const readcap = new TextDecoder().decode(out.subarray(0, READCAP_LEN));
  const manifest = out.subarray(READCAP_LEN);
  if (!/^mr1[0-9a-z]+$/.test(readcap) || !manifest.length) throw new Error("the codec's result is not a readcap and a manifest");
  const stored = await postJson(`${session}/manifest`, manifest);
  // The gateway answers the id it stored (no key): it must be the readcap's file.
  if (typeof stored.id !== "string" || fileIdOf(codec, stored.id) !== fileIdOf(codec, readcap)) {
    throw new Error(`the gateway stored ${String(stored.id).slice(0, 20)}…, not the file this page sealed`);
  }
  return { readcap, id: stored.id, size: typeof stored.size === "number" ? stored.size : file.size, segments };
}

async function uploadPrivate(file) {
  uploading = true;
  setUploads(uploadsAllowed);
  showProgress(0, 1, "loading the codec");
  uploadMessage([el("p", {}, `Sealing ${file.name} (${human(file.size)}) in this page and sending it…`)], false);
  let done;
  try {
    done = await sealAndSend(file);
  } catch (e) {
    uploadMessage([el("p", {}, `The private upload failed: ${message(e)}`)], true);
    return;
  } finally {
    uploading = false;
    setUploads(uploadsAllowed);
  }
  // The key is in the fragment, which browsers never send.
  const link = `${location.origin}/s/#${done.readcap}/${encodeURIComponent(file.name)}`;
  showProgress(done.segments, done.segments, `segment ${done.segments} of ${done.segments}: all stored`);
  const copy = navigator.clipboard ? el("button", { type: "button", id: "upload-copy" }, "Copy the link") : null;
  if (copy) {
    copy.addEventListener("click", () => navigator.clipboard.writeText(link).then(
      () => { copy.textContent = "Copied"; },
      () => { copy.textContent = "Could not copy: select the link"; }));
  }
  uploadMessage([
    el("p", {}, `Sealed and stored ${file.name} (${human(done.size)}). Its share link:`),
    el("p", {}, el("a", { id: "upload-link", class: "id-text", href: link }, link)),
    el("p", { class: "note" }, "The link holds the file's key: whoever has it can read the file; without it, " +
      "nobody can (this gateway neither). This page does not keep it: copy it now."),
    el("p", { class: "links" },
      el("button", { type: "button", id: "upload-open", onclick: () => { location.href = link; } }, "Open"),
      ...(copy ? [" ", copy] : [])),
    el("p", { class: "note" }, "Its id (names the file, does not open it): ", el("code", { class: "id-text" }, done.id)),
  ], false);
}

// ---- Start -----------------------------------------------------------------------

$("network-refresh").addEventListener("click", refreshNetwork);
$("open-form").addEventListener("submit", (e) => { e.preventDefault(); openText($("open-input").value, ""); });
$("upload-form").addEventListener("submit", upload);
window.addEventListener("hashchange", openFromHash);
setInterval(() => { if (!document.hidden) refreshNetwork(); }, 10000);
refreshNetwork();
openFromHash();
