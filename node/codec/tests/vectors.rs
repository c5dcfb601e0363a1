//! Known-answer vectors for the format, also printed in docs/format.md. If one of these
//! fails, the bytes Mosaic writes changed: that is a new format version, not a fix.

#![allow(clippy::unwrap_used)]

use mosaic_codec::{
    Access, ConvergenceSecret, Decoder, FileKey, Hash, Metadata, Params, PublicId, ReadCap,
    decode_file, encode,
};

/// The vector plaintext: byte i is `(i * 7 + i / 251) mod 256`.
fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn metadata() -> Metadata {
    Metadata {
        name: Some("vector.bin".into()),
        media_type: Some("application/octet-stream".into()),
        modified: Some(std::time::UNIX_EPOCH + std::time::Duration::new(1_763_683_200, 0)),
    }
}

fn vector(access: Access) -> (String, Vec<String>, String) {
    let plain = plaintext(10_000);
    let params = Params::new(4096, 3, 2).unwrap();
    let mut cols = vec![Vec::new(); 5];
    let m = encode(params, &access, &metadata(), 10_000, &plain[..], &mut cols).unwrap();
    let key = match &access {
        Access::Private(k) => Some(k),
        Access::Public => None,
    };
    let mut d = Decoder::new(m.clone(), key).unwrap();
    let mut srcs: Vec<Option<std::io::Cursor<Vec<u8>>>> = cols
        .into_iter()
        .map(|c| Some(std::io::Cursor::new(c)))
        .collect();
    let mut out = Vec::new();
    decode_file(&mut d, &mut srcs, &mut out).unwrap();
    assert_eq!(out, plain);
    let manifest_hex: String = m.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    (
        m.id().to_hex(),
        m.columns().iter().map(|h| h.to_hex()).collect(),
        manifest_hex,
    )
}

#[test]
fn public_vector() {
    let (id, cols, manifest) = vector(Access::Public);
    println!("public id {id}\ncolumns {cols:#?}\nmanifest {manifest}");
    assert_eq!(id, PUBLIC_ID);
    assert_eq!(cols[0], PUBLIC_COLUMN_0);
    assert_eq!(cols[4], PUBLIC_COLUMN_4);
    let text = PublicId {
        id: Hash::from_bytes(hex32(&id)),
    }
    .to_string();
    assert_eq!(text, PUBLIC_TEXT);
}

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn convergent_vector() {
    let secret = ConvergenceSecret::from_bytes([0x42; 32]);
    let params = Params::new(4096, 3, 2).unwrap();
    let plain = plaintext(10_000);
    let key = FileKey::convergent(&secret, params, 10_000, &plain[..]).unwrap();
    let key_hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let (id, cols, manifest) = vector(Access::Private(key));
    println!("key {key_hex}\nid {id}\ncolumns {cols:#?}\nmanifest {manifest}");
    assert_eq!(key_hex, CONVERGENT_KEY);
    assert_eq!(id, CONVERGENT_ID);
    assert_eq!(cols[0], CONVERGENT_COLUMN_0);
    assert_eq!(cols[4], CONVERGENT_COLUMN_4);
    let cap = ReadCap {
        id: Hash::from_bytes(hex32(&id)),
        key: FileKey::from_bytes(hex32(&key_hex)),
    };
    assert_eq!(cap.to_string(), CONVERGENT_READCAP);
    assert_eq!(CONVERGENT_READCAP.parse::<ReadCap>().unwrap(), cap);
}

const PUBLIC_ID: &str = "30a9e548616124cbcf0cf2d77ff04c578c1077ba4ee6722c6ce86e04ac72f043";
const PUBLIC_COLUMN_0: &str = "46811bf785ad1582039c084c0616d1de178561da2ff79f8bd74575ee15eb804f";
const PUBLIC_COLUMN_4: &str = "1cad7371d6aff5ad594b6529cb31c11b830a9d0b3ccd8e72994a5249d60dfa6e";
const CONVERGENT_KEY: &str = "efb440f7f275ba218df8d00cc53429a8b547d97c038214b490884152592c3092";
const CONVERGENT_ID: &str = "ff99192e48caebcbca725c68ba21ac8f3b43759f4cd19bb85ad96f39e1c8fc33";
const CONVERGENT_COLUMN_0: &str =
    "f6ed8fdf9e7c1b96b76de5da8a859e4d27595ee05a1c52cd9f5e28bc6d2c244c";
const CONVERGENT_COLUMN_4: &str =
    "3db19910198807d96715310edd6f308ecefcf0335dcfee287a9421c06e3fe97d";
const PUBLIC_TEXT: &str = "mi1gcu6ksdbmesmxtym6llx74cmk6gba552j3theldm5bxajlds6bbyhuex3y";
const CONVERGENT_READCAP: &str = "mr176mrslsizlv4xstslruluinmr45ug5m7jtizxoc23fxttyoi7qz67nca67zhlorbrx4nadgfgqu2rnkh3f6ahaquwsiiqqkslewdbeux55h3c";
