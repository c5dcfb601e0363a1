//! Churn on a network of 20 nodes: issue 27's targets ("tests at 20 nodes cover a
//! frozen holder, a dead holder, a resumed node and a target freezing mid-upload").
//! A frozen node (SIGSTOP) is the hard case: unlike a dead one it keeps its sockets and
//! its place in every routing table, and answers nothing, as a hung machine or a
//! laptop put to sleep does.
//!
//! One cluster of 20 real `mosaic node run` processes on loopback (their own DHT)
//! serves four scenarios in turn, all through the real CLI (and a real gateway):
//! 1. two of a file's five holders frozen: the CLI and the gateway still read it;
//! 2. two of a file's holders killed: it still reads;
//! 3. a holder frozen for 15 s while puts and gets go on; once it resumes, puts and
//!    gets work and it serves its column again (needed: two other holders are frozen);
//! 4. a target frozen while a put uploads to it: the put finishes on a spare, and the
//!    file reads back.
//!
//! Only correctness is asserted (exit status, bytes, placement): times are printed for
//! information, never asserted (this runs on small shared machines).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{gateway::Gateway, *};

use std::{
    fs,
    path::Path,
    process::{Output, Stdio},
    thread,
    time::{Duration, Instant},
};

const NODES: usize = 20;

/// A file stored by `mosaic --json put`.
struct Stored {
    cap: String,
    data: Vec<u8>,
    /// The nodes its columns were placed on (indices into the cluster).
    holders: Vec<usize>,
}

/// Every node's id, by index.
fn ids(c: &Cluster) -> Vec<String> {
    (0..c.nodes.len()).map(|i| c.node_id(i)).collect()
}

/// What `mosaic --json put` printed: the cap and the placement, as node indices.
fn stored(c: &Cluster, ids: &[String], out: &Output, data: Vec<u8>, what: &str) -> Stored {
    assert!(
        out.status.success(),
        "{what}: put failed: {}\n{}",
        stderr(out),
        c.logs()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: put printed no JSON ({e}): {}", stderr(out)));
    let cap = v["cap"].as_str().unwrap().to_owned();
    let holders: Vec<usize> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let n = n.as_str().unwrap();
            ids.iter()
                .position(|id| id == n)
                .unwrap_or_else(|| panic!("{what}: placed on an unknown node {n}: {v}"))
        })
        .collect();
    assert_eq!(holders.len(), 5, "{what}: 5 columns on 5 nodes: {v}");
    Stored { cap, data, holders }
}

/// Writes `len` bytes as `name` and puts them.
fn put(c: &Cluster, ids: &[String], name: &str, len: usize) -> Stored {
    let (path, data) = write_file(c.tmp.path(), name, len);
    let started = Instant::now();
    let out = c.mosaic(&["--json", "put", path.to_str().unwrap()]);
    eprintln!("put {name}: {:?}", started.elapsed());
    stored(c, ids, &out, data, name)
}

/// `mosaic get` of the file must succeed with its exact bytes.
fn read_back(c: &Cluster, s: &Stored, what: &str) {
    let out = c.tmp.path().join(format!("{what}.out"));
    let started = Instant::now();
    let got = c.mosaic(&["--timings", "get", &s.cap, "-o", out.to_str().unwrap()]);
    eprintln!("get {what}: {:?}", started.elapsed());
    assert!(
        got.status.success(),
        "{what}: get failed: {}\n{}",
        stderr(&got),
        c.logs()
    );
    // Not assert_eq!: a mismatch would print megabytes.
    let bytes = fs::read(&out).unwrap();
    assert!(
        bytes == s.data,
        "{what}: the get returned other bytes ({} read, {} stored)",
        bytes.len(),
        s.data.len()
    );
    fs::remove_file(&out).unwrap();
}

/// `n` of the file's holders, none of them node 0 (every client's DHT bootstrap) nor
/// in `except`.
fn some_holders(s: &Stored, except: &[usize], n: usize) -> Vec<usize> {
    let picked: Vec<usize> = s
        .holders
        .iter()
        .copied()
        .filter(|i| *i != 0 && !except.contains(i))
        .take(n)
        .collect();
    assert_eq!(
        picked.len(),
        n,
        "holders {:?}, except {except:?}",
        s.holders
    );
    picked
}

/// Bytes under `dir`, recursively (what a node has written so far).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// 1. Two of a file's five holders frozen: k = 3 columns remain, the CLI and the
///    gateway read the file.
fn frozen_holders(c: &Cluster, ids: &[String], g: &Gateway) {
    let s = put(c, ids, "frozen.bin", 1 << 20);
    let frozen = some_holders(&s, &[], 2);
    eprintln!("freezing holders {frozen:?} of {:?}", s.holders);
    for &i in &frozen {
        c.freeze(i);
    }
    read_back(c, &s, "frozen");
    let started = Instant::now();
    let r = g.get(&format!("/f/{}", s.cap));
    eprintln!("gateway get: {:?}", started.elapsed());
    assert_eq!(
        r.status,
        200,
        "gateway: {}\n{}",
        r.text(),
        g.log.lock().unwrap()
    );
    assert!(
        r.body == s.data,
        "the gateway returned other bytes ({} read)",
        r.body.len()
    );
    for &i in &frozen {
        c.thaw(i);
    }
}

/// 2. Two of a file's holders killed: it reads; they are started again after.
fn dead_holders(c: &mut Cluster, ids: &[String]) {
    let s = put(c, ids, "dead.bin", 1 << 20);
    let dead = some_holders(&s, &[], 2);
    eprintln!("killing holders {dead:?} of {:?}", s.holders);
    for &i in &dead {
        c.kill(i);
    }
    read_back(c, &s, "dead");
    for &i in &dead {
        c.spawn(i);
    }
}

/// 3. A holder frozen for 15 s while puts and gets go on; then puts and gets right
///    after it resumes, and a read that needs its column. 15 s is three QUIC idle
///    timeouts (5 s: the others drop their connections to it) and five announce
///    intervals (3 s); and when it resumes it answers DHT requests 15 s late, which
///    must not make everyone's DHT requests wait 15 s from then on
///    (docs/dht-timeouts.md: the next put's file was not findable right after it).
fn resumed_node(c: &Cluster, ids: &[String]) {
    let kept = put(c, ids, "resumed.bin", 1 << 20);
    let sleeper = some_holders(&kept, &[], 1)[0];
    eprintln!("freezing node {sleeper}, a holder of {:?}", kept.holders);
    c.freeze(sleeper);
    let frozen_at = Instant::now();
    let mut during = Vec::new();
    // Work goes on while it sleeps: at least 3 puts and 3 gets, and for 15 s at least.
    while during.len() < 3 || frozen_at.elapsed() < Duration::from_secs(15) {
        let name = format!("during{}", during.len());
        let s = put(c, ids, &format!("{name}.bin"), 256 << 10);
        read_back(c, &s, &name);
        read_back(c, &kept, &format!("resumed-{name}"));
        during.push(s);
    }
    eprintln!(
        "node {sleeper} frozen for {:?}, {} puts",
        frozen_at.elapsed(),
        during.len()
    );
    c.thaw(sleeper);
    // Right after it resumes.
    let after = put(c, ids, "after.bin", 256 << 10);
    read_back(c, &after, "after");
    for (i, s) in during.iter().enumerate() {
        read_back(c, s, &format!("during{i}-after"));
    }
    // Two of the kept file's other holders frozen: its column is one of the three
    // needed.
    let others = some_holders(&kept, &[sleeper], 2);
    eprintln!("freezing {others:?}: node {sleeper}'s column is needed");
    for &i in &others {
        c.freeze(i);
    }
    read_back(c, &kept, "resumed-serves");
    for &i in &others {
        c.thaw(i);
    }
}

/// 4. A put whose target freezes while it uploads: it finishes on a spare, without the
///    frozen node, and the file reads back.
fn target_freezing_mid_upload(c: &Cluster, ids: &[String]) {
    // Large enough that the upload lasts seconds in a debug build (columns of 11 MiB),
    // so the freeze lands in the middle of it.
    let len = 32 << 20;
    let (path, data) = write_file(c.tmp.path(), "mid.bin", len);
    let before: Vec<u64> = c.nodes.iter().map(|n| dir_bytes(&n.dir)).collect();
    let started = Instant::now();
    let mut child = c
        .mosaic_command(&["--json", "put", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first node (not node 0, the DHT bootstrap) with 1 MiB of the put on disk is
    // a target, mid-upload: it freezes.
    let at = 1 << 20;
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        if let Some(i) = (1..c.nodes.len()).find(|&i| dir_bytes(&c.nodes[i].dir) >= before[i] + at)
        {
            break i;
        }
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the put ended before any node had {at} bytes of it (a larger file is \
                 needed): {}",
                stderr(&out)
            );
        }
        assert!(
            Instant::now() < deadline,
            "no node received {at} bytes\n{}",
            c.logs()
        );
        // A poll: the upload moves a few MiB a second per node, so a node freezes
        // within ~100 kB of the 1 MiB mark.
        thread::sleep(Duration::from_millis(20));
    };
    c.freeze(victim);
    eprintln!("froze node {victim} {:?} into the put", started.elapsed());
    let out = child.wait_with_output().unwrap();
    eprintln!("put with a frozen target: {:?}", started.elapsed());
    let s = stored(c, ids, &out, data, "mid-upload put");
    assert!(
        !s.holders.contains(&victim),
        "the frozen node {victim} is in the placement {:?}",
        s.holders
    );
    read_back(c, &s, "mid");
    c.thaw(victim);
}

#[test]
fn twenty_nodes_survive_frozen_dead_and_resumed_holders_and_a_target_freezing_mid_upload() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut c = Cluster::start(NODES, &["--open"]);
    c.wait_for_nodes(NODES);
    let ids = ids(&c);
    let g = Gateway::start(&c, &[]);
    eprintln!("{NODES} nodes and a gateway up: {:?}", started.elapsed());

    let step = Instant::now();
    frozen_holders(&c, &ids, &g);
    eprintln!("1. frozen holders: {:?}", step.elapsed());
    let step = Instant::now();
    dead_holders(&mut c, &ids);
    eprintln!("2. dead holders: {:?}", step.elapsed());
    let step = Instant::now();
    resumed_node(&c, &ids);
    eprintln!("3. resumed node: {:?}", step.elapsed());
    let step = Instant::now();
    target_freezing_mid_upload(&c, &ids);
    eprintln!("4. target freezing mid-upload: {:?}", step.elapsed());
    eprintln!("total: {:?}", started.elapsed());
}
