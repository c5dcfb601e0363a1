//! Text caps and ids as users paste them: readcaps `mr1…`, public ids `mi1…`, names
//! `mn1…`, private names `ms1…` (mosaic-codec `caps.rs`, `name.rs`) and hex hashes.
//!
//! Checks, for any text: no panic; whatever parses prints back as the trimmed input in
//! lower case (one text per value) and parses again to the same value; the typed
//! parsers (`ReadCap`, `PublicId`, `NameKey`) agree with the general ones; a cap is
//! never a name nor the other way round; an error that points at a character or a
//! length points at what is there. And for any bytes: a readcap, public id, name or
//! private name built from them prints as text that parses back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic_codec::{
    Cap, CapError, ErrorKind, FileKey, Hash, PublicId, ReadCap,
    name::{NameError, NameKey, NameRef, ReadKey, SealedName},
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_cap(&text);
    check_name(&text);
    check_hash(&text);
    check_printed(data);
});

fn check_cap(s: &str) {
    let trimmed = s.trim();
    match s.parse::<Cap>() {
        Ok(cap) => {
            let printed = cap.to_string();
            assert_eq!(printed, trimmed.to_ascii_lowercase());
            assert_eq!(printed.parse::<Cap>().as_ref(), Ok(&cap));
            match &cap {
                Cap::Read(c) => {
                    assert_eq!(s.parse::<ReadCap>().as_ref(), Ok(c));
                    assert!(matches!(s.parse::<PublicId>(), Err(CapError::Kind { .. })));
                }
                Cap::Public(p) => {
                    assert_eq!(s.parse::<PublicId>(), Ok(*p));
                    assert!(cap.key().is_none());
                    assert!(matches!(s.parse::<ReadCap>(), Err(CapError::Kind { .. })));
                }
            }
            assert!(s.parse::<NameRef>().is_err(), "a cap parsed as a name");
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::BadInput);
            assert!(!e.to_string().is_empty());
            // The typed parsers fail the same way on what is not a cap at all.
            assert_eq!(s.parse::<ReadCap>().err(), Some(e.clone()));
            assert_eq!(s.parse::<PublicId>().err(), Some(e.clone()));
            check_error_points_at_input(&e, trimmed);
        }
    }
}

fn check_name(s: &str) {
    let trimmed = s.trim();
    match s.parse::<NameRef>() {
        Ok(name) => {
            let printed = name.to_string();
            assert_eq!(printed, trimmed.to_ascii_lowercase());
            assert_eq!(printed.parse::<NameRef>().as_ref(), Ok(&name));
            assert_eq!(s.parse::<NameKey>(), Ok(name.key()));
            assert_eq!(
                name.read_key().is_some(),
                matches!(name, NameRef::Sealed(_))
            );
            assert!(s.parse::<Cap>().is_err(), "a name parsed as a cap");
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert_eq!(s.parse::<NameKey>().err(), Some(e.clone()));
            match &e {
                NameError::Text(c) => check_error_points_at_input(c, trimmed),
                NameError::Prefix { .. } => {}
                other => panic!("a name's text failed with {other:?}"),
            }
        }
    }
}

/// A character error names the character at its position; a length error the length.
fn check_error_points_at_input(e: &CapError, trimmed: &str) {
    match e {
        CapError::Character {
            position,
            character,
            ..
        } => {
            let at = trimmed.get(*position..).and_then(|t| t.chars().next());
            assert_eq!(at, Some(*character), "{e}");
        }
        CapError::Length { found, .. } => assert_eq!(*found, trimmed.len(), "{e}"),
        CapError::Empty => assert!(trimmed.is_empty()),
        _ => {}
    }
}

fn check_hash(s: &str) {
    if let Ok(h) = Hash::from_hex(s) {
        assert_eq!(h.to_hex(), s.to_ascii_lowercase());
        assert_eq!(Hash::from_hex(&h.to_string()), Ok(h));
    }
}

/// Values built from raw bytes print as text that parses back to them.
fn check_printed(data: &[u8]) {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    for (i, &byte) in data.iter().take(64).enumerate() {
        if i < 32 {
            a[i] = byte;
        } else {
            b[i - 32] = byte;
        }
    }
    let read = ReadCap {
        id: Hash::from_bytes(a),
        key: FileKey::from_bytes(b),
    };
    assert_eq!(read.to_string().parse::<ReadCap>(), Ok(read.clone()));
    let public = PublicId {
        id: Hash::from_bytes(b),
    };
    assert_eq!(public.to_string().parse::<PublicId>(), Ok(public));
    let name = NameKey(a);
    assert_eq!(name.to_string().parse::<NameKey>(), Ok(name));
    let sealed = SealedName {
        key: name,
        read: ReadKey::of_secret(&b),
    };
    let text = sealed.to_string();
    assert_eq!(text.parse::<NameRef>(), Ok(NameRef::Sealed(sealed)));
    assert_eq!(
        Hash::from_hex(&Hash::from_bytes(a).to_hex()),
        Ok(Hash::from_bytes(a))
    );
}
