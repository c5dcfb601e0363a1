//! The export file's format, pure: the passphrase-sealed container that `mosaic export`
//! and `mosaic key export` write, and the bundle of keys and keyring entries inside it.
//! No terminal and no files here: `vault.rs` asks for the passphrase, the commands
//! read and write the files.
//!
//! Container (all integers little-endian):
//! ```text
//! magic      8 bytes  "MOSVLT01"
//! m_cost     u32      argon2id memory, KiB
//! t_cost     u32      argon2id passes
//! p_cost     u32      argon2id lanes
//! salt       16 bytes random
//! nonce      24 bytes random
//! sealed     XChaCha20-Poly1305(key, nonce, aad = all of the above, plaintext) ‖ tag
//! ```
//! The key is argon2id(passphrase, salt, m_cost, t_cost, p_cost), 32 bytes. The cost
//! parameters travel in the header (authenticated as associated data), so they can be
//! raised later without breaking old files; a file asking for more than
//! [`MAX_M_COST_KIB`] / [`MAX_T_COST`] / [`MAX_P_COST`] is refused before any work
//! ([`Header::parse`]), so a crafted file cannot make `import` exhaust memory. A wrong
//! passphrase and an altered file both fail the tag check, and nothing is imported.
//!
//! Plaintext: a [`Bundle`] as JSON, `{"version":1,"keys":[…],"files":[…]}`: each key
//! with its name, kind and 32 secret bytes in hex ([`Exported`]), each keyring entry as
//! the keyring itself stores it ([`Record`]).
//!
//! Self-contained (external crates only, no `crate::` paths): the fuzz crate compiles
//! this file on its own (`fuzz/src/lib.rs`), without the rest of the CLI.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The container's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"MOSVLT01";
/// Bytes of header: magic, three costs, salt, nonce.
pub const HEADER_LEN: usize = 8 + 12 + 16 + 24;
/// Bytes of authentication tag after the sealed plaintext.
pub const TAG_LEN: usize = 16;
/// Argon2id memory cost of new files: 64 MiB (OWASP's first recommendation is 46 MiB).
pub const M_COST_KIB: u32 = 64 * 1024;
/// Argon2id passes of new files.
pub const T_COST: u32 = 3;
/// Most memory a file may ask for: 1 GiB.
pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
/// Most passes a file may ask for.
pub const MAX_T_COST: u32 = 64;
/// Most lanes a file may ask for.
pub const MAX_P_COST: u32 = 16;
/// The bundle version this build writes and reads.
pub const BUNDLE_VERSION: u32 = 1;

/// Why a container cannot be sealed or opened. The messages are what `mosaic` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultError {
    /// Too short, or the magic bytes are wrong.
    NotAnExport,
    /// The header asks for key derivation costs beyond the limits.
    Costs {
        /// Memory, KiB.
        m_cost: u32,
        /// Passes.
        t_cost: u32,
        /// Lanes.
        p_cost: u32,
    },
    /// Argon2 refused the parameters (e.g. less memory than its minimum for the lanes).
    Derivation(String),
    /// The system has no randomness for a new salt and nonce.
    NoRandomness(String),
    /// The plaintext is beyond what the cipher can seal.
    TooLarge,
    /// The tag does not verify: a wrong passphrase, or an altered file.
    WrongPassphrase,
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaultError::NotAnExport => f.write_str(
                "this is not a Mosaic export (made by `mosaic export` or `mosaic key export`)",
            ),
            VaultError::Costs {
                m_cost,
                t_cost,
                p_cost,
            } => write!(
                f,
                "this export asks for key derivation costs beyond the limits (memory {m_cost} KiB, {t_cost} passes, {p_cost} lanes): refusing to open it"
            ),
            VaultError::Derivation(e) => write!(f, "key derivation: {e}"),
            VaultError::NoRandomness(e) => write!(f, "no randomness: {e}"),
            VaultError::TooLarge => f.write_str("the file is too large to seal"),
            VaultError::WrongPassphrase => {
                f.write_str("wrong passphrase, or the file was altered: nothing was imported")
            }
        }
    }
}

impl std::error::Error for VaultError {}

/// A container's header: the key derivation's costs and salt, the cipher's nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Argon2id memory, KiB.
    pub m_cost: u32,
    /// Argon2id passes.
    pub t_cost: u32,
    /// Argon2id lanes.
    pub p_cost: u32,
    /// Argon2id salt.
    pub salt: [u8; 16],
    /// XChaCha20-Poly1305 nonce.
    pub nonce: [u8; 24],
}

impl Header {
    /// A new file's header: this build's costs, a fresh salt and nonce.
    pub fn new() -> Result<Self, VaultError> {
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        let no_randomness = |e: getrandom::Error| VaultError::NoRandomness(e.to_string());
        getrandom::fill(&mut salt).map_err(no_randomness)?;
        getrandom::fill(&mut nonce).map_err(no_randomness)?;
        Ok(Self {
            m_cost: M_COST_KIB,
            t_cost: T_COST,
            p_cost: 1,
            salt,
            nonce,
        })
    }

    /// Its bytes, the container's first [`HEADER_LEN`].
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        for (i, v) in [self.m_cost, self.t_cost, self.p_cost].iter().enumerate() {
            out[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        out[20..36].copy_from_slice(&self.salt);
        out[36..].copy_from_slice(&self.nonce);
        out
    }

    /// Reads the header of container `sealed`, refusing one too short to hold a tag
    /// and one whose costs are beyond the limits, before any work is done.
    pub fn parse(sealed: &[u8]) -> Result<Self, VaultError> {
        if sealed.len() < HEADER_LEN + TAG_LEN || &sealed[..8] != MAGIC {
            return Err(VaultError::NotAnExport);
        }
        let word = |i: usize| {
            u32::from_le_bytes(sealed[8 + 4 * i..12 + 4 * i].try_into().expect("4 bytes"))
        };
        let (m_cost, t_cost, p_cost) = (word(0), word(1), word(2));
        if m_cost > MAX_M_COST_KIB || t_cost > MAX_T_COST || p_cost == 0 || p_cost > MAX_P_COST {
            return Err(VaultError::Costs {
                m_cost,
                t_cost,
                p_cost,
            });
        }
        Ok(Self {
            m_cost,
            t_cost,
            p_cost,
            salt: sealed[20..36].try_into().expect("16 bytes"),
            nonce: sealed[36..60].try_into().expect("24 bytes"),
        })
    }
}

/// The key that `pass` derives under `header`'s costs and salt.
pub fn derive(pass: &str, header: &Header) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let derivation = |e: argon2::Error| VaultError::Derivation(e.to_string());
    let params =
        Params::new(header.m_cost, header.t_cost, header.p_cost, Some(32)).map_err(derivation)?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pass.as_bytes(), &header.salt, key.as_mut())
        .map_err(derivation)?;
    Ok(key)
}

/// Seals `plain` under `pass`, with this build's costs and a fresh salt and nonce.
pub fn seal(pass: &str, plain: &[u8]) -> Result<Vec<u8>, VaultError> {
    seal_with(pass, &Header::new()?, plain)
}

/// Seals `plain` under `pass` with `header`'s costs, salt and nonce (which must be
/// fresh: a nonce used twice under one key breaks the cipher).
pub fn seal_with(pass: &str, header: &Header, plain: &[u8]) -> Result<Vec<u8>, VaultError> {
    let key = derive(pass, header)?;
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(plain);
    let (aad, body) = out.split_at_mut(HEADER_LEN);
    let tag = XChaCha20Poly1305::new(&(*key).into())
        .encrypt_inout_detached(&header.nonce.into(), aad, body.into())
        .map_err(|_| VaultError::TooLarge)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens container `sealed` with `pass`: its plaintext, wiped when dropped.
pub fn open(pass: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let header = Header::parse(sealed)?;
    let (aad, rest) = sealed.split_at(HEADER_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let tag: [u8; TAG_LEN] = tag.try_into().expect("16 bytes");
    let key = derive(pass, &header)?;
    let mut plain = Zeroizing::new(body.to_vec());
    XChaCha20Poly1305::new(&(*key).into())
        .decrypt_inout_detached(
            &header.nonce.into(),
            aad,
            plain.as_mut_slice().into(),
            &tag.into(),
        )
        .map_err(|_| VaultError::WrongPassphrase)?;
    Ok(plain)
}

/// What an export holds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Bundle {
    /// [`BUNDLE_VERSION`] when written by this build.
    pub version: u32,
    /// Keys.
    pub keys: Vec<Exported>,
    /// Keyring entries.
    pub files: Vec<Record>,
}

/// What a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An ed25519 identity.
    Identity,
    /// The convergence secret.
    Convergence,
    /// A mutable name's ed25519 secret.
    Name,
}

/// A key as exported: its name, kind and secret bytes (wiped when dropped).
#[derive(Clone, Serialize, Deserialize, zeroize::ZeroizeOnDrop)]
pub struct Exported {
    /// Its name.
    #[zeroize(skip)]
    pub name: String,
    /// Its kind.
    #[zeroize(skip)]
    pub kind: Kind,
    /// The 32 secret bytes, hex.
    pub secret: String,
}

impl fmt::Debug for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exported")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A key's secret as [`Exported`] holds it: 64 lowercase hex digits.
pub fn secret_to_hex(bytes: &[u8; 32]) -> Zeroizing<String> {
    Zeroizing::new(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A key's 32 secret bytes from [`Exported::secret`]; `None` unless it is exactly 64
/// hex digits (either case).
pub fn secret_from_hex(s: &str) -> Option<Zeroizing<[u8; 32]>> {
    // Checked before slicing by byte offsets: any other text is refused, never split
    // inside a character.
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// One upload, as the keyring stores it (JSON, so fields can be added without a
/// migration: unknown fields are ignored, missing ones take defaults) and as an export
/// carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The name it is known by here.
    pub name: String,
    /// Plaintext size in bytes (for a directory: the sum of its files).
    pub size: u64,
    /// The readcap (`mr1…`) or, for public files, the id (`mi1…`).
    pub cap: String,
    /// When it was uploaded (unix seconds).
    pub created: u64,
    /// `file` or `directory`.
    #[serde(default = "file_kind")]
    pub kind: String,
    /// The identity (key name) it was pinned with.
    #[serde(default)]
    pub key: String,
    /// The blobs to unpin on `rm`: the manifest's hash, then the columns' (hex).
    #[serde(default)]
    pub blobs: Vec<String>,
    /// Nodes where this user pinned it (ids), as last known.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// BLAKE3 of a file's plaintext (hex). Kept on this machine and in sealed exports,
    /// never sent: `put` of the same content under the same name finds it here and
    /// uploads nothing. Empty for directories and entries recorded before it was kept.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
}

fn file_kind() -> String {
    "file".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Argon2's cheapest costs: the format is the same, the tests stay quick.
    fn cheap() -> Header {
        Header {
            m_cost: 8,
            t_cost: 1,
            ..Header::new().unwrap()
        }
    }

    #[test]
    fn round_trip_and_every_failure() {
        let header = cheap();
        let sealed = seal_with("correct horse", &header, b"secret things").unwrap();
        assert_eq!(Header::parse(&sealed), Ok(header));
        assert_eq!(
            &open("correct horse", &sealed).unwrap()[..],
            b"secret things"
        );
        assert_eq!(
            open("wrong horse", &sealed),
            Err(VaultError::WrongPassphrase)
        );
        for i in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[i] ^= 1;
            assert!(open("correct horse", &altered).is_err(), "byte {i}");
        }
        let mut greedy = sealed.clone();
        greedy[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            open("correct horse", &greedy),
            Err(VaultError::Costs { .. })
        ));
        assert_eq!(open("x", b"not a vault"), Err(VaultError::NotAnExport));
        assert_eq!(
            open("x", &sealed[..HEADER_LEN + TAG_LEN - 1]),
            Err(VaultError::NotAnExport)
        );
    }

    #[test]
    fn secrets_round_trip_through_hex_and_junk_is_refused() {
        let bytes = [0xa5; 32];
        let hex = secret_to_hex(&bytes);
        assert_eq!(*secret_from_hex(&hex).unwrap(), bytes);
        assert_eq!(*secret_from_hex(&hex.to_uppercase()).unwrap(), bytes);
        for bad in ["", "ab", &"g".repeat(64), &"é".repeat(32), &"+1".repeat(32)] {
            assert!(secret_from_hex(bad).is_none(), "{bad:?}");
        }
    }
}
