//! The CLI's export file (`cli/src/vault/format.rs`): what `mosaic import` and `mosaic
//! key import` read from a file a user was handed, and the JSON bundle of keys and
//! keyring entries inside it.
//!
//! Checks, for any bytes as a file: no panic; the header is refused, or its costs are
//! within the limits and it prints back as the file's first bytes, before any key is
//! derived; when its costs are cheap enough to derive here, opening ends in a wrong
//! passphrase or a plaintext that seals back to the very file. For any bytes as the
//! bundle: it parses or not without panic, and what parses prints as JSON that parses
//! to the same bundle; a key's secret reads as 32 bytes exactly when it is 64 hex
//! digits, and prints back as them. For any bytes as a plaintext: sealed under a salt
//! and nonce from the input (at argon2's cheapest costs), it opens to itself, and with
//! any one byte changed it does not open.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic_fuzz::cli_export::{
    Bundle, HEADER_LEN, Header, MAX_M_COST_KIB, MAX_P_COST, MAX_T_COST, VaultError, open,
    seal_with, secret_from_hex, secret_to_hex,
};

/// The passphrase of the seed corpus's files.
const PASS: &str = "correct horse";
/// Costs (KiB, passes) at or below which this target derives keys: a few ms at most.
const CHEAP: (u32, u32) = (256, 2);

fuzz_target!(|data: &[u8]| {
    check_file(data);
    check_bundle(data);
    check_seal(data);
});

fn check_file(data: &[u8]) {
    match Header::parse(data) {
        Ok(h) => {
            assert!(h.m_cost <= MAX_M_COST_KIB && h.t_cost <= MAX_T_COST);
            assert!((1..=MAX_P_COST).contains(&h.p_cost));
            assert_eq!(&h.to_bytes()[..], &data[..HEADER_LEN]);
            if h.m_cost <= CHEAP.0 && h.t_cost <= CHEAP.1 {
                match open(PASS, data) {
                    Ok(plain) => {
                        let again = seal_with(PASS, &h, &plain).expect("it sealed once");
                        assert_eq!(again, data, "an opened file seals back to itself");
                    }
                    Err(VaultError::WrongPassphrase | VaultError::Derivation(_)) => {}
                    Err(e) => panic!("a well-formed header failed to open with {e:?}"),
                }
            }
        }
        Err(e) => {
            assert!(matches!(
                e,
                VaultError::NotAnExport | VaultError::Costs { .. }
            ));
            assert_eq!(open(PASS, data).err(), Some(e));
        }
    }
}

fn check_bundle(data: &[u8]) {
    let Ok(bundle) = serde_json::from_slice::<Bundle>(data) else {
        return;
    };
    let json = serde_json::to_vec(&bundle).expect("a bundle prints");
    let again: Bundle = serde_json::from_slice(&json).expect("a printed bundle parses");
    assert_eq!(serde_json::to_vec(&again).expect("prints"), json);
    assert_eq!(again.files, bundle.files);
    for key in &bundle.keys {
        let s = &key.secret;
        let hex = s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        match secret_from_hex(s) {
            Some(secret) => {
                assert!(hex);
                assert_eq!(*secret_to_hex(&secret), s.to_ascii_lowercase());
            }
            None => assert!(!hex, "{s:?} is hex but was refused"),
        }
    }
}

fn check_seal(data: &[u8]) {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    for (i, b) in data.iter().take(40).enumerate() {
        if i < 16 {
            salt[i] = *b;
        } else {
            nonce[i - 16] = *b;
        }
    }
    let header = Header {
        m_cost: 8,
        t_cost: 1,
        p_cost: 1,
        salt,
        nonce,
    };
    let sealed = seal_with(PASS, &header, data).expect("argon2's cheapest costs");
    assert_eq!(sealed.len(), HEADER_LEN + data.len() + 16);
    assert_eq!(Header::parse(&sealed).as_ref(), Ok(&header));
    assert_eq!(&open(PASS, &sealed).expect("opens")[..], data);
    let at = data.first().map_or(0, |&b| b as usize * 7919) % sealed.len();
    // Not a cost byte: a raised cost is refused or derives another key all the same,
    // but may cost a 64 MiB derivation first.
    let at = if (8..20).contains(&at) { at + 12 } else { at };
    let mut altered = sealed;
    altered[at] ^= 0x01;
    assert!(
        open(PASS, &altered).is_err(),
        "changed byte {at} still opened"
    );
}
