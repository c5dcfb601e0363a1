//! Writes the seed corpora (`fuzz/corpus/<target>/`): small valid inputs made by the
//! project's own encoders, and edge cases, so each target starts from the formats'
//! shapes rather than from nothing. Deterministic: running it again rewrites the same
//! files (keys and nonces are fixed), so `git status` shows what a format change did.
//!
//! ```text
//! cargo test --manifest-path fuzz/Cargo.toml --lib seeds -- --ignored
//! ```
//!
//! Keys shared with the targets: private manifests are sealed with the convergent key
//! of the empty file under secret `[7; 32]` (manifest.rs; a convergent key's salt is
//! derived from it, another key's is random), names use the secret `[9; 32]`
//! (name_record.rs), exports the passphrase "correct horse" (export_file.rs).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, UNIX_EPOCH},
};

use mosaic_codec::{
    Access, Cap, ConvergenceSecret, FileKey, Hash, Manifest, Metadata, Params, PublicId, ReadCap,
    encode,
    name::{NameKey, Pointer, ReadKey, SealedName},
};
use mosaic_wire::{
    addr::PeerAddr,
    proto::{
        BlobPins, Found, HealthStats, Lookup, NodeStatus, Refusal, RepairReport, Request, Response,
    },
    record::{SignedRecord, SigningKey},
    relay::RelayInfo,
};

use crate::{
    cli_export::{Bundle, Exported, Header, Kind, Record, seal_with, secret_to_hex},
    client_dir::{Directory, Entry},
};

/// The corpus directory of `target`, emptied.
fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    dir
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

/// Deterministic bytes (xorshift), for plaintexts and the round trip's inputs.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn metadata() -> Metadata {
    Metadata {
        name: Some("clip.mp4".into()),
        media_type: Some("video/mp4".into()),
        modified: Some(UNIX_EPOCH + Duration::new(1_763_683_200, 5)),
    }
}

fn manifest(params: Params, access: &Access, meta: &Metadata, len: usize) -> Manifest {
    let plain = bytes(len, len as u64);
    let mut columns = vec![Vec::new(); params.columns()];
    encode(params, access, meta, len as u64, &plain[..], &mut columns).expect("encode a seed")
}

fn read_cap() -> ReadCap {
    ReadCap {
        id: Hash::of(b"manifest"),
        key: FileKey::from_bytes([7; 32]),
    }
}

fn public_id(n: u8) -> PublicId {
    PublicId { id: Hash::of(&[n]) }
}

fn name_signer() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn name_key() -> NameKey {
    NameKey(name_signer().verifying_key().to_bytes())
}

fn relay(node: bool, pin: bool) -> RelayInfo {
    let id = iroh_id();
    let text = format!(
        "{}https://relay.example.org:3340{}",
        if node {
            format!("{id}@")
        } else {
            String::new()
        },
        if pin {
            format!("#{}", "ab".repeat(32))
        } else {
            String::new()
        }
    );
    text.parse().expect("a relay text")
}

/// A node id's text form: the public key of a fixed secret, as an `EndpointId` prints.
fn iroh_id() -> String {
    let key = SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes();
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn caps() {
    let dir = corpus("caps");
    let cap = read_cap().to_string();
    let id = public_id(1).to_string();
    let sealed = SealedName {
        key: name_key(),
        read: ReadKey::of_secret(&[9; 32]),
    };
    write(&dir, "readcap", &cap);
    write(
        &dir,
        "readcap-upper-padded",
        format!("  {}\n", cap.to_uppercase()),
    );
    write(&dir, "public-id", &id);
    write(&dir, "public-id-cut", &id[..id.len() - 4]);
    write(&dir, "readcap-v2", format!("mr2{}", &cap[3..]));
    write(&dir, "name", name_key().to_string());
    write(&dir, "private-name", sealed.to_string());
    write(&dir, "hash-hex", Hash::of(b"x").to_hex());
    write(&dir, "url-fragment", format!("{id}#frag"));
    write(&dir, "empty", "");
}

fn manifests() {
    let dir = corpus("manifest");
    let small = Params::new(4096, 3, 2).expect("params");
    let secret = ConvergenceSecret::from_bytes([7; 32]);
    let empty = FileKey::convergent(&secret, small, 0, &[][..]).expect("the empty file");
    let key = Access::Private(empty);
    let m = manifest(small, &Access::Public, &metadata(), 10_000);
    write(&dir, "public-3-2", m.as_bytes());
    let m = manifest(small, &key, &metadata(), 10_000);
    write(&dir, "private-3-2", m.as_bytes());
    let m = manifest(small, &Access::Public, &Metadata::default(), 0);
    write(&dir, "public-empty-file", m.as_bytes());
    let wide = Params::new(1 << 20, 10, 4).expect("params");
    let m = manifest(wide, &key, &Metadata::default(), 1);
    write(&dir, "private-10-4-one-byte", m.as_bytes());
    let long_name = Metadata {
        name: Some("n".repeat(300)),
        media_type: Some("text/plain; charset=utf-8".into()),
        modified: Some(UNIX_EPOCH - Duration::new(5, 1)),
    };
    let m = manifest(small, &Access::Public, &long_name, 4096);
    write(&dir, "public-long-name-before-epoch", m.as_bytes());
}

fn dir_indexes() {
    let dir = corpus("dir_index");
    let mut d = Directory::new();
    for (i, path) in [
        "index.html",
        "css/site.css",
        "css/img/a.png",
        "docs/index.html",
    ]
    .iter()
    .enumerate()
    {
        let entry = Entry {
            id: public_id(i as u8),
            size: 1000 * i as u64,
        };
        d.insert(path, entry).expect("a valid path");
    }
    write(&dir, "site", d.to_bytes());
    write(&dir, "empty", Directory::new().to_bytes());
    let mut one = Directory::new();
    one.insert(
        "ünïcode/名前.txt",
        Entry {
            id: public_id(9),
            size: u64::MAX,
        },
    )
    .expect("a valid path");
    write(&dir, "unicode-max-size", one.to_bytes());
    write(
        &dir,
        "file-and-dir",
        format!(
            r#"{{"mosaic_directory":1,"entries":[{{"path":"a","id":"{0}","size":1}},{{"path":"a/b","id":"{0}","size":2}}]}}"#,
            public_id(1)
        ),
    );
    write(&dir, "version-2", r#"{"mosaic_directory":2,"entries":[]}"#);
}

fn postcard<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("a seed message encodes")
}

fn signed_record() -> SignedRecord {
    let pointer = Pointer {
        target: Cap::Public(public_id(1)),
        path: "docs/".into(),
    };
    let value = pointer
        .encode(&name_key(), None, [0; 24])
        .expect("a public pointer");
    SignedRecord::sign(&name_signer(), 7, value).expect("a short value")
}

fn proto() {
    let dir = corpus("proto");
    let h = |n: u8| *Hash::of(&[n]).as_bytes();
    let requests = [
        ("store", Request::Store { size: 1 << 20 }),
        (
            "pin",
            Request::Pin {
                hashes: vec![h(1), h(2)],
            },
        ),
        ("unpin", Request::Unpin { hashes: vec![h(1)] }),
        ("stat", Request::Stat { hashes: vec![] }),
        ("status", Request::Status { hashes: vec![h(3)] }),
        (
            "adopt",
            Request::Adopt {
                file: h(4),
                column: Some(3),
                owners: vec![h(5)],
                size: 4096,
            },
        ),
        (
            "adopt-manifest",
            Request::Adopt {
                file: h(4),
                column: None,
                owners: vec![],
                size: 300,
            },
        ),
        ("repair", Request::Repair { file: h(6) }),
        ("lookup-providers", Request::Lookup(Lookup::Providers(h(7)))),
        ("lookup-nodes", Request::Lookup(Lookup::StorageNodes)),
        ("lookup-address", Request::Lookup(Lookup::Address(h(8)))),
        ("lookup-name", Request::Lookup(Lookup::Name(h(9)))),
        (
            "hold-name",
            Request::HoldName {
                record: signed_record(),
                file: h(1),
            },
        ),
    ];
    for (name, r) in requests {
        write(&dir, &format!("request-{name}"), postcard(&r));
    }
    let status = NodeStatus {
        capacity: 1 << 40,
        used: 1 << 30,
        collectable: 1 << 20,
        gc_high: 1 << 39,
        blobs: 12,
        pinned_by_you: 4096,
        quota: Some(1 << 32),
        announce_backlog: 3,
        announce_ok: true,
        version: "0.1.0".into(),
        blobs_asked: vec![BlobPins {
            held: true,
            yours: false,
            owners: 2,
        }],
        health: HealthStats {
            files: 5,
            repairs_done: 1,
            ..HealthStats::default()
        },
    };
    let responses = [
        (
            "stored",
            Response::Stored {
                hash: h(1),
                size: 10,
                new_pin: true,
            },
        ),
        (
            "pinned",
            Response::Pinned {
                missing: vec![h(2)],
            },
        ),
        ("unpinned", Response::Unpinned),
        (
            "stat",
            Response::Stat {
                capacity: 100,
                used: 50,
                held: vec![true, false],
            },
        ),
        ("status", Response::Status(status)),
        (
            "repaired",
            Response::Repaired(RepairReport {
                columns: 5,
                missing: vec![1, 4],
                placed: vec![(1, h(3))],
                message: "placed 1 of 2".into(),
            }),
        ),
        ("found-ids", Response::Found(Found::Ids(vec![h(1), h(2)]))),
        (
            "found-address",
            Response::Found(Found::Address(PeerAddr {
                direct: vec![SocketAddr::from(([10, 0, 0, 1], 4919))],
                relay: Some(relay(true, true)),
            })),
        ),
        (
            "found-record",
            Response::Found(Found::Record(Some(signed_record()))),
        ),
        ("found-no-record", Response::Found(Found::Record(None))),
        ("name-held", Response::NameHeld { published: true }),
        (
            "refused",
            Response::Refused {
                reason: Refusal::BadRequest,
                message: "too many hashes".into(),
            },
        ),
    ];
    for (name, r) in responses {
        write(&dir, &format!("response-{name}"), postcard(&r));
    }
}

fn name_records() {
    let dir = corpus("name_record");
    let name = name_key();
    let read = ReadKey::of_secret(&[9; 32]);
    let record = signed_record();
    write(&dir, "signed-record", postcard(&record));
    write(&dir, "public-value", &record.value);
    let private = Pointer {
        target: Cap::Read(read_cap()),
        path: "a/b.txt".into(),
    };
    let sealed = private
        .encode(&name, Some(&read), [5; 24])
        .expect("a sealed pointer");
    write(&dir, "sealed-value", &sealed);
    let sealed_record = SignedRecord::sign(&name_signer(), i64::MAX, sealed).expect("short");
    write(&dir, "signed-sealed-record", postcard(&sealed_record));
    // What a sealed value holds once opened: target kind, id, key, path.
    let mut plain = vec![1u8];
    plain.extend_from_slice(read_cap().id.as_bytes());
    plain.extend_from_slice(read_cap().key.as_bytes());
    plain.extend_from_slice(b"docs/index.html");
    write(&dir, "sealed-plaintext-readcap", &plain);
    let mut plain = vec![0u8];
    plain.extend_from_slice(public_id(2).id.as_bytes());
    write(&dir, "sealed-plaintext-id", &plain);
    write(
        &dir,
        "unclean-path",
        [&[1u8, 0][..], &[0; 32], b"a/../b"].concat(),
    );
}

fn addr_records() {
    let dir = corpus("addr_record");
    let full = PeerAddr {
        direct: vec![
            SocketAddr::from(([192, 0, 2, 1], 4919)),
            SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 4919)),
        ],
        relay: Some(relay(true, true)),
    };
    write(&dir, "record-direct-and-relay", full.record_value());
    let relay_only = PeerAddr {
        direct: vec![],
        relay: Some(relay(false, false)),
    };
    write(&dir, "record-relay-only", relay_only.record_value());
    write(&dir, "record-empty", PeerAddr::default().record_value());
    // A relay with a web PKI certificate (no pin), naming the node that serves it.
    let mut web_pki = relay(true, true);
    web_pki.pin = None;
    let node_no_pin = PeerAddr {
        direct: vec![SocketAddr::from(([198, 51, 100, 7], 4919))],
        relay: Some(web_pki),
    };
    write(&dir, "record-relay-node-no-pin", node_no_pin.record_value());
    for (name, node, pin) in [
        ("relay-text", false, false),
        ("relay-text-pin", false, true),
        ("relay-text-node-pin", true, true),
    ] {
        write(&dir, name, relay(node, pin).to_string());
    }
    write(
        &dir,
        "relay-text-node",
        format!("{}@https://10.0.0.1:3340", iroh_id()),
    );
    write(&dir, "relay-text-ipv6", "http://[::1]:3340");
}

/// A `range` input: length, flags, two numbers, then the raw header (see range.rs).
fn range_input(len: u64, flags: u8, first: u64, last: u64, raw: &str) -> Vec<u8> {
    let mut out = len.to_le_bytes().to_vec();
    out.push(flags);
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(&last.to_le_bytes());
    out.extend_from_slice(raw.as_bytes());
    out
}

fn ranges() {
    let dir = corpus("range");
    let both = 8 | 16;
    for (name, input) in [
        ("first-last", range_input(1000, both, 0, 99, "bytes=0-99")),
        ("open-end", range_input(1000, 8, 900, 0, "bytes=900-")),
        ("suffix", range_input(1000, 16, 0, 100, "bytes=-100")),
        ("past-end", range_input(1000, 8, 1000, 0, "bytes=1000-")),
        ("several", range_input(1000, 0, 0, 0, "bytes=0-1,5-9, 20-")),
        (
            "overflow",
            range_input(
                u64::MAX,
                both,
                u64::MAX - 1,
                u64::MAX,
                "bytes=18446744073709551614-18446744073709551615",
            ),
        ),
        ("if-range-ours", range_input(10, 1 | 2, 0, 0, "bytes=0-4")),
        ("if-range-stale", range_input(10, 1 | 4, 0, 0, "bytes=0-4")),
        ("spaces-case", range_input(50, 1, 0, 0, "BYTES = 10-19 ,")),
        ("empty-file", range_input(0, 1 | 16, 0, 10, "bytes=-10")),
        ("file-name", range_input(5, 1, 0, 0, "résumé \"1\".pdf")),
    ] {
        write(&dir, name, input);
    }
}

fn denylists() {
    let dir = corpus("denylist");
    let text = format!(
        "# takedown 2026-11\n{}\n  {}  # public id\n\n{}\nnot-an-id\n\t{}\r\n",
        Hash::of(b"a").to_hex(),
        public_id(2),
        read_cap(),
        Hash::of(b"b").to_hex().to_uppercase(),
    );
    write(&dir, "every-form", text);
    write(&dir, "one-hash", Hash::of(b"c").to_hex());
    write(&dir, "comment-only", "# nothing yet\n");
}

fn exports() {
    let dir = corpus("export_file");
    let bundle = Bundle {
        version: 1,
        keys: vec![
            Exported {
                name: "default".into(),
                kind: Kind::Identity,
                secret: secret_to_hex(&[1; 32]).to_string(),
            },
            Exported {
                name: "convergence".into(),
                kind: Kind::Convergence,
                secret: secret_to_hex(&[2; 32]).to_string(),
            },
            Exported {
                name: "site".into(),
                kind: Kind::Name,
                secret: secret_to_hex(&[3; 32]).to_string(),
            },
        ],
        files: vec![Record {
            name: "clip.mp4".into(),
            size: 10_000,
            cap: read_cap().to_string(),
            created: 1_763_683_200,
            kind: "file".into(),
            key: "default".into(),
            blobs: vec![Hash::of(b"m").to_hex()],
            nodes: vec![iroh_id()],
        }],
    };
    let json = serde_json::to_vec(&bundle).expect("a bundle prints");
    write(&dir, "bundle-json", &json);
    write(
        &dir,
        "bundle-json-old-record",
        r#"{"version":1,"keys":[],"files":[{"name":"x","size":1,"cap":"mi1","created":0}]}"#,
    );
    // Argon2's cheapest costs, so the target opens it.
    let cheap = Header {
        m_cost: 8,
        t_cost: 1,
        p_cost: 1,
        salt: [4; 16],
        nonce: [5; 24],
    };
    write(
        &dir,
        "sealed-cheap",
        seal_with("correct horse", &cheap, &json).expect("seal"),
    );
    let greedy = Header {
        m_cost: u32::MAX,
        ..cheap.clone()
    };
    let mut file = greedy.to_bytes().to_vec();
    file.extend_from_slice(&[0; 16]);
    write(&dir, "greedy-costs", file);
    write(&dir, "short", b"MOSVLT01");
}

fn roundtrips() {
    let dir = corpus("roundtrip");
    for (i, len) in [16usize, 64, 200, 1000].into_iter().enumerate() {
        write(&dir, &format!("input-{len}"), bytes(len, 100 + i as u64));
    }
}

#[test]
#[ignore = "writes fuzz/corpus: run it after a format change"]
fn write_seeds() {
    caps();
    manifests();
    dir_indexes();
    proto();
    name_records();
    addr_records();
    ranges();
    denylists();
    exports();
    roundtrips();
}
