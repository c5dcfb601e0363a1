// Mosaic's share page. The link looks like https://GATEWAY/s/#CAP/NAME: the readcap
// is in the fragment, which browsers never send to any server (nor in Referer). This
// script hands it to the service worker (sw.js), which fetches, verifies and decrypts
// in the browser, and points <video>/<img>/<audio> and the download link at URLs the
// worker answers (/s/file/TOKEN/NAME): those requests never reach the network.
"use strict";

const $ = (id) => document.getElementById(id);

function fail(message, kind) {
  document.body.dataset.state = "error";
  document.body.dataset.kind = kind || "other";
  $("status").textContent = message;
}

function ask(message) {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (e) => resolve(e.data);
    navigator.serviceWorker.controller.postMessage(message, [channel.port2]);
  });
}

function mediaKind(type, name) {
  if (type) return type.split("/")[0];
  const ext = (name.split(".").pop() || "").toLowerCase();
  if (["mp4", "webm", "mkv", "mov", "ogv"].includes(ext)) return "video";
  if (["mp3", "ogg", "oga", "wav", "flac", "opus"].includes(ext)) return "audio";
  if (["png", "jpg", "jpeg", "gif", "webp", "avif", "svg"].includes(ext)) return "image";
  return "";
}

function human(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
  return `${i ? bytes.toFixed(1) : bytes} ${units[i]}`;
}

async function main() {
  const fragment = location.hash.slice(1);
  const slash = fragment.indexOf("/");
  const cap = slash < 0 ? fragment : fragment.slice(0, slash);
  let hint = "";
  try { hint = slash < 0 ? "" : decodeURIComponent(fragment.slice(slash + 1)); } catch (_) { hint = ""; }
  if (!cap) {
    fail("This link has no capability after '#': ask for the whole link (mosaic share prints it).", "cap");
    return;
  }
  if (!("serviceWorker" in navigator)) {
    fail("This browser cannot run the page's decoder here: a service worker needs HTTPS (or localhost) and must not be disabled.", "browser");
    return;
  }
  navigator.serviceWorker.addEventListener("message", (e) => {
    const m = e.data || {};
    if (m.type === "fault") {
      const li = document.createElement("li");
      li.textContent = `Segment ${m.segment}: column ${m.column} rejected (${m.message}); read from the other columns.`;
      $("faults").append(li);
      document.body.dataset.faults = String($("faults").children.length);
    } else if (m.type === "error") {
      fail(`Reading failed: ${m.message}`, m.kind);
    }
  });
  await navigator.serviceWorker.register("sw.js", { scope: "./" });
  if (!navigator.serviceWorker.controller) {
    await new Promise((r) => navigator.serviceWorker.addEventListener("controllerchange", r, { once: true }));
  }
  const token = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
  $("status").textContent = "Fetching and verifying the manifest…";
  const opened = await ask({ type: "open", token, cap });
  if (opened.error) {
    fail(opened.error, opened.kind);
    return;
  }
  const info = opened.info;
  const name = info.name || hint || `${info.id.slice(0, 16)}.bin`;
  document.title = `${name} · Mosaic`;
  $("name").textContent = name;
  const src = `file/${token}/${encodeURIComponent(name)}`;
  const kind = mediaKind(info.type, name);
  if (kind === "video" || kind === "audio" || kind === "image") {
    const el = document.createElement(kind === "image" ? "img" : kind);
    el.id = "media";
    if (kind === "image") el.alt = name; else { el.controls = true; el.preload = "metadata"; }
    // Timings for benchmarks (ms since navigation): element created, first frame.
    document.body.dataset.mediaCreatedMs = String(Math.round(performance.now()));
    el.addEventListener("loadeddata", () => {
      document.body.dataset.firstFrameMs = String(Math.round(performance.now()));
    }, { once: true });
    el.src = src;
    $("view").append(el);
  }
  const a = $("download");
  // A navigation (which the worker answers with Content-Disposition: attachment), not
  // an <a download>: Chromium sends those around the service worker, to the gateway.
  a.href = `${src}?download=1`;
  a.textContent = `Download ${name} (${human(info.length)})`;
  a.hidden = false;
  $("status").textContent = `${human(info.length)}, ${info.public ? "public" : "private"}; verified and ${info.public ? "checked" : "decrypted"} in this page (${info.k} of ${info.n} columns).`;
  document.body.dataset.state = "ready";
  document.body.dataset.token = token;
  // Keep the worker's copy of the file open (a stopped worker forgets it).
  setInterval(() => ask({ type: "open", token, cap }), 10000);
}

main().catch((e) => fail(`The page failed: ${e && e.message ? e.message : e}`, "other"));
