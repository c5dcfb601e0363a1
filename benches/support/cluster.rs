//! What the network benchmarks share: a cluster of real node processes.

#![allow(dead_code)]

use std::{
    net::UdpSocket,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Real `mosaic node run` processes on loopback with their own DHT.
pub struct Cluster {
    pub dir: PathBuf,
    pub network: String,
    pub dht0: u16,
    /// (process, node id, QUIC port)
    pub nodes: Vec<(Child, String, u16)>,
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Cluster {
    pub fn start(dir: &Path, n: usize) -> Self {
        Self::start_with(dir, n, &[])
    }

    /// Starts `n` nodes, adding each `(i, args)` of `only` to node `i`'s arguments.
    pub fn start_with(dir: &Path, n: usize, only: &[(usize, Vec<String>)]) -> Self {
        let dht0 = free_udp_port();
        let network = format!("bench-{}", std::process::id());
        let mut nodes = Vec::new();
        for i in 0..n {
            let data = dir.join(format!("node{i}"));
            let id = Command::new(env!("CARGO_BIN_EXE_mosaic"))
                .args(["node", "id", "--data-dir", data.to_str().expect("utf-8")])
                .output()
                .expect("node id");
            let id = String::from_utf8(id.stdout)
                .expect("utf-8")
                .trim()
                .to_owned();
            let quic = free_udp_port();
            let dht = if i == 0 { dht0 } else { free_udp_port() };
            let mut args = vec![
                "node".to_string(),
                "run".into(),
                "--data-dir".into(),
                data.display().to_string(),
                "--listen".into(),
                format!("127.0.0.1:{quic}"),
                "--dht-listen".into(),
                format!("127.0.0.1:{dht}"),
                "--network".into(),
                network.clone(),
                "--capacity".into(),
                "16GiB".into(),
                "--open".into(),
            ];
            if i > 0 {
                args.push("--bootstrap".into());
                args.push(format!("127.0.0.1:{dht0}"));
            }
            for (_, more) in only.iter().filter(|(j, _)| *j == i) {
                args.extend(more.iter().cloned());
            }
            let child = Command::new(env!("CARGO_BIN_EXE_mosaic"))
                .args(&args)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start node");
            nodes.push((child, id, quic));
        }
        Self {
            dir: dir.to_owned(),
            network,
            dht0,
            nodes,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mosaic"));
        c.args(args)
            .env("MOSAIC_BOOTSTRAP", format!("127.0.0.1:{}", self.dht0))
            .env("MOSAIC_NETWORK", &self.network)
            .env("MOSAIC_BIND", "127.0.0.1:0")
            .env("XDG_CONFIG_HOME", self.dir.join("client"))
            .env("HOME", &self.dir);
        c
    }

    pub fn mosaic(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().expect("run mosaic")
    }

    pub fn wait_for_nodes(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let out = self.mosaic(&["nodes"]);
            if out.status.success()
                && String::from_utf8_lossy(&out.stdout).lines().count() >= self.nodes.len()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("the cluster did not form");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (child, _, _) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
