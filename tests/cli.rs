//! The CLI people use, black-box: keys, the keyring, pins, quotas and garbage
//! collection, against real `mosaic node run` processes on loopback. Exit codes are
//! the documented ones (docs/cli.md): 3 not found, 4 refused, 6 space, 7 bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    fs,
    path::Path,
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use common::{Cluster, SERIAL, stderr, write_file};
use serde_json::Value;

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

#[track_caller]
fn ok(out: Output) -> Output {
    assert!(out.status.success(), "failed: {}", stderr(&out));
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The CLI without a network, with its own config and data directories.
fn offline(home: &Path, args: &[&str], passphrase: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaic"));
    cmd.args(args)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("HOME", home)
        .env_remove("MOSAIC_PASSPHRASE")
        .env_remove("MOSAIC_KEY");
    if let Some(p) = passphrase {
        cmd.env("MOSAIC_PASSPHRASE", p);
    }
    cmd.output().unwrap()
}

#[test]
fn keys_are_created_listed_exported_imported_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    // A default identity appears on first use; `id` and `key list` agree.
    let id = stdout(&ok(offline(&a, &["id"], None)));
    let list = json(&ok(offline(&a, &["key", "list", "--json"], None)));
    assert_eq!(list[0]["name"], "default");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["in_use"], true);
    // A named one; it can be used with --key; a name twice is refused.
    let work = json(&ok(offline(&a, &["key", "new", "work", "--json"], None)));
    let work_id = work["id"].as_str().unwrap().to_owned();
    assert_ne!(work_id, id);
    assert_eq!(
        stdout(&ok(offline(&a, &["id", "--key", "work"], None))),
        work_id
    );
    let again = offline(&a, &["key", "new", "work"], None);
    assert_eq!(again.status.code(), Some(4), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );
    // A missing key: exit 3, and what to do.
    let missing = offline(&a, &["id", "--key", "nosuch"], None);
    assert_eq!(missing.status.code(), Some(3));
    assert!(
        stderr(&missing).contains("mosaic key new nosuch"),
        "{}",
        stderr(&missing)
    );
    // Key files are 0600; one others can read is refused with the fix.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = a.join("config/mosaic/keys/work.key");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let exposed = offline(&a, &["id", "--key", "work"], None);
        assert_eq!(exposed.status.code(), Some(4));
        assert!(
            stderr(&exposed).contains("chmod 600"),
            "{}",
            stderr(&exposed)
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Export under a passphrase; the file is 0600 and holds no key in the clear.
    let export = tmp.path().join("work.mkey");
    let export_s = export.to_str().unwrap();
    ok(offline(
        &a,
        &["key", "export", "work", "-o", export_s],
        Some("pass phrase 1"),
    ));
    let sealed = fs::read(&export).unwrap();
    let secret = fs::read(a.join("config/mosaic/keys/work.key")).unwrap();
    assert!(!sealed.windows(32).any(|w| w == secret.as_slice()));
    // Without a passphrase (no terminal here): a clear error.
    let none = offline(&b, &["key", "import", export_s], None);
    assert!(!none.status.success());
    assert!(
        stderr(&none).contains("MOSAIC_PASSPHRASE"),
        "{}",
        stderr(&none)
    );
    // A wrong passphrase: refused, nothing imported.
    let wrong = offline(&b, &["key", "import", export_s], Some("wrong"));
    assert_eq!(wrong.status.code(), Some(4), "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("wrong passphrase"),
        "{}",
        stderr(&wrong)
    );
    assert!(!b.join("config/mosaic/keys/work.key").exists());
    // The right one: the same identity on the other machine.
    ok(offline(
        &b,
        &["key", "import", export_s],
        Some("pass phrase 1"),
    ));
    assert_eq!(
        stdout(&ok(offline(&b, &["id", "--key", "work"], None))),
        work_id
    );
    // Importing it again is harmless; a different key under a taken name is refused.
    ok(offline(
        &b,
        &["key", "import", export_s],
        Some("pass phrase 1"),
    ));
    ok(offline(&b, &["key", "new", "other"], None));
    let renamed = offline(
        &b,
        &["key", "import", export_s, "--name", "other"],
        Some("pass phrase 1"),
    );
    assert_eq!(renamed.status.code(), Some(4), "{}", stderr(&renamed));
    // The convergence secret is a key like the others.
    ok(offline(&a, &["key", "new", "convergence"], None));
    let list = json(&ok(offline(&a, &["key", "list", "--json"], None)));
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|k| k["kind"] == "convergence"),
        "{list}"
    );
    // Removal (no terminal: no question), then the key is gone.
    ok(offline(&a, &["key", "rm", "work"], None));
    assert_eq!(
        offline(&a, &["id", "--key", "work"], None).status.code(),
        Some(3)
    );
    assert_eq!(
        offline(&a, &["key", "rm", "work"], None).status.code(),
        Some(3)
    );
    // Completions for a shell; a bad name is a clear error.
    let bash = stdout(&ok(offline(&a, &["completions", "bash"], None)));
    assert!(bash.contains("mosaic") && bash.contains("pin"), "{bash}");
    let bad = offline(&a, &["key", "new", "../escape"], None);
    assert_eq!(bad.status.code(), Some(7), "{}", stderr(&bad));
}

/// Runs `mosaic --json …` as `who` and parses its answer.
fn j(c: &Cluster, who: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = c.mosaic_as(who, &all);
    assert!(
        out.status.success(),
        "mosaic {args:?} as {who} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    json(&out)
}

#[test]
fn the_keyring_records_shares_removes_and_moves_to_another_machine() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start(5, &["--open"]);
    c.wait_for_nodes(5);
    let (file, data) = write_file(c.tmp.path(), "report.pdf", 300_000);
    // Put records it (piped stderr: no progress bar drawn).
    let out = ok(c.mosaic_as("alice", &["put", file.to_str().unwrap()]));
    assert!(!stderr(&out).contains("eta"), "{}", stderr(&out));
    let cap = stdout(&out);
    let ls = j(&c, "alice", &["ls"]);
    assert_eq!(ls[0]["name"], "report.pdf");
    assert_eq!(ls[0]["cap"], cap.as_str());
    assert_eq!(ls[0]["size"], 300_000);
    assert_eq!(ls[0]["nodes"].as_array().unwrap().len(), 5);
    // Share: the cap and a gateway URL with the name.
    let share = j(
        &c,
        "alice",
        &[
            "share",
            "report.pdf",
            "--gateway-url",
            "https://gw.example/",
        ],
    );
    assert_eq!(share["cap"], cap.as_str());
    // The key is in the fragment (never sent by browsers); the path names no secret.
    assert_eq!(
        share["url"],
        format!("https://gw.example/s/#{cap}/report.pdf").as_str()
    );
    let old_style = j(
        &c,
        "alice",
        &[
            "share",
            "report.pdf",
            "--gateway-url",
            "https://gw.example/",
            "--gateway-decrypts",
        ],
    );
    assert_eq!(
        old_style["url"],
        format!("https://gw.example/f/{cap}/report.pdf").as_str()
    );
    // Get by name.
    let back = c.tmp.path().join("back.pdf");
    ok(c.mosaic_as(
        "alice",
        &["get", "report.pdf", "-o", back.to_str().unwrap()],
    ));
    assert_eq!(fs::read(&back).unwrap(), data);
    // On a terminal (a pty from `script`), `get` draws a progress bar on stderr.
    let cmdline = format!(
        "{} get report.pdf -o {}",
        env!("CARGO_BIN_EXE_mosaic"),
        c.tmp.path().join("tty.pdf").display()
    );
    let tty = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .env("MOSAIC_BOOTSTRAP", c.bootstrap())
        .env("MOSAIC_NETWORK", &c.network)
        .env("MOSAIC_BIND", "127.0.0.1:0")
        .env("XDG_CONFIG_HOME", c.tmp.path().join("alice"))
        .env("XDG_DATA_HOME", c.tmp.path().join("alice").join("data"))
        .env("HOME", c.tmp.path())
        .output()
        .expect("`script` (util-linux) runs a command on a pty");
    let drawn = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{drawn}");
    assert!(
        drawn.contains("get [") && drawn.contains("KiB"),
        "no bar: {drawn:?}"
    );
    assert_eq!(fs::read(c.tmp.path().join("tty.pdf")).unwrap(), data);
    // Bad caps and unknown names: clear errors with their codes.
    let bad = c.mosaic_as("alice", &["get", "mr1notacap"]);
    assert_eq!(bad.status.code(), Some(7), "{}", stderr(&bad));
    let unknown = c.mosaic_as("alice", &["--json", "share", "nosuch.txt"]);
    assert_eq!(unknown.status.code(), Some(3));
    assert!(
        json(&unknown)["error"]
            .as_str()
            .unwrap()
            .contains("not in your keyring")
    );
    // Status: the DHT and every node, with what alice pins there.
    let status = j(&c, "alice", &["status"]);
    assert_eq!(status["nodes_reachable"], 5, "{status}");
    assert!(
        status["dht_routing_table"].as_u64().unwrap() > 0,
        "{status}"
    );
    let pinned: u64 = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pinned_by_you"].as_u64().unwrap())
        .sum();
    assert!(pinned >= 300_000, "{status}");
    // Export everything; import on a new machine (new dirs): same keyring and identity.
    let export = c.tmp.path().join("alice.export");
    let run_as = |who: &str, args: &[&str], pass: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaic"));
        cmd.args(args)
            .env("MOSAIC_PASSPHRASE", pass)
            .env("XDG_CONFIG_HOME", c.tmp.path().join(who))
            .env("XDG_DATA_HOME", c.tmp.path().join(who).join("data"))
            .env("HOME", c.tmp.path());
        cmd.output().unwrap()
    };
    ok(run_as(
        "alice",
        &["export", "-o", export.to_str().unwrap()],
        "s3cret",
    ));
    let wrong = run_as("alice2", &["import", export.to_str().unwrap()], "guess");
    assert_eq!(wrong.status.code(), Some(4), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("nothing was imported"));
    assert_eq!(j(&c, "alice2", &["ls"]), Value::Array(vec![]));
    ok(run_as(
        "alice2",
        &["import", export.to_str().unwrap()],
        "s3cret",
    ));
    assert_eq!(j(&c, "alice2", &["ls"]), ls);
    assert_eq!(
        stdout(&ok(c.mosaic_as("alice2", &["id"]))),
        stdout(&ok(c.mosaic_as("alice", &["id"])))
    );
    let back2 = c.tmp.path().join("back2.pdf");
    ok(c.mosaic_as(
        "alice2",
        &["get", "report.pdf", "-o", back2.to_str().unwrap()],
    ));
    assert_eq!(fs::read(&back2).unwrap(), data);
    // On a terminal, rm asks first; "n" keeps everything.
    let mut asked = Command::new("script")
        .args([
            "-qec",
            &format!("{} rm report.pdf", env!("CARGO_BIN_EXE_mosaic")),
            "/dev/null",
        ])
        .env("MOSAIC_BOOTSTRAP", c.bootstrap())
        .env("MOSAIC_NETWORK", &c.network)
        .env("XDG_CONFIG_HOME", c.tmp.path().join("alice"))
        .env("XDG_DATA_HOME", c.tmp.path().join("alice").join("data"))
        .env("HOME", c.tmp.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = asked.stdin.take().unwrap();
        thread::sleep(Duration::from_millis(300));
        stdin.write_all(b"n\n").unwrap();
    }
    let asked = asked.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&asked.stdout);
    assert!(
        shown.contains("[y/N]") && shown.contains("nothing was removed"),
        "{shown}"
    );
    assert_eq!(j(&c, "alice", &["ls"])[0]["name"], "report.pdf");
    // rm: unpins on the nodes (no terminal: no question) and forgets.
    let rm = j(&c, "alice", &["rm", "report.pdf"]);
    assert!(rm["unpinned_on"].as_u64().unwrap() >= 5, "{rm}");
    assert_eq!(j(&c, "alice", &["ls"]), Value::Array(vec![]));
    let health = j(&c, "alice2", &["pin", "ls", &cap]);
    assert_eq!(health[0]["columns_pinned_by_you"], 0, "{health}");
    assert_eq!(
        health[0]["readable"], true,
        "unpinned data stays until collected"
    );
    // Two entries sharing blobs (one public file uploaded twice): removing one leaves
    // the other pinned.
    let (public, _) = write_file(c.tmp.path(), "pub.txt", 50_000);
    let p = public.to_str().unwrap();
    let first = j(&c, "alice", &["put", p, "--public", "--name", "pub1"]);
    let second = j(&c, "alice", &["put", p, "--public", "--name", "pub2"]);
    assert_eq!(first["cap"], second["cap"]);
    j(&c, "alice", &["rm", "pub1"]);
    let health = j(&c, "alice", &["pin", "ls", "pub2"]);
    assert_eq!(health[0]["columns_pinned_by_you"], 5, "{health}");
}

/// Total bytes the nodes report as used.
fn used(c: &Cluster, who: &str) -> (u64, u64) {
    let status = j(c, who, &["status"]);
    let nodes = status["nodes"].as_array().unwrap();
    (
        nodes.iter().map(|n| n["used"].as_u64().unwrap()).sum(),
        nodes
            .iter()
            .map(|n| n["collectable"].as_u64().unwrap())
            .sum(),
    )
}

#[test]
fn pins_belong_to_owners_gc_takes_only_unpinned_data_and_quotas_hold() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Collection from 30 % of 2 MiB down to 0 %, checked every second; 1 MiB per client.
    let c = Cluster::start(
        5,
        &[
            "--open",
            "--capacity",
            "2MiB",
            "--quota",
            "1MiB",
            "--gc-high",
            "30",
            "--gc-low",
            "0",
            "--gc-interval",
            "1s",
        ],
    );
    c.wait_for_nodes(5);
    // Alice's file: about 100 KiB per column on each of the 5 nodes.
    let (a_file, a_data) = write_file(c.tmp.path(), "a.bin", 300_000);
    let a = j(&c, "alice", &["put", a_file.to_str().unwrap()]);
    let a_cap = a["cap"].as_str().unwrap().to_owned();
    // Bob pins alice's file too: every blob now has two owners.
    let pin = j(&c, "bob", &["pin", "add", &a_cap]);
    assert_eq!(pin["complete"], true, "{pin}");
    let health = j(&c, "bob", &["pin", "ls", &a_cap]);
    for blob in health[0]["blobs"].as_array().unwrap() {
        let places = blob["places"].as_array().unwrap();
        assert!(!places.is_empty(), "{health}");
        assert!(
            places
                .iter()
                .all(|p| p["owners"] == 2 && p["yours"] == true),
            "{health}"
        );
    }
    // Alice unpins: bob's pins stay.
    j(&c, "alice", &["pin", "rm", "a.bin"]);
    let health = j(&c, "bob", &["pin", "ls", &a_cap]);
    assert_eq!(health[0]["columns_pinned_by_you"], 5, "{health}");
    for blob in health[0]["blobs"].as_array().unwrap() {
        assert!(
            blob["places"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["owners"] == 1),
            "{health}"
        );
    }
    assert_eq!(
        j(&c, "alice", &["pin", "ls", "a.bin"])[0]["columns_pinned_by_you"],
        0
    );

    // Alice's second file, then she removes it: unpinned, collectable.
    let (b_file, _) = write_file(c.tmp.path(), "b.bin", 600_000);
    let b = j(&c, "alice", &["put", b_file.to_str().unwrap()]);
    let b_cap = b["cap"].as_str().unwrap().to_owned();
    let (before, _) = used(&c, "alice");
    j(&c, "alice", &["rm", "b.bin"]);
    // Usage (about 900 KB over 5 nodes of 2 MiB: 90 KB + 180 KB each, 30 % is 629 KB)
    // is under the high watermark: nothing is collected yet.
    thread::sleep(Duration::from_secs(3));
    let (now, collectable) = used(&c, "alice");
    assert_eq!(now, before, "collected below the high watermark");
    assert!(
        collectable >= 600_000,
        "b.bin is collectable: {collectable}"
    );
    // Bob's upload pushes the nodes past 30 %: only unpinned data (b.bin) goes.
    let (c_file, c_data) = write_file(c.tmp.path(), "c.bin", 1_200_000);
    let cb = j(&c, "bob", &["put", c_file.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, collectable) = used(&c, "bob");
        if collectable == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing collected: {collectable} left\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(500));
    }
    // Its blobs are held nowhere now (or, once swept, its manifest cannot be fetched):
    // exit 5, and still one JSON answer.
    let out = c.mosaic_as("bob", &["--json", "pin", "ls", &b_cap]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let gone = json(&out);
    assert!(
        gone[0]["error"].is_string() || gone[0]["columns_available"] == 0,
        "{gone}"
    );
    assert_ne!(gone[0]["readable"], true, "{gone}");
    // Pinned files are whole.
    for (cap, data) in [
        (&a_cap, &a_data),
        (&cb["cap"].as_str().unwrap().to_owned(), &c_data),
    ] {
        let out = c.tmp.path().join("out");
        ok(c.mosaic_as("bob", &["get", cap, "-o", out.to_str().unwrap()]));
        assert_eq!(&fs::read(&out).unwrap(), data);
    }
    // b.bin's bytes are really gone once swept: its get fails.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = c.mosaic_as(
            "bob",
            &[
                "get",
                &b_cap,
                "-o",
                c.tmp.path().join("b").to_str().unwrap(),
            ],
        );
        if !out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b.bin still readable after collection"
        );
        thread::sleep(Duration::from_millis(500));
    }

    // Quota: bob pins about 100 + 400 KB per node; 3 MB more (1 MB per column) would pass
    // his 1 MiB quota: refused, exit 6, with what to do. Nothing is recorded.
    let (big, _) = write_file(c.tmp.path(), "big.bin", 3_000_000);
    let out = c.mosaic_as("bob", &["put", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("quota exceeded"), "{}", stderr(&out));
    assert!(stderr(&out).contains("mosaic rm"), "{}", stderr(&out));
    let ls = j(&c, "bob", &["ls"]);
    assert_eq!(ls.as_array().unwrap().len(), 1, "{ls}");
    let status = j(&c, "bob", &["status"]);
    for n in status["nodes"].as_array().unwrap() {
        assert_eq!(n["quota"], 1 << 20, "{status}");
        assert!(n["pinned_by_you"].as_u64().unwrap() <= 1 << 20, "{status}");
    }
    // Capacity: carol's 900 KB columns fit (about 1.4 MB of 2 MiB used); dave's next
    // 900 KB would not, and nothing unpinned is left to collect: "full", exit 6.
    let (f1, _) = write_file(c.tmp.path(), "carol.bin", 2_700_000);
    j(&c, "carol", &["put", f1.to_str().unwrap()]);
    let (f2, _) = write_file(c.tmp.path(), "dave.bin", 2_700_000);
    // The nodes' free space (from `Stat`) shows it before any byte moves.
    let out = c.mosaic_as("dave", &["put", f2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("have room"), "{}", stderr(&out));
}

#[test]
fn pin_add_copies_a_column_its_holder_will_not_pin_to_a_new_node() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(5, &["--open"]);
    c.wait_for_nodes(5);
    let alice = stdout(&ok(c.mosaic_as("alice", &["id"])));
    let (file, data) = write_file(c.tmp.path(), "x.bin", 200_000);
    // Three columns (k=2, m=1) on three of the five nodes.
    let put = j(
        &c,
        "alice",
        &["put", file.to_str().unwrap(), "-k", "2", "-m", "1"],
    );
    let cap = put["cap"].as_str().unwrap().to_owned();
    let health = j(&c, "alice", &["pin", "ls", &cap]);
    let column0 = &health[0]["blobs"][1];
    assert_eq!(column0["role"], "column 0", "{health}");
    let holder = column0["places"][0]["node"].as_str().unwrap().to_owned();
    let holders: Vec<String> = health[0]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["places"].as_array().unwrap().iter())
        .map(|p| p["node"].as_str().unwrap().to_owned())
        .collect();
    // Column 0's node now accepts only alice: it will not pin for bob.
    let i = (0..5)
        .find(|&i| {
            let dir = c.nodes[i].dir.to_str().unwrap().to_owned();
            stdout(&ok(c.mosaic(&["node", "id", "--data-dir", &dir]))) == holder
        })
        .expect("the holder is one of the nodes");
    c.kill(i);
    let args = &mut c.nodes[i].args;
    let open = args.iter().position(|a| a == "--open").unwrap();
    args.splice(open..=open, ["--allow".to_owned(), alice]);
    c.spawn(i);
    c.wait_for_nodes(5);
    // Bob pins: the refusing holder's column is copied, verified, to a node that holds
    // nothing of this file, which pins it for bob.
    let pin = j(&c, "bob", &["pin", "add", &cap]);
    assert_eq!(pin["complete"], true, "{pin}");
    assert_eq!(pin["copied"], 1, "{pin}");
    assert!(
        pin["problems"][0]
            .as_str()
            .unwrap()
            .contains("does not accept"),
        "{pin}"
    );
    let health = j(&c, "bob", &["pin", "ls", &cap]);
    let places = health[0]["blobs"][1]["places"].as_array().unwrap();
    let copy = places
        .iter()
        .find(|p| p["yours"] == true)
        .unwrap_or_else(|| panic!("column 0 is not pinned for bob: {health}"));
    assert!(
        !holders.contains(&copy["node"].as_str().unwrap().to_owned()),
        "{health}"
    );
    assert!(
        places
            .iter()
            .any(|p| p["node"] == holder.as_str() && p["yours"] == false)
    );
    assert_eq!(health[0]["columns_pinned_by_you"], 3, "{health}");
    // The original holder gone, the file still reads (from the copy).
    // (Join through another node's DHT port: the holder may be node 0, the default.)
    c.kill(i);
    let via = format!("127.0.0.1:{}", c.nodes[(i + 1) % 5].dht);
    let out = c.tmp.path().join("x.out");
    ok(c.mosaic_as(
        "bob",
        &[
            "get",
            &cap,
            "-o",
            out.to_str().unwrap(),
            "--bootstrap",
            &via,
        ],
    ));
    assert_eq!(fs::read(&out).unwrap(), data);
}

/// A node that refuses its column mid-put (here: over its quota, which `Stat` does not
/// show) does not fail the put while the network has a spare node: the column is
/// encoded again and sent there. Placement is random per put, so node 5 is among the
/// five chosen in at least one of three puts with probability 1 - (1/6)^3.
#[test]
fn a_column_refused_by_one_node_goes_to_a_spare() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(6, &["--open"]);
    c.kill(5);
    c.nodes[5].args.extend(["--quota".into(), "1MiB".into()]);
    c.spawn(5);
    c.wait_for_nodes(6);
    let strict = c.node_id(5);
    for i in 0..3 {
        // 24 segments: more than the pipe holds, so the other columns are still being
        // sent when node 5 refuses.
        let (file, data) = write_file(c.tmp.path(), &format!("big{i}.bin"), 24 << 20);
        let cap = c.put(&file, &[]);
        let status = j(&c, "client", &["status"]);
        for n in status["nodes"].as_array().unwrap() {
            if n["id"].as_str() == Some(strict.as_str()) {
                assert_eq!(n["pinned_by_you"], 0, "node 5 kept a pin: {status}");
            }
        }
        let out = c.tmp.path().join(format!("big{i}.out"));
        ok(c.get(&cap, &out));
        assert!(fs::read(&out).unwrap() == data, "big{i} round trip");
    }
}

/// A name already in the keyring is never lost: another file put under it is kept as
/// `NAME (2)`, `NAME (3)`…, the same file again uploads and adds nothing (`--copy`
/// stores a second copy), and `--replace` replaces the entry, says what it held, and
/// unpins that file.
#[test]
fn a_taken_name_keeps_both_files_unless_replace_is_asked() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start(5, &["--open"]);
    c.wait_for_nodes(5);
    let (file, v1) = write_file(c.tmp.path(), "report.pdf", 100_000);
    let path = file.to_str().unwrap();
    let first = j(&c, "alice", &["put", path]);
    assert_eq!(first["name"], "report.pdf", "{first}");
    assert_eq!(first["keyring"], "added", "{first}");
    let cap1 = first["cap"].as_str().unwrap().to_owned();
    assert_eq!(first["uploaded"], true, "{first}");
    // The same file again: the keyring knows its content (a hash kept on this machine),
    // so nothing is uploaded (a private upload would have a new key, so a new cap) and
    // the answer says where it is stored.
    let same_private = ok(c.mosaic_as("alice", &["put", path]));
    assert_eq!(stdout(&same_private), cap1);
    let said = stderr(&same_private);
    assert!(
        said.contains("already stored as \"report.pdf\"") && said.contains("--copy"),
        "{said}"
    );
    let same_json = j(&c, "alice", &["put", path]);
    assert_eq!(same_json["cap"], cap1.as_str(), "{same_json}");
    assert_eq!(same_json["name"], "report.pdf", "{same_json}");
    assert_eq!(same_json["keyring"], "existing", "{same_json}");
    assert_eq!(same_json["uploaded"], false, "{same_json}");
    // Asked for a second copy, private: a new key, so another file. It is kept beside
    // the first, and stderr says under which name.
    let again = ok(c.mosaic_as("alice", &["put", path, "--copy"]));
    let cap2 = stdout(&again);
    assert_ne!(cap2, cap1);
    let said = stderr(&again);
    assert!(
        said.contains("this upload is \"report (2).pdf\"") && said.contains("--replace"),
        "{said}"
    );
    assert!(
        said.contains("in your keyring as \"report (2).pdf\""),
        "{said}"
    );
    // Public: another file again, the next number; `--json` says so.
    let public = j(&c, "alice", &["put", path, "--public"]);
    assert_eq!(public["name"], "report (3).pdf", "{public}");
    assert_eq!(public["requested_name"], "report.pdf", "{public}");
    assert_eq!(public["keyring"], "renamed", "{public}");
    // The same public file again: the same cap, in the keyring already, nothing added.
    let same = j(&c, "alice", &["put", path, "--public"]);
    assert_eq!(same["cap"], public["cap"]);
    assert_eq!(same["name"], "report (3).pdf", "{same}");
    assert_eq!(same["keyring"], "existing", "{same}");
    let ls = j(&c, "alice", &["ls"]);
    let names: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["report (2).pdf", "report (3).pdf", "report.pdf"]);
    // Each is retrievable by its name.
    let out = c.tmp.path().join("out");
    for name in ["report.pdf", "report (2).pdf", "report (3).pdf"] {
        ok(c.mosaic_as("alice", &["get", name, "-o", out.to_str().unwrap()]));
        assert!(fs::read(&out).unwrap() == v1, "{name}");
    }
    // A new version with --replace: the name holds it now; the answer says what the
    // entry held, and that file is unpinned.
    fs::write(&file, b"version 2").unwrap();
    let replaced = j(&c, "alice", &["put", path, "--replace"]);
    assert_eq!(replaced["name"], "report.pdf", "{replaced}");
    assert_eq!(replaced["keyring"], "replaced", "{replaced}");
    assert_eq!(replaced["replaced"]["cap"], cap1.as_str(), "{replaced}");
    assert!(
        replaced["replaced"]["unpinned_on"].as_u64().unwrap() >= 5,
        "{replaced}"
    );
    assert_eq!(replaced["replaced"]["problems"], Value::Array(vec![]));
    ok(c.mosaic_as("alice", &["get", "report.pdf", "-o", out.to_str().unwrap()]));
    assert_eq!(fs::read(&out).unwrap(), b"version 2");
    let old = j(&c, "alice", &["pin", "ls", &cap1]);
    assert_eq!(old[0]["columns_pinned_by_you"], 0, "{old}");
    assert_eq!(j(&c, "alice", &["ls"]).as_array().unwrap().len(), 3);
    // On stderr, a replace names the cap it replaced.
    let out = ok(c.mosaic_as(
        "alice",
        &["put", path, "--replace", "--name", "report (2).pdf"],
    ));
    let said = stderr(&out);
    assert!(
        said.contains("replaced \"report (2).pdf\"") && said.contains(&cap2),
        "{said}"
    );
    // Human listings end with a newline, so the shell's prompt starts on its own line.
    for args in [
        &["pin", "ls"][..],
        &["ls"],
        &["status"],
        &["nodes"],
        &["check", "report.pdf"],
    ] {
        let out = ok(c.mosaic_as("alice", args));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.is_empty() && text.ends_with('\n'),
            "{args:?}: {text:?}"
        );
        let notes = stderr(&out);
        assert!(
            notes.is_empty() || notes.ends_with('\n'),
            "{args:?}: {notes:?}"
        );
    }
}

/// With nothing to list, a listing says so (on stderr) rather than print nothing, and
/// every line ends with a newline.
#[test]
fn empty_listings_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["pin", "ls"][..],
        &["ls"],
        &["name", "ls"],
        &["key", "list"],
    ] {
        let out = ok(offline(tmp.path(), args, None));
        assert!(out.stdout.is_empty(), "{args:?}");
        let notes = stderr(&out);
        assert!(
            !notes.is_empty() && notes.ends_with('\n'),
            "{args:?}: {notes:?}"
        );
    }
    let out = ok(offline(tmp.path(), &["--json", "pin", "ls"], None));
    assert_eq!(json(&out), Value::Array(vec![]));
}

/// A node too full for its column is named, with what to do, and the put exits 6
/// (space). Two users' puts race for the one column's room node 4 has: the second meets
/// either the node's refusal mid-put or, if the first is done, its `Stat` before any
/// byte. (One user's two puts would meet that user's quota on the open node first.)
#[test]
fn a_put_that_meets_a_full_node_names_it_and_exits_6() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(5, &["--open"]);
    // Room for one column of a 3 MB file (k = 3: 1 MB) and its manifest, not for two.
    c.kill(4);
    let args = &mut c.nodes[4].args;
    let at = args.iter().position(|a| a == "--capacity").unwrap();
    args[at + 1] = "1600KiB".into();
    c.spawn(4);
    c.wait_for_nodes(5);
    let full = c.node_id(4);
    let users = ["alice", "bob"];
    for who in users {
        ok(c.mosaic_as(who, &["id"]));
    }
    let (a, _) = write_file(c.tmp.path(), "a.bin", 3_000_000);
    let (b, _) = write_file(c.tmp.path(), "b.bin", 3_000_000);
    let puts: Vec<_> = users
        .iter()
        .zip([&a, &b])
        .map(|(who, f)| {
            c.mosaic_command_as(who, &["put", f.to_str().unwrap(), "-k", "3", "-m", "2"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = puts
        .into_iter()
        .map(|p| p.wait_with_output().unwrap())
        .collect();
    let (won, lost): (Vec<&Output>, Vec<&Output>) = outs.iter().partition(|o| o.status.success());
    assert_eq!(
        won.len(),
        1,
        "one put fits: {:?}",
        outs.iter().map(stderr).collect::<Vec<_>>()
    );
    let said = stderr(lost[0]);
    assert_eq!(lost[0].status.code(), Some(6), "{said}");
    assert!(said.contains(&full), "the full node is not named: {said}");
    assert!(said.contains("--capacity"), "{said}");
    // Now the node is full for anyone: the next put is refused before any byte moves,
    // naming it. Nothing of the failed put is in its user's keyring.
    let out = c.mosaic(&["put", b.to_str().unwrap(), "-k", "3", "-m", "2"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains(&full), "{}", stderr(&out));
    let recorded: usize = users
        .iter()
        .map(|who| j(&c, who, &["ls"]).as_array().unwrap().len())
        .sum();
    assert_eq!(recorded, 1);
}

/// Each command's help lists only the flags it uses; the flags earlier versions took
/// before any command still work there for the commands that have them.
#[test]
fn each_command_lists_only_its_own_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let help = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("--help");
        stdout(&ok(offline(home, &all, None)))
    };
    let flags = |text: &str| -> Vec<String> {
        text.split_whitespace()
            .filter(|w| w.starts_with("--"))
            .map(|w| w.trim_end_matches([',', '.', ')', '`']).to_owned())
            .collect()
    };
    let gateway = flags(&help(&["gateway", "run"]));
    for absent in ["--local-dir", "--timings", "--replace"] {
        assert!(
            !gateway.iter().any(|f| f == absent),
            "gateway run lists {absent}: {gateway:?}"
        );
    }
    // The gateway acts as an identity: its uploads are stored with it.
    for present in ["--key", "--listen", "--bootstrap", "--json"] {
        assert!(
            gateway.iter().any(|f| f == present),
            "gateway run lacks {present}"
        );
    }
    let put = flags(&help(&["put"]));
    for present in ["--key", "--timings", "--replace", "--bootstrap", "--json"] {
        assert!(
            put.iter().any(|f| f == present),
            "put lacks {present}: {put:?}"
        );
    }
    assert!(!put.iter().any(|f| f == "--local-dir"), "{put:?}");
    let encode = flags(&help(&["encode"]));
    assert!(encode.iter().any(|f| f == "--local-dir"), "{encode:?}");
    for absent in ["--key", "--timings", "--bootstrap"] {
        assert!(!encode.iter().any(|f| f == absent), "encode lists {absent}");
    }
    let ls = flags(&help(&["ls"]));
    for absent in ["--key", "--timings", "--local-dir", "--bootstrap"] {
        assert!(!ls.iter().any(|f| f == absent), "ls lists {absent}");
    }
    let share = flags(&help(&["share"]));
    assert!(share.iter().any(|f| f == "--config"), "{share:?}");
    assert!(
        !share.iter().any(|f| f == "--bootstrap" || f == "--key"),
        "{share:?}"
    );
    // Before the command, as earlier versions took them: the same as after it.
    let work = json(&ok(offline(home, &["key", "new", "work", "--json"], None)));
    assert_eq!(
        stdout(&ok(offline(home, &["--key", "work", "id"], None))),
        work["id"].as_str().unwrap()
    );
    let blobs = home.join("blobs");
    let (file, _) = write_file(home, "f.bin", 5_000);
    let cap = stdout(&ok(offline(
        home,
        &[
            "--local-dir",
            blobs.to_str().unwrap(),
            "encode",
            file.to_str().unwrap(),
        ],
        None,
    )));
    ok(offline(
        home,
        &["inspect", &cap, "--local-dir", blobs.to_str().unwrap()],
        None,
    ));
    // A command without the flag refuses it there too, and says why.
    let wrong = offline(home, &["--timings", "ls"], None);
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("`mosaic ls` has no --timings"),
        "{}",
        stderr(&wrong)
    );
    let wrong = offline(home, &["gateway", "run", "--local-dir", "x"], None);
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
}
