//! Reaching the network by name and through relays, on loopback with real processes:
//! bootstrap by host name and by a DNS TXT list (a DNS server started by the test), a
//! node serving a relay, a relay-only client, and a relay that turns away a stranger.
//! NATs need namespaces and root: `tests/nat.sh` covers them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    net::{Ipv4Addr, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use common::*;
use simple_dns::{
    CLASS, Packet, PacketFlag, QTYPE, RCODE, ResourceRecord, TYPE,
    rdata::{A, RData, TXT},
};

/// A DNS server on 127.0.0.1 that knows one zone: `NAME.test.` A records pointing to
/// 127.0.0.1 for every name in `hosts`, and TXT records in `txt`. Counts the queries it
/// answers; stops when dropped.
struct Dns {
    addr: std::net::SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Dns {
    fn start(hosts: Vec<String>, txt: Vec<(String, String)>) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (queries.clone(), stop.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Packet::parse(&buf[..n]) else {
                    continue;
                };
                q.fetch_add(1, Ordering::Relaxed);
                let mut reply = Packet::new_reply(query.id());
                reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
                let mut known = false;
                for question in &query.questions {
                    reply.questions.push(question.clone());
                    let name = question.qname.to_string();
                    let name = name.trim_end_matches('.');
                    if hosts.iter().any(|h| h == name) {
                        known = true;
                        if question.qtype == QTYPE::TYPE(TYPE::A) {
                            reply.answers.push(ResourceRecord::new(
                                question.qname.clone(),
                                CLASS::IN,
                                60,
                                RData::A(A {
                                    address: u32::from(Ipv4Addr::LOCALHOST),
                                }),
                            ));
                        }
                    }
                    for (n, text) in &txt {
                        if n == name {
                            known = true;
                            if question.qtype == QTYPE::TYPE(TYPE::TXT) {
                                let mut record = TXT::new();
                                record.add_string(text).unwrap();
                                reply.answers.push(ResourceRecord::new(
                                    question.qname.clone(),
                                    CLASS::IN,
                                    60,
                                    RData::TXT(record),
                                ));
                            }
                        }
                    }
                }
                if !known {
                    *reply.rcode_mut() = RCODE::NameError;
                }
                if let Ok(bytes) = reply.build_bytes_vec() {
                    let _ = socket.send_to(&bytes, from);
                }
            }
        });
        Dns {
            addr,
            queries,
            stop,
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn bootstrap_by_host_name_and_by_a_dns_txt_list() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start(5, &["--open"]);
    c.wait_for_nodes(5);
    let port = c.nodes[0].dht;
    let dns = Dns::start(
        vec!["dht.mosaic.test".into()],
        vec![(
            "_mosaic.mosaic.test".into(),
            // Two entries in one TXT string: a name (resolved in turn) and an address.
            format!("dht.mosaic.test:{port} 127.0.0.1:{}", c.nodes[1].dht),
        )],
    );
    let ns = dns.addr.to_string();
    let (file, data) = write_file(c.tmp.path(), "named.bin", 300_000);

    // A host name in --bootstrap, resolved by the given DNS server.
    let boot = format!("dht.mosaic.test:{port}");
    let out = c.mosaic(&[
        "put",
        file.to_str().unwrap(),
        "--bootstrap",
        &boot,
        "--dns-server",
        &ns,
    ]);
    assert!(out.status.success(), "put by name: {}", stderr(&out));
    let cap = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let asked = dns.queries.load(Ordering::Relaxed);
    assert!(
        asked > 0,
        "the name was not looked up through the DNS server"
    );

    // A TXT bootstrap list.
    let back = c.tmp.path().join("named.back");
    let out = c.mosaic(&[
        "get",
        &cap,
        "-o",
        back.to_str().unwrap(),
        "--bootstrap",
        "dns:_mosaic.mosaic.test",
        "--dns-server",
        &ns,
    ]);
    assert!(out.status.success(), "get via dns: {}", stderr(&out));
    assert_eq!(std::fs::read(&back).unwrap(), data);
    assert!(dns.queries.load(Ordering::Relaxed) > asked);

    // Names that do not resolve say which, and that it is a network problem (exit 3).
    for bad in ["nowhere.mosaic.test:6881", "dns:_none.mosaic.test"] {
        let out = c.mosaic(&["nodes", "--bootstrap", bad, "--dns-server", &ns]);
        assert!(!out.status.success());
        let err = stderr(&out);
        let name = bad.trim_start_matches("dns:").split(':').next().unwrap();
        assert!(err.contains(name), "{bad}: {err}");
        assert!(err.contains("cannot resolve"), "{bad}: {err}");
        assert_eq!(out.status.code(), Some(5), "{bad}: {err}");
    }
    let out = c.mosaic(&["nodes", "--bootstrap", "no-port-here"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not HOST:PORT"),
        "{}",
        stderr(&out)
    );
}

/// The relay URL a node prints in its ready line (`--json`).
fn relay_of(c: &Cluster, i: usize) -> String {
    let log = c.nodes[i].log.lock().unwrap().clone();
    let line = log
        .lines()
        .find(|l| l.contains("serving a relay at "))
        .unwrap_or_else(|| panic!("node {i} serves no relay:\n{log}"));
    line.rsplit("serving a relay at ")
        .next()
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn a_relay_only_client_reads_through_a_nodes_relay_and_strangers_are_turned_away() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let relay_port = free_udp_port();
    let serve = format!("127.0.0.1:{relay_port}");
    let c = Cluster::start_with(5, &["--open"], &[(0, &["--relay-serve", &serve])]);
    c.wait_for_nodes(5);
    let relay = relay_of(&c, 0);
    assert!(
        relay.starts_with(&format!("{}@https://127.0.0.1:{relay_port}#", c.node_id(0))),
        "a self-signed relay is named with its node and its pin: {relay}"
    );
    let (file, data) = write_file(c.tmp.path(), "relayed.bin", 2_000_000);
    let cap = c.put(&file, &[]);

    let back = c.tmp.path().join("relayed.back");
    // A relay-only get of the file, with `more` arguments.
    let relay_only_get = |more: &[&str]| {
        let mut args = vec!["get", &cap, "-o", back.to_str().unwrap(), "--relay-only"];
        args.extend_from_slice(more);
        c.mosaic(&args)
    };
    let out = relay_only_get(&["--relay", &relay, "--timings"]);
    let err = stderr(&out);
    assert!(out.status.success(), "relay-only get: {err}\n{}", c.logs());
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let routes: Vec<&str> = err.lines().filter(|l| l.starts_with("route ")).collect();
    assert!(routes.len() >= 3, "one connection per holder read: {err}");
    for r in &routes {
        assert!(
            r.contains(" relay https://127.0.0.1:"),
            "relay-only connections go through the relay: {r}"
        );
    }

    // Relay-only mode sends no datagram of its own: no DHT node, lookups through the
    // relay's node.
    assert!(
        err.contains("lookups") && err.contains("through the relay's node"),
        "{err}"
    );
    assert!(!err.contains("dht join"), "{err}");

    // A relay named without its node: relay-only mode has nobody to make its lookups.
    let bare = relay.split('@').nth(1).unwrap().to_owned();
    let out = relay_only_get(&["--relay", &bare]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("NODE_ID@"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(7));

    // Relay-only without a relay is refused before anything is sent.
    let out = relay_only_get(&[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("needs a relay"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(7));

    // A wrong pin: the relay's certificate is not trusted, nothing is read.
    let wrong = format!("{}#{}", relay.split('#').next().unwrap(), "00".repeat(32));
    let out = relay_only_get(&["--relay", &wrong, "--connect-timeout", "2s"]);
    assert!(!out.status.success(), "a relay with a wrong pin was used");
    assert!(
        stderr(&out).contains("cannot reach its relay"),
        "{}",
        stderr(&out)
    );

    // A member of another network presents the wrong token: the relay refuses it.
    let out = relay_only_get(&[
        "--relay",
        &relay,
        "--network",
        "someone-else",
        "--connect-timeout",
        "2s",
    ]);
    assert!(!out.status.success(), "a stranger used the relay");
    assert!(stderr(&out).contains("access denied"), "{}", stderr(&out));
    let log = c.nodes[0].log.lock().unwrap().clone();
    assert!(
        !log.contains("panicked"),
        "the relay node survived strangers:\n{log}"
    );
}
