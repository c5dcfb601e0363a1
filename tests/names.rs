//! Mutable names in a real network: 20 `mosaic node run` processes on loopback with
//! their own DHT, the real CLI publishing and resolving, a real gateway following a
//! name, and an in-process client sending the records a publisher never would (stale,
//! forged, oversized) to the DHT nodes and storage nodes directly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    fs, thread,
    time::{Duration, Instant},
};

use common::{gateway::Gateway, *};
use iroh::EndpointId;
use mosaic_client::Client;
use mosaic_codec::{
    Cap, PublicId,
    name::{MAX_VALUE, NAME_SALT, NameKey, Pointer},
};
use mosaic_wire::{
    dht::RoutingError,
    proto::Refusal,
    record::{SignedRecord, SigningKey},
    request::RequestError,
};

const NODES: usize = 20;

fn last_line(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_owned()
}

fn ok(c: &Cluster, args: &[&str]) -> String {
    let out = c.mosaic(args);
    assert!(
        out.status.success(),
        "mosaic {args:?}: {}\n{}",
        stderr(&out),
        c.logs()
    );
    last_line(&out)
}

/// A public directory with `index.html` saying `text`.
fn site(c: &Cluster, name: &str, text: &str) -> String {
    let dir = c.tmp.path().join(name);
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("index.html"), format!("<h1>{text}</h1>")).unwrap();
    fs::write(dir.join("sub/page.txt"), text).unwrap();
    ok(
        c,
        &[
            "put",
            "-r",
            "--public",
            dir.to_str().unwrap(),
            "--name",
            name,
        ],
    )
}

/// Polls `f` until it is true or `limit` passes.
fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_name_serves_a_site_follows_updates_and_outlives_its_publisher() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(NODES, &["--open", "--republish-interval", "5s"]);
    c.wait_for_nodes(NODES);
    let v1 = site(&c, "v1", "version one");
    let v2 = site(&c, "v2", "version two");
    let key = ok(&c, &["name", "new", "site"]);
    assert!(key.starts_with("mn1"), "{key}");
    // A name key is a key: listed with them, and its name is taken for both kinds.
    assert!(
        String::from_utf8_lossy(&c.mosaic(&["key", "list"]).stdout).contains(&key),
        "key list shows the name"
    );
    assert_eq!(c.mosaic(&["key", "new", "site"]).status.code(), Some(4));

    let out = c.mosaic(&["--json", "name", "publish", "site", "v1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dht"], "stored", "{report}");
    let kept = report["kept_by"].as_array().unwrap().len();
    assert!(kept >= 3, "{kept} nodes keep the record: {report}");
    assert_eq!(report["target"], v1);

    // Another user resolves it (the publisher's process has exited).
    let resolved = c.mosaic_as("reader", &["name", "resolve", &key]);
    assert!(resolved.status.success(), "{}", stderr(&resolved));
    assert_eq!(last_line(&resolved), v1);

    // The gateway serves the site through the name, with short caching.
    let gw = Gateway::start(&c, &[]);
    let index = gw.get(&format!("/n/{key}/"));
    assert_eq!(index.status, 200, "{}", index.text());
    assert_eq!(index.text(), "<h1>version one</h1>");
    assert_eq!(index.header("cache-control"), "public, max-age=30");
    // Anyone's content on the gateway's origin runs sandboxed (an opaque origin).
    assert!(
        index
            .header("content-security-policy")
            .starts_with("sandbox"),
        "{:?}",
        index.headers
    );
    let etag1 = index.header("etag").to_owned();
    let page = gw.get(&format!("/n/{key}/sub/page.txt"));
    assert_eq!(page.text(), "version one");
    let bare = gw.get(&format!("/n/{key}"));
    assert_eq!(bare.status, 302, "a name's redirect is temporary");
    assert_eq!(bare.header("location"), format!("/n/{key}/"));

    // Republication: the gateway follows within a minute.
    ok(&c, &["name", "publish", "site", "v2"]);
    let took = eventually(Duration::from_secs(60), "the gateway following v2", || {
        gw.get(&format!("/n/{key}/")).text() == "<h1>version two</h1>"
    });
    eprintln!("the gateway served the new target {took:?} after the publish");
    let index = gw.get(&format!("/n/{key}/"));
    assert_ne!(index.header("etag"), etag1, "the ETag follows the target");
    assert_eq!(
        last_line(&c.mosaic_as("reader", &["name", "resolve", &key])),
        v2
    );
    // `name ls` remembers what was published.
    let ls = ok(&c, &["name", "ls"]);
    assert!(ls.contains(&key) && ls.contains(&v2), "{ls}");

    // Every node restarts: the DHT forgets every record. The publisher stays away;
    // the nodes holding the site put the name back.
    drop(gw);
    for i in 0..NODES {
        c.kill(i);
    }
    for i in 0..NODES {
        c.spawn(i);
    }
    c.wait_for_nodes(NODES);
    let took = eventually(Duration::from_secs(90), "the name republished", || {
        let out = c.mosaic_as("reader", &["name", "resolve", &key]);
        out.status.success() && last_line(&out) == v2
    });
    eprintln!("after a restart of every node the name resolved again in {took:?}");
    let gw = Gateway::start(&c, &[]);
    assert_eq!(gw.get(&format!("/n/{key}/")).text(), "<h1>version two</h1>");
    // A private name through a gateway is refused without the key being needed.
    let private = gw.get(&format!("/n/{}", "ms1".to_owned() + &"a".repeat(106)));
    assert_eq!(private.status, 400, "{}", private.text());
}

#[test]
fn private_names_open_only_with_their_read_key() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start(NODES, &["--open"]);
    c.wait_for_nodes(NODES);
    let (file, data) = write_file(c.tmp.path(), "secret.bin", 300_000);
    let cap = c.put(&file, &["--name", "secret"]);
    assert!(cap.starts_with("mr1"));
    let key = ok(&c, &["name", "new", "diary"]);
    // A readcap is sealed even without --private: the printed form is ms1….
    let sealed = ok(&c, &["name", "publish", "diary", "secret"]);
    assert!(sealed.starts_with("ms1"), "{sealed}");

    // The public key alone says the name is private, and exits 4.
    let out = c.mosaic_as("reader", &["name", "resolve", &key]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("private"), "{}", stderr(&out));
    // The ms1 form opens it; the readcap it gives reads the file.
    let out = c.mosaic_as("reader", &["name", "resolve", &sealed]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last_line(&out), cap);
    let copy = c.tmp.path().join("copy.bin");
    let got = c.mosaic_as("reader", &["get", &cap, "-o", copy.to_str().unwrap()]);
    assert!(got.status.success(), "{}", stderr(&got));
    assert!(fs::read(&copy).unwrap() == data);

    // The name key travels sealed under a passphrase: on another machine (here, another
    // user) it publishes under the same name.
    let export = c.tmp.path().join("diary.key.sealed");
    let out = c
        .mosaic_command(&["key", "export", "diary", "-o", export.to_str().unwrap()])
        .env("MOSAIC_PASSPHRASE", "correct horse")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut import = std::process::Command::new(env!("CARGO_BIN_EXE_mosaic"));
    import
        .args(["--json", "key", "import", export.to_str().unwrap()])
        .env("MOSAIC_PASSPHRASE", "correct horse")
        .env("XDG_CONFIG_HOME", c.tmp.path().join("writer"))
        .env("XDG_DATA_HOME", c.tmp.path().join("writer").join("data"))
        .env("HOME", c.tmp.path());
    let out = import.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = c.mosaic_as("writer", &["--json", "name", "ls"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["key"], key.as_str(), "{listed}");
    let (other, other_data) = write_file(c.tmp.path(), "other.bin", 1000);
    let out = c.mosaic_as(
        "writer",
        &["put", other.to_str().unwrap(), "--name", "other"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let other_cap = last_line(&out);
    let out = c.mosaic_as("writer", &["name", "publish", "diary", "other"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last_line(&out), sealed, "same name, same read key");
    let out = c.mosaic_as("reader", &["name", "resolve", &sealed]);
    assert_eq!(last_line(&out), other_cap, "{}", stderr(&out));
    let copy = c.tmp.path().join("other.out");
    assert!(
        c.mosaic_as("reader", &["get", &other_cap, "-o", copy.to_str().unwrap()])
            .status
            .success()
    );
    assert!(fs::read(&copy).unwrap() == other_data);

    // The gateway refuses to resolve it (the target is a readcap).
    let gw = Gateway::start(&c, &[]);
    let r = gw.get(&format!("/n/{key}/"));
    assert_eq!(r.status, 403, "{}", r.text());

    // Too large a record: refused before the network, with the limit named.
    let long = "d/".repeat(600);
    let out = c.mosaic(&["name", "publish", "diary", "secret", "--path", &long]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(stderr(&out).contains("at most 1000"), "{}", stderr(&out));
    // A typo in a name is caught by its checksum.
    let mut typo = key.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let out = c.mosaic(&["name", "resolve", std::str::from_utf8(&typo).unwrap()]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
}

/// A client of the cluster in this process, to send what the CLI never would.
async fn client(c: &Cluster) -> std::sync::Arc<Client> {
    in_process_client(c, *blake3::hash(c.network.as_bytes()).as_bytes()).await
}

#[test]
fn stale_forged_and_oversized_records_are_refused_by_dht_and_storage_nodes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start(NODES, &["--open"]);
    c.wait_for_nodes(NODES);
    let v1 = site(&c, "v1", "one");
    let v2 = site(&c, "v2", "two");
    let key = ok(&c, &["name", "new", "site"]);
    ok(&c, &["name", "publish", "site", "v1"]);
    ok(&c, &["name", "publish", "site", "v2"]);
    // The name's secret, as the publisher holds it (keys/NAME.name, 32 bytes).
    let secret: [u8; 32] = fs::read(c.tmp.path().join("client/mosaic/keys/site.name"))
        .unwrap()
        .try_into()
        .unwrap();
    let signer = SigningKey::from_bytes(&secret);
    let name: NameKey = key.parse().unwrap();
    assert_eq!(name.0, signer.verifying_key().to_bytes());
    let v1_id = match v1.parse::<Cap>().unwrap() {
        Cap::Public(p) => p,
        Cap::Read(_) => unreachable!(),
    };
    let v2_id: PublicId = v2.parse().unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = client(&c).await;
        let mosaic_client::lookups::Lookups::Dht(dht) = client.routing() else {
            panic!("the test client runs its own DHT node");
        };
        let current = client
            .resolve_name(&mosaic_codec::name::NameRef::Public(name))
            .await
            .unwrap();
        assert_eq!(current.pointer.target, Cap::Public(v2_id));
        let holders: Vec<EndpointId> = dht.providers(&v2_id.id).await.unwrap();
        assert!(!holders.is_empty());

        // Stale: a validly signed record with a lower sequence number (an older
        // publication of the same target, as a replayer would have it).
        let old_value = Pointer {
            target: Cap::Public(v2_id),
            path: String::new(),
        }
        .encode(&name, None, [0; 24])
        .unwrap();
        let stale = SignedRecord::sign(&signer, current.record.seq - 1, old_value).unwrap();
        match dht.publish_record(&stale).await {
            Err(RoutingError::Stale { .. }) => {}
            other => panic!("DHT nodes took a stale record: {other:?}"),
        }
        let refused = client.offer_name(holders[0], &stale, &v2_id.id).await;
        assert!(
            matches!(
                refused,
                Err(mosaic_client::PeerError::Request(RequestError::Refused {
                    reason: Refusal::Stale,
                    ..
                }))
            ),
            "a node holding the newer record took a stale one: {refused:?}"
        );

        // The current record offered for another file than its target: refused, so a
        // replayer cannot tie the name to a blob it controls and then unpin.
        let v1_holder = dht.providers(&v1_id.id).await.unwrap()[0];
        let other = client
            .offer_name(v1_holder, &current.record, &v1_id.id)
            .await;
        assert!(
            matches!(
                &other,
                Err(mosaic_client::PeerError::Request(RequestError::Refused {
                    reason: Refusal::BadRequest,
                    message,
                })) if message.contains("points to another file")
            ),
            "a node took a record for another file than its target: {other:?}"
        );

        // Forged: a newer sequence number under the old signature.
        let mut forged = current.record.clone();
        forged.seq += 1_000_000;
        // DHT nodes answer a bad signature with error 206, or drop the message.
        let put = dht.publish_record(&forged).await;
        assert!(put.is_err(), "DHT nodes took a forged record");
        eprintln!("forged record: {}", put.unwrap_err());
        let refused = client.offer_name(holders[0], &forged, &v2_id.id).await;
        assert!(
            matches!(
                refused,
                Err(mosaic_client::PeerError::Request(RequestError::Refused {
                    reason: Refusal::BadRequest,
                    ..
                }))
            ),
            "a node took a forged record: {refused:?}"
        );

        // Oversized: validly signed, but over BEP 44's 1000 bytes.
        let item = n0_mainline::MutableItem::new(
            &signer,
            &vec![1u8; MAX_VALUE + 1],
            current.record.seq + 2_000_000,
            Some(NAME_SALT),
        );
        let big = SignedRecord::from_item(&item);
        let put = dht.publish_record(&big).await;
        assert!(put.is_err(), "DHT nodes took an oversized record");
        eprintln!("oversized record: {}", put.unwrap_err());
        let refused = client.offer_name(holders[0], &big, &v2_id.id).await;
        assert!(refused.is_err(), "a node took an oversized record");

        // After all that, the name still points to v2, at the same sequence number.
        let after = client
            .resolve_name(&mosaic_codec::name::NameRef::Public(name))
            .await
            .unwrap();
        assert_eq!(after.record, current.record);
        client.close().await;
    });
    assert_eq!(
        last_line(&c.mosaic_as("reader", &["name", "resolve", &key])),
        v2
    );
}
