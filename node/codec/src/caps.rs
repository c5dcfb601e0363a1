//! Text forms of capabilities: a [`ReadCap`] (file id + key: read a private file) and a
//! [`PublicId`] (file id only: read a public file, or fetch, pin, verify and repair any
//! file without learning its content).
//!
//! `mr1…` and `mi1…`: a kind letter, a version digit, then unpadded base32 (RFC 4648
//! alphabet, lowercase) of the payload followed by a 4-byte BLAKE3 checksum, so a typo is
//! caught rather than naming another file. Only `[a-z0-9]`: safe in URLs, paths and
//! shells, and a double click selects it whole. Parsing accepts upper case too (base32 is
//! case-insensitive) and trims surrounding whitespace.

use std::{fmt, str::FromStr, sync::LazyLock};

use data_encoding::{Encoding, Specification};

use super::{hash::Hash, seal::FileKey};

const READCAP_PREFIX: &str = "mr1";
const PUBLIC_ID_PREFIX: &str = "mi1";
const CHECKSUM_LEN: usize = 4;

static BASE32: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    spec.translate.from.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    spec.translate.to.push_str("abcdefghijklmnopqrstuvwxyz");
    spec.encoding().expect("a valid base32 specification")
});

/// A capability to read one private file: its id and its key. Whoever holds it can read
/// the file; treat it like a password.
#[derive(Clone, PartialEq, Eq)]
pub struct ReadCap {
    /// The file id (hash of the manifest).
    pub id: Hash,
    /// The file key.
    pub key: FileKey,
}

impl fmt::Debug for ReadCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadCap")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The id of a file, in text. Enough to read a public file; for a private file, enough
/// to fetch, pin, verify and repair it, but not to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicId {
    /// The file id (hash of the manifest).
    pub id: Hash,
}

/// Either text form, as a user may paste either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cap {
    /// A readcap, `mr1…`.
    Read(ReadCap),
    /// A public id, `mi1…`.
    Public(PublicId),
}

impl Cap {
    /// The file id either form names.
    pub fn id(&self) -> Hash {
        match self {
            Cap::Read(c) => c.id,
            Cap::Public(p) => p.id,
        }
    }
    /// The key, for a readcap.
    pub fn key(&self) -> Option<&FileKey> {
        match self {
            Cap::Read(c) => Some(&c.key),
            Cap::Public(_) => None,
        }
    }
}

/// Why a string is not a capability. Every variant says what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapError {
    /// Nothing to parse.
    #[error("the capability is empty")]
    Empty,
    /// Not a Mosaic capability at all.
    #[error(
        "{found:?} is not a Mosaic capability: a readcap starts with \"mr1\", a public id with \"mi1\""
    )]
    Prefix {
        /// The first characters found.
        found: String,
    },
    /// A Mosaic capability of a newer version.
    #[error("this is a version {version} {kind}; this build reads version 1: upgrade Mosaic")]
    Version {
        /// "readcap" or "public id".
        kind: &'static str,
        /// The version character found.
        version: char,
    },
    /// A valid capability of the other kind.
    #[error("expected a {expected}, but this is a {found}")]
    Kind {
        /// The kind asked for.
        expected: &'static str,
        /// The kind given.
        found: &'static str,
    },
    /// Truncated or extended.
    #[error(
        "a {kind} is {expected} characters long, this one is {found}: was it cut off when copied?"
    )]
    Length {
        /// "readcap" or "public id".
        kind: &'static str,
        /// The right length.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A character outside the alphabet.
    #[error(
        "character {character:?} at position {position} is not allowed in a {kind} (only a-z and 2-7 follow the prefix)"
    )]
    Character {
        /// "readcap" or "public id".
        kind: &'static str,
        /// 0-based character position in the whole string.
        position: usize,
        /// The offending character.
        character: char,
    },
    /// The checksum does not match: a typo.
    #[error("the {kind}'s checksum does not match: it was mistyped or altered")]
    Checksum {
        /// "readcap" or "public id".
        kind: &'static str,
    },
}

const READCAP: &str = "readcap";
const PUBLIC_ID: &str = "public id";

pub(crate) fn checksum(prefix: &str, payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(prefix.as_bytes());
    h.update(payload);
    h.finalize().as_bytes()[..CHECKSUM_LEN]
        .try_into()
        .expect("4 of 32 bytes")
}

pub(crate) fn encode(prefix: &str, payload: &[u8]) -> String {
    let mut bytes = payload.to_vec();
    bytes.extend_from_slice(&checksum(prefix, payload));
    format!("{prefix}{}", BASE32.encode(&bytes))
}

/// Decodes `s` (prefix already checked) into a payload of `N` bytes.
pub(crate) fn decode<const N: usize>(
    s: &str,
    prefix: &str,
    kind: &'static str,
) -> Result<[u8; N], CapError> {
    let body = &s[prefix.len()..];
    // Characters first: a pasted URL fragment shows as the character that does not
    // belong, rather than as a wrong length.
    if let Some((i, c)) = body.char_indices().find(|(_, c)| !is_symbol(*c)) {
        return Err(CapError::Character {
            kind,
            position: prefix.len() + i,
            character: c,
        });
    }
    let expected = prefix.len() + BASE32.encode_len(N + CHECKSUM_LEN);
    if s.len() != expected {
        return Err(CapError::Length {
            kind,
            expected,
            found: s.len(),
        });
    }
    // Only ASCII symbols remain, so the one possible failure is non-zero trailing bits
    // in the last character: a typo, like a checksum mismatch.
    let bytes = BASE32
        .decode(body.as_bytes())
        .map_err(|_| CapError::Checksum { kind })?;
    let (payload, sum) = bytes.split_at(N);
    if sum != checksum(prefix, payload) {
        return Err(CapError::Checksum { kind });
    }
    Ok(payload.try_into().expect("N bytes"))
}

pub(crate) fn is_symbol(c: char) -> bool {
    c.is_ascii_alphabetic() || ('2'..='7').contains(&c)
}

impl fmt::Display for ReadCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut payload = [0u8; 64];
        payload[..32].copy_from_slice(self.id.as_bytes());
        payload[32..].copy_from_slice(self.key.as_bytes());
        let s = encode(READCAP_PREFIX, &payload);
        zeroize::Zeroize::zeroize(&mut payload);
        f.write_str(&s)
    }
}

impl fmt::Display for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(PUBLIC_ID_PREFIX, self.id.as_bytes()))
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cap::Read(c) => c.fmt(f),
            Cap::Public(p) => p.fmt(f),
        }
    }
}

impl FromStr for Cap {
    type Err = CapError;

    fn from_str(s: &str) -> Result<Self, CapError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(CapError::Empty);
        }
        let lower: String = s.chars().take(3).collect::<String>().to_ascii_lowercase();
        let (kind, prefix) = match lower.get(..2) {
            Some("mr") => (READCAP, READCAP_PREFIX),
            Some("mi") => (PUBLIC_ID, PUBLIC_ID_PREFIX),
            _ => return Err(CapError::Prefix { found: lower }),
        };
        match lower.chars().nth(2) {
            Some('1') => {}
            Some(v) if v.is_ascii_digit() => return Err(CapError::Version { kind, version: v }),
            _ => return Err(CapError::Prefix { found: lower }),
        }
        // `lower` holds ASCII only here, so byte offsets in `s` match.
        if kind == READCAP {
            let p: [u8; 64] = decode(s, prefix, kind)?;
            let id = Hash::from_bytes(p[..32].try_into().expect("32 bytes"));
            let key = FileKey::from_bytes(p[32..].try_into().expect("32 bytes"));
            Ok(Cap::Read(ReadCap { id, key }))
        } else {
            let p: [u8; 32] = decode(s, prefix, kind)?;
            Ok(Cap::Public(PublicId {
                id: Hash::from_bytes(p),
            }))
        }
    }
}

impl FromStr for ReadCap {
    type Err = CapError;
    fn from_str(s: &str) -> Result<Self, CapError> {
        match s.parse::<Cap>()? {
            Cap::Read(c) => Ok(c),
            Cap::Public(_) => Err(CapError::Kind {
                expected: READCAP,
                found: PUBLIC_ID,
            }),
        }
    }
}

impl FromStr for PublicId {
    type Err = CapError;
    fn from_str(s: &str) -> Result<Self, CapError> {
        match s.parse::<Cap>()? {
            Cap::Public(p) => Ok(p),
            Cap::Read(_) => Err(CapError::Kind {
                expected: PUBLIC_ID,
                found: READCAP,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap() -> ReadCap {
        ReadCap {
            id: Hash::of(b"manifest"),
            key: FileKey::from_bytes([7; 32]),
        }
    }

    #[test]
    fn roundtrip() {
        let c = cap();
        let s = c.to_string();
        assert!(s.starts_with("mr1"));
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(s.parse::<ReadCap>().unwrap(), c);
        assert_eq!(s.to_uppercase().parse::<ReadCap>().unwrap(), c);
        assert_eq!(format!("  {s}\n").parse::<ReadCap>().unwrap(), c);
        let p = PublicId { id: c.id };
        let t = p.to_string();
        assert!(t.starts_with("mi1"));
        assert_eq!(t.parse::<PublicId>().unwrap(), p);
        assert_eq!(t.parse::<Cap>().unwrap().id(), c.id);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let s = cap().to_string();
        assert_eq!("".parse::<Cap>(), Err(CapError::Empty));
        assert!(matches!(
            "hello".parse::<Cap>(),
            Err(CapError::Prefix { .. })
        ));
        assert_eq!(
            format!("mr2{}", &s[3..]).parse::<Cap>(),
            Err(CapError::Version {
                kind: READCAP,
                version: '2'
            })
        );
        assert!(matches!(
            s[..s.len() - 5].parse::<Cap>(),
            Err(CapError::Length { kind: READCAP, found, .. }) if found == s.len() - 5
        ));
        let mut bad = s.clone();
        bad.replace_range(20..21, "0");
        assert_eq!(
            bad.parse::<Cap>(),
            Err(CapError::Character {
                kind: READCAP,
                position: 20,
                character: '0'
            })
        );
        // A substituted letter is caught by the checksum.
        let mut typo = s.clone().into_bytes();
        typo[40] = if typo[40] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(
            typo.parse::<Cap>(),
            Err(CapError::Checksum { kind: READCAP })
        );
        let id = PublicId { id: cap().id }.to_string();
        assert_eq!(
            id.parse::<ReadCap>(),
            Err(CapError::Kind {
                expected: READCAP,
                found: PUBLIC_ID
            })
        );
        // Multi-byte input never panics.
        assert!("mr1é".parse::<Cap>().is_err());
        assert!("é".parse::<Cap>().is_err());
        assert!(format!("mr1{}", "é".repeat(60)).parse::<Cap>().is_err());
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let s = cap().to_string();
        for i in 3..s.len() {
            for c in ['a', 'q', '7'] {
                let mut t = s.clone().into_bytes();
                if t[i] == c as u8 {
                    continue;
                }
                t[i] = c as u8;
                let t = String::from_utf8(t).unwrap();
                assert!(t.parse::<Cap>().is_err(), "change at {i} to {c} accepted");
            }
        }
    }
}
