//! What the HTTP benchmarks share (`benches/gateway.rs`, `benches/load.rs`): test files,
//! uploads through the CLI, a `mosaic gateway run` process and Debian's nginx serving
//! the same plaintext, and the numbers read from `/proc` about them.

#![allow(dead_code)]

use std::{
    fs,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::cluster::Cluster;

/// Writes `len` pseudo-random bytes (BLAKE3's XOF of `seed`): incompressible, and
/// reproducible from the seed.
pub fn write_random(path: &Path, len: usize, seed: &[u8]) {
    let mut out = fs::File::create(path).expect("create");
    let mut xof = blake3::Hasher::new().update(seed).finalize_xof();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        xof.fill(&mut buf[..n]);
        out.write_all(&buf[..n]).expect("write");
        left -= n;
    }
}

/// Uploads `file` with `mosaic put` and returns what it printed: the id of a public
/// file, the readcap of a private one.
pub fn put(cluster: &Cluster, file: &Path, public: bool) -> String {
    // One keyring name per upload: the same file goes up public and private.
    let name = format!(
        "{}-{}",
        file.display(),
        if public { "public" } else { "private" }
    );
    let mut args = vec!["put", file.to_str().expect("utf-8"), "--name", &name];
    if public {
        args.push("--public");
    }
    let out = cluster.mosaic(&args);
    assert!(
        out.status.success(),
        "put: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn free_tcp_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
}

/// A process's peak resident set (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `) `,
    // in clock ticks, which Linux reports to user space at 100 a second (USER_HZ).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// A `mosaic gateway run` process, healthy before it is returned.
pub struct GatewayProc {
    pub addr: SocketAddr,
    pub child: Child,
}

impl GatewayProc {
    /// Starts a gateway with its cache in `cache` and its settings under `home`;
    /// `extra` is added to its arguments (the limit flags, for instance).
    pub fn start(cluster: &Cluster, cache: &Path, home: &Path, extra: &[&str]) -> Self {
        let addr = free_tcp_addr();
        let mut cmd = cluster.command(&[
            "gateway",
            "run",
            "--listen",
            &addr.to_string(),
            "--cache-dir",
            cache.to_str().expect("utf-8"),
            "--cache-size",
            "2GiB",
        ]);
        cmd.args(extra)
            .env("XDG_CONFIG_HOME", home.join("gateway"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Owned by the guard at once, so it is killed and reaped on every path.
        let gateway = Self {
            addr,
            child: cmd.spawn().expect("start gateway"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut s) = TcpStream::connect(addr) {
                let _ =
                    s.write_all(b"GET /health HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
                let mut r = String::new();
                let _ = s.read_to_string(&mut r);
                if r.starts_with("HTTP/1.1 200") {
                    return gateway;
                }
            }
            assert!(Instant::now() < deadline, "gateway did not become healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's nginx serving `root` on a free port, as one process (`master_process off`,
/// one worker) so that its peak RSS and CPU time are one process's.
pub struct Nginx {
    pub addr: SocketAddr,
    pub child: Child,
}

impl Nginx {
    /// `worker_connections` bounds the connections it holds at once (listening socket
    /// included); its file descriptor limit is raised to match.
    pub fn start(dir: &Path, root: &Path, worker_connections: usize) -> Self {
        let port = free_tcp_addr().port();
        let prefix = dir.join("nginx");
        fs::create_dir_all(prefix.join("logs")).expect("nginx dir");
        let conf = prefix.join("nginx.conf");
        fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\nworker_rlimit_nofile {nofile};\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log;\n\
                 events {{ worker_connections {worker_connections}; }}\n\
                 http {{ access_log off; sendfile on; tcp_nopush on;\n\
                 client_body_temp_path {p}; proxy_temp_path {p}; fastcgi_temp_path {p}; uwsgi_temp_path {p}; scgi_temp_path {p};\n\
                 server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
                // A connection and the file it sends, and room for the logs.
                nofile = 2 * worker_connections + 64,
                p = prefix.display(),
                root = root.display()
            ),
        )
        .expect("nginx.conf");
        let nginx = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|p| Command::new(p).arg("-v").output().is_ok())
            .expect("nginx is needed for the comparison (apt-get install nginx-light)");
        let child = Command::new(nginx)
            .args(["-p", prefix.to_str().expect("utf-8"), "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        // Owned by the guard at once, so it is killed and reaped if it never starts.
        let nginx = Self { addr, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
