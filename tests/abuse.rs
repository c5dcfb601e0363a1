//! Crowds and abusers against a real cluster (20 `mosaic node run` processes) and a
//! real `mosaic gateway run`: what one client can make the gateway or a storage node
//! do is bounded, and everyone else is still served with correct bytes.
//!
//! Clients come from distinct loopback addresses (127.x.y.z are all local on Linux),
//! so per-client limits see hundreds of different clients, as on the internet.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use common::{gateway::*, *};
use iroh::{EndpointId, SecretKey};
use mosaic_client::{Client, lookups::Lookups};
use mosaic_wire::{
    endpoint::{self, EndpointOptions},
    proto::{self, Refusal, Request, Response},
    request::{RequestError, exchange},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

const NODES: usize = 20;

/// A TCP connection to `to` from loopback address `from`.
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(to).await
}

/// The `n`-th client address of a block (`127.block.hi.lo`).
fn client_ip(block: u8, n: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, block, (n / 250) as u8, (n % 250 + 1) as u8)
}

/// One GET over its own connection from `from`; the whole response.
async fn get_from(
    from: Ipv4Addr,
    to: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
) -> std::io::Result<Reply> {
    let mut s = connect_from(from, to).await?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::Error::other("no complete answer in 60 s"))??;
    Ok(Reply::parse(&raw, false))
}

/// Whether the server has closed `s` (EOF or reset), reading whatever it sent.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Peak resident memory of process `pid`, in MiB (VmHWM).
fn peak_rss_mib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_crowd_and_slowloris_sockets_do_not_starve_clients_and_limits_answer_429() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start(NODES, &["--open"]);
    c.wait_for_nodes(NODES);
    let (file, data) = write_file(c.tmp.path(), "movie.bin", 12 << 20);
    let put = c.mosaic(&["--json", "put", "--public", file.to_str().unwrap()]);
    assert!(put.status.success(), "{}", stderr(&put));
    let id = serde_json::from_slice::<serde_json::Value>(&put.stdout).unwrap()["cap"]
        .as_str()
        .unwrap()
        .to_owned();
    let gateway = Gateway::start(
        &c,
        &[
            "--header-timeout",
            "2s",
            "--write-timeout",
            "3s",
            "--client-connections",
            "8",
            "--client-rate",
            "20",
            "--client-burst",
            "40",
        ],
    );
    let addr = gateway.addr;
    let path = format!("/p/{id}");
    let data = Arc::new(data);
    // Warm the gateway (lookups, manifest) so the crowd measures serving.
    assert_eq!(gateway.get(&path).status, 200);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // 300 slowloris sockets from 300 addresses: a request head trickled a byte at a
        // time, never finished.
        let mut slow = Vec::new();
        for n in 0..300 {
            let mut s = connect_from(client_ip(1, n), addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            slow.push(s);
        }
        let trickle = tokio::spawn(async move {
            let started = Instant::now();
            let mut open = slow;
            // Keep trickling well past the header timeout; count who got closed.
            while started.elapsed() < Duration::from_secs(6) {
                for s in open.iter_mut() {
                    let _ = s.write_all(b"X").await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let mut closed = 0;
            for s in open.iter_mut() {
                if closed_by_server(s, Duration::from_secs(1)).await {
                    closed += 1;
                }
            }
            closed
        });

        // Meanwhile 200 clients from 200 other addresses read random ranges.
        let mut crowd = Vec::new();
        for n in 0..200usize {
            let (path, data) = (path.clone(), data.clone());
            crowd.push(tokio::spawn(async move {
                let mut x = (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut checked = 0;
                for _ in 0..2 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let len = data.len() as u64;
                    let start = x % len;
                    let end = (start + 1 + (x >> 32) % (1 << 20)).min(len) - 1;
                    let r = get_from(
                        client_ip(2, n),
                        addr,
                        &path,
                        &[("Range", format!("bytes={start}-{end}"))],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("client {n}: {e}"));
                    assert_eq!(
                        r.status,
                        206,
                        "client {n}: {}",
                        String::from_utf8_lossy(&r.body)
                    );
                    assert_eq!(
                        r.body,
                        data[start as usize..=end as usize],
                        "client {n} got wrong bytes for {start}-{end}"
                    );
                    checked += 1;
                }
                checked
            }));
        }
        let started = Instant::now();
        let mut served = 0;
        for t in crowd {
            served += t.await.unwrap();
        }
        eprintln!(
            "200 clients read 400 ranges in {:.1} s beside 300 slowloris sockets",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(served, 400);
        let closed = trickle.await.unwrap();
        assert_eq!(
            closed, 300,
            "every socket that never finished its request head is closed by the header timeout"
        );

        // One client's connections: 8 held, the 9th is answered 429 with Retry-After.
        let me = Ipv4Addr::new(127, 3, 0, 1);
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(connect_from(me, addr).await.unwrap());
        }
        // Let the gateway accept the eight before the ninth arrives.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ninth = get_from(me, addr, "/health", &[]).await.unwrap();
        assert_eq!(ninth.status, 429, "{ninth:?}");
        assert_eq!(ninth.header("retry-after"), "1");
        assert!(
            String::from_utf8_lossy(&ninth.body).contains("at most 8"),
            "{ninth:?}"
        );
        let other = get_from(Ipv4Addr::new(127, 3, 0, 2), addr, "/health", &[])
            .await
            .unwrap();
        assert_eq!(other.status, 200, "another client is not held up");
        // Closed connections give their slots back: the client is served again once
        // the gateway has seen them close (waiting as its Retry-After says).
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = get_from(me, addr, "/health", &[]).await.unwrap();
            if r.status == 200 {
                break;
            }
            assert!(
                r.status == 429 && Instant::now() < deadline,
                "slots not given back after the connections closed: {r:?}"
            );
            tokio::time::sleep(Duration::from_secs(
                r.header("retry-after").parse().unwrap(),
            ))
            .await;
        }

        // One client's rate: a burst of 40, then 429 with the seconds to wait, then
        // served again after waiting them.
        // How many pass is bounded by the burst plus what refilled while they ran,
        // checked against the time they took (not a count tuned to one machine).
        let fast = Ipv4Addr::new(127, 3, 0, 3);
        let start = Instant::now();
        let mut ok = 0u32;
        let mut retry_after = None;
        while retry_after.is_none() && ok < 2_000 {
            let r = get_from(fast, addr, "/health", &[]).await.unwrap();
            match r.status {
                200 => ok += 1,
                429 => {
                    assert!(
                        String::from_utf8_lossy(&r.body).contains("too many requests"),
                        "{r:?}"
                    );
                    retry_after = Some(r.header("retry-after").parse::<u64>().unwrap());
                }
                _ => panic!("{r:?}"),
            }
        }
        let took = start.elapsed().as_secs_f64();
        let retry_after = retry_after
            .unwrap_or_else(|| panic!("{ok} requests in {took:.2} s, none refused at 20/s"));
        assert!(
            ok >= 40 && f64::from(ok) <= 40.0 + 20.0 * took + 1.0,
            "40 at once plus what 20/s refills in {took:.2} s, but {ok} passed"
        );
        assert!(retry_after >= 1);
        tokio::time::sleep(Duration::from_secs(retry_after)).await;
        assert_eq!(
            get_from(fast, addr, "/health", &[]).await.unwrap().status,
            200
        );

        // A client that asks for the whole file and reads nothing is cut off after the
        // write timeout, not held forever with a segment in memory.
        let mut stuck = connect_from(Ipv4Addr::new(127, 3, 0, 4), addr)
            .await
            .unwrap();
        stuck
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stuck.read_to_end(&mut got)).await;
        assert!(
            got.len() < data.len(),
            "a client that stopped reading got the whole body ({} bytes): not cut off",
            got.len()
        );
    });

    let metrics = gateway.metrics();
    assert!(
        metric(
            &metrics,
            "mosaic_gateway_http_connections_refused_total{reason=\"client_connections\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "mosaic_gateway_http_requests_total{status=\"429\"}"
        ) >= 1.0
    );
    let rss = peak_rss_mib(gateway.child.id());
    eprintln!("gateway peak RSS: {rss} MiB");
    assert!(
        rss < 400,
        "the gateway's peak memory grew to {rss} MiB serving 200 clients"
    );
}

/// A client of the test cluster, in this process.
async fn client(c: &Cluster, seed: u8) -> Arc<Client> {
    in_process_client(c, [seed; 32]).await
}

/// The wait a rate refusal names ("try again in N ms").
fn retry_after(message: &str) -> Duration {
    let ms = message
        .split("try again in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a rate refusal names its wait: {message}"));
    Duration::from_millis(ms)
}

fn busy(r: &Result<Response, RequestError>) -> Option<String> {
    match r {
        Err(RequestError::Refused {
            reason: Refusal::Busy,
            message,
        }) => Some(message.clone()),
        _ => None,
    }
}

#[test]
fn one_peer_cannot_take_a_storage_node() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let metrics_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let c = Cluster::start_with(
        NODES,
        &["--open"],
        &[(1, &["--peer-rate", "50", "--metrics", &metrics_addr])],
    );
    c.wait_for_nodes(NODES);
    let node: EndpointId = c.node_id(1).parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dht_client = client(&c, 7).await;
        let Lookups::Dht(dht) = dht_client.routing() else {
            panic!("the test client runs its own DHT node");
        };
        let addr = dht.resolve(&node).await.unwrap();
        let ep = endpoint::bind(EndpointOptions {
            secret: SecretKey::from_bytes(&[9; 32]),
            bind: "127.0.0.1:0".parse().unwrap(),
            relays: vec![],
            relay_only: false,
            network: c.network.clone(),
            nameserver: None,
            alpns: vec![],
        })
        .await
        .unwrap();
        let connect = || {
            endpoint::connect(
                &ep,
                &c.network,
                node,
                &addr,
                proto::ALPN,
                Duration::from_secs(5),
            )
        };
        let conn = connect().await.unwrap();

        // The default quota of a node open to anyone: 2 GiB of capacity, 1 GiB each.
        match exchange(&conn, &Request::Status { hashes: vec![] }).await {
            Ok(Response::Status(s)) => assert_eq!(s.quota, Some(1 << 30), "{s:?}"),
            other => panic!("{other:?}"),
        }

        // DHT work at once: 8 per peer; 30 lookups sent together, the rest are busy.
        let lookups: Vec<_> = (0..30)
            .map(|_| {
                let conn = conn.clone();
                tokio::spawn(async move {
                    exchange(&conn, &Request::Lookup(proto::Lookup::StorageNodes)).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for l in lookups {
            answers.push(l.await.unwrap());
        }
        let refused: Vec<String> = answers.iter().filter_map(busy).collect();
        let found = answers
            .iter()
            .filter(|a| matches!(a, Ok(Response::Found(_))))
            .count();
        assert!(found >= 8, "{answers:?}");
        // Over the slots ("at most 8"), or over the rate once 12 lookups of 16 units
        // have spent the 200-unit burst.
        assert!(
            refused.iter().any(|m| m.contains("at most 8 lookups"))
                && refused
                    .iter()
                    .all(|m| m.contains("at most 8") || m.contains("try again in")),
            "{answers:?}"
        );

        // The rate: 50 cost units a second, 200 at once. Cheap requests in a row run
        // out of the burst, and how many pass is bounded by the burst plus what refilled
        // while they ran: checked against the time they took, so a fast machine and a
        // slow one are held to the same rule.
        // Sent 32 at a time (under the 128 in flight), so even a slow machine asks
        // faster than the budget refills.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        let mut ok = 0u32;
        let mut wait = None;
        while wait.is_none() && ok < 5_000 {
            let batch: Vec<_> = (0..32)
                .map(|_| {
                    let conn = conn.clone();
                    tokio::spawn(async move {
                        exchange(&conn, &Request::Stat { hashes: vec![] }).await
                    })
                })
                .collect();
            for r in batch {
                let r = r.await.unwrap();
                match busy(&r) {
                    None => {
                        assert!(matches!(r, Ok(Response::Stat { .. })), "{r:?}");
                        ok += 1;
                    }
                    Some(m) => {
                        assert!(m.contains("try again in"), "{m}");
                        wait = Some(m);
                    }
                }
            }
        }
        let took = start.elapsed().as_secs_f64();
        let wait = wait.unwrap_or_else(|| {
            panic!("{ok} requests in {took:.2} s went through a 50-a-second budget")
        });
        assert!(ok >= 200, "the burst is 200: {ok} then {wait}");
        assert!(
            f64::from(ok) <= 200.0 + 50.0 * took + 1.0,
            "{ok} requests passed in {took:.2} s: more than the burst (200) and the rate (50/s) allow"
        );
        // The refusal says when to come back, and it is true. Asked alone (no other
        // request of this peer in flight to spend what refills meanwhile), with a
        // request that costs 17 units (1024 hashes), which the emptied budget cannot
        // pay at once: refused, it waits as told and is admitted.
        let dear = Request::Stat {
            hashes: vec![[0u8; 32]; proto::MAX_HASHES],
        };
        let mut refused = None;
        for _ in 0..100 {
            let r = exchange(&conn, &dear).await;
            if let Some(m) = busy(&r) {
                refused = Some(m);
                break;
            }
            assert!(matches!(r, Ok(Response::Stat { .. })), "{r:?}");
        }
        let refused = refused.expect("100 requests of 17 units in a row passed a 50-a-second budget");
        let retry = retry_after(&refused);
        tokio::time::sleep(retry).await;
        let again = exchange(&conn, &dear).await;
        assert!(
            matches!(again, Ok(Response::Stat { .. })),
            "told to try again in {retry:?} ({refused}), then: {again:?}"
        );
        // Another peer is not held up by this one.
        let other = client(&c, 8).await;
        let (n, _) = other.storage_nodes().await.unwrap();
        assert!(n > 0);

        // Connections: 16 per peer; the 17th is closed at once with code 429. Each new
        // connection is tried with a request; one refused for the request rate (the
        // budget above may not have refilled yet) is not a closed connection: it waits as
        // told and asks again, so only the connection limit decides the count.
        let mut conns = vec![conn];
        let mut closed = None;
        for _ in 0..17 {
            let c2 = match connect().await {
                Ok(c2) => c2,
                // The node's close can come before the handshake is done.
                Err(e) => {
                    closed = Some(format!("{e:#}"));
                    break;
                }
            };
            let r = loop {
                let r = exchange(&c2, &Request::Stat { hashes: vec![] }).await;
                match busy(&r) {
                    Some(m) if m.contains("try again in") => {
                        tokio::time::sleep(retry_after(&m)).await
                    }
                    _ => break r,
                }
            };
            match r {
                Ok(Response::Stat { .. }) => conns.push(c2),
                Err(RequestError::Open(_) | RequestError::Proto(_)) => {
                    closed = Some(format!("{r:?} / {:?}", c2.close_reason()));
                    break;
                }
                other => panic!("connection {}: {other:?}", conns.len() + 1),
            }
        }
        let closed = closed.expect("17 connections from one peer were all served");
        assert_eq!(conns.len(), 16, "{closed}");
        assert!(
            closed.contains("429") && closed.contains("connections"),
            "{closed}"
        );
        drop(conns);
        other.close().await;
        dht_client.close().await;
    });

    // The node's metrics and health, over HTTP.
    let get = |path: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-w",
                "\n%{http_code}",
                &format!("http://{metrics_addr}{path}"),
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let health = get("/health");
    assert!(
        health.starts_with("ok: ") && health.ends_with("\n200"),
        "{health}"
    );
    let text = get("/metrics");
    assert!(
        metric(&text, "mosaic_node_peer_limited_total{limit=\"rate\"}") >= 1.0,
        "{text}"
    );
    assert!(
        metric(&text, "mosaic_node_peer_limited_total{limit=\"dht\"}") >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "mosaic_node_peer_limited_total{limit=\"connections\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "mosaic_node_requests_total{request=\"stat\",outcome=\"ok\"}"
        ) >= 200.0,
        "{text}"
    );
    assert!(metric(&text, "mosaic_node_dht_peers") >= 1.0, "{text}");
    assert_eq!(
        metric(&text, "mosaic_node_capacity_bytes"),
        (2u64 << 30) as f64
    );
}
