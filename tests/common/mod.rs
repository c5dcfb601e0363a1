//! What the black-box tests share: a cluster of real `mosaic node run` processes on
//! loopback with their own Mainline DHT (node 0 starts it, the others bootstrap from
//! it), and the real `mosaic` CLI as the client. No internet: no relay but those a
//! test starts, nothing but 127.0.0.1.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod gateway;

use std::{
    fs,
    io::{BufRead, BufReader},
    net::UdpSocket,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

/// Clusters are heavy on a 2-core machine: one test at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct NodeProc {
    pub dir: PathBuf,
    pub dht: u16,
    pub args: Vec<String>,
    pub child: Option<Child>,
    pub log: Arc<Mutex<String>>,
}

pub struct Cluster {
    pub tmp: tempfile::TempDir,
    pub network: String,
    pub nodes: Vec<NodeProc>,
}

impl Cluster {
    /// Starts `n` nodes; `extra` are added to every node's arguments.
    pub fn start(n: usize, extra: &[&str]) -> Self {
        Self::start_with(n, extra, &[])
    }

    /// Starts `n` nodes; `extra` are added to every node's arguments, and each
    /// `(i, args)` of `only` to node `i`'s.
    pub fn start_with(n: usize, extra: &[&str], only: &[(usize, &[&str])]) -> Self {
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
        let mut dht0 = free_udp_port();
        for i in 0..n {
            // A port found free may be taken before the node binds it (by any process
            // binding port 0): then pick others and start again.
            for attempt in 0.. {
                let dht = if i == 0 && attempt == 0 {
                    dht0
                } else {
                    free_udp_port()
                };
                if i == 0 {
                    dht0 = dht;
                }
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
                    "--announce-interval".into(),
                    "3s".into(),
                ];
                if !extra.contains(&"--capacity") {
                    args.extend(["--capacity".into(), "2GiB".into()]);
                }
                if i > 0 {
                    args.push("--bootstrap".into());
                    args.push(format!("127.0.0.1:{dht0}"));
                }
                args.extend(extra.iter().map(|s| s.to_string()));
                for (_, more) in only.iter().filter(|(j, _)| *j == i) {
                    args.extend(more.iter().map(|s| s.to_string()));
                }
                cluster.nodes.push(NodeProc {
                    dir,
                    dht,
                    args,
                    child: None,
                    log: Arc::new(Mutex::new(String::new())),
                });
                match cluster.try_spawn(i) {
                    Ok(()) => break,
                    Err(log) if log.contains("Address already in use") && attempt < 4 => {
                        cluster.nodes.pop();
                    }
                    Err(log) => panic!("node {i} did not start:\n{log}"),
                }
            }
        }
        cluster
    }

    pub fn spawn(&mut self, i: usize) {
        if let Err(log) = self.try_spawn(i) {
            panic!("node {i} did not start:\n{log}");
        }
    }

    /// Starts node `i`; its log if it did not start.
    fn try_spawn(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let mut child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
            .args(&node.args)
            // MOSAIC_TEST_LOG raises the nodes' log level when a test is being debugged.
            .env(
                "RUST_LOG",
                std::env::var("MOSAIC_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
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
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            // The reader thread has the whole log once the process is gone.
            thread::sleep(Duration::from_millis(50));
            return Err(node.log.lock().unwrap().clone());
        }
        node.child = Some(child);
        Ok(())
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Node `i`'s identity (`mosaic node id`).
    pub fn node_id(&self, i: usize) -> String {
        let out = self.mosaic(&[
            "--json",
            "node",
            "id",
            "--data-dir",
            self.nodes[i].dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.nodes[0].dht)
    }

    /// Runs the CLI as a client of this cluster.
    pub fn mosaic(&self, args: &[&str]) -> Output {
        self.mosaic_as("client", args)
    }

    /// Runs the CLI with the identity in `tmp/<who>`.
    pub fn mosaic_as(&self, who: &str, args: &[&str]) -> Output {
        self.command_as(who, args).output().unwrap()
    }

    /// The CLI as the default client, to spawn (a command to watch while it runs).
    #[allow(dead_code)]
    pub fn mosaic_command(&self, args: &[&str]) -> Command {
        self.command_as("client", args)
    }

    /// The CLI as `who`, to spawn.
    pub fn mosaic_command_as(&self, who: &str, args: &[&str]) -> Command {
        self.command_as(who, args)
    }

    fn command_as(&self, who: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mosaic"));
        command
            .args(args)
            .env("MOSAIC_BOOTSTRAP", self.bootstrap())
            .env("MOSAIC_NETWORK", &self.network)
            .env("MOSAIC_BIND", "127.0.0.1:0")
            .env("MOSAIC_CONNECT_TIMEOUT", "2s")
            .env("XDG_CONFIG_HOME", self.tmp.path().join(who))
            .env("XDG_DATA_HOME", self.tmp.path().join(who).join("data"))
            .env("HOME", self.tmp.path());
        command
    }

    /// Waits until `want` storage nodes are announced and reachable.
    pub fn wait_for_nodes(&self, want: usize) {
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

    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("--- node {i} ---\n{}", n.log.lock().unwrap()))
            .collect()
    }

    pub fn put(&self, file: &Path, extra: &[&str]) -> String {
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

    pub fn get(&self, cap: &str, to: &Path) -> Output {
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

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn write_file(dir: &Path, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let mut data = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(name.as_bytes());
    h.finalize_xof().fill(&mut data);
    let p = dir.join(name);
    fs::write(&p, &data).unwrap();
    (p, data)
}

/// Every file under `dir` (none if it cannot be read).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
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

/// Every node whose process is alive.
pub fn alive(c: &Cluster) -> usize {
    c.nodes.iter().filter(|n| n.child.is_some()).count()
}

/// A client of cluster `c` in the test's own process, with identity `secret`: to send
/// what the CLI never would.
pub async fn in_process_client(c: &Cluster, secret: [u8; 32]) -> Arc<mosaic_client::Client> {
    mosaic_client::Client::connect(mosaic_client::ClientOptions {
        secret: iroh::SecretKey::from_bytes(&secret),
        bind: "127.0.0.1:0".parse().unwrap(),
        routing: mosaic_wire::dht::RoutingOptions {
            network: c.network.clone(),
            bootstrap: vec![c.bootstrap()],
            ..mosaic_wire::dht::RoutingOptions::default()
        },
        relays: vec![],
        relay_only: false,
        connect_timeout: Duration::from_secs(2),
        stall_timeout: Duration::from_secs(10),
        address_book: None,
    })
    .await
    .unwrap()
}

/// Freezing and thawing nodes: a frozen node (SIGSTOP) keeps its process, its sockets
/// and its place in everyone's routing tables, but answers nothing, like a hung machine.
impl Cluster {
    /// Node `i`'s process id; panics if it is not running.
    pub fn pid(&self, i: usize) -> u32 {
        self.nodes[i]
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("node {i} is not running"))
            .id()
    }

    /// Stops node `i`'s process (SIGSTOP) until [`Cluster::thaw`]; killing it still works.
    pub fn freeze(&self, i: usize) {
        signal(self.pid(i), "-STOP");
    }

    /// Resumes node `i`'s process (SIGCONT) after [`Cluster::freeze`].
    pub fn thaw(&self, i: usize) {
        signal(self.pid(i), "-CONT");
    }
}

/// Sends `sig` (`-STOP`, `-CONT`, …) to process `pid` with kill(1): the tests use no
/// unsafe code of their own.
fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}: {status}");
}
