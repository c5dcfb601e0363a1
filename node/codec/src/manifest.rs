//! The manifest: a small blob naming a file's columns. Its BLAKE3 hash is the file id.
//!
//! Fixed-width little-endian fields, so every valid manifest has exactly one encoding
//! and parsing needs no trust in a serializer (byte layout in `docs/format.md`):
//!
//! ```text
//! public part ("header"; what nodes read to verify and repair)
//!   0   8  magic "mosaicmf"
//!   8   1  format version (1)
//!   9   1  cipher suite: 0 public, 1 XChaCha20-Poly1305
//!  10   1  erasure code: 1 Reed–Solomon GF(2^8) (reed-solomon-erasure)
//!  11   1  k, data columns
//!  12   1  m, parity columns
//!  13   4  segment size S, u32
//!  17   8  plaintext length, u64
//!  25  16  salt (zero for public files)
//!  41  32n column hashes, column 0 first
//! metadata
//!   +0  4  metadata length, u32
//!   +4  …  metadata: plain (public) or nonce ‖ ciphertext ‖ tag (private)
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    hash::Hash,
    layout::{FORMAT_VERSION, Layout, Params, ParamsError},
    seal::{FileKey, METADATA_NONCE_LEN, SALT_LEN, Sealer, Suite},
};
use crate::layout::{MAX_COLUMNS, TAG_LEN};

/// The manifest's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"mosaicmf";
/// The one erasure code of format v1.
pub const ERASURE_CODE_RS8: u8 = 1;
/// Longest accepted file name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 4096;
/// Longest accepted media type, in bytes.
pub const MAX_MEDIA_TYPE_LEN: usize = 255;
/// Longest metadata field (plain or sealed), in bytes.
pub const MAX_METADATA_LEN: usize =
    2 + MAX_NAME_LEN + 1 + MAX_MEDIA_TYPE_LEN + 1 + 12 + METADATA_NONCE_LEN + TAG_LEN;
/// Longest possible manifest, in bytes: what a node may accept for one.
pub const MAX_MANIFEST_LEN: usize = HEADER_FIXED + 32 * MAX_COLUMNS + 4 + MAX_METADATA_LEN;

const HEADER_FIXED: usize = 41;

/// What only key holders learn about a file (for public files, everyone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The file's name (not a path: no `/`, no NUL), at most [`MAX_NAME_LEN`] bytes.
    pub name: Option<String>,
    /// Its media type, e.g. `video/mp4`, at most [`MAX_MEDIA_TYPE_LEN`] printable ASCII.
    pub media_type: Option<String>,
    /// Its modification time, to the nanosecond.
    pub modified: Option<SystemTime>,
}

/// Metadata that cannot be stored, or bytes that are not metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("file name is {len} bytes long; at most {MAX_NAME_LEN} are allowed")]
    NameTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name contains `/` or NUL, or is empty, `.` or `..`.
    #[error(
        "file name {name:?} is not a plain file name (empty, \".\", \"..\", or contains '/' or NUL)"
    )]
    NameInvalid {
        /// The offending name.
        name: String,
    },
    /// The media type is too long or not printable ASCII.
    #[error(
        "media type {media_type:?} is invalid: use at most {MAX_MEDIA_TYPE_LEN} printable ASCII characters"
    )]
    MediaTypeInvalid {
        /// The offending media type.
        media_type: String,
    },
    /// The modification time is outside the range the format stores.
    #[error("modification time is out of range")]
    TimeOutOfRange,
    /// Stored metadata bytes do not parse.
    #[error("metadata is malformed: {what}")]
    Malformed {
        /// What is wrong.
        what: &'static str,
    },
}

impl Metadata {
    /// The deterministic encoding (see `docs/format.md`).
    pub(crate) fn encode(&self) -> Result<Vec<u8>, MetadataError> {
        let mut out = Vec::new();
        let name = self.name.as_deref().unwrap_or("");
        if name.len() > MAX_NAME_LEN {
            return Err(MetadataError::NameTooLong { len: name.len() });
        }
        if self.name.is_some()
            && (name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']))
        {
            return Err(MetadataError::NameInvalid {
                name: name.to_owned(),
            });
        }
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        let media = self.media_type.as_deref().unwrap_or("");
        if media.len() > MAX_MEDIA_TYPE_LEN
            || !media.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
            || (self.media_type.is_some() && media.is_empty())
        {
            return Err(MetadataError::MediaTypeInvalid {
                media_type: media.to_owned(),
            });
        }
        out.push(media.len() as u8);
        out.extend_from_slice(media.as_bytes());
        match self.modified {
            None => out.push(0),
            Some(t) => {
                let (secs, nanos) = to_unix(t).ok_or(MetadataError::TimeOutOfRange)?;
                out.push(1);
                out.extend_from_slice(&secs.to_le_bytes());
                out.extend_from_slice(&nanos.to_le_bytes());
            }
        }
        Ok(out)
    }

    /// Parses [`Metadata::encode`]'s output, strictly: one value, one encoding.
    pub(crate) fn decode(mut b: &[u8]) -> Result<Self, MetadataError> {
        let malformed = |what| MetadataError::Malformed { what };
        let name_len = u16::from_le_bytes(
            take(&mut b, 2)
                .ok_or(malformed("truncated name length"))?
                .try_into()
                .expect("2 bytes"),
        ) as usize;
        let name = take(&mut b, name_len).ok_or(malformed("truncated name"))?;
        let name = std::str::from_utf8(name).map_err(|_| malformed("name is not UTF-8"))?;
        let media_len =
            take(&mut b, 1).ok_or(malformed("truncated media type length"))?[0] as usize;
        let media = take(&mut b, media_len).ok_or(malformed("truncated media type"))?;
        let media = std::str::from_utf8(media).map_err(|_| malformed("media type is not ASCII"))?;
        let modified = match take(&mut b, 1).ok_or(malformed("truncated time flag"))?[0] {
            0 => None,
            1 => {
                let t = take(&mut b, 12).ok_or(malformed("truncated time"))?;
                let secs = i64::from_le_bytes(t[..8].try_into().expect("8 bytes"));
                let nanos = u32::from_le_bytes(t[8..].try_into().expect("4 bytes"));
                if nanos >= 1_000_000_000 {
                    return Err(malformed("nanoseconds out of range"));
                }
                Some(from_unix(secs, nanos).ok_or(MetadataError::TimeOutOfRange)?)
            }
            _ => return Err(malformed("time flag is neither 0 nor 1")),
        };
        if !b.is_empty() {
            return Err(malformed("trailing bytes"));
        }
        let m = Metadata {
            name: (!name.is_empty()).then(|| name.to_owned()),
            media_type: (!media.is_empty()).then(|| media.to_owned()),
            modified,
        };
        // Validate the same rules as the encoder, so a foreign encoder cannot smuggle in
        // a name with '/' or a media type with control characters.
        m.encode()?;
        Ok(m)
    }
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (head, tail) = b.split_at(n);
    *b = tail;
    Some(head)
}

fn to_unix(t: SystemTime) -> Option<(i64, u32)> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Some((i64::try_from(d.as_secs()).ok()?, d.subsec_nanos())),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).ok()?;
            if d.subsec_nanos() == 0 {
                Some((-secs, 0))
            } else {
                Some((-secs - 1, 1_000_000_000 - d.subsec_nanos()))
            }
        }
    }
}

fn from_unix(secs: i64, nanos: u32) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs as u64, nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(nanos as u64))
    }
}

/// A parsed manifest. Holds its canonical bytes; [`Manifest::id`] hashes them.
#[derive(Clone, PartialEq, Eq)]
pub struct Manifest {
    bytes: Vec<u8>,
    suite: Suite,
    layout: Layout,
    salt: [u8; SALT_LEN],
    columns: Vec<Hash>,
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("id", &self.id())
            .field("suite", &self.suite)
            .field("layout", &self.layout)
            .field("columns", &self.columns)
            .finish()
    }
}

/// Bytes that are not a valid manifest, or not the expected one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The bytes hash to another id than the one asked for: corrupted or substituted.
    #[error(
        "manifest is corrupt: its hash is {actual}, but the file id is {expected}; fetch it from another node"
    )]
    IdMismatch {
        /// The id that was asked for.
        expected: Hash,
        /// The hash of the bytes received.
        actual: Hash,
    },
    /// Too short or too long to be a manifest.
    #[error(
        "manifest is {len} bytes; a manifest is between {HEADER_FIXED} and {MAX_MANIFEST_LEN} bytes"
    )]
    Size {
        /// Its length.
        len: usize,
    },
    /// The bytes do not start with [`MAGIC`].
    #[error("not a Mosaic manifest (bad magic bytes)")]
    Magic,
    /// A format version this build does not know.
    #[error(
        "manifest format version {version} is not supported (this build reads version {FORMAT_VERSION}); upgrade Mosaic"
    )]
    Version {
        /// The version found.
        version: u8,
    },
    /// An unknown cipher suite.
    #[error("unknown cipher suite {suite}; upgrade Mosaic")]
    Suite {
        /// The suite byte found.
        suite: u8,
    },
    /// An unknown erasure code.
    #[error("unknown erasure code {code}; upgrade Mosaic")]
    ErasureCode {
        /// The code byte found.
        code: u8,
    },
    /// Invalid coding parameters.
    #[error("invalid coding parameters: {0}")]
    Params(#[from] ParamsError),
    /// A length beyond the format's maximum.
    #[error("file length {length} is beyond the format's maximum")]
    Length {
        /// The length found.
        length: u64,
    },
    /// A public manifest with a non-zero salt.
    #[error("public manifest has a non-zero salt")]
    PublicSalt,
    /// The byte count disagrees with the fields.
    #[error("manifest is malformed: {what}")]
    Malformed {
        /// What is wrong.
        what: &'static str,
    },
    /// Public metadata that does not parse.
    #[error("manifest metadata: {0}")]
    Metadata(#[from] MetadataError),
}

impl Manifest {
    /// Builds the manifest of an encoded file. `sealer` seals the metadata.
    pub(crate) fn build(
        suite: Suite,
        layout: Layout,
        salt: [u8; SALT_LEN],
        columns: Vec<Hash>,
        metadata: &Metadata,
        sealer: &Sealer,
    ) -> Result<Self, MetadataError> {
        let params = layout.params();
        let mut bytes = Vec::with_capacity(HEADER_FIXED + 32 * columns.len() + 64);
        bytes.extend_from_slice(MAGIC);
        bytes.push(FORMAT_VERSION);
        bytes.push(suite.to_byte());
        bytes.push(ERASURE_CODE_RS8);
        bytes.push(params.data_columns() as u8);
        bytes.push(params.parity_columns() as u8);
        bytes.extend_from_slice(&params.segment_size().to_le_bytes());
        bytes.extend_from_slice(&layout.length().to_le_bytes());
        bytes.extend_from_slice(&salt);
        for c in &columns {
            bytes.extend_from_slice(c.as_bytes());
        }
        let meta = sealer.seal_metadata(&bytes, &metadata.encode()?);
        bytes.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&meta);
        Ok(Self {
            bytes,
            suite,
            layout,
            salt,
            columns,
        })
    }

    /// Parses a manifest fetched under `id`, checking its hash first.
    pub fn from_bytes_verified(bytes: &[u8], id: &Hash) -> Result<Self, ManifestError> {
        let actual = Hash::of(bytes);
        if actual != *id {
            return Err(ManifestError::IdMismatch {
                expected: *id,
                actual,
            });
        }
        Self::from_bytes(bytes)
    }

    /// Parses a manifest, strictly (see the module docs for the layout).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ManifestError> {
        let len = bytes.len();
        if !(HEADER_FIXED + 4..=MAX_MANIFEST_LEN).contains(&len) {
            return Err(ManifestError::Size { len });
        }
        if &bytes[..8] != MAGIC {
            return Err(ManifestError::Magic);
        }
        if bytes[8] != FORMAT_VERSION {
            return Err(ManifestError::Version { version: bytes[8] });
        }
        let suite = Suite::from_byte(bytes[9]).ok_or(ManifestError::Suite { suite: bytes[9] })?;
        if bytes[10] != ERASURE_CODE_RS8 {
            return Err(ManifestError::ErasureCode { code: bytes[10] });
        }
        let segment_size = u32::from_le_bytes(bytes[13..17].try_into().expect("4 bytes"));
        let params = Params::new(segment_size, bytes[11], bytes[12])?;
        let length = u64::from_le_bytes(bytes[17..25].try_into().expect("8 bytes"));
        let layout = Layout::new(params, length).ok_or(ManifestError::Length { length })?;
        let salt: [u8; SALT_LEN] = bytes[25..41].try_into().expect("16 bytes");
        if suite == Suite::Public && salt != [0; SALT_LEN] {
            return Err(ManifestError::PublicSalt);
        }
        let n = params.columns();
        let header_len = HEADER_FIXED + 32 * n;
        if len < header_len + 4 {
            return Err(ManifestError::Malformed {
                what: "truncated column hashes",
            });
        }
        let columns = bytes[HEADER_FIXED..header_len]
            .chunks_exact(32)
            .map(|c| Hash::from_bytes(c.try_into().expect("32 bytes")))
            .collect();
        let meta_len = u32::from_le_bytes(
            bytes[header_len..header_len + 4]
                .try_into()
                .expect("4 bytes"),
        ) as usize;
        if meta_len != len - header_len - 4 {
            return Err(ManifestError::Malformed {
                what: "metadata length disagrees with the manifest's size",
            });
        }
        let manifest = Self {
            bytes: bytes.to_vec(),
            suite,
            layout,
            salt,
            columns,
        };
        match suite {
            // Public metadata is for everyone: reject a malformed one up front.
            Suite::Public => {
                Metadata::decode(manifest.metadata_field())?;
            }
            Suite::XChaCha20Poly1305 => {
                if meta_len < METADATA_NONCE_LEN + TAG_LEN {
                    return Err(ManifestError::Malformed {
                        what: "sealed metadata shorter than its nonce and tag",
                    });
                }
            }
        }
        Ok(manifest)
    }

    /// The canonical bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The file id: the BLAKE3 hash of the manifest's bytes.
    pub fn id(&self) -> Hash {
        Hash::of(&self.bytes)
    }
    /// The cipher suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }
    /// Whether the file is public (not encrypted).
    pub fn is_public(&self) -> bool {
        self.suite == Suite::Public
    }
    /// The file's geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    /// The salt of the segments' nonces (zero for public files).
    pub fn salt(&self) -> [u8; SALT_LEN] {
        self.salt
    }
    /// The column hashes, column 0 first.
    pub fn columns(&self) -> &[Hash] {
        &self.columns
    }
    /// The public part, bound into sealed metadata.
    pub(crate) fn header(&self) -> &[u8] {
        &self.bytes[..HEADER_FIXED + 32 * self.columns.len()]
    }
    pub(crate) fn metadata_field(&self) -> &[u8] {
        &self.bytes[HEADER_FIXED + 32 * self.columns.len() + 4..]
    }
    /// A sealer for this file's segments and metadata.
    pub(crate) fn sealer(&self, key: Option<&FileKey>) -> Sealer {
        Sealer::new(self.suite, self.layout, self.salt, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(suite: Suite, key: Option<&FileKey>) -> Manifest {
        let layout = Layout::new(Params::default(), 12345).unwrap();
        let salt = match suite {
            Suite::Public => [0; SALT_LEN],
            _ => [9; SALT_LEN],
        };
        let sealer = Sealer::new(suite, layout, salt, key);
        let meta = Metadata {
            name: Some("clip.mp4".into()),
            media_type: Some("video/mp4".into()),
            modified: Some(UNIX_EPOCH + Duration::new(1_700_000_000, 5)),
        };
        let cols = (0..5u8).map(|i| Hash::of(&[i])).collect();
        Manifest::build(suite, layout, salt, cols, &meta, &sealer).unwrap()
    }

    #[test]
    fn roundtrip_is_canonical() {
        let key = FileKey::random();
        for m in [
            sample(Suite::Public, None),
            sample(Suite::XChaCha20Poly1305, Some(&key)),
        ] {
            let parsed = Manifest::from_bytes_verified(m.as_bytes(), &m.id()).unwrap();
            assert_eq!(parsed, m);
            assert_eq!(parsed.as_bytes(), m.as_bytes());
        }
    }

    #[test]
    fn every_flipped_byte_is_rejected_by_the_id_check() {
        let m = sample(Suite::Public, None);
        for i in 0..m.as_bytes().len() {
            let mut b = m.as_bytes().to_vec();
            b[i] ^= 1;
            assert!(matches!(
                Manifest::from_bytes_verified(&b, &m.id()),
                Err(ManifestError::IdMismatch { .. })
            ));
        }
    }

    #[test]
    fn malformed_manifests_are_rejected_with_a_reason() {
        let m = sample(Suite::Public, None);
        let b = m.as_bytes();
        let with = |i: usize, v: u8| {
            let mut b = b.to_vec();
            b[i] = v;
            Manifest::from_bytes(&b)
        };
        assert_eq!(
            Manifest::from_bytes(&b[..10]),
            Err(ManifestError::Size { len: 10 })
        );
        assert_eq!(with(0, b'M'), Err(ManifestError::Magic));
        assert_eq!(with(8, 2), Err(ManifestError::Version { version: 2 }));
        assert_eq!(with(9, 7), Err(ManifestError::Suite { suite: 7 }));
        assert_eq!(with(10, 0), Err(ManifestError::ErasureCode { code: 0 }));
        assert!(matches!(
            with(11, 0),
            Err(ManifestError::Params(ParamsError::NoDataColumns))
        ));
        assert_eq!(with(25, 1), Err(ManifestError::PublicSalt));
        let mut long = b.to_vec();
        long.push(0);
        assert!(matches!(
            Manifest::from_bytes(&long),
            Err(ManifestError::Malformed { .. })
        ));
        let short = &b[..b.len() - 1];
        assert!(matches!(
            Manifest::from_bytes(short),
            Err(ManifestError::Malformed { .. })
        ));
    }

    #[test]
    fn metadata_rules() {
        let bad_name = Metadata {
            name: Some("a/b".into()),
            ..Default::default()
        };
        assert!(matches!(
            bad_name.encode(),
            Err(MetadataError::NameInvalid { .. })
        ));
        let long = Metadata {
            name: Some("x".repeat(MAX_NAME_LEN + 1)),
            ..Default::default()
        };
        assert!(matches!(
            long.encode(),
            Err(MetadataError::NameTooLong { .. })
        ));
        let media = Metadata {
            media_type: Some("text/\nplain".into()),
            ..Default::default()
        };
        assert!(matches!(
            media.encode(),
            Err(MetadataError::MediaTypeInvalid { .. })
        ));
        for t in [
            UNIX_EPOCH,
            UNIX_EPOCH - Duration::new(5, 1),
            UNIX_EPOCH + Duration::new(5, 999_999_999),
        ] {
            let m = Metadata {
                modified: Some(t),
                ..Default::default()
            };
            assert_eq!(Metadata::decode(&m.encode().unwrap()).unwrap(), m);
        }
        assert!(Metadata::decode(&[0, 0, 0, 2]).is_err());
        assert!(Metadata::decode(&[0, 0, 0, 0, 0]).is_err());
    }
}
