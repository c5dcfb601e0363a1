//! A storage node in-process, driven over real QUIC with raw protocol frames: bad input
//! gets a clear refusal and changes nothing; pins belong to their owners.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashSet, net::UdpSocket, time::Duration};

use iroh::{Endpoint, SecretKey, endpoint::Connection};
use mosaic_codec::Hash;
use mosaic_server::{Admission, Node, NodeOptions};
use mosaic_wire::{
    dht::RoutingOptions,
    endpoint::{self, EndpointOptions},
    proto::{self, Refusal, Request, Response},
};

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn node(dir: &std::path::Path, capacity: u64, admission: Admission) -> Node {
    Node::spawn(NodeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        routing: RoutingOptions {
            network: "unit".into(),
            port: Some(free_udp_port()),
            ..RoutingOptions::default()
        },
        limits: mosaic_server::store::Limits::new(capacity),
        admission,
        announce_interval: Duration::from_secs(60),
        ..NodeOptions::new(dir)
    })
    .await
    .unwrap()
}

async fn client(seed: u8) -> Endpoint {
    endpoint::bind(EndpointOptions {
        secret: SecretKey::from_bytes(&[seed; 32]),
        bind: "127.0.0.1:0".parse().unwrap(),
        relays: vec![],
        relay_only: false,
        network: String::new(),
        nameserver: None,
        alpns: vec![],
    })
    .await
    .unwrap()
}

async fn connect(ep: &Endpoint, node: &Node) -> Connection {
    ep.connect(
        endpoint::endpoint_addr(node.id(), node.addrs()),
        proto::ALPN,
    )
    .await
    .unwrap()
}

/// Sends raw bytes as a request stream; returns the node's answer.
async fn raw(conn: &Connection, bytes: &[u8]) -> Response {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let _ = send.write_all(bytes).await;
    let _ = send.finish();
    proto::read_frame(&mut recv).await.unwrap()
}

fn frame(req: &Request) -> Vec<u8> {
    let body = postcard::to_stdvec(req).unwrap();
    let mut f = (body.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(&body);
    f
}

fn refusal(r: &Response) -> Refusal {
    match r {
        Response::Refused { reason, .. } => *reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let owner = client(1).await;
    let stranger = client(2).await;
    let allowed: HashSet<_> = [owner.id()].into();
    let node = node(dir.path(), 1 << 20, Admission::Allow(allowed)).await;
    let conn = connect(&owner, &node).await;

    // Garbage that is not a request.
    let r = raw(&conn, &[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]).await;
    assert_eq!(refusal(&r), Refusal::BadRequest);
    // A frame announcing 1 MiB: refused before reading it.
    let r = raw(&conn, &(1u32 << 20).to_le_bytes()).await;
    assert_eq!(refusal(&r), Refusal::BadRequest);
    assert!(
        matches!(&r, Response::Refused { message, .. } if message.contains("limit")),
        "{r:?}"
    );
    // Too many hashes.
    let many = Request::Stat {
        hashes: vec![[0u8; 32]; proto::MAX_HASHES + 1],
    };
    assert_eq!(
        refusal(&raw(&conn, &frame(&many)).await),
        Refusal::BadRequest
    );
    // More than the capacity: refused at once, with the free space in the message.
    let big = frame(&Request::Store { size: 2 << 20 });
    let r = raw(&conn, &big).await;
    assert_eq!(refusal(&r), Refusal::NoSpace);
    assert!(
        matches!(&r, Response::Refused { message, .. } if message.contains("free")),
        "{r:?}"
    );
    // Fewer bytes than announced.
    let mut short = frame(&Request::Store { size: 1000 });
    short.extend_from_slice(&[7u8; 10]);
    assert_eq!(refusal(&raw(&conn, &short).await), Refusal::BadRequest);
    // A stranger may not store, and is told how to get access.
    let sconn = connect(&stranger, &node).await;
    let mut store = frame(&Request::Store { size: 3 });
    store.extend_from_slice(b"abc");
    let r = raw(&sconn, &store).await;
    assert_eq!(refusal(&r), Refusal::Unauthorized);
    assert!(
        matches!(&r, Response::Refused { message, .. } if message.contains("--allow")),
        "{r:?}"
    );
    // ... but may ask for space (reads are open).
    assert!(matches!(
        raw(&sconn, &frame(&Request::Stat { hashes: vec![] })).await,
        Response::Stat { .. }
    ));

    // Nothing of the above was kept.
    assert_eq!(node.store().used(), 0);
    assert!(node.store().held().unwrap().is_empty());

    // A good store still works, and its hash is the BLAKE3 of the bytes.
    let r = raw(&conn, &store).await;
    assert_eq!(
        r,
        Response::Stored {
            hash: *blake3::hash(b"abc").as_bytes(),
            size: 3,
            new_pin: true,
        }
    );
    assert_eq!(node.store().used(), 3);
    // The same bytes again: stored, but the pin is not new.
    assert!(matches!(
        raw(&conn, &store).await,
        Response::Stored { new_pin: false, .. }
    ));
    assert_eq!(node.store().used(), 3);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pins_belong_to_their_owners_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let alice = client(3).await;
    let bob = client(4).await;
    let node1 = node(dir.path(), 1 << 20, Admission::Open).await;
    let (ca, cb) = (connect(&alice, &node1).await, connect(&bob, &node1).await);
    let mut store = frame(&Request::Store { size: 5 });
    store.extend_from_slice(b"hello");
    let hash = Hash::of(b"hello");
    assert!(matches!(raw(&ca, &store).await, Response::Stored { .. }));
    // Bob pins what is held, and learns what is not.
    let absent = Hash::of(b"absent");
    let r = raw(
        &cb,
        &frame(&Request::Pin {
            hashes: vec![*hash.as_bytes(), *absent.as_bytes()],
        }),
    )
    .await;
    assert_eq!(
        r,
        Response::Pinned {
            missing: vec![*absent.as_bytes()]
        }
    );
    let mut owners = node1.store().owners_of(&hash).unwrap();
    owners.sort();
    let mut expected = vec![alice.id(), bob.id()];
    expected.sort();
    assert_eq!(owners, expected);
    // Alice unpins: Bob's pin stays.
    assert_eq!(
        raw(
            &ca,
            &frame(&Request::Unpin {
                hashes: vec![*hash.as_bytes()]
            })
        )
        .await,
        Response::Unpinned
    );
    assert_eq!(node1.store().owners_of(&hash).unwrap(), vec![bob.id()]);
    node1.shutdown().await;

    // After a restart the blob, its size and Bob's pin are still there.
    let node2 = node(dir.path(), 1 << 20, Admission::Open).await;
    assert_eq!(node2.store().owners_of(&hash).unwrap(), vec![bob.id()]);
    assert_eq!(node2.store().used(), 5);
    let cb2 = connect(&bob, &node2).await;
    let r = raw(
        &cb2,
        &frame(&Request::Stat {
            hashes: vec![*hash.as_bytes(), *absent.as_bytes()],
        }),
    )
    .await;
    assert!(matches!(r, Response::Stat { held, .. } if held == vec![true, false]));
    node2.shutdown().await;
}
