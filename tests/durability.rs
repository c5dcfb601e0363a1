//! Durability with real processes on loopback: nodes that lose columns get them rebuilt
//! by the files' other holders (no coordinator, no key), exactly once; a node that
//! restarts within the grace period is not replaced; bytes that rot on disk are found
//! by the scrubber and healed. `mosaic check --json` says where every column is.
//!
//! Timings are shortened by flags (`--check-interval 1s`, `--repair-grace`, …); the
//! waits poll with generous deadlines and assert nothing about speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

/// Where each blob of a file is: (hash hex, holders' ids), manifest first.
fn places(c: &Cluster, cap: &str) -> Vec<(String, Vec<String>)> {
    let out = c.mosaic(&["--json", "check", cap]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check printed no JSON ({e}): {}", stderr(&out)));
    v["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["hash"].as_str().unwrap().to_owned(),
                b["holders"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["node"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// Polls `places` until `done` says yes; panics with the last answer and the logs.
fn wait_for(
    c: &Cluster,
    cap: &str,
    what: &str,
    limit: Duration,
    done: impl Fn(&[(String, Vec<String>)]) -> bool,
) -> Vec<(String, Vec<String>)> {
    let deadline = Instant::now() + limit;
    loop {
        let p = places(c, cap);
        if done(&p) {
            return p;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not within {limit:?}; last check: {p:?}\n{}",
                c.logs()
            );
        }
        thread::sleep(Duration::from_millis(700));
    }
}

/// Every column held by exactly one live node, each on a different node.
fn one_copy_each(p: &[(String, Vec<String>)]) -> bool {
    let columns = &p[1..];
    let nodes: BTreeSet<&String> = columns.iter().flat_map(|(_, h)| h).collect();
    columns.iter().all(|(_, h)| h.len() == 1) && nodes.len() == columns.len()
}

fn ids(c: &Cluster) -> Vec<String> {
    (0..c.nodes.len()).map(|i| c.node_id(i)).collect()
}

/// The index of each node holding a column of the file.
fn column_holders(p: &[(String, Vec<String>)], ids: &[String]) -> Vec<usize> {
    let held: BTreeSet<&String> = p[1..].iter().flat_map(|(_, h)| h).collect();
    (0..ids.len()).filter(|&i| held.contains(&ids[i])).collect()
}

fn read_back(c: &Cluster, cap: &str, data: &[u8], name: &str) {
    let out = c.tmp.path().join(name);
    let got = c.get(cap, &out);
    assert!(
        got.status.success(),
        "get failed: {}\n{}",
        stderr(&got),
        c.logs()
    );
    assert_eq!(fs::read(&out).unwrap(), data, "{name}");
}

/// Waits until every column of the file has one live holder, each on its own node.
fn placed(c: &Cluster, cap: &str) -> Vec<(String, Vec<String>)> {
    wait_for(
        c,
        cap,
        "file placed",
        Duration::from_secs(30),
        one_copy_each,
    )
}

/// A node holding a column of the file, never node 0 (every client's DHT bootstrap).
fn a_holder(p: &[(String, Vec<String>)], ids: &[String]) -> usize {
    column_holders(p, ids)
        .into_iter()
        .find(|&i| i != 0)
        .expect("a column on a node other than node 0")
}

/// Every column has a live holder.
fn every_column_held(p: &[(String, Vec<String>)]) -> bool {
    p[1..].iter().all(|(_, h)| !h.is_empty())
}

/// `mosaic --json status`.
fn status_json(c: &Cluster) -> serde_json::Value {
    let out = c.mosaic(&["--json", "status"]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status printed no JSON ({e}): {}", stderr(&out)))
}

/// No live node keeps a pin of the default client's.
fn assert_nothing_pinned(c: &Cluster, why: &str) {
    let v = status_json(c);
    for n in v["nodes"].as_array().unwrap() {
        assert_eq!(n["pinned_by_you"], 0, "{why}: {v}");
    }
}

fn status_sum(c: &Cluster, field: &str) -> u64 {
    status_json(c)["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["health"][field].as_u64())
        .sum()
}

#[test]
fn lost_columns_are_rebuilt_once_and_files_survive_further_losses() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(
        10,
        &[
            "--open",
            "--check-interval",
            "1s",
            "--repair-grace",
            "3s",
            "--repair-backoff",
            "5s",
        ],
    );
    c.wait_for_nodes(9);
    let ids = ids(&c);
    let mut files = Vec::new();
    for (i, len) in [300_000usize, 1000, 2 << 20].into_iter().enumerate() {
        let (path, data) = write_file(c.tmp.path(), &format!("d{i}.bin"), len);
        let cap = c.put(&path, &[]);
        files.push((cap, data));
    }
    let first = &files[0].0;
    let original = column_holders(&placed(&c, first), &ids);
    assert_eq!(original.len(), 5, "{original:?}");
    // Node 0 is every client's DHT bootstrap: keep it.
    let victims: Vec<usize> = original
        .iter()
        .copied()
        .filter(|&i| i != 0)
        .take(2)
        .collect();
    for &i in &victims {
        c.kill(i);
    }
    // Every file's holders rebuild what the two nodes took, each column once.
    for (cap, _) in &files {
        wait_for(
            &c,
            cap,
            "repair",
            Duration::from_secs(90),
            every_column_held,
        );
    }
    thread::sleep(Duration::from_secs(4));
    for (cap, _) in &files {
        let p = places(&c, cap);
        assert!(
            one_copy_each(&p),
            "a column was rebuilt more than once, or not at all: {p:?}"
        );
    }
    assert!(status_sum(&c, "repairs_done") >= 1);
    // Two more of the first file's original holders go: 3 of 5 columns remain of
    // every file, which is enough.
    let more: Vec<usize> = original
        .iter()
        .copied()
        .filter(|i| *i != 0 && !victims.contains(i))
        .take(2)
        .collect();
    assert_eq!(more.len(), 2, "{original:?}");
    for &i in &more {
        c.kill(i);
    }
    for (i, (cap, data)) in files.iter().enumerate() {
        read_back(&c, cap, data, &format!("d{i}.out"));
    }
    // The second loss starts repairs too: let them finish, so `rm` meets every pin
    // where it is. (An `rm` racing a repair in flight can leave the rebuilt copy pinned
    // for its owner: docs/durability.md, "Limits".)
    for (cap, _) in &files {
        wait_for(
            &c,
            cap,
            "repair",
            Duration::from_secs(90),
            every_column_held,
        );
    }
    // The rebuilt columns are pinned for the owner, and `mosaic rm` unpins them where
    // they now are (--force: the killed nodes cannot be told).
    for i in 0..files.len() {
        let out = c.mosaic(&["rm", &format!("d{i}.bin"), "-y", "--force"]);
        assert!(out.status.success(), "rm d{i}.bin: {}", stderr(&out));
    }
    assert_nothing_pinned(&c, "a pin outlived rm");
}

#[test]
fn a_node_restarted_within_the_grace_period_is_not_replaced() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(
        8,
        &["--open", "--check-interval", "1s", "--repair-grace", "40s"],
    );
    c.wait_for_nodes(7);
    let ids = ids(&c);
    let (path, data) = write_file(c.tmp.path(), "g.bin", 200_000);
    let cap = c.put(&path, &[]);
    let before = placed(&c, &cap);
    let victim = a_holder(&before, &ids);
    c.kill(victim);
    // The others notice the column is gone...
    let deadline = Instant::now() + Duration::from_secs(30);
    while status_sum(&c, "columns_missing") == 0 {
        assert!(
            Instant::now() < deadline,
            "no node noticed the missing column\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(500));
    }
    // ...and it comes back within the grace period: nothing is rebuilt.
    c.spawn(victim);
    wait_for(
        &c,
        &cap,
        "node back",
        Duration::from_secs(30),
        every_column_held,
    );
    thread::sleep(Duration::from_secs(5));
    let after = places(&c, &cap);
    let strip = |p: &[(String, Vec<String>)]| -> BTreeMap<String, Vec<String>> {
        p[1..].iter().cloned().collect()
    };
    assert_eq!(
        strip(&after),
        strip(&before),
        "a column moved or was copied"
    );
    assert_eq!(status_sum(&c, "repairs_done"), 0);
    read_back(&c, &cap, &data, "g.out");
}

#[test]
fn holders_racing_to_repair_a_file_make_one_copy() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // No back-off: every live holder is due at the same moment.
    let mut c = Cluster::start(
        8,
        &[
            "--open",
            "--check-interval",
            "1s",
            "--repair-grace",
            "2s",
            "--repair-backoff",
            "0s",
        ],
    );
    c.wait_for_nodes(7);
    let ids = ids(&c);
    let (path, data) = write_file(c.tmp.path(), "r.bin", 150_000);
    let cap = c.put(&path, &[]);
    let before = placed(&c, &cap);
    let victim = a_holder(&before, &ids);
    c.kill(victim);
    wait_for(
        &c,
        &cap,
        "repair",
        Duration::from_secs(60),
        every_column_held,
    );
    // Let every racer finish what it started.
    thread::sleep(Duration::from_secs(6));
    let p = places(&c, &cap);
    assert!(one_copy_each(&p), "racing repairs made extra copies: {p:?}");
    read_back(&c, &cap, &data, "r.out");
}

#[test]
fn scrub_finds_rotten_bytes_and_the_column_is_rebuilt() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A long grace: only the scrubber's finding can trigger this repair.
    let mut c = Cluster::start(
        8,
        &[
            "--open",
            "--check-interval",
            "1s",
            "--repair-grace",
            "10m",
            "--scrub-interval",
            "3s",
            "--scrub-rate",
            "64MiB",
        ],
    );
    c.wait_for_nodes(7);
    let ids = ids(&c);
    let (path, data) = write_file(c.tmp.path(), "s.bin", 300_000);
    let cap = c.put(&path, &[]);
    let before = placed(&c, &cap);
    // Flip bytes in a column's data file on a node other than node 0.
    let (column, holder) = before[1..]
        .iter()
        .enumerate()
        .map(|(j, (_, h))| (j, ids.iter().position(|id| *id == h[0]).unwrap()))
        .find(|(_, i)| *i != 0)
        .unwrap();
    let hash = &before[column + 1].0;
    let file: PathBuf = c.nodes[holder]
        .dir
        .join("blobs")
        .join("data")
        .join(format!("{hash}.data"));
    let mut bytes = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    for b in &mut bytes[1000..1010] {
        *b ^= 0x5a;
    }
    fs::write(&file, &bytes).unwrap();
    // The scrubber drops the copy and the column is rebuilt on another node.
    let after = wait_for(&c, &cap, "healed", Duration::from_secs(60), |p| {
        p[column + 1].1.len() == 1 && p[column + 1].1[0] != ids[holder]
    });
    assert!(status_sum(&c, "corrupt_found") >= 1);
    // Two other holders go: the rebuilt column is one of the three left.
    let others: Vec<usize> = column_holders(&after, &ids)
        .into_iter()
        .filter(|&i| i != 0 && i != holder && ids[i] != after[column + 1].1[0])
        .take(2)
        .collect();
    assert_eq!(others.len(), 2, "{after:?}");
    for i in others {
        c.kill(i);
    }
    read_back(&c, &cap, &data, "s.out");
}

/// Bytes under `dir`, recursively (what a node has written so far).
fn dir_bytes(dir: &std::path::Path) -> u64 {
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

/// Starts `mosaic put` in the background and kills the first node that has received
/// `at` bytes of it; returns the put's output and the node killed.
fn put_killing_a_receiver(
    c: &mut Cluster,
    file: &std::path::Path,
    at: u64,
) -> (std::process::Output, usize) {
    let before: Vec<u64> = c.nodes.iter().map(|n| dir_bytes(&n.dir)).collect();
    let child = c
        .mosaic_command(&["put", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        // Node 0 is the DHT bootstrap: keep it.
        if let Some(i) = (1..c.nodes.len()).find(|&i| dir_bytes(&c.nodes[i].dir) >= before[i] + at)
        {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "no node received {at} bytes\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(5));
    };
    c.kill(victim);
    (child.wait_with_output().unwrap(), victim)
}

#[test]
fn a_put_survives_a_node_killed_under_it_by_using_a_spare() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Eight nodes for five columns: spares. A put knows the nodes its storage-node
    // lookup found when it settled (at its first answers), which on a busy machine can
    // miss one or two of them; with one spare in all, such a put had none and failed.
    let mut c = Cluster::start(8, &["--open"]);
    c.wait_for_nodes(8);
    let ids = ids(&c);
    let (path, data) = write_file(c.tmp.path(), "spare.bin", 48 << 20);
    let (out, victim) = put_killing_a_receiver(&mut c, &path, 4 << 20);
    assert!(
        out.status.success(),
        "put failed: {}\n{}",
        stderr(&out),
        c.logs()
    );
    let cap = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let p = placed(&c, &cap);
    let holders = column_holders(&p, &ids);
    assert!(
        !holders.contains(&victim),
        "the killed node holds a column: {p:?}"
    );
    assert_eq!(holders.len(), 5, "{p:?}");
    read_back(&c, &cap, &data, "spare.out");
}

#[test]
fn a_put_with_no_spare_left_names_the_node_that_failed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(5, &["--open"]);
    c.wait_for_nodes(5);
    let (path, _) = write_file(c.tmp.path(), "nospare.bin", 48 << 20);
    let victim_id = {
        let ids = ids(&c);
        move |i: usize| ids[i].clone()
    };
    let (out, victim) = put_killing_a_receiver(&mut c, &path, 4 << 20);
    assert!(
        !out.status.success(),
        "a put with a node killed and no spare cannot succeed"
    );
    let err = stderr(&out);
    let id = victim_id(victim);
    assert!(
        err.contains(&id[..10]),
        "the error does not name node {victim} ({id}): {err}"
    );
    // Nothing of it stays pinned: the put undid its pins on the nodes that stored.
    assert_nothing_pinned(&c, "a failed put left a pin");
}

/// A tmpfs of `mib` MiB mounted at a directory, unmounted when dropped: a small disk.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, mib: u64) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a {mib} MiB tmpfs at {} failed (this test needs root, as CI has): {}",
            at.display(),
            stderr(&out)
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn nodes_report_the_space_their_disk_really_has_and_a_put_goes_around_a_full_one() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Every node is configured for 2 GiB; node 5's disk has 80 MiB.
    let mut c = Cluster::start(6, &["--open"]);
    c.kill(5);
    let _disk = Tmpfs::mount(&c.nodes[5].dir.clone(), 80);
    c.spawn(5);
    c.wait_for_nodes(6);
    let small = c.node_id(5);
    let v = status_json(&c);
    let node = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"].as_str() == Some(small.as_str()))
        .unwrap_or_else(|| panic!("node 5 not in status: {v}"));
    let capacity = node["capacity"].as_u64().unwrap();
    assert!(
        capacity < 80 << 20,
        "node 5 reports {capacity} bytes of capacity on an 80 MiB disk"
    );
    // Columns of 20 MiB: node 5 has no room, the five others take them.
    let (path, data) = write_file(c.tmp.path(), "wide.bin", 60 << 20);
    let cap = c.put(&path, &[]);
    let p = places(&c, &cap);
    assert!(
        p.iter().all(|(_, h)| !h.contains(&small)),
        "the full node got part of the file: {p:?}"
    );
    read_back(&c, &cap, &data, "wide.out");
    // With one of the five others gone, only four nodes have room: a space error
    // (exit 6) before any byte moves, saying what to do.
    c.kill(4);
    let (path, _) = write_file(c.tmp.path(), "wide2.bin", 60 << 20);
    let out = c.mosaic(&["put", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(6), "{}\n{}", stderr(&out), c.logs());
    assert!(stderr(&out).contains("have room"), "{}", stderr(&out));
}

#[test]
fn any_client_checks_and_repairs_a_file_by_its_bare_id_with_no_key() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A long grace period: nothing is repaired unless someone asks.
    let mut c = Cluster::start(
        7,
        &["--open", "--check-interval", "1s", "--repair-grace", "1h"],
    );
    c.wait_for_nodes(7);
    let ids = ids(&c);
    let (path, data) = write_file(c.tmp.path(), "ask.bin", 400_000);
    let cap = c.put(&path, &[]);
    let out = c.mosaic(&["--json", "check", &cap]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64, "{v}");
    let before = placed(&c, &cap);
    let victim = a_holder(&before, &ids);
    c.kill(victim);
    // A stranger with no keyring entry and no key: the bare id is enough.
    let check = c.mosaic_as("stranger", &["--json", "check", &id]);
    assert!(check.status.success(), "{}", stderr(&check));
    let v: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(v["healthy"], 4, "one column's node is gone: {v}");
    assert_eq!(v["readable"], true, "{v}");
    let repair = c.mosaic_as("stranger", &["--json", "repair", &id]);
    assert!(repair.status.success(), "{}\n{}", stderr(&repair), c.logs());
    let v: serde_json::Value = serde_json::from_slice(&repair.stdout).unwrap();
    assert_eq!(v["repaired"], true, "{v}");
    assert_eq!(v["placed"].as_array().unwrap().len(), 1, "{v}");
    let placed_on = v["placed"][0]["node"].as_str().unwrap().to_owned();
    assert!(
        !before.iter().any(|(_, h)| h.contains(&placed_on)),
        "rebuilt on a node that held part of the file: {v}"
    );
    // Every copy of every blob verifies.
    let verify = c.mosaic_as("stranger", &["--json", "check", "--verify", &id]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    let v: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(v["healthy"], 5, "{v}");
    for b in v["blobs"].as_array().unwrap() {
        for h in b["holders"].as_array().unwrap() {
            assert_eq!(h["verified"], true, "{v}");
        }
    }
    read_back(&c, &cap, &data, "ask.out");
    // Three of the five columns' nodes gone (two more, never node 0): not readable, exit 5.
    let after = places(&c, &cap);
    let more: Vec<usize> = column_holders(&after, &ids)
        .into_iter()
        .filter(|&i| i != 0)
        .take(3)
        .collect();
    for &i in &more {
        c.kill(i);
    }
    let check = c.mosaic_as("stranger", &["check", &id]);
    assert_eq!(
        check.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("NOT readable"));
}
