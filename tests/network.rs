//! Black-box network tests: real `mosaic node run` processes on loopback, their own
//! Mainline DHT (node 0 starts it, the others bootstrap from it), and the real `mosaic`
//! CLI as the client. No internet: relays off, nothing but 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

use std::{
    fs,
    io::{BufRead, BufReader, Read, Seek, SeekFrom, Write},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

#[test]
fn put_get_survive_m_failures_fail_cleanly_beyond_and_recover_after_restart() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(5, &["--open"]);
    c.wait_for_nodes(5);
    let (file, data) = write_file(c.tmp.path(), "big.bin", 64 << 20);
    let cap = c.put(&file, &[]);
    assert!(cap.starts_with("mr1"), "{cap}");

    let out_path = c.tmp.path().join("out.bin");
    let out = c.get(&cap, &out_path);
    assert!(
        out.status.success(),
        "get failed: {}\n{}",
        stderr(&out),
        c.logs()
    );
    assert!(fs::read(&out_path).unwrap() == data, "64 MiB round trip");

    // Two of five nodes down: still retrievable (k = 3).
    c.kill(1);
    c.kill(3);
    assert_eq!(alive(&c), 3);
    let out_path2 = c.tmp.path().join("out2.bin");
    let out = c.get(&cap, &out_path2);
    assert!(
        out.status.success(),
        "get with 2 nodes down: {}\n{}",
        stderr(&out),
        c.logs()
    );
    assert!(fs::read(&out_path2).unwrap() == data);

    // A third down: a clean failure naming the missing columns, and no partial file.
    c.kill(4);
    let out_path3 = c.tmp.path().join("out3.bin");
    let out = c.get(&cap, &out_path3);
    assert!(
        !out.status.success(),
        "get must fail with 3 of 5 nodes down"
    );
    let err = stderr(&out);
    assert!(err.contains("columns needed are reachable"), "{err}");
    assert!(
        err.contains("columns ["),
        "names the missing columns: {err}"
    );
    assert!(!out_path3.exists(), "no partial output file");
    assert!(
        !fs::read_dir(c.tmp.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("partial")),
        "temporary file removed"
    );

    // One node back: it re-announces from its data directory and serves again.
    c.spawn(3);
    let deadline = Instant::now() + Duration::from_secs(60);
    let out_path4 = c.tmp.path().join("out4.bin");
    loop {
        let out = c.get(&cap, &out_path4);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted node never served: {}\n{}",
            stderr(&out),
            c.logs()
        );
        thread::sleep(Duration::from_secs(1));
    }
    assert!(fs::read(&out_path4).unwrap() == data);
}

#[test]
fn download_survives_a_node_killed_midway() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(5, &["--open"]);
    c.wait_for_nodes(5);
    let (file, data) = write_file(c.tmp.path(), "mid.bin", 96 << 20);
    let cap = c.put(&file, &[]);
    let out_path = c.tmp.path().join("out.bin");
    let child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["get", &cap, "-o", out_path.to_str().unwrap()])
        .env("MOSAIC_BOOTSTRAP", c.bootstrap())
        .env("MOSAIC_NETWORK", &c.network)
        .env("MOSAIC_BIND", "127.0.0.1:0")
        .env("MOSAIC_CONNECT_TIMEOUT", "2s")
        .env("XDG_CONFIG_HOME", c.tmp.path().join("client"))
        .env("HOME", c.tmp.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill nodes as soon as the download writes its first bytes: whichever serve it.
    let partial = c.tmp.path().join(".out.bin.mosaic-partial");
    let deadline = Instant::now() + Duration::from_secs(60);
    while fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "download never started");
        thread::sleep(Duration::from_millis(5));
    }
    c.kill(0);
    c.kill(2);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "download failed: {}\n{}",
        stderr(&out),
        c.logs()
    );
    assert!(fs::read(&out_path).unwrap() == data);
}

#[test]
fn unauthorized_clients_are_refused_and_allowed_ones_store() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The allowed identity, created before the nodes start.
    let probe = tempfile::tempdir().unwrap();
    let id = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .arg("id")
        .env("XDG_CONFIG_HOME", probe.path().join("allowed"))
        .env("HOME", probe.path())
        .output()
        .unwrap();
    let id = String::from_utf8(id.stdout).unwrap().trim().to_owned();
    let mut c = Cluster::start(5, &["--allow", &id]);
    // Move the allowed identity into this cluster's temp dir.
    fs::create_dir_all(c.tmp.path().join("allowed/mosaic/keys")).unwrap();
    fs::copy(
        probe.path().join("allowed/mosaic/keys/default.key"),
        c.tmp.path().join("allowed/mosaic/keys/default.key"),
    )
    .unwrap();
    c.wait_for_nodes(5);
    let (file, data) = write_file(c.tmp.path(), "small.bin", 300_000);
    let refused = c.mosaic(&["put", file.to_str().unwrap()]);
    assert!(
        !refused.status.success(),
        "an unknown client must be refused"
    );
    assert!(
        stderr(&refused).contains("does not accept data from"),
        "{}",
        stderr(&refused)
    );
    let ok = c.mosaic_as("allowed", &["put", file.to_str().unwrap()]);
    assert!(
        ok.status.success(),
        "allowed client: {}\n{}",
        stderr(&ok),
        c.logs()
    );
    let cap = String::from_utf8(ok.stdout).unwrap().trim().to_owned();
    // Reading needs no authorization (columns are ciphertext).
    let out_path = c.tmp.path().join("small.out");
    let out = c.get(&cap, &out_path);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read(&out_path).unwrap(), data);
    c.kill(0);
}

#[test]
fn a_corrupted_column_is_detected_and_the_file_comes_from_other_nodes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start(5, &["--open"]);
    c.wait_for_nodes(5);
    let (file, data) = write_file(c.tmp.path(), "c.bin", 8 << 20);
    let cap = c.put(&file, &[]);
    // Flip a byte in every large blob file on two running nodes' disks (their columns):
    // the nodes serve what is on disk, and verified streaming must catch it.
    let mut corrupted = 0;
    for i in [0, 1] {
        for entry in walk(&c.nodes[i].dir.join("blobs")) {
            if entry.extension().is_some_and(|e| e == "data")
                && fs::metadata(&entry).unwrap().len() > (1 << 20)
            {
                // In the first segment: it is fetched before any column is dropped.
                let mut f = fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&entry)
                    .unwrap();
                let mut byte = [0u8; 1];
                f.seek(SeekFrom::Start(1000)).unwrap();
                f.read_exact(&mut byte).unwrap();
                byte[0] ^= 0xff;
                f.seek(SeekFrom::Start(1000)).unwrap();
                f.write_all(&byte).unwrap();
                f.sync_all().unwrap();
                corrupted += 1;
            }
        }
    }
    assert!(corrupted >= 2, "found {corrupted} column files to corrupt");
    let out_path = c.tmp.path().join("c.out");
    let out = c.get(&cap, &out_path);
    assert!(
        out.status.success(),
        "get with 2 corrupt columns: {}\n{}",
        stderr(&out),
        c.logs()
    );
    assert!(fs::read(&out_path).unwrap() == data);
    // Of the k + 1 = 4 columns fetched at least one is corrupt: verified streaming
    // rejects it and the client fails over.
    assert!(stderr(&out).contains("failed over"), "{}", stderr(&out));
}

#[test]
fn put_refuses_when_too_few_nodes_are_reachable() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start(3, &["--open"]);
    c.wait_for_nodes(3);
    let (file, _) = write_file(c.tmp.path(), "f.bin", 1000);
    let out = c.mosaic(&["put", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("3 reachable, but 5 are needed"), "{err}");
    // With k + m = 3 it fits.
    let cap = c.put(&file, &["-k", "2", "-m", "1"]);
    assert!(cap.starts_with("mr1"));
}

/// What the README tells a newcomer: `mosaic devnet`, then `put` and `get` with the
/// default bootstrap (127.0.0.1:6881).
#[test]
fn readme_devnet_put_get_with_defaults() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let mut devnet = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args([
            "devnet",
            "--data-dir",
            tmp.path().join("devnet").to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = devnet.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = Arc::new(Mutex::new(String::new()));
    let log2 = log.clone();
    thread::spawn(move || {
        for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
            if line.starts_with("devnet:") {
                let _ = tx.send(());
            }
            log2.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let started = rx.recv_timeout(Duration::from_secs(30));
    let client = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args(args)
            .env("XDG_CONFIG_HOME", tmp.path().join("client"))
            .env("HOME", tmp.path())
            .env_remove("MOSAIC_BOOTSTRAP")
            .output()
            .unwrap()
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        started.unwrap_or_else(|_| panic!("devnet did not start:\n{}", log.lock().unwrap()));
        let (file, data) = write_file(tmp.path(), "README.md", 5000);
        // The nodes announce themselves in the background: retry until all are found.
        let deadline = Instant::now() + Duration::from_secs(60);
        let cap = loop {
            let out = client(&["put", file.to_str().unwrap()]);
            if out.status.success() {
                break String::from_utf8(out.stdout).unwrap().trim().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "put never succeeded: {}",
                stderr(&out)
            );
            thread::sleep(Duration::from_millis(500));
        };
        let copy = tmp.path().join("copy.md");
        let out = client(&["get", &cap, "-o", copy.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(fs::read(&copy).unwrap(), data);
    }));
    let _ = devnet.kill();
    let _ = devnet.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn the_first_node_and_another_restart_together_and_rejoin() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(5, &["--open"]);
    c.wait_for_nodes(5);
    // Node 0 started the network (no --bootstrap): it rejoins through the peers it saved.
    let peers = c.nodes[0].dir.join("dht-peers");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !peers.exists() {
        assert!(Instant::now() < deadline, "node 0 saved no DHT peers");
        thread::sleep(Duration::from_millis(200));
    }
    let (file, data) = write_file(c.tmp.path(), "r.bin", 1 << 20);
    let cap = c.put(&file, &[]);
    c.kill(0);
    c.kill(2);
    c.spawn(0);
    c.spawn(2);
    c.wait_for_nodes(5);
    let out_path = c.tmp.path().join("r.out");
    let out = c.get(&cap, &out_path);
    assert!(
        out.status.success(),
        "get after restarts: {}\n{}",
        stderr(&out),
        c.logs()
    );
    assert!(fs::read(&out_path).unwrap() == data);
}
