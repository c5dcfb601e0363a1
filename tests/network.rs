//! Black-box network tests: real `mosaic node run` processes on loopback, their own
//! Mainline DHT (node 0 starts it, the others bootstrap from it), and the real `mosaic`
//! CLI as the client. No internet: relays off, nothing but 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    fs,
    io::{BufRead, BufReader, Read, Seek, SeekFrom, Write},
    net::UdpSocket,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

/// Clusters are heavy on a 2-core machine: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct NodeProc {
    dir: PathBuf,
    dht: u16,
    args: Vec<String>,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

struct Cluster {
    tmp: tempfile::TempDir,
    network: String,
    nodes: Vec<NodeProc>,
}

impl Cluster {
    /// Starts `n` nodes; `extra` are added to every node's arguments.
    fn start(n: usize, extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let network = format!("test-{}-{nanos}", std::process::id());
        let mut cluster = Cluster {
            tmp,
            network,
            nodes: Vec::new(),
        };
        let dht0 = free_udp_port();
        for i in 0..n {
            let dht = if i == 0 { dht0 } else { free_udp_port() };
            let quic = free_udp_port();
            let dir = cluster.tmp.path().join(format!("node{i}"));
            let mut args: Vec<String> = vec![
                "node".into(),
                "run".into(),
                "--data-dir".into(),
                dir.display().to_string(),
                "--listen".into(),
                format!("127.0.0.1:{quic}"),
                "--dht-listen".into(),
                format!("127.0.0.1:{dht}"),
                "--network".into(),
                cluster.network.clone(),
                "--capacity".into(),
                "2GiB".into(),
                "--announce-interval".into(),
                "3s".into(),
            ];
            if i > 0 {
                args.push("--bootstrap".into());
                args.push(format!("127.0.0.1:{dht0}"));
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            cluster.nodes.push(NodeProc {
                dir,
                dht,
                args,
                child: None,
                log: Arc::new(Mutex::new(String::new())),
            });
            cluster.spawn(i);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args(&node.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = node.log.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("node {i} did not start:\n{}", node.log.lock().unwrap()));
        node.child = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.nodes[0].dht)
    }

    /// Runs the CLI as a client of this cluster.
    fn mosaic(&self, args: &[&str]) -> Output {
        self.mosaic_as("client", args)
    }

    /// Runs the CLI with the identity in `tmp/<who>`.
    fn mosaic_as(&self, who: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args(args)
            .env("MOSAIC_BOOTSTRAP", self.bootstrap())
            .env("MOSAIC_NETWORK", &self.network)
            .env("MOSAIC_BIND", "127.0.0.1:0")
            .env("MOSAIC_CONNECT_TIMEOUT", "2s")
            .env("XDG_CONFIG_HOME", self.tmp.path().join(who))
            .env("HOME", self.tmp.path())
            .output()
            .unwrap()
    }

    /// Waits until `want` storage nodes are announced and reachable.
    fn wait_for_nodes(&self, want: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.mosaic(&["nodes"]);
            let reachable = String::from_utf8_lossy(&out.stdout).lines().count();
            if out.status.success() && reachable >= want {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "only {reachable} of {want} nodes reachable: {}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(500));
        }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("--- node {i} ---\n{}", n.log.lock().unwrap()))
            .collect()
    }

    fn put(&self, file: &Path, extra: &[&str]) -> String {
        let mut args = vec!["put", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = self.mosaic(&args);
        assert!(
            out.status.success(),
            "put failed: {}\n{}",
            stderr(&out),
            self.logs()
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn get(&self, cap: &str, to: &Path) -> Output {
        self.mosaic(&["get", cap, "-o", to.to_str().unwrap()])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_file(dir: &Path, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let mut data = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(name.as_bytes());
    h.finalize_xof().fill(&mut data);
    let p = dir.join(name);
    fs::write(&p, &data).unwrap();
    (p, data)
}

/// Every node whose process is alive.
fn alive(c: &Cluster) -> usize {
    c.nodes.iter().filter(|n| n.child.is_some()).count()
}

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
    fs::create_dir_all(c.tmp.path().join("allowed/mosaic")).unwrap();
    fs::copy(
        probe.path().join("allowed/mosaic/client.key"),
        c.tmp.path().join("allowed/mosaic/client.key"),
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

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
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
