//! Black-box gateway tests: 5 real storage node processes, a real `mosaic gateway run`
//! process, files uploaded with the real CLI, and HTTP/1.1 spoken over a plain TCP
//! socket (so every header the gateway sends is seen as sent).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    fs,
    io::Read,
    net::{SocketAddr, TcpListener},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use common::{gateway::*, *};
use mosaic_codec::{Cap, FileKey, ReadCap};

/// A deterministic pseudo-random sequence for ranges (xorshift).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn free_tcp_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn cluster() -> Cluster {
    let c = Cluster::start(5, &["--open"]);
    c.wait_for_nodes(5);
    c
}

#[test]
fn files_are_served_with_ranges_validators_and_clear_errors() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    // 5.5 segments of 1 MiB: ranges cross segment boundaries and hit the short last one.
    let len = (5 << 20) + (1 << 19);
    let (file, data) = write_file(c.tmp.path(), "movie.webm", len);
    let cap = c.put(&file, &[]);
    let (pub_file, pub_data) = write_file(c.tmp.path(), "notes.txt", 100_000);
    let public_id = c.put(&pub_file, &["--public"]);
    let g = Gateway::start(&c, &[]);

    // Whole file.
    let r = g.get(&format!("/f/{cap}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == data, "whole body equals the file");
    assert_eq!(r.header("content-length"), len.to_string());
    assert_eq!(r.header("accept-ranges"), "bytes");
    assert_eq!(r.header("content-type"), "video/webm");
    assert_eq!(
        r.header("cache-control"),
        "private, max-age=31536000, immutable"
    );
    assert_eq!(r.header("referrer-policy"), "no-referrer");
    let etag = r.header("etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");

    // HEAD: the same head, no body.
    let r = g.request("HEAD", &format!("/f/{cap}"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), len.to_string());
    assert_eq!(r.header("etag"), etag);

    // Validators.
    let r = g.request("GET", &format!("/f/{cap}"), &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = g.request(
        "GET",
        &format!("/f/{cap}"),
        &[("If-None-Match", "\"other\"")],
    );
    assert_eq!(r.status, 200);

    // Random ranges, in all three forms, compared with the file's bytes.
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let n = len as u64;
    for i in 0..24 {
        let (spec, want) = match i % 3 {
            0 => {
                let a = rng.below(n);
                let b = a + rng.below((n - a).min(3 << 20));
                (format!("bytes={a}-{b}"), a..b + 1)
            }
            1 => {
                let a = rng.below(n);
                (format!("bytes={a}-"), a..n)
            }
            _ => {
                let k = 1 + rng.below(2 << 20);
                (format!("bytes=-{k}"), n - k..n)
            }
        };
        let r = g.request("GET", &format!("/f/{cap}"), &[("Range", &spec)]);
        assert_eq!(r.status, 206, "{spec}: {}", r.text());
        assert_eq!(
            r.header("content-range"),
            format!("bytes {}-{}/{n}", want.start, want.end - 1),
            "{spec}"
        );
        assert!(
            r.body == data[want.start as usize..want.end as usize],
            "{spec}: body differs"
        );
    }
    // Unsatisfiable; several ranges (documented: the whole file).
    let r = g.request(
        "GET",
        &format!("/f/{cap}"),
        &[("Range", &format!("bytes={n}-"))],
    );
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), format!("bytes */{n}"));
    let r = g.request("GET", &format!("/f/{cap}"), &[("Range", "bytes=0-1,10-11")]);
    assert_eq!(r.status, 200);
    assert!(r.body == data);

    // Download with the stored name.
    let r = g.request("HEAD", &format!("/f/{cap}?download=1"), &[]);
    assert!(
        r.header("content-disposition")
            .starts_with("attachment; filename=\"movie.webm\""),
        "{:?}",
        r.headers
    );

    // A private file's plaintext is never kept in memory.
    let m = g.metrics();
    assert!(m.contains("mosaic_gateway_cache_memory_bytes 0\n"), "{m}");

    // Public file: public caching.
    let r = g.get(&format!("/p/{public_id}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == pub_data);
    assert_eq!(
        r.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.header("content-type"), "text/plain");
    // Its opened segment is kept in memory, and a range is served from there.
    let m = g.metrics();
    assert!(
        m.contains("mosaic_gateway_cache_memory_bytes 100000\n"),
        "{m}"
    );
    let r = g.request(
        "GET",
        &format!("/p/{public_id}"),
        &[("Range", "bytes=70000-70099")],
    );
    assert_eq!(r.status, 206, "{}", r.text());
    assert!(r.body == pub_data[70_000..70_100]);
    let m = g.metrics();
    assert!(
        m.contains("mosaic_gateway_cache_memory_hits_total 1\n"),
        "{m}"
    );

    // Raw blob: the manifest is a blob whose hash is the file id.
    let id = cap.parse::<Cap>().unwrap().id();
    let r = g.get(&format!("/blob/{}", id.to_hex()));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(blake3::hash(&r.body).as_bytes(), id.as_bytes());
    let r = g.request(
        "GET",
        &format!("/blob/{}", id.to_hex()),
        &[("Range", "bytes=1-4")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body.len(), 4);

    // Errors say what failed.
    let r = g.get("/f/mr1notacap");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("readcap"), "{}", r.text());
    let r = g.get(&format!("/f/{public_id}"));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("/p/"), "{}", r.text());
    let r = g.get(&format!("/p/{}", cap.replace("mr1", "mi1")));
    assert_eq!(r.status, 400);
    let Cap::Read(read) = cap.parse::<Cap>().unwrap() else {
        panic!("a readcap")
    };
    let wrong = ReadCap {
        id: read.id,
        key: FileKey::from_bytes([7; 32]),
    };
    let r = g.get(&format!("/f/{wrong}"));
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("key"), "{}", r.text());
    let unknown = mosaic_codec::PublicId {
        id: mosaic_codec::Hash::of(b"nobody stored this"),
    };
    let r = g.get(&format!("/p/{unknown}"));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = g.get("/blob/xyz");
    assert_eq!(r.status, 400);
    let r = g.get("/nope");
    assert_eq!(r.status, 404);

    // Repeat reads come from the cache, and the metrics say so.
    let r = g.get(&format!("/f/{cap}"));
    assert!(r.body == data);
    let m = g.metrics();
    assert!(
        m.contains("mosaic_gateway_segments_total{source=\"cache\"}"),
        "{m}"
    );
    // 25 file ranges and one blob range.
    assert!(
        m.contains("mosaic_gateway_http_requests_total{status=\"206\"} 26"),
        "{m}"
    );
    assert!(
        m.contains("mosaic_gateway_http_requests_total{status=\"416\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("mosaic_gateway_time_to_first_byte_seconds_bucket"),
        "{m}"
    );
    assert!(m.contains("mosaic_gateway_cache_hit_ratio"), "{m}");
}

#[test]
fn a_directory_is_a_static_site_and_the_denylist_takes_effect_live() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let site = c.tmp.path().join("site");
    fs::create_dir_all(site.join("css")).unwrap();
    fs::create_dir_all(site.join("docs")).unwrap();
    fs::write(site.join("index.html"), "<!doctype html><h1>Home</h1>").unwrap();
    fs::write(site.join("css/site.css"), "body { color: teal }").unwrap();
    fs::write(site.join("docs/guide <1>.txt"), "read me").unwrap();
    let out = c.mosaic(&["put", "-r", site.to_str().unwrap(), "--public"]);
    assert!(out.status.success(), "put -r: {}", stderr(&out));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(id.starts_with("mi1"), "{id}");

    let deny = c.tmp.path().join("deny.txt");
    let g = Gateway::start(&c, &["--denylist", deny.to_str().unwrap()]);

    let r = g.get(&format!("/p/{id}"));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), format!("/p/{id}/"));
    let r = g.get(&format!("/p/{id}/"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "<!doctype html><h1>Home</h1>");
    assert!(r.header("content-type").starts_with("text/html"));
    let r = g.get(&format!("/p/{id}/css/site.css"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "body { color: teal }");
    assert_eq!(r.header("content-type"), "text/css");
    let r = g.get(&format!("/p/{id}/docs"));
    assert_eq!(r.status, 301);
    let r = g.get(&format!("/p/{id}/docs/"));
    assert_eq!(r.status, 200);
    let listing = r.text();
    assert!(
        listing.contains("guide &lt;1&gt;.txt"),
        "escaped name: {listing}"
    );
    assert!(
        listing.contains("href=\"guide%20%3C1%3E%2Etxt\""),
        "{listing}"
    );
    let r = g.get(&format!("/p/{id}/docs/guide%20%3C1%3E.txt"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "read me");
    let r = g.get(&format!("/p/{id}/missing.html"));
    assert_eq!(r.status, 404);
    assert!(r.text().contains("missing.html"));

    // Deny the site: 410 within a few seconds, and served again once lifted.
    fs::write(&deny, format!("# takedown\n{id}\n")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while g.get(&format!("/p/{id}/")).status != 410 {
        assert!(Instant::now() < deadline, "denylist not applied");
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(g.get(&format!("/p/{id}/css/site.css")).status, 410);
    fs::write(&deny, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while g.get(&format!("/p/{id}/")).status != 200 {
        assert!(Instant::now() < deadline, "denylist not lifted");
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_stream_survives_nodes_killed_while_it_plays() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = cluster();
    let len = 48 << 20;
    let (file, data) = write_file(c.tmp.path(), "long.bin", len);
    let cap = c.put(&file, &[]);
    let g = Gateway::start(&c, &[]);

    let mut s = g.send("GET", &format!("/f/{cap}"), &[]).unwrap();
    // Read the head and the first few MiB, slowly enough that the gateway is still
    // fetching, then take two nodes away (m = 2): the stream must finish intact.
    let mut raw = vec![0u8; 4 << 20];
    s.read_exact(&mut raw).unwrap();
    c.kill(1);
    c.kill(3);
    s.read_to_end(&mut raw).unwrap();
    let r = Reply::parse(&raw, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), len, "{}", g.log.lock().unwrap());
    assert!(r.body == data, "body intact after failover");
}

#[test]
fn a_storage_node_can_embed_a_gateway() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    let http = free_tcp_addr();
    let dir = c.tmp.path().join("node-with-gateway");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["node", "run", "--open", "--data-dir", dir.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{}", free_udp_port())])
        .args(["--dht-listen", &format!("127.0.0.1:{}", free_udp_port())])
        .args(["--network", &c.network, "--bootstrap", &c.bootstrap()])
        .args(["--gateway", &http.to_string()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = capture_stderr(&mut child);
    let g = Gateway::healthy(Gateway {
        addr: http,
        child,
        log,
    });
    let (file, data) = write_file(c.tmp.path(), "embedded.bin", 300_000);
    let id = c.put(&file, &["--public"]);
    let r = g.get(&format!("/p/{id}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == data);
    assert!(
        dir.join("gateway-cache").is_dir(),
        "the embedded gateway keeps its cache in the node's data directory"
    );
}

/// The share page's path, end to end outside the browser: the gateway's trustless
/// answers (`/blob/{hash}?format=bao`) verified and decoded by `mosaic-web`, the very
/// code the page runs as WebAssembly; a column missing and a flipped byte handled as
/// the page handles them; the page's files served with their policy.
#[test]
fn trustless_ranges_rebuild_a_private_file_with_the_page_codec() {
    use mosaic_web::file::File;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    // 2.5 segments: a short last segment, spans not aligned to 16 KiB groups.
    let len = (2 << 20) + (1 << 19) + 123;
    let (path, data) = write_file(c.tmp.path(), "clip.webm", len);
    let cap = c.put(&path, &[]);
    let id = cap.parse::<Cap>().unwrap().id();
    let g = Gateway::start(&c, &[]);

    let r = g.get(&format!("/blob/{}?format=bao", id.to_hex()));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/vnd.mosaic.bao");
    assert_eq!(
        r.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    let mut file = File::open(&cap, &r.body).expect("the manifest verifies and the key opens it");
    let info: serde_json::Value = serde_json::from_str(&file.info_json()).unwrap();
    assert_eq!(info["length"], len as u64);
    assert_eq!(info["name"], "clip.webm");
    let (k, stride, segments) = (
        info["k"].as_u64().unwrap() as usize,
        info["stride"].as_u64().unwrap(),
        info["segments"].as_u64().unwrap(),
    );
    let columns: Vec<String> = info["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let mut out = Vec::new();
    for i in 0..segments {
        let start = i * stride;
        let end = if i + 1 == segments {
            start + info["last_shard"].as_u64().unwrap()
        } else {
            start + stride
        };
        file.begin(i).unwrap();
        // Column 0 is "missing": columns 1..=k, so parity rebuilds it.
        for (c, column) in columns.iter().enumerate().take(k + 1).skip(1) {
            let r = g.get(&format!(
                "/blob/{column}?format=bao&start={start}&end={end}"
            ));
            assert_eq!(r.status, 200, "{}", r.text());
            let mut shard = Vec::new();
            file.verify_shard(c, i, &r.body, &mut shard)
                .expect("the answer verifies");
            assert_eq!(shard.len() as u64, end - start);
            if c == 1 && i == 0 {
                // A flipped byte anywhere in the answer is caught.
                let mut bad = r.body.clone();
                let at = bad.len() / 2;
                bad[at] ^= 1;
                let mut scratch = Vec::new();
                let e = file
                    .verify_shard(c, i, &bad, &mut scratch)
                    .expect_err("a flipped byte fails");
                assert_eq!(e.kind(), "corrupt", "{e}");
                // The answer of another column fails against this column's hash.
                let e = file
                    .verify_shard(c + 1, i, &r.body, &mut scratch)
                    .expect_err("another column's answer fails");
                assert_eq!(e.kind(), "corrupt", "{e}");
            }
            file.put_shard(c, &shard).unwrap();
        }
        out.extend_from_slice(file.open_segment(i).expect("the segment opens"));
    }
    assert!(
        out == data,
        "the file rebuilt from trustless ranges equals the original"
    );

    // What the trustless route refuses, and why.
    let col = &columns[0];
    let r = g.get(&format!("/blob/{col}?format=bao&start=5&end=5"));
    assert_eq!(r.status, 416, "{}", r.text());
    let r = g.get(&format!("/blob/{col}?format=bao&start=0&end=999999999999"));
    assert_eq!(r.status, 416, "{}", r.text());
    let r = g.get(&format!("/blob/{col}?format=car"));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("format=bao"), "{}", r.text());
    // A wrong key is the page's "key" error, not garbage.
    let other = ReadCap {
        id,
        key: FileKey::random(),
    }
    .to_string();
    let manifest = g.get(&format!("/blob/{}?format=bao", id.to_hex()));
    let e = File::open(&other, &manifest.body).expect_err("a wrong key");
    assert_eq!(e.kind(), "key", "{e}");
    let e = File::open(&cap[..100], &manifest.body).expect_err("a truncated cap");
    assert_eq!(e.kind(), "cap", "{e}");

    // The share page: its files, compiled in, with a policy that keeps keys in.
    let r = g.get("/s/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("share.js"));
    assert_eq!(r.header("referrer-policy"), "no-referrer");
    assert!(
        r.header("content-security-policy")
            .contains("'wasm-unsafe-eval'")
    );
    let r = g.get("/s/mosaic.wasm");
    assert_eq!(r.header("content-type"), "application/wasm");
    assert_eq!(&r.body[..4], b"\0asm");
    let etag = r.header("etag").to_owned();
    let r = g.request("GET", "/s/mosaic.wasm", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    let r = g.get("/s/file/0123/clip.webm");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("service worker"), "{}", r.text());
    // The access log names no readcap even for /f/.
    let r = g.get(&format!("/f/{cap}"));
    assert_eq!(r.status, 200);
    thread::sleep(Duration::from_millis(200));
    let log = g.log.lock().unwrap().clone();
    assert!(
        log.contains("(readcap withheld)"),
        "the access log is on: {log}"
    );
    assert!(!log.contains(&cap), "a readcap reached the log");
}

/// Reads a JSON answer.
fn json_of(r: &Reply) -> serde_json::Value {
    assert!(r.status < 300, "{} {}", r.status, r.text());
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[test]
fn a_private_upload_coded_like_the_page_reaches_the_nodes_as_ciphertext_only() {
    use mosaic_web::upload::Upload;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = cluster();
    // Uploads are off unless the operator allows them.
    let closed = Gateway::start(&c, &[]);
    let r = closed.post("/api/private-upload/begin?length=10", b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("--allow-uploads"), "{}", r.text());
    drop(closed);

    let gw = Gateway::start(&c, &["--allow-uploads", "--upload-max", "8MiB"]);
    // Only the page's requests, which carry its header: no other site can send one.
    let r = gw.request("POST", "/api/private-upload/begin?length=10", &[]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("x-mosaic-upload"), "{}", r.text());
    let marker = b"MOSAIC-PRIVATE-UPLOAD-MARKER-7f3a9c ";
    let data: Vec<u8> = marker.iter().copied().cycle().take(2_600_000).collect();

    // Over the operator's limit: 413 before anything is placed.
    let r = gw.post("/api/private-upload/begin?length=9000000", b"");
    assert_eq!(r.status, 413, "{}", r.text());
    // Out of order: refused, and the session is gone.
    let s = json_of(&gw.post(
        &format!("/api/private-upload/begin?length={}", data.len()),
        b"",
    ));
    let token = s["session"].as_str().unwrap().to_owned();
    let r = gw.post(&format!("/api/private-upload/{token}/segment/1"), b"");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("segment 0 expected"), "{}", r.text());
    let r = gw.post(&format!("/api/private-upload/{token}/segment/0"), b"");
    assert_eq!(r.status, 404, "{}", r.text());
    // A body larger than the segment's shards: 413, nothing read past the limit.
    let s = json_of(&gw.post(
        &format!("/api/private-upload/begin?length={}", data.len()),
        b"",
    ));
    let token = s["session"].as_str().unwrap().to_owned();
    let r = gw.post(
        &format!("/api/private-upload/{token}/segment/0"),
        &vec![0; 3 << 20],
    );
    assert_eq!(r.status, 413, "{}", r.text());

    // The page's work, done here with the same code (mosaic-web, natively).
    let (mut up, info) = Upload::begin(data.len() as u64).unwrap();
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let s = json_of(&gw.post(
        &format!("/api/private-upload/begin?length={}", data.len()),
        b"",
    ));
    assert_eq!(s["segments"], info["segments"]);
    assert_eq!(s["segments"], 3);
    let token = s["session"].as_str().unwrap().to_owned();
    let size = info["segment_size"].as_u64().unwrap() as usize;
    let mut stripe = Vec::new();
    for (i, plain) in data.chunks(size).enumerate() {
        up.segment(plain, &mut stripe).unwrap();
        let r = json_of(&gw.post(&format!("/api/private-upload/{token}/segment/{i}"), &stripe));
        assert_eq!(r["next"], i + 1);
    }
    let (manifest, cap) = up.finish("marked.txt", "text/plain").unwrap();
    let done = json_of(&gw.post(&format!("/api/private-upload/{token}/manifest"), &manifest));
    let cap_parsed: Cap = cap.parse().unwrap();
    assert_eq!(
        done["id"].as_str().unwrap(),
        mosaic_codec::PublicId {
            id: cap_parsed.id()
        }
        .to_string()
    );
    assert_eq!(done["size"], data.len());

    // The readcap, which only the "page" has, reads the file back through the CLI.
    let out = c.tmp.path().join("marked.out");
    let got = c.get(&cap, &out);
    assert!(got.status.success(), "{}", stderr(&got));
    assert!(fs::read(&out).unwrap() == data, "the file reads back");
    // The nodes hold ciphertext only: the marker is nowhere in their data.
    for (i, node) in c.nodes.iter().enumerate() {
        for file in walk(&node.dir) {
            let bytes = fs::read(&file).unwrap_or_default();
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker),
                "node {i}'s {} holds plaintext",
                file.display()
            );
        }
    }
    assert!(
        !gw.log
            .lock()
            .unwrap()
            .contains("MOSAIC-PRIVATE-UPLOAD-MARKER"),
        "the gateway's log holds plaintext"
    );
    // A manifest for another file is refused (and nothing of that session is kept).
    let (mut other, _) = Upload::begin(5).unwrap();
    other.segment(b"12345", &mut stripe).unwrap();
    let s = json_of(&gw.post("/api/private-upload/begin?length=5", b""));
    let token = s["session"].as_str().unwrap().to_owned();
    json_of(&gw.post(&format!("/api/private-upload/{token}/segment/0"), &stripe));
    let r = gw.post(&format!("/api/private-upload/{token}/manifest"), &manifest);
    assert_eq!(r.status, 400, "{}", r.text());
}
