//! The gateway under load, beside nginx serving the same plaintext from disk: requests a
//! second, p50 and p99 latency, errors and peak RSS with 100 and 1000 connections open
//! at once, measured by `wrk`.
//!
//! `cargo bench --bench load` (needs `wrk` and `nginx`: `apt-get install wrk
//! nginx-light`). Options after `--`: `--seconds N` per run (default 10); `--conns
//! 100,1000`; `--threads N`, wrk's threads (default 2); `--nodes N` (default 5: the
//! gateway's cache is warm before wrk starts, so the nodes are idle while it runs and
//! their number does not matter); `--file-kib N`, the response size (default 64);
//! `--big-mib N`, the file the range is cut from (default 16); `--flood-conns N`, the
//! run under default limits (default 1000, 0 to skip).
//!
//! Workloads, each at every `--conns`, against the gateway and then nginx with the same
//! wrk settings (keep-alive connections, `--latency`):
//! - **file**: GET of a whole `--file-kib` public file;
//! - **range**: a `--file-kib` range from the middle of a `--big-mib` public file.
//!
//! Each run gets a fresh server (a gateway with an empty cache, or nginx), warmed by one
//! request whose body is compared with the file's bytes (a benchmark of wrong bytes is
//! worthless: the bench exits non-zero on a mismatch); its peak RSS is its VmHWM after
//! the run, and its CPU time is read from `/proc` before and after. wrk has one address,
//! so for these runs the gateway's per-client limits are off (`--client-connections 0
//! --client-rate 0`, as behind a reverse proxy).
//!
//! Finally a gateway with its default limits meets `--flood-conns` connections from one
//! address: how many responses were `429`, how many connections it refused, and whether
//! a second client (another loopback address) is still served meanwhile.
//!
//! On a small machine wrk competes with the server for the cores: its CPU share is
//! reported beside the server's.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/http.rs"]
mod http;

use std::{
    fs,
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use cluster::Cluster;
use http::{GatewayProc, Nginx, cpu_seconds, peak_rss_kib, put, write_random};

struct Options {
    seconds: u64,
    conns: Vec<usize>,
    threads: usize,
    nodes: usize,
    file_kib: usize,
    big_mib: usize,
    flood_conns: usize,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 10,
        conns: vec![100, 1000],
        threads: 2,
        nodes: 5,
        file_kib: 64,
        big_mib: 16,
        flood_conns: 1000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| fail(&format!("{a} needs a value")))
        };
        let num = |v: String| -> usize {
            v.parse()
                .unwrap_or_else(|_| fail(&format!("{a}: not a number: {v}")))
        };
        match a.as_str() {
            "--seconds" => o.seconds = num(value()) as u64,
            "--conns" => o.conns = value().split(',').map(|v| num(v.to_owned())).collect(),
            "--threads" => o.threads = num(value()),
            "--nodes" => o.nodes = num(value()),
            "--file-kib" => o.file_kib = num(value()),
            "--big-mib" => o.big_mib = num(value()),
            "--flood-conns" => o.flood_conns = num(value()),
            // cargo bench passes it to every bench.
            "--bench" => {}
            _ => fail(&format!("unknown option {a}")),
        }
    }
    if o.conns.iter().any(|&c| c < o.threads) || o.seconds == 0 {
        fail("every --conns must be at least --threads, and --seconds at least 1");
    }
    if o.file_kib << 10 > o.big_mib << 20 {
        fail("--file-kib must fit in --big-mib");
    }
    o
}

/// Ends the bench before anything is started (later, a panic: it unwinds through the
/// guards that end the servers and nodes).
fn fail(why: &str) -> ! {
    eprintln!("load bench: {why}");
    std::process::exit(1)
}

/// One workload: where each server has it, and the bytes it must answer with.
struct Workload<'a> {
    name: String,
    gateway_path: String,
    nginx_path: &'static str,
    range: Option<String>,
    body: &'a [u8],
}

/// One wrk run against one server.
struct Run {
    workload: String,
    server: &'static str,
    conns: usize,
    wrk: Wrk,
    /// The server's CPU seconds during the run, over its length: cores used.
    server_cores: f64,
    peak_rss_mib: f64,
    /// Connection attempts dropped by full listen queues during the run.
    listen_drops: Option<u64>,
}

fn main() {
    let o = options();
    let wrk = find_wrk();
    let most = o
        .conns
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(o.flood_conns);
    // wrk, the gateway and nginx each hold a descriptor per connection, and inherit
    // this process's limit.
    let nofile = open_files_limit();
    if nofile < most as u64 + 512 {
        fail(&format!(
            "`ulimit -n` is {nofile}; {most} connections need at least {}: raise it",
            most + 512
        ));
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(tmp.path(), o.nodes);
    println!(
        "Mosaic gateway load benchmark: {} nodes on loopback, {} s per run, wrk -t{} --latency, {} cores, load average {}",
        o.nodes,
        o.seconds,
        o.threads,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
    );
    cluster.wait_for_nodes();

    let www = tmp.path().join("www");
    fs::create_dir_all(&www).expect("www");
    let small_len = o.file_kib << 10;
    write_random(&www.join("small.bin"), small_len, b"load bench small");
    write_random(&www.join("big.bin"), o.big_mib << 20, b"load bench big");
    let small_id = put(&cluster, &www.join("small.bin"), true);
    let big_id = put(&cluster, &www.join("big.bin"), true);
    let small = fs::read(www.join("small.bin")).expect("read");
    let big = fs::read(www.join("big.bin")).expect("read");
    // From the middle: a segment boundary for 1 MiB segments, as in `benches/gateway.rs`,
    // so each request needs one segment.
    let from = big.len() / 2;
    let workloads = [
        Workload {
            name: format!("{} KiB file", o.file_kib),
            gateway_path: format!("/p/{small_id}"),
            nginx_path: "/small.bin",
            range: None,
            body: &small,
        },
        Workload {
            name: format!("{} KiB range of {} MiB", o.file_kib, o.big_mib),
            gateway_path: format!("/p/{big_id}"),
            nginx_path: "/big.bin",
            range: Some(format!("bytes={from}-{}", from + small_len - 1)),
            body: &big[from..from + small_len],
        },
    ];

    let mut runs = Vec::new();
    let mut n = 0;
    // Each (workload, connections) pair runs the gateway and then nginx back to back,
    // so the machine's drift hits both alike.
    for w in &workloads {
        for &conns in &o.conns {
            n += 1;
            let gateway = GatewayProc::start(
                &cluster,
                &tmp.path().join(format!("cache-{n}")),
                tmp.path(),
                &["--client-connections", "0", "--client-rate", "0"],
            );
            runs.push(measure(
                &o,
                &wrk,
                w,
                "gateway",
                conns,
                gateway.addr,
                &w.gateway_path,
                gateway.child.id(),
            ));
            drop(gateway);
            let _ = fs::remove_dir_all(tmp.path().join(format!("cache-{n}")));
            // Room for wrk's connections and a few more (its own listening socket, the
            // check's).
            let nginx = Nginx::start(
                &tmp.path().join(format!("nginx-{n}")),
                &www,
                conns.max(1000) + 100,
            );
            runs.push(measure(
                &o,
                &wrk,
                w,
                "nginx",
                conns,
                nginx.addr,
                w.nginx_path,
                nginx.child.id(),
            ));
        }
    }

    println!();
    println!(
        "{:<24} {:<8} {:>5} {:>9} {:>8} {:>9} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "workload",
        "server",
        "conns",
        "req/s",
        "MiB/s",
        "p50",
        "p99",
        "errors",
        "non-2xx",
        "srv CPU",
        "CPU/req",
        "wrk CPU",
        "peak RSS",
        "gw/nginx"
    );
    for r in &runs {
        let ratio = if r.server == "gateway" {
            runs.iter()
                .find(|n| n.server == "nginx" && n.workload == r.workload && n.conns == r.conns)
                .map_or(String::new(), |n| {
                    format!("{:.2}", r.wrk.requests_per_sec / n.wrk.requests_per_sec)
                })
        } else {
            String::new()
        };
        println!(
            "{:<24} {:<8} {:>5} {:>9.0} {:>8.1} {:>9} {:>9} {:>7} {:>8} {:>7.0}% {:>5.0} µs {:>7.0}% {:>5.1} MiB {:>9}",
            r.workload,
            r.server,
            r.conns,
            r.wrk.requests_per_sec,
            r.wrk.mib_per_sec,
            ms(r.wrk.p50),
            ms(r.wrk.p99),
            r.wrk.errors.iter().sum::<u64>(),
            r.wrk.non_2xx,
            r.server_cores * 100.0,
            r.server_cores / r.wrk.requests_per_sec * 1e6,
            r.wrk.cores * 100.0,
            r.peak_rss_mib,
            ratio,
        );
    }
    for r in runs.iter().filter(|r| r.wrk.errors.iter().sum::<u64>() > 0) {
        let [c, rd, wr, t] = r.wrk.errors;
        println!(
            "  {} {} {}: socket errors: connect {c}, read {rd}, write {wr}, timeout {t}",
            r.workload, r.server, r.conns
        );
    }
    // A dropped SYN is retried by the kernel after a second: it shows as a p99 of a
    // second or more, not as an error.
    for r in runs
        .iter()
        .filter(|r| r.listen_drops.is_some_and(|d| d > 0))
    {
        println!(
            "  {} {} {}: {} connection attempts dropped by a full listen queue (TcpExt ListenDrops)",
            r.workload,
            r.server,
            r.conns,
            r.listen_drops.unwrap_or(0)
        );
    }
    println!(
        "(CPU: cores used over the run, 100% = one core; CPU/req: the server's CPU time per response; peak RSS: VmHWM of a fresh server, warmed by one request, after the run)"
    );

    if o.flood_conns > 0 {
        flood(&o, &wrk, &cluster, tmp.path(), &workloads[0]);
    }
    // Other work on the machine takes cores from both servers alike, but not evenly
    // from run to run: say how busy it was.
    println!("load average at the end: {}", load_average());
}

/// The first three fields of `/proc/loadavg`.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Checks one response against the workload's bytes (warming the server), then runs
/// wrk against it.
#[allow(clippy::too_many_arguments)]
fn measure(
    o: &Options,
    wrk: &Path,
    w: &Workload,
    server: &'static str,
    conns: usize,
    addr: SocketAddr,
    path: &str,
    pid: u32,
) -> Run {
    verify(addr, path, w.range.as_deref(), w.body, server);
    let cpu = cpu_seconds(pid).unwrap_or(0.0);
    let drops = listen_drops();
    let start = Instant::now();
    let result = run_wrk(o, wrk, addr, path, w.range.as_deref(), conns);
    let elapsed = start.elapsed().as_secs_f64();
    let drops = listen_drops()
        .zip(drops)
        .map(|(after, before)| after - before);
    let server_cores = (cpu_seconds(pid).unwrap_or(0.0) - cpu) / elapsed;
    if result.non_2xx == 0 && result.requests > 0 {
        // wrk does not look at bodies; what it read per response at least shows each
        // was whole under load, not only the checked one.
        let per = result.read_bytes / result.requests as f64;
        assert!(
            per >= 0.98 * w.body.len() as f64,
            "{} {server} {conns}: {per:.0} bytes read per response, the body is {}",
            w.name,
            w.body.len()
        );
    }
    let run = Run {
        workload: w.name.clone(),
        server,
        conns,
        wrk: result,
        server_cores,
        peak_rss_mib: peak_rss_kib(pid).unwrap_or(0) as f64 / 1024.0,
        listen_drops: drops,
    };
    println!(
        "  {} {server} {conns} connections: {:.0} req/s, p50 {}, p99 {}",
        run.workload,
        run.wrk.requests_per_sec,
        ms(run.wrk.p50),
        ms(run.wrk.p99)
    );
    run
}

/// The gateway with its default limits against `flood_conns` connections from one
/// address, while a second address asks for the same file ten times a second.
fn flood(o: &Options, wrk: &Path, cluster: &Cluster, dir: &Path, w: &Workload) {
    let gateway = GatewayProc::start(cluster, &dir.join("cache-flood"), dir, &[]);
    verify(gateway.addr, &w.gateway_path, None, w.body, "gateway");
    let drops = listen_drops();
    let side = {
        let (addr, path, body) = (gateway.addr, w.gateway_path.clone(), w.body.to_vec());
        let until = Instant::now() + Duration::from_secs(o.seconds);
        std::thread::spawn(move || other_client(addr, &path, &body, until))
    };
    let cpu = cpu_seconds(gateway.child.id()).unwrap_or(0.0);
    let start = Instant::now();
    let r = run_wrk(o, wrk, gateway.addr, &w.gateway_path, None, o.flood_conns);
    let cores =
        (cpu_seconds(gateway.child.id()).unwrap_or(0.0) - cpu) / start.elapsed().as_secs_f64();
    let side = side.join().expect("second client");
    let drops = listen_drops()
        .zip(drops)
        .map(|(after, before)| after - before);
    let rss = peak_rss_kib(gateway.child.id()).unwrap_or(0) as f64 / 1024.0;
    // Asked from the second address too: the flooded one may be over its rate still.
    let metrics = request_from(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        gateway.addr,
        "/metrics",
    )
    .map(|(_, raw)| parse_response(&raw).1)
    .unwrap_or_default();
    let metrics = String::from_utf8_lossy(&metrics);
    let counter = |prefix: &str| -> String {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("?")
            .to_owned()
    };
    let [c, rd, wr, t] = r.errors;
    println!();
    println!(
        "Default limits (64 connections and 100 requests a second per address, burst 400), {} connections from 127.0.0.1, {} s:",
        o.flood_conns, o.seconds
    );
    println!(
        "  wrk: {} responses ({:.0}/s), {} of them 2xx ({:.0}/s), {} not (429); p50 {}, p99 {}; socket errors: connect {c}, read {rd}, write {wr}, timeout {t}; wrk {:.0}% CPU",
        r.requests,
        r.requests_per_sec,
        r.requests - r.non_2xx,
        (r.requests - r.non_2xx) as f64 / o.seconds as f64,
        r.non_2xx,
        ms(r.p50),
        ms(r.p99),
        r.cores * 100.0,
    );
    println!(
        "  gateway counted: {} connections refused (client_connections), {} responses 429, {} responses 200; {:.0}% CPU, peak RSS {rss:.1} MiB",
        counter("mosaic_gateway_http_connections_refused_total{reason=\"client_connections\"}"),
        counter("mosaic_gateway_http_requests_total{status=\"429\"}"),
        counter("mosaic_gateway_http_requests_total{status=\"200\"}"),
        cores * 100.0,
    );
    println!(
        "  connection attempts dropped by a full listen queue meanwhile (TcpExt ListenDrops, this network namespace): {}",
        drops.map_or("?".into(), |d| d.to_string())
    );
    let pct = |v: &[f64], p: usize| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get((v.len() * p / 100).min(v.len().saturating_sub(1)))
            .map_or("-".into(), |&s| ms(s))
    };
    println!(
        "  meanwhile 127.0.0.2, one GET at a time, at most 10 a second: {} served with the file's bytes, {} not; latency p50 {}, p90 {}, max {} (of which connecting: p50 {}, max {})",
        side.served,
        side.other,
        pct(&side.latencies, 50),
        pct(&side.latencies, 90),
        pct(&side.latencies, 100),
        pct(&side.connects, 50),
        pct(&side.connects, 100),
    );
}

/// What the second client saw.
#[derive(Default)]
struct Side {
    /// Responses `200` with the file's bytes.
    served: usize,
    /// Other answers and failures.
    other: usize,
    /// Seconds from connecting to the end of each response, and of their connects.
    latencies: Vec<f64>,
    connects: Vec<f64>,
}

/// A client of its own address (127.0.0.2) asking for `path`, one request at a time and
/// at most 10 a second, until `until`. Panics on a `200` with wrong bytes.
fn other_client(addr: SocketAddr, path: &str, body: &[u8], until: Instant) -> Side {
    let mut side = Side::default();
    while Instant::now() < until {
        let start = Instant::now();
        match request_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), addr, path) {
            Ok((connect, raw)) => {
                side.latencies.push(start.elapsed().as_secs_f64());
                side.connects.push(connect);
                let (status, got) = parse_response(&raw);
                if status == 200 {
                    assert!(got == body, "{path} from 127.0.0.2: wrong bytes under load");
                    side.served += 1;
                } else {
                    side.other += 1;
                }
            }
            Err(_) => side.other += 1,
        }
        std::thread::sleep(Duration::from_millis(100).saturating_sub(start.elapsed()));
    }
    side
}

/// One GET from the source address `from` (std cannot bind before connecting; tokio
/// can): (seconds to connect, the raw response read to its end).
fn request_from(from: IpAddr, addr: SocketAddr, path: &str) -> std::io::Result<(f64, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        let start = Instant::now();
        let mut s = tokio::time::timeout(Duration::from_secs(10), socket.connect(addr))
            .await
            .map_err(std::io::Error::other)??;
        let connect = start.elapsed().as_secs_f64();
        s.write_all(request(path, None).as_bytes()).await?;
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
            .await
            .map_err(std::io::Error::other)??;
        Ok((connect, raw))
    })
}

/// Connection attempts dropped because a listen queue was full, counted since boot
/// in this network namespace (`TcpExt: ListenDrops`): a flood of connects from one
/// address fills the queue before the gateway's per-client limit can see them.
fn listen_drops() -> Option<u64> {
    let text = fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names.split_whitespace().position(|n| n == "ListenDrops")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

fn request(path: &str, range: Option<&str>) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n");
    if let Some(r) = range {
        req.push_str(&format!("Range: {r}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// Fetches `path` over a plain socket and panics unless the body is `want` (a panic,
/// not an exit, so the servers' and nodes' guards end them).
fn verify(addr: SocketAddr, path: &str, range: Option<&str>, want: &[u8], server: &str) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s.write_all(request(path, range).as_bytes()).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let (status, body) = parse_response(&raw);
    let expect = if range.is_some() { 206 } else { 200 };
    if status != expect || body != want {
        panic!(
            "{server} {path} {range:?}: status {status} (want {expect}), {} body bytes (want {}), {}",
            body.len(),
            want.len(),
            if body == want {
                "same bytes"
            } else {
                "WRONG BYTES"
            }
        );
    }
}

/// (status, body) of a whole HTTP/1.1 response read until the server closed: the body
/// as `Content-Length` or chunked transfer coding frames it.
fn parse_response(raw: &[u8]) -> (u16, Vec<u8>) {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, Vec::new());
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let rest = &raw[end + 4..];
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        let mut at = 0;
        while let Some(eol) = rest[at..].windows(2).position(|w| w == b"\r\n") {
            let size = String::from_utf8_lossy(&rest[at..at + eol]);
            let size =
                usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
            at += eol + 2;
            if size == 0 || at + size > rest.len() {
                break;
            }
            body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
        (status, body)
    } else {
        let len = header("content-length:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(rest.len())
            .min(rest.len());
        (status, rest[..len].to_vec())
    }
}

/// What wrk reported.
#[derive(Default)]
struct Wrk {
    requests_per_sec: f64,
    mib_per_sec: f64,
    /// Seconds.
    p50: f64,
    p99: f64,
    requests: u64,
    read_bytes: f64,
    non_2xx: u64,
    /// Socket errors: connect, read, write, timeout.
    errors: [u64; 4],
    /// wrk's CPU seconds over the run's length: the cores it took from the server.
    cores: f64,
}

fn find_wrk() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("wrk"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| fail("wrk is needed (Debian/Ubuntu package `wrk`: apt-get install wrk)"))
}

fn run_wrk(
    o: &Options,
    wrk: &Path,
    addr: SocketAddr,
    path: &str,
    range: Option<&str>,
    conns: usize,
) -> Wrk {
    let mut cmd = Command::new(wrk);
    cmd.arg(format!("-t{}", o.threads))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{}s", o.seconds))
        // wrk's default (2 s) would count slow responses as errors and leave them out
        // of the latency distribution.
        .args(["--timeout", "10s", "--latency"]);
    if let Some(r) = range {
        cmd.args(["-H", &format!("Range: {r}")]);
    }
    let child = cmd
        .arg(format!("http://{addr}{path}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wrk");
    let pid = child.id();
    let start = Instant::now();
    // wrk's CPU time: read until it is a zombie (its threads' time summed, not yet
    // reaped), the last reading before then if that moment is missed.
    let mut cpu = 0.0;
    loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
        if let Some(c) = cpu_seconds(pid) {
            cpu = c;
        }
        if zombie || stat.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let out = child.wait_with_output().expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = parse_wrk(&text).unwrap_or_else(|| panic!("unexpected wrk output:\n{text}"));
    r.cores = cpu / elapsed;
    r
}

/// Reads wrk's `--latency` report.
fn parse_wrk(text: &str) -> Option<Wrk> {
    let mut r = Wrk::default();
    let (mut p50, mut p99, mut rps) = (None, None, None);
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", t] => p50 = duration(t),
            ["99%", t] => p99 = duration(t),
            ["Requests/sec:", v] => rps = v.parse().ok(),
            ["Transfer/sec:", v] => r.mib_per_sec = bytes(v)? / (1u64 << 20) as f64,
            [n, "requests", "in", _, read, "read"] => {
                r.requests = n.parse().ok()?;
                r.read_bytes = bytes(read)?;
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => r.non_2xx = n.parse().ok()?,
            ["Socket", "errors:", ..] => {
                // Socket errors: connect 0, read 0, write 0, timeout 0
                for (i, what) in ["connect", "read", "write", "timeout"].iter().enumerate() {
                    r.errors[i] = words
                        .iter()
                        .position(|w| w == what)
                        .and_then(|p| words.get(p + 1))
                        .and_then(|v| v.trim_end_matches(',').parse().ok())?;
                }
            }
            _ => {}
        }
    }
    r.p50 = p50?;
    r.p99 = p99?;
    r.requests_per_sec = rps?;
    Some(r)
}

/// A wrk duration ("812.00us", "1.23ms", "1.50s", "2.00m") in seconds.
fn duration(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (v, unit) = s.split_at(split);
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(v.parse::<f64>().ok()? * scale)
}

/// A wrk byte count ("750.00MB": binary units) in bytes.
fn bytes(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (v, unit) = s.split_at(split);
    let power = ["B", "KB", "MB", "GB", "TB"]
        .iter()
        .position(|u| *u == unit)?;
    Some(v.parse::<f64>().ok()? * 1024f64.powi(power as i32))
}

/// This process's soft limit on open files (inherited by what it starts).
fn open_files_limit() -> u64 {
    fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(u64::MAX)
}

fn ms(seconds: f64) -> String {
    format!("{:.2} ms", seconds * 1e3)
}
