//! Lookups on a network of tens of nodes (24 real `mosaic node run` processes on
//! loopback, their own DHT): every get of a file whose holders are alive succeeds,
//! right after its put and later, and costs one DHT lookup for the file's holders (the
//! `--timings` record of the get says which lookups ran). Times are not asserted here:
//! `benches/scale.sh` and `cargo bench --bench dht` measure them.

mod common;

use common::*;

use std::fs;

const NODES: usize = 24;

/// How many lookups of each kind a get's `--timings` output records.
fn lookups(timings: &str) -> (usize, usize, usize) {
    let holders = timings
        .lines()
        .filter(|l| l.contains("dht lookup: holders of file") && l.contains("lookup ended"))
        .count();
    let per_column = timings
        .lines()
        .filter(|l| l.contains("dht lookups: column by column"))
        .count();
    let addresses = timings
        .lines()
        .filter(|l| l.contains("dht lookup: address of"))
        .count();
    (holders, per_column, addresses)
}

#[test]
fn gets_on_a_network_of_24_nodes_never_fail_and_cost_one_lookup() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start(NODES, &["--open"]);
    c.wait_for_nodes(NODES - 4);
    // Files of one segment and of several, each read right after its put (the DHT
    // records are minutes old at most) and again once all are in.
    let mut files = Vec::new();
    for (i, len) in [1000usize, 1000, 300_000, 3 << 20, 1000, 70_000]
        .into_iter()
        .enumerate()
    {
        let (file, data) = write_file(c.tmp.path(), &format!("f{i}.bin"), len);
        let cap = c.put(&file, &[]);
        let out = c.tmp.path().join(format!("f{i}.out"));
        let got = c.mosaic(&["--timings", "get", &cap, "-o", out.to_str().unwrap()]);
        assert!(
            got.status.success(),
            "get right after the put failed: {}\n{}",
            stderr(&got),
            c.logs()
        );
        assert_eq!(fs::read(&out).unwrap(), data, "file {i}");
        let (holders, per_column, _) = lookups(&stderr(&got));
        assert_eq!(
            (holders, per_column),
            (1, 0),
            "one lookup for the file's holders, none per column:\n{}",
            stderr(&got)
        );
        files.push((cap, data));
    }
    for round in 0..3 {
        for (i, (cap, data)) in files.iter().enumerate() {
            let out = c.tmp.path().join(format!("r{round}-{i}.out"));
            let got = c.mosaic(&["--timings", "get", cap, "-o", out.to_str().unwrap()]);
            assert!(
                got.status.success(),
                "get {i} of round {round} failed: {}",
                stderr(&got)
            );
            assert_eq!(&fs::read(&out).unwrap(), data, "file {i}, round {round}");
            // The client remembers the addresses that worked: a repeated get looks
            // none up.
            let (holders, per_column, addresses) = lookups(&stderr(&got));
            assert_eq!(
                (holders, per_column, addresses),
                (1, 0, 0),
                "{}",
                stderr(&got)
            );
        }
    }
}

#[test]
fn a_get_still_succeeds_when_some_holders_are_gone() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start(NODES, &["--open"]);
    c.wait_for_nodes(NODES - 4);
    let (file, data) = write_file(c.tmp.path(), "g.bin", 200_000);
    let cap = c.put(&file, &[]);
    // Stop two of the file's five holders (any k = 3 columns rebuild it): the ones
    // `pin ls` lists first.
    let status = c.mosaic(&["--json", "pin", "ls", &cap]);
    assert!(status.status.success(), "{}", stderr(&status));
    let health: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let text = health.to_string();
    let mut stopped = 0;
    for i in 1..NODES {
        if stopped == 2 {
            break;
        }
        let id = c.node_id(i);
        if text.contains(&id) {
            c.kill(i);
            stopped += 1;
        }
    }
    assert_eq!(stopped, 2, "holders not found in {text}");
    let out = c.tmp.path().join("g.out");
    let got = c.mosaic(&["get", &cap, "-o", out.to_str().unwrap()]);
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(fs::read(&out).unwrap(), data);
}
