//! Name records as Mosaic reads them from the DHT and from peers: a signed record
//! (mosaic-wire `record.rs`, postcard inside `HoldName` and `Found::Record`) and the
//! value it carries, public or sealed (mosaic-codec `name.rs`, `Pointer`).
//!
//! Checks, for any bytes: no panic; a decoded record round-trips through postcard, and
//! verifying it answers yes or no; a value that
//! decodes names a clean path and encodes to exactly the same bytes (one value per
//! pointer, so a republished record is the one signed); a sealed value is refused
//! without its read key; the bytes sealed under the right read key (as a publisher
//! would) are never mistaken for a wrong key, and the pointer they open to seals back
//! to them; a record signed over the bytes verifies, and no longer does under another
//! sequence number.
#![no_main]

use std::sync::LazyLock;

use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305, XNonce};
use libfuzzer_sys::fuzz_target;
use mosaic_codec::name::{MAX_VALUE, NameError, NameKey, Pointer, ReadKey};
use mosaic_wire::record::{SignedRecord, SigningKey};

/// The seed corpus's name: its secret key's public half, and its read key. Seeds
/// sealed under it open, so the fuzzer starts past the tag.
const SEED_SECRET: [u8; 32] = [9; 32];
/// Nonce of the values this target seals itself.
const NONCE: [u8; 24] = [3; 24];

/// The seed name's keys, derived once (a key pair costs a scalar multiplication).
static KEYS: LazyLock<(SigningKey, NameKey, ReadKey)> = LazyLock::new(|| {
    let signer = SigningKey::from_bytes(&SEED_SECRET);
    let name = NameKey(signer.verifying_key().to_bytes());
    (signer, name, ReadKey::of_secret(&SEED_SECRET))
});

fuzz_target!(|data: &[u8]| {
    let (signer, name, read) = &*KEYS;

    // A record as a peer sends it.
    if let Ok(record) = postcard::from_bytes::<SignedRecord>(data) {
        let bytes = postcard::to_stdvec(&record).expect("a decoded record encodes");
        assert_eq!(
            postcard::from_bytes::<SignedRecord>(&bytes).as_ref(),
            Ok(&record)
        );
        if record.verify().is_ok() {
            assert!(record.value.len() <= MAX_VALUE);
        }
    }

    // The bytes as a record's value.
    let _ = check_value(data, name, read);

    // The bytes as the plaintext of a sealed value, sealed as a publisher seals it.
    let mut sealed_body = data.to_vec();
    let mut aad = b"mosaic name v1".to_vec();
    aad.extend_from_slice(&name.0);
    let tag = XChaCha20Poly1305::new(read.as_bytes().into())
        .encrypt_inout_detached(
            &XNonce::from(NONCE),
            &aad,
            sealed_body.as_mut_slice().into(),
        )
        .expect("sealing a short value");
    let value = [&[1u8, 1][..], &NONCE, &sealed_body, &tag].concat();
    let opened = check_value(&value, name, read);
    if value.len() <= MAX_VALUE {
        assert!(
            !matches!(opened, Err(NameError::WrongKey)),
            "a value sealed under the read key did not open"
        );
    }

    // The bytes signed as a record's value.
    let (seq, value) = match data.split_first_chunk::<8>() {
        Some((seq, rest)) => (i64::from_le_bytes(*seq), rest),
        None => (0, data),
    };
    match SignedRecord::sign(signer, seq, value.to_vec()) {
        Ok(record) => {
            assert!(value.len() <= MAX_VALUE);
            record.verify().expect("a signed record verifies");
            assert_eq!(record.name(), *name);
            let mut altered = record;
            altered.seq = seq.wrapping_add(1);
            assert!(
                altered.verify().is_err(),
                "another sequence number verified"
            );
        }
        Err(_) => assert!(value.len() > MAX_VALUE),
    }
});

/// Decodes `value` without and with the read key; whatever decodes must encode back to
/// `value` exactly. Returns the keyed decode's result.
fn check_value(value: &[u8], name: &NameKey, read: &ReadKey) -> Result<Pointer, NameError> {
    let sealed = Pointer::is_sealed(value);
    match Pointer::decode(value, name, None) {
        Ok(p) => {
            assert!(!sealed);
            let again = p
                .encode(name, None, NONCE)
                .expect("a decoded pointer encodes");
            assert_eq!(again, value, "public value not canonical");
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            if sealed && value.first() == Some(&1) && value.len() <= MAX_VALUE {
                assert_eq!(e, NameError::Sealed);
            }
        }
    }
    let keyed = Pointer::decode(value, name, Some(read));
    if let Ok(p) = &keyed {
        let nonce: [u8; 24] = if sealed {
            value[2..26]
                .try_into()
                .expect("a sealed value holds its nonce")
        } else {
            NONCE
        };
        let again = p.encode(name, sealed.then_some(read), nonce);
        assert_eq!(again.as_deref(), Ok(value), "value not canonical");
    }
    keyed
}
