//! Keys, and the sealing of segments and metadata.
//!
//! A file key `K` (32 bytes) never leaves the client; the readcap carries it. Separate
//! subkeys are derived from `K` with BLAKE3's `derive_key` for segments, metadata and the
//! metadata nonce, so no key is ever used by two constructions.
//!
//! Every sealed segment ends with a 16-byte tag computed over the segment's *context*
//! (format version, cipher suite, segment size, file length, segment index, is-last):
//! reordering, swapping, truncating or extending segments makes a tag fail.
//! - Suite [`Suite::XChaCha20Poly1305`]: ciphertext + Poly1305 tag under the segment key,
//!   nonce = the file's 16-byte salt ‖ the segment index.
//! - Suite [`Suite::Public`]: plaintext + a BLAKE3 tag; integrity without secrecy, for
//!   content meant for everyone. (Against a *malicious* column holder the column hashes,
//!   verified by BLAKE3 streaming, are what protect public content.)

use std::{fmt, io::Read};

use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::layout::{FORMAT_VERSION, Layout, Params, TAG_LEN};

const SEGMENT_KEY_CONTEXT: &str = "mosaic 2026-11-21 v1 segment key";
const METADATA_KEY_CONTEXT: &str = "mosaic 2026-11-21 v1 metadata key";
const METADATA_NONCE_CONTEXT: &str = "mosaic 2026-11-21 v1 metadata nonce key";
const CONVERGENT_KEY_CONTEXT: &str = "mosaic 2026-11-21 v1 convergent key";
const CONVERGENT_SALT_CONTEXT: &str = "mosaic 2026-11-21 v1 convergent salt";
const PUBLIC_TAG_CONTEXT: &str = "mosaic 2026-11-21 v1 public segment tag";

/// Bytes of the per-file salt stored in the manifest.
pub const SALT_LEN: usize = 16;
/// Bytes of the nonce that prefixes sealed metadata.
pub const METADATA_NONCE_LEN: usize = 24;

/// How segments are protected; stored in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// No encryption: content meant for everyone, with BLAKE3 integrity tags.
    Public,
    /// XChaCha20-Poly1305 under a key only capability holders have.
    XChaCha20Poly1305,
}

impl Suite {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Suite::Public => 0,
            Suite::XChaCha20Poly1305 => 1,
        }
    }
    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Suite::Public),
            1 => Some(Suite::XChaCha20Poly1305),
            _ => None,
        }
    }
}

/// A file's 32-byte symmetric key. Zeroed on drop; never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct FileKey {
    bytes: [u8; 32],
    #[zeroize(skip)]
    convergent: bool,
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKey(<redacted>)")
    }
}

/// A user's secret for convergent encryption: only holders of the same secret
/// deduplicate against each other. Zeroed on drop; never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ConvergenceSecret([u8; 32]);

impl fmt::Debug for ConvergenceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConvergenceSecret(<redacted>)")
    }
}

impl ConvergenceSecret {
    /// A fresh random secret.
    pub fn random() -> Self {
        Self(random_bytes())
    }
    /// A secret from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// The secret's bytes (to store it).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FileKey {
    /// A fresh random key: the default, which reveals nothing about the content.
    pub fn random() -> Self {
        Self {
            bytes: random_bytes(),
            convergent: false,
        }
    }

    /// A key from its bytes, as carried by a readcap.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            bytes,
            convergent: false,
        }
    }

    /// The convergent key of `content` (exactly `length` bytes) under `secret` and
    /// `params`: the same content, parameters and secret always give the same key, so
    /// uploads by holders of one secret deduplicate. See `docs/format.md` for the two
    /// known attacks this opens to other holders of the secret.
    pub fn convergent(
        secret: &ConvergenceSecret,
        params: Params,
        length: u64,
        mut content: impl Read,
    ) -> std::io::Result<Self> {
        let key = blake3::derive_key(CONVERGENT_KEY_CONTEXT, &secret.0);
        let mut hasher = blake3::Hasher::new_keyed(&key);
        hasher.update(&convergent_header(params, length));
        let copied = std::io::copy(&mut (&mut content).take(length), &mut hasher)?;
        let mut probe = [0u8; 1];
        if copied != length || content.read(&mut probe)? != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("content changed while hashing: expected {length} bytes"),
            ));
        }
        Ok(Self {
            bytes: *hasher.finalize().as_bytes(),
            convergent: true,
        })
    }

    /// The key's bytes (to put in a readcap).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The salt an encoder uses with this key: derived from a convergent key (so that
    /// identical uploads give identical columns), random otherwise (so that a key reused
    /// by mistake still never repeats a nonce).
    pub(crate) fn salt(&self) -> [u8; SALT_LEN] {
        if self.convergent {
            let d = blake3::derive_key(CONVERGENT_SALT_CONTEXT, &self.bytes);
            d[..SALT_LEN].try_into().expect("16 of 32 bytes")
        } else {
            random_bytes()
        }
    }
}

fn convergent_header(params: Params, length: u64) -> [u8; 15] {
    let mut h = [0u8; 15];
    h[0] = FORMAT_VERSION;
    h[1] = params.data_columns() as u8;
    h[2] = params.parity_columns() as u8;
    h[3..7].copy_from_slice(&params.segment_size().to_le_bytes());
    h[7..15].copy_from_slice(&length.to_le_bytes());
    h
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // Without an OS random source no key can be made safely; there is nothing to fall
    // back to.
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b
}

/// Bytes of a segment's context, bound by its tag.
const CONTEXT_LEN: usize = 23;

/// Seals and opens the segments and metadata of one file.
pub(crate) struct Sealer {
    suite: Suite,
    layout: Layout,
    salt: [u8; SALT_LEN],
    aead: Option<XChaCha20Poly1305>,
    metadata_key: [u8; 32],
    metadata_nonce_key: [u8; 32],
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("suite", &self.suite)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.metadata_key.zeroize();
        self.metadata_nonce_key.zeroize();
    }
}

/// A segment or metadata tag did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagMismatch;

impl Sealer {
    /// `key` must be `Some` exactly for [`Suite::XChaCha20Poly1305`].
    pub(crate) fn new(
        suite: Suite,
        layout: Layout,
        salt: [u8; SALT_LEN],
        key: Option<&FileKey>,
    ) -> Self {
        let (aead, metadata_key, metadata_nonce_key) = match (suite, key) {
            (Suite::XChaCha20Poly1305, Some(key)) => {
                let mut seg = blake3::derive_key(SEGMENT_KEY_CONTEXT, &key.bytes);
                let aead = XChaCha20Poly1305::new(&seg.into());
                seg.zeroize();
                (
                    Some(aead),
                    blake3::derive_key(METADATA_KEY_CONTEXT, &key.bytes),
                    blake3::derive_key(METADATA_NONCE_CONTEXT, &key.bytes),
                )
            }
            _ => (None, [0; 32], [0; 32]),
        };
        Self {
            suite,
            layout,
            salt,
            aead,
            metadata_key,
            metadata_nonce_key,
        }
    }

    fn context(&self, index: u64) -> [u8; CONTEXT_LEN] {
        let mut c = [0u8; CONTEXT_LEN];
        c[0] = FORMAT_VERSION;
        c[1] = self.suite.to_byte();
        c[2..6].copy_from_slice(&self.layout.params().segment_size().to_le_bytes());
        c[6..14].copy_from_slice(&self.layout.length().to_le_bytes());
        c[14..22].copy_from_slice(&index.to_le_bytes());
        c[22] = self.layout.is_last(index) as u8;
        c
    }

    fn nonce(&self, index: u64) -> XNonce {
        let mut n = [0u8; 24];
        n[..SALT_LEN].copy_from_slice(&self.salt);
        n[SALT_LEN..].copy_from_slice(&index.to_le_bytes());
        n.into()
    }

    fn public_tag(&self, index: u64, plaintext: &[u8]) -> [u8; TAG_LEN] {
        let mut h = blake3::Hasher::new_derive_key(PUBLIC_TAG_CONTEXT);
        h.update(&self.context(index));
        h.update(plaintext);
        let mut tag = [0u8; TAG_LEN];
        h.finalize_xof().fill(&mut tag);
        tag
    }

    /// Seals segment `index` in place: `buf` holds the plaintext followed by
    /// [`TAG_LEN`] spare bytes, which receive the tag.
    pub(crate) fn seal_segment(&self, index: u64, buf: &mut [u8]) {
        let (body, tag_out) = buf.split_at_mut(buf.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = match &self.aead {
            Some(aead) => aead
                .encrypt_inout_detached(&self.nonce(index), &self.context(index), body.into())
                // Only fails for messages over 256 GiB; segments are at most 16 MiB.
                .expect("segment within XChaCha20-Poly1305's message limit")
                .into(),
            None => self.public_tag(index, body),
        };
        tag_out.copy_from_slice(&tag);
    }

    /// Opens segment `index`: checks the tag of `sealed` (ciphertext ‖ tag) and writes
    /// the plaintext to `out` (`sealed.len() - TAG_LEN` bytes). `sealed` is left as it
    /// was, so a caller can still hash or re-encode the authentic sealed bytes.
    pub(crate) fn open_segment(
        &self,
        index: u64,
        sealed: &[u8],
        out: &mut [u8],
    ) -> Result<(), TagMismatch> {
        let (body, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = tag.try_into().expect("split at TAG_LEN");
        match &self.aead {
            Some(aead) => {
                let buf = chacha20poly1305::aead::inout::InOutBuf::new(body, out)
                    .expect("callers size `out` to the plaintext");
                aead.decrypt_inout_detached(
                    &self.nonce(index),
                    &self.context(index),
                    buf,
                    &tag.into(),
                )
                .map_err(|_| TagMismatch)
            }
            None if constant_time_eq(&self.public_tag(index, body), &tag) => {
                out.copy_from_slice(body);
                Ok(())
            }
            None => Err(TagMismatch),
        }
    }

    /// Opens a sealed segment in place: on success `sealed[..len - TAG_LEN]` holds the
    /// plaintext (for a public file it already did; only the tag is checked).
    pub(crate) fn open_segment_in_place(
        &self,
        index: u64,
        sealed: &mut [u8],
    ) -> Result<(), TagMismatch> {
        let (body, tag) = sealed.split_at_mut(sealed.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().expect("split at TAG_LEN");
        match &self.aead {
            Some(aead) => aead
                .decrypt_inout_detached(
                    &self.nonce(index),
                    &self.context(index),
                    body.into(),
                    &tag.into(),
                )
                .map_err(|_| TagMismatch),
            None if constant_time_eq(&self.public_tag(index, body), &tag) => Ok(()),
            None => Err(TagMismatch),
        }
    }

    /// Seals encoded metadata, binding it to the manifest's public part `header`.
    /// Deterministic: the nonce is a keyed hash of the metadata (a synthetic IV), so
    /// the same file and metadata always give the same manifest, and different metadata
    /// under one (convergent) key never share a nonce.
    pub(crate) fn seal_metadata(&self, header: &[u8], plain: &[u8]) -> Vec<u8> {
        if self.aead.is_none() {
            return plain.to_vec();
        }
        let mut h = blake3::Hasher::new_keyed(&self.metadata_nonce_key);
        h.update(header);
        h.update(plain);
        let mut nonce = [0u8; METADATA_NONCE_LEN];
        h.finalize_xof().fill(&mut nonce);
        let meta = XChaCha20Poly1305::new(&self.metadata_key.into());
        let mut out = Vec::with_capacity(METADATA_NONCE_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = meta
            .encrypt_inout_detached(
                &nonce.into(),
                header,
                (&mut out[METADATA_NONCE_LEN..]).into(),
            )
            .expect("metadata within XChaCha20-Poly1305's message limit");
        out.extend_from_slice(&tag);
        out
    }

    /// Opens sealed metadata; a failure means a wrong key (the manifest's own hash has
    /// already been checked by then).
    pub(crate) fn open_metadata(
        &self,
        header: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, TagMismatch> {
        if self.aead.is_none() {
            return Ok(sealed.to_vec());
        }
        if sealed.len() < METADATA_NONCE_LEN + TAG_LEN {
            return Err(TagMismatch);
        }
        let (nonce, rest) = sealed.split_at(METADATA_NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce: [u8; METADATA_NONCE_LEN] = nonce.try_into().expect("split at nonce length");
        let tag: [u8; TAG_LEN] = tag.try_into().expect("split at TAG_LEN");
        let mut plain = body.to_vec();
        XChaCha20Poly1305::new(&self.metadata_key.into())
            .decrypt_inout_detached(
                &nonce.into(),
                header,
                plain.as_mut_slice().into(),
                &tag.into(),
            )
            .map_err(|_| TagMismatch)?;
        Ok(plain)
    }
}

fn constant_time_eq(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(len: u64) -> Layout {
        Layout::new(Params::new(4096, 3, 2).unwrap(), len).unwrap()
    }

    fn roundtrip(suite: Suite) {
        let key = FileKey::random();
        let l = layout(10_000);
        let s = Sealer::new(suite, l, key.salt(), Some(&key));
        let plain: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        let mut buf = plain.clone();
        buf.resize(4096 + TAG_LEN, 0);
        s.seal_segment(1, &mut buf);
        let sealed = buf.clone();
        let mut out = vec![0u8; 4096];
        s.open_segment(1, &sealed, &mut out).unwrap();
        assert_eq!(out, plain);
        // Another index, or a flipped bit anywhere, fails.
        assert_eq!(s.open_segment(0, &sealed, &mut out), Err(TagMismatch));
        for pos in [0, 100, 4095, 4096, 4096 + TAG_LEN - 1] {
            let mut b = sealed.clone();
            b[pos] ^= 0x10;
            assert_eq!(
                s.open_segment(1, &b, &mut out),
                Err(TagMismatch),
                "flip at {pos}"
            );
        }
    }

    #[test]
    fn private_segments_roundtrip_and_detect_tampering() {
        roundtrip(Suite::XChaCha20Poly1305);
    }

    #[test]
    fn public_segments_roundtrip_and_detect_tampering() {
        roundtrip(Suite::Public);
    }

    #[test]
    fn private_segments_hide_plaintext() {
        let key = FileKey::random();
        let s = Sealer::new(
            Suite::XChaCha20Poly1305,
            layout(4096),
            key.salt(),
            Some(&key),
        );
        let mut buf = vec![0u8; 4096 + TAG_LEN];
        s.seal_segment(0, &mut buf);
        assert!(buf[..4096].iter().filter(|&&b| b == 0).count() < 100);
    }

    #[test]
    fn segment_is_bound_to_file_length() {
        let key = FileKey::random();
        let salt = key.salt();
        let a = Sealer::new(Suite::XChaCha20Poly1305, layout(8192), salt, Some(&key));
        let b = Sealer::new(Suite::XChaCha20Poly1305, layout(9000), salt, Some(&key));
        let mut buf = vec![7u8; 4096 + TAG_LEN];
        a.seal_segment(0, &mut buf);
        let mut out = vec![0u8; 4096];
        assert_eq!(b.open_segment(0, &buf, &mut out), Err(TagMismatch));
    }

    #[test]
    fn convergent_keys_depend_on_secret_params_and_content() {
        let s1 = ConvergenceSecret::random();
        let s2 = ConvergenceSecret::random();
        let p = Params::default();
        let k = |s: &ConvergenceSecret, p: Params, c: &[u8]| {
            FileKey::convergent(s, p, c.len() as u64, c).unwrap()
        };
        assert_eq!(k(&s1, p, b"hello"), k(&s1, p, b"hello"));
        assert_ne!(k(&s1, p, b"hello"), k(&s2, p, b"hello"));
        assert_ne!(k(&s1, p, b"hello"), k(&s1, p, b"hellp"));
        let p2 = Params::new(1 << 20, 4, 2).unwrap();
        assert_ne!(k(&s1, p, b"hello"), k(&s1, p2, b"hello"));
        assert_eq!(k(&s1, p, b"hello").salt(), k(&s1, p, b"hello").salt());
        assert!(FileKey::convergent(&s1, p, 3, &b"hello"[..]).is_err());
        assert!(FileKey::convergent(&s1, p, 9, &b"hello"[..]).is_err());
    }

    #[test]
    fn metadata_roundtrip_and_wrong_key() {
        let key = FileKey::random();
        let s = Sealer::new(Suite::XChaCha20Poly1305, layout(1), key.salt(), Some(&key));
        let sealed = s.seal_metadata(b"header", b"name=x");
        assert_eq!(
            sealed,
            s.seal_metadata(b"header", b"name=x"),
            "deterministic"
        );
        assert_eq!(s.open_metadata(b"header", &sealed).unwrap(), b"name=x");
        assert!(s.open_metadata(b"other", &sealed).is_err());
        let other = FileKey::random();
        let t = Sealer::new(
            Suite::XChaCha20Poly1305,
            layout(1),
            key.salt(),
            Some(&other),
        );
        assert!(t.open_metadata(b"header", &sealed).is_err());
    }
}
