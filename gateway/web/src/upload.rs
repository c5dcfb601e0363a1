//! A private upload made in the page: the file is sealed under a fresh key and
//! erasure-coded here, segment by segment; the page sends each segment's `n` shards to
//! the gateway (which streams column `j` to its node) and, at the end, the manifest.
//! The gateway sees ciphertext, parity and the manifest; the key and the plaintext stay
//! in the page, which makes the readcap (and the share link) itself.

use std::fmt::Write as _;

use mosaic_codec::{Access, Encoder, FileKey, Metadata, Params, ReadCap};

use crate::file::WebError;

/// An upload in progress.
#[derive(Debug)]
pub struct Upload {
    encoder: Encoder,
    key: FileKey,
    done: u64,
}

impl Upload {
    /// Starts an upload of exactly `length` bytes with the default parameters and a
    /// fresh random key. Also returns the geometry the page needs, as JSON:
    /// `{"length","segment_size","segments","columns","data_columns","column_len"}`.
    pub fn begin(length: u64) -> Result<(Self, String), WebError> {
        let key = FileKey::random();
        let access = Access::Private(key.clone());
        let encoder = Encoder::new(Params::default(), &access, length)
            .map_err(|e| WebError::Usage(format!("cannot encode this file: {e}")))?;
        let layout = encoder.layout();
        let params = layout.params();
        let mut info = String::new();
        let _ = write!(
            info,
            "{{\"length\":{},\"segment_size\":{},\"segments\":{},\"columns\":{},\"data_columns\":{},\"column_len\":{}}}",
            layout.length(),
            params.segment_size(),
            layout.segments(),
            params.columns(),
            params.data_columns(),
            layout.column_len()
        );
        Ok((
            Self {
                encoder,
                key,
                done: 0,
            },
            info,
        ))
    }

    /// Seals and codes the next segment, whose plaintext is `plain` (exactly the
    /// segment's length); `out` receives its `n` shards, one after the other, each
    /// `out.len() / n` bytes.
    pub fn segment(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), WebError> {
        let layout = *self.encoder.layout();
        if self.done == layout.segments() {
            return Err(WebError::Usage("every segment is coded already".into()));
        }
        let expected = layout.plain_len(self.done);
        if plain.len() != expected {
            return Err(WebError::Usage(format!(
                "segment {} holds {expected} bytes, not {}",
                self.done,
                plain.len()
            )));
        }
        let mut reader = plain;
        let stripe = self
            .encoder
            .next_stripe(&mut reader)
            .map_err(|e| WebError::Usage(format!("segment {}: {e}", self.done)))?
            .ok_or_else(|| WebError::Usage("every segment is coded already".into()))?;
        out.clear();
        for shard in stripe.shards() {
            out.extend_from_slice(shard);
        }
        self.done += 1;
        Ok(())
    }

    /// The manifest (with the file's name and media type sealed in it) and the
    /// readcap, once every segment is coded.
    pub fn finish(self, name: &str, media_type: &str) -> Result<(Vec<u8>, String), WebError> {
        if self.done != self.encoder.layout().segments() {
            return Err(WebError::Usage(format!(
                "{} of {} segments coded: code them all first",
                self.done,
                self.encoder.layout().segments()
            )));
        }
        let metadata = Metadata {
            name: (!name.is_empty()).then(|| name.to_owned()),
            media_type: (!media_type.is_empty()).then(|| media_type.to_owned()),
            modified: None,
        };
        let manifest = self
            .encoder
            .finish(&metadata)
            .map_err(|e| WebError::Usage(format!("cannot finish the file: {e}")))?;
        let cap = ReadCap {
            id: manifest.id(),
            key: self.key,
        };
        Ok((manifest.as_bytes().to_vec(), cap.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_codec::{Cap, Decoder, Manifest};

    #[test]
    fn a_file_coded_in_the_page_decodes_with_its_readcap() {
        let data: Vec<u8> = (0..2_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (mut up, info) = Upload::begin(data.len() as u64).unwrap();
        assert!(info.contains("\"segments\":3"), "{info}");
        let size = Params::default().segment_size() as usize;
        let n = Params::default().columns();
        let mut columns = vec![Vec::new(); n];
        let mut out = Vec::new();
        // Out of turn: a wrong length is refused, nothing is consumed.
        assert!(up.segment(&data[..10], &mut out).is_err());
        for chunk in data.chunks(size) {
            up.segment(chunk, &mut out).unwrap();
            let shard = out.len() / n;
            for (j, c) in columns.iter_mut().enumerate() {
                c.extend_from_slice(&out[j * shard..(j + 1) * shard]);
            }
        }
        assert!(up.segment(&data[..1], &mut out).is_err());
        let (manifest, cap) = up.finish("a.bin", "application/octet-stream").unwrap();
        let cap: Cap = cap.parse().unwrap();
        let manifest = Manifest::from_bytes_verified(&manifest, &cap.id()).unwrap();
        for (j, c) in columns.iter().enumerate() {
            assert_eq!(manifest.columns()[j], mosaic_codec::Hash::of(c));
        }
        let mut decoder = Decoder::new(manifest, cap.key()).unwrap();
        assert_eq!(decoder.metadata().name.as_deref(), Some("a.bin"));
        // Columns 0 and 1 lost: the parity rebuilds them.
        let mut readers: Vec<Option<std::io::Cursor<&[u8]>>> = columns
            .iter()
            .enumerate()
            .map(|(j, c)| (j >= 2).then(|| std::io::Cursor::new(&c[..])))
            .collect();
        let mut got = Vec::new();
        mosaic_codec::decode_file(&mut decoder, &mut readers, &mut got).unwrap();
        assert!(got == data, "the page's encoding decodes to the file");
    }

    #[test]
    fn finishing_early_is_an_error_not_a_panic() {
        let (up, _) = Upload::begin(5_000_000).unwrap();
        assert!(up.finish("x", "").is_err());
    }
}
