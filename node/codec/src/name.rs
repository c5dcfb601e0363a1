//! Mutable names: what a name's DHT record holds, and the text forms that name a name.
//!
//! A name is an ed25519 key pair. Its holder publishes a BEP 44 mutable item under the
//! public key (salt [`NAME_SALT`]): a signed value and a sequence number that only
//! grows (see `mosaic_wire::record`). This module is the pure part: the value's
//! encoding ([`Pointer`]) and the text forms, so the CLI, the gateway, the nodes and a
//! browser page read records the same way.
//!
//! Text forms (same alphabet and 4-byte BLAKE3 checksum as caps, see [`crate::Cap`]):
//! - `mn1…`: a name's public key ([`NameKey`]). Enough to resolve a public name.
//! - `ms1…`: a private name ([`SealedName`]): the public key and the name's read key.
//!   Its records are sealed: DHT nodes and gateways see that the name exists and when
//!   it changes, not what it points to (the nodes holding the target, told by the
//!   publisher so they keep the record alive, learn which file; never its key).
//!
//! The value (at most [`MAX_VALUE`] bytes, BEP 44's limit):
//! ```text
//! version  1 byte   1
//! kind     1 byte   0 = public, 1 = sealed
//! public:  id 32 bytes ‖ path (UTF-8, the rest)
//! sealed:  nonce 24 bytes ‖ XChaCha20-Poly1305(read key, nonce,
//!              aad = "mosaic name v1" ‖ public key,
//!              plaintext = target kind (0 id, 1 readcap) ‖ id 32 ‖ [key 32] ‖ path)
//! ```
//! The read key is derived from the name's secret key, so the publisher keeps one
//! secret; binding the public key into the associated data stops a sealed value from
//! being replayed under another name.

use std::{fmt, str::FromStr};

use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::Zeroize;

use crate::{
    Cap, CapError, ErrorKind, FileKey, Hash, PublicId, ReadCap,
    caps::{decode, encode},
};

/// The BEP 44 salt of a name's record (separates it from other items under that key).
pub const NAME_SALT: &[u8] = b"mosaic-name-v1";
/// Most bytes a record's value may hold (BEP 44).
pub const MAX_VALUE: usize = 1000;

const NAME_PREFIX: &str = "mn1";
const SEALED_PREFIX: &str = "ms1";
const NAME_KIND: &str = "name";
const SEALED_KIND: &str = "private name";
const READ_KEY_CONTEXT: &str = "mosaic 2026-12-06 v1 name read key";
const AAD_PREFIX: &[u8] = b"mosaic name v1";
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// A name's public key, `mn1…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameKey(pub [u8; 32]);

/// The key that opens a private name's records.
#[derive(Clone, PartialEq, Eq, zeroize::ZeroizeOnDrop)]
pub struct ReadKey([u8; 32]);

impl ReadKey {
    /// The read key of the name whose ed25519 secret key is `secret`.
    pub fn of_secret(secret: &[u8; 32]) -> Self {
        Self(blake3::derive_key(READ_KEY_CONTEXT, secret))
    }
    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ReadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadKey(..)")
    }
}

/// A private name, `ms1…`: the public key and the read key. Treat it like a readcap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedName {
    /// The name.
    pub key: NameKey,
    /// What opens its records.
    pub read: ReadKey,
}

/// Either text form of a name, as a user may paste either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameRef {
    /// `mn1…`.
    Public(NameKey),
    /// `ms1…`.
    Sealed(SealedName),
}

impl NameRef {
    /// The name's public key.
    pub fn key(&self) -> NameKey {
        match self {
            NameRef::Public(k) => *k,
            NameRef::Sealed(s) => s.key,
        }
    }
    /// The read key, for a private name.
    pub fn read_key(&self) -> Option<&ReadKey> {
        match self {
            NameRef::Public(_) => None,
            NameRef::Sealed(s) => Some(&s.read),
        }
    }
}

/// What a name points to: a file or directory, and a path inside a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    /// A public id or a readcap.
    pub target: Cap,
    /// A path inside the target directory ("" for the target itself); no leading '/'.
    pub path: String,
}

/// A name or record that cannot be used. Every variant says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The text is not a name.
    #[error(
        "{found:?} is not a Mosaic name: a name starts with \"mn1\", a private name with \"ms1\""
    )]
    Prefix {
        /// The first characters found.
        found: String,
    },
    /// A name-shaped text that is damaged.
    #[error("{0}")]
    Text(CapError),
    /// The value would not fit in a DHT record.
    #[error(
        "the record would be {len} bytes; a DHT record holds at most {max} (BEP 44): point the name at a shorter path"
    )]
    TooLarge {
        /// Bytes it would take.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A readcap may only be published sealed.
    #[error(
        "a readcap is a key: it can only be published under a private name (publish with --private; readers then need the ms1… form)"
    )]
    ReadcapInClear,
    /// A path that is not relative or not clean.
    #[error("{0:?} is not a path inside a directory: use a/b/c, without a leading '/' or '..'")]
    Path(String),
    /// The record is private and no read key was given.
    #[error("this name is private: its target is sealed; resolve it with its ms1… form")]
    Sealed,
    /// The read key does not open the record (or it was altered).
    #[error(
        "the read key does not open this name's record (wrong ms1… form, or the record was altered)"
    )]
    WrongKey,
    /// The value is not a record this version reads.
    #[error("the name's record is malformed or of a newer version ({0}): upgrade Mosaic")]
    Malformed(&'static str),
}

impl NameError {
    /// How the CLI and the gateway report it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            NameError::Sealed | NameError::WrongKey => ErrorKind::Refused,
            NameError::Malformed(_) => ErrorKind::Other,
            _ => ErrorKind::BadInput,
        }
    }
}

impl fmt::Display for NameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(NAME_PREFIX, &self.0))
    }
}

impl fmt::Display for SealedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut payload = [0u8; 64];
        payload[..32].copy_from_slice(&self.key.0);
        payload[32..].copy_from_slice(self.read.as_bytes());
        let s = encode(SEALED_PREFIX, &payload);
        payload.zeroize();
        f.write_str(&s)
    }
}

impl fmt::Display for NameRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameRef::Public(k) => k.fmt(f),
            NameRef::Sealed(s) => s.fmt(f),
        }
    }
}

impl FromStr for NameRef {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let s = s.trim();
        let lower = s.chars().take(3).collect::<String>().to_ascii_lowercase();
        match lower.as_str() {
            NAME_PREFIX => decode::<32>(s, NAME_PREFIX, NAME_KIND)
                .map(|k| NameRef::Public(NameKey(k)))
                .map_err(NameError::Text),
            SEALED_PREFIX => {
                let mut p = decode::<64>(s, SEALED_PREFIX, SEALED_KIND).map_err(NameError::Text)?;
                let key = NameKey(p[..32].try_into().expect("32 bytes"));
                let read = ReadKey(p[32..].try_into().expect("32 bytes"));
                p.zeroize();
                Ok(NameRef::Sealed(SealedName { key, read }))
            }
            "mn2" | "mn3" | "ms2" | "ms3" => Err(NameError::Text(CapError::Version {
                kind: NAME_KIND,
                version: lower.chars().nth(2).unwrap_or('?'),
            })),
            _ => Err(NameError::Prefix { found: lower }),
        }
    }
}

impl FromStr for NameKey {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        s.parse::<NameRef>().map(|n| n.key())
    }
}

/// Checks a path inside a directory: relative, no empty, `.` or `..` parts.
fn check_path(path: &str) -> Result<(), NameError> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let ok = path.is_empty()
        || (!path.starts_with('/')
            && trimmed
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != ".."));
    if ok {
        Ok(())
    } else {
        Err(NameError::Path(path.to_owned()))
    }
}

fn aad(name: &NameKey) -> Vec<u8> {
    [AAD_PREFIX, &name.0].concat()
}

impl Pointer {
    /// The record value for this pointer under `name`: sealed with `read` when given
    /// (required for a readcap), public otherwise. `nonce` must be fresh random bytes
    /// (the caller's CSPRNG: this crate also runs in browsers).
    pub fn encode(
        &self,
        name: &NameKey,
        read: Option<&ReadKey>,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>, NameError> {
        check_path(&self.path)?;
        let mut out = vec![VERSION];
        match read {
            None => {
                let Cap::Public(p) = &self.target else {
                    return Err(NameError::ReadcapInClear);
                };
                out.push(0);
                out.extend_from_slice(p.id.as_bytes());
                out.extend_from_slice(self.path.as_bytes());
            }
            Some(read) => {
                let mut plain = match &self.target {
                    Cap::Public(p) => [&[0u8][..], p.id.as_bytes()].concat(),
                    Cap::Read(c) => [&[1u8][..], c.id.as_bytes(), c.key.as_bytes()].concat(),
                };
                plain.extend_from_slice(self.path.as_bytes());
                let aead = XChaCha20Poly1305::new(read.as_bytes().into());
                let tag = aead
                    .encrypt_inout_detached(
                        &XNonce::from(nonce),
                        &aad(name),
                        plain.as_mut_slice().into(),
                    )
                    .map_err(|_| NameError::Malformed("sealing failed"))?;
                out.push(1);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&plain);
                out.extend_from_slice(&tag);
                plain.zeroize();
            }
        }
        if out.len() > MAX_VALUE {
            return Err(NameError::TooLarge {
                len: out.len(),
                max: MAX_VALUE,
            });
        }
        Ok(out)
    }

    /// Reads a record value of `name`; a sealed one needs `read`.
    pub fn decode(value: &[u8], name: &NameKey, read: Option<&ReadKey>) -> Result<Self, NameError> {
        if value.len() > MAX_VALUE {
            return Err(NameError::Malformed("longer than BEP 44 allows"));
        }
        let (&version, rest) = value.split_first().ok_or(NameError::Malformed("empty"))?;
        if version != VERSION {
            return Err(NameError::Malformed("unknown version"));
        }
        let (&kind, rest) = rest.split_first().ok_or(NameError::Malformed("no kind"))?;
        let (target, path) = match kind {
            0 => {
                if rest.len() < 32 {
                    return Err(NameError::Malformed("short id"));
                }
                let (id, path) = rest.split_at(32);
                let id = Hash::from_bytes(id.try_into().expect("32 bytes"));
                (Cap::Public(PublicId { id }), path.to_vec())
            }
            1 => {
                let read = read.ok_or(NameError::Sealed)?;
                if rest.len() < NONCE_LEN + TAG_LEN {
                    return Err(NameError::Malformed("short sealed value"));
                }
                let (nonce, sealed) = rest.split_at(NONCE_LEN);
                let (body, tag) = sealed.split_at(sealed.len() - TAG_LEN);
                let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
                let tag: [u8; TAG_LEN] = tag.try_into().expect("split at TAG_LEN");
                let mut plain = body.to_vec();
                let aead = XChaCha20Poly1305::new(read.as_bytes().into());
                aead.decrypt_inout_detached(
                    &XNonce::from(nonce),
                    &aad(name),
                    plain.as_mut_slice().into(),
                    &tag.into(),
                )
                .map_err(|_| NameError::WrongKey)?;
                let parsed = Self::open_plain(&plain);
                plain.zeroize();
                parsed?
            }
            _ => return Err(NameError::Malformed("unknown kind")),
        };
        let path = String::from_utf8(path).map_err(|_| NameError::Malformed("path not UTF-8"))?;
        check_path(&path).map_err(|_| NameError::Malformed("unclean path"))?;
        Ok(Self { target, path })
    }

    fn open_plain(plain: &[u8]) -> Result<(Cap, Vec<u8>), NameError> {
        let short = NameError::Malformed("short sealed target");
        let (&kind, rest) = plain.split_first().ok_or(short.clone())?;
        let id = |b: &[u8]| Hash::from_bytes(b.try_into().expect("32 bytes"));
        match kind {
            0 if rest.len() >= 32 => Ok((
                Cap::Public(PublicId {
                    id: id(&rest[..32]),
                }),
                rest[32..].to_vec(),
            )),
            1 if rest.len() >= 64 => Ok((
                Cap::Read(ReadCap {
                    id: id(&rest[..32]),
                    key: FileKey::from_bytes(rest[32..64].try_into().expect("32 bytes")),
                }),
                rest[64..].to_vec(),
            )),
            0 | 1 => Err(short),
            _ => Err(NameError::Malformed("unknown target kind")),
        }
    }

    /// Whether a record value is sealed (without opening it).
    pub fn is_sealed(value: &[u8]) -> bool {
        value.get(1) == Some(&1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> NameKey {
        NameKey([9; 32])
    }

    #[test]
    fn text_forms_round_trip_and_say_what_is_wrong() {
        let k = name();
        let s = k.to_string();
        assert!(s.starts_with("mn1"), "{s}");
        assert_eq!(s.parse::<NameRef>().unwrap(), NameRef::Public(k));
        let sealed = SealedName {
            key: k,
            read: ReadKey::of_secret(&[1; 32]),
        };
        let t = sealed.to_string();
        assert!(t.starts_with("ms1"), "{t}");
        assert_eq!(t.parse::<NameRef>().unwrap(), NameRef::Sealed(sealed));
        assert_eq!(t.parse::<NameKey>().unwrap(), k);
        let cut = &s[..s.len() - 3];
        assert!(matches!(
            cut.parse::<NameRef>(),
            Err(NameError::Text(CapError::Length { .. }))
        ));
        let mut typo = s.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert!(matches!(
            String::from_utf8(typo).unwrap().parse::<NameRef>(),
            Err(NameError::Text(CapError::Checksum { .. }))
        ));
        assert!(matches!(
            "mi1aaaa".parse::<NameRef>(),
            Err(NameError::Prefix { .. })
        ));
    }

    #[test]
    fn public_and_sealed_pointers_round_trip() {
        let id = Hash::of(b"site");
        let public = Pointer {
            target: Cap::Public(PublicId { id }),
            path: "docs/".into(),
        };
        let v = public.encode(&name(), None, [0; 24]).unwrap();
        assert_eq!(v.len(), 2 + 32 + 5);
        assert!(!Pointer::is_sealed(&v));
        assert_eq!(Pointer::decode(&v, &name(), None).unwrap(), public);

        let read = ReadKey::of_secret(&[3; 32]);
        let private = Pointer {
            target: Cap::Read(ReadCap {
                id,
                key: FileKey::from_bytes([4; 32]),
            }),
            path: String::new(),
        };
        assert_eq!(
            private.encode(&name(), None, [0; 24]),
            Err(NameError::ReadcapInClear)
        );
        let v = private.encode(&name(), Some(&read), [7; 24]).unwrap();
        assert!(Pointer::is_sealed(&v));
        // The id and key do not appear in the value.
        assert!(!v.windows(32).any(|w| w == id.as_bytes()));
        assert_eq!(Pointer::decode(&v, &name(), Some(&read)).unwrap(), private);
        assert_eq!(Pointer::decode(&v, &name(), None), Err(NameError::Sealed));
        let other = ReadKey::of_secret(&[5; 32]);
        assert_eq!(
            Pointer::decode(&v, &name(), Some(&other)),
            Err(NameError::WrongKey)
        );
        // Replayed under another name: refused.
        assert_eq!(
            Pointer::decode(&v, &NameKey([8; 32]), Some(&read)),
            Err(NameError::WrongKey)
        );
        let mut flipped = v.clone();
        flipped[40] ^= 1;
        assert_eq!(
            Pointer::decode(&flipped, &name(), Some(&read)),
            Err(NameError::WrongKey)
        );
    }

    #[test]
    fn limits_and_malformed_values_are_refused() {
        let p = |path: &str| Pointer {
            target: Cap::Public(PublicId { id: Hash::of(b"x") }),
            path: path.into(),
        };
        let long = "a/".repeat(600);
        assert_eq!(
            p(&long).encode(&name(), None, [0; 24]),
            Err(NameError::TooLarge {
                len: 2 + 32 + 1200,
                max: MAX_VALUE
            })
        );
        for bad in ["/abs", "a//b", "../x", "a/./b"] {
            assert!(matches!(
                p(bad).encode(&name(), None, [0; 24]),
                Err(NameError::Path(_))
            ));
        }
        for value in [&[][..], &[2, 0], &[1, 9], &[1, 0, 1, 2], &[1, 1, 0]] {
            assert!(matches!(
                Pointer::decode(value, &name(), Some(&ReadKey::of_secret(&[0; 32]))),
                Err(NameError::Malformed(_))
            ));
        }
    }
}
