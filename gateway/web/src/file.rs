//! One file opened in the page: its cap, its verified manifest and a decoder.
//!
//! The caller (the service worker) fetches bytes; everything it fetches passes through
//! here to be believed: the manifest is checked against the id the cap names, every
//! column range against that column's hash in the manifest, every segment against its
//! AEAD tag (private) or BLAKE3 tag (public). The key lives only in this struct.

use std::{fmt, fmt::Write as _, ops::Range};

use mosaic_codec::{
    Cap, CapError, DecodeError, Decoder, Hash, MAX_MANIFEST_LEN, Manifest, ManifestError,
    SegmentError,
};

use crate::verify::{self, VerifyError};

/// What went wrong, sorted so the page can say what to do.
#[derive(Debug)]
pub enum WebError {
    /// The link's cap does not parse (damaged, truncated, not a Mosaic cap).
    Cap(CapError),
    /// The key does not open the file, or a private file came without a key.
    Key(DecodeError),
    /// Bytes from the gateway failed verification.
    Verify {
        /// Which blob: "the manifest" or "column N".
        what: String,
        /// Why.
        source: VerifyError,
    },
    /// The manifest verified against the id but does not parse (a faulty encoder).
    Manifest(ManifestError),
    /// A segment did not open from the shards given.
    Segment {
        /// Which segment.
        index: u64,
        /// Why.
        source: SegmentError,
    },
    /// The caller asked for something outside the file.
    Usage(String),
}

impl WebError {
    /// A short machine-readable kind for the page: `cap`, `key`, `corrupt`, `usage`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Cap(_) => "cap",
            Self::Key(_) => "key",
            Self::Verify { .. } | Self::Manifest(_) | Self::Segment { .. } => "corrupt",
            Self::Usage(_) => "usage",
        }
    }
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cap(e) => write!(f, "the link's capability is not usable: {e}"),
            Self::Key(e) => write!(f, "{e}"),
            Self::Verify { what, source } => write!(f, "{what} failed verification: {source}"),
            Self::Manifest(e) => write!(f, "the manifest is malformed: {e}"),
            Self::Segment { index, source } => match source {
                SegmentError::NotEnoughShards { present } => write!(
                    f,
                    "segment {index}: only {present} verified columns; the file cannot be rebuilt from this gateway now"
                ),
                SegmentError::Corrupt { columns } => write!(
                    f,
                    "segment {index} does not open from columns {columns:?} although they verify: the uploader wrote inconsistent data"
                ),
            },
            Self::Usage(what) => f.write_str(what),
        }
    }
}

/// A file the page can read.
#[derive(Debug)]
pub struct File {
    decoder: Decoder,
    id: Hash,
    /// The segment begun, if any: shards go to the decoder only after `begin`.
    current: Option<u64>,
}

/// The id a cap names and whether it carries a key, without fetching anything.
pub fn parse_cap(text: &str) -> Result<(Hash, bool), WebError> {
    let cap: Cap = text.trim().parse().map_err(WebError::Cap)?;
    Ok((cap.id(), cap.key().is_some()))
}

impl File {
    /// Opens the file `cap` names from the gateway's answer for its whole manifest.
    pub fn open(cap: &str, manifest_answer: &[u8]) -> Result<Self, WebError> {
        let cap: Cap = cap.trim().parse().map_err(WebError::Cap)?;
        let id = cap.id();
        let mut bytes = Vec::new();
        let claimed = manifest_answer
            .first_chunk::<8>()
            .map(|s| u64::from_le_bytes(*s))
            .unwrap_or(0);
        if claimed > MAX_MANIFEST_LEN as u64 {
            return Err(WebError::Usage(format!(
                "the gateway claims a manifest of {claimed} bytes; a manifest is at most {MAX_MANIFEST_LEN}"
            )));
        }
        verify::verify_range(&id, None, 0..claimed, manifest_answer, &mut bytes).map_err(
            |source| WebError::Verify {
                what: "the manifest".into(),
                source,
            },
        )?;
        let manifest = Manifest::from_bytes_verified(&bytes, &id).map_err(WebError::Manifest)?;
        let decoder = Decoder::new(manifest, cap.key()).map_err(WebError::Key)?;
        Ok(Self {
            decoder,
            id,
            current: None,
        })
    }

    /// What the page needs to plan requests, as JSON: length, segments, columns and
    /// their hashes, `k`, the column span of every segment (`shard` bytes from
    /// `segment × stride`), name and media type.
    pub fn info_json(&self) -> String {
        let layout = self.decoder.layout();
        let params = layout.params();
        let meta = self.decoder.metadata();
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"id\":\"{}\",\"length\":{},\"segments\":{},\"segment_size\":{},\"k\":{},\"n\":{},\"stride\":{},\"last_shard\":{},\"column_len\":{},\"public\":{},\"columns\":[",
            self.id.to_hex(),
            layout.length(),
            layout.segments(),
            params.segment_size(),
            params.data_columns(),
            params.columns(),
            layout.shard_len(),
            layout.segment_shard_len(layout.segments() - 1),
            layout.column_len(),
            self.decoder.manifest().is_public(),
        );
        for (i, c) in self.decoder.manifest().columns().iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(s, "{sep}\"{}\"", c.to_hex());
        }
        s.push_str("],\"name\":");
        json_string(&mut s, meta.name.as_deref());
        s.push_str(",\"type\":");
        json_string(&mut s, meta.media_type.as_deref());
        s.push('}');
        s
    }

    fn check_column(&self, column: usize, segment: u64) -> Result<Range<u64>, WebError> {
        let layout = self.decoder.layout();
        if column >= layout.params().columns() || segment >= layout.segments() {
            return Err(WebError::Usage(format!(
                "no column {column} / segment {segment} in this file"
            )));
        }
        Ok(layout.column_span(segment))
    }

    /// Checks a gateway's answer for column `column`'s span of segment `segment` and
    /// appends the shard to `out`.
    pub fn verify_shard(
        &self,
        column: usize,
        segment: u64,
        answer: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WebError> {
        let span = self.check_column(column, segment)?;
        let hash = self.decoder.manifest().columns()[column];
        let expected = self.decoder.layout().column_len();
        verify::verify_range(&hash, Some(expected), span, answer, out).map_err(|source| {
            WebError::Verify {
                what: format!("column {column}"),
                source,
            }
        })?;
        Ok(())
    }

    /// Checks a gateway's answer for column `column`'s span of the current segment,
    /// `segment`, straight into the decoder's slot, and marks the shard present. On
    /// error the shard is not present.
    pub fn verify_into_slot(
        &mut self,
        column: usize,
        segment: u64,
        answer: &[u8],
    ) -> Result<(), WebError> {
        let span = self.check_column(column, segment)?;
        if self.current != Some(segment) {
            return Err(WebError::Usage(format!("segment {segment} was not begun")));
        }
        let hash = self.decoder.manifest().columns()[column];
        let expected = self.decoder.layout().column_len();
        self.decoder.set_present(column, false);
        verify::verify_range_into(
            &hash,
            Some(expected),
            span,
            answer,
            self.decoder.shard_mut(column),
        )
        .map_err(|source| WebError::Verify {
            what: format!("column {column}"),
            source,
        })?;
        self.decoder.set_present(column, true);
        Ok(())
    }

    /// Starts segment `segment`: no shard present.
    pub fn begin(&mut self, segment: u64) -> Result<(), WebError> {
        self.check_column(0, segment)?;
        self.decoder.begin_segment(segment);
        self.current = Some(segment);
        Ok(())
    }

    /// Checks that a segment was begun and `column` exists.
    fn check_slot(&self, column: usize) -> Result<(), WebError> {
        if self.current.is_none() {
            return Err(WebError::Usage("no segment begun".into()));
        }
        if column >= self.decoder.layout().params().columns() {
            return Err(WebError::Usage(format!("no column {column}")));
        }
        Ok(())
    }

    /// Gives column `column`'s verified shard of the current segment.
    pub fn put_shard(&mut self, column: usize, shard: &[u8]) -> Result<(), WebError> {
        self.check_slot(column)?;
        let slot = self.decoder.shard_mut(column);
        if slot.len() != shard.len() {
            return Err(WebError::Usage(format!(
                "column {column}'s shard is {} bytes; this segment's shards are {}",
                shard.len(),
                slot.len()
            )));
        }
        slot.copy_from_slice(shard);
        self.decoder.set_present(column, true);
        Ok(())
    }

    /// Opens the current segment from the shards given: its plaintext. `segment` must
    /// be the one begun.
    pub fn open_segment(&mut self, segment: u64) -> Result<&[u8], WebError> {
        if self.current != Some(segment) {
            return Err(WebError::Usage(format!("segment {segment} was not begun")));
        }
        self.decoder
            .open_segment()
            .map(|opened| opened.plaintext)
            .map_err(|source| WebError::Segment {
                index: segment,
                source,
            })
    }
}

fn json_string(s: &mut String, v: Option<&str>) {
    let Some(v) = v else {
        s.push_str("null");
        return;
    };
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use bao_tree::io::{outboard::PreOrderMemOutboard, sync::encode_ranges_validated};
    use mosaic_codec::{Access, FileKey, Metadata, Params, ReadCap, encode};

    use super::*;
    use crate::verify;

    fn answer(data: &[u8]) -> Vec<u8> {
        let outboard = PreOrderMemOutboard::create(data, verify::BLOCK_SIZE);
        let mut out = (data.len() as u64).to_le_bytes().to_vec();
        let range = 0..data.len() as u64;
        encode_ranges_validated(data, &outboard, &verify::chunk_ranges(&range), &mut out)
            .expect("encodes");
        out
    }

    #[test]
    fn calls_out_of_order_are_errors_not_panics() {
        let params = Params::default();
        let key = FileKey::random();
        let mut columns = vec![Vec::new(); params.columns()];
        let data = vec![7u8; 5000];
        let manifest = encode(
            params,
            &Access::Private(key.clone()),
            &Metadata::default(),
            data.len() as u64,
            Cursor::new(&data),
            &mut columns,
        )
        .expect("encodes");
        let cap = ReadCap {
            id: manifest.id(),
            key,
        }
        .to_string();
        let mut file = File::open(&cap, &answer(manifest.as_bytes())).expect("opens");
        // Before any segment is begun, or past the last, or a column that does not exist.
        assert_eq!(file.put_shard(0, &[1, 2]).unwrap_err().kind(), "usage");
        assert_eq!(file.open_segment(0).unwrap_err().kind(), "usage");
        assert_eq!(
            file.verify_into_slot(0, 0, &[]).unwrap_err().kind(),
            "usage"
        );
        assert_eq!(file.begin(1).unwrap_err().kind(), "usage");
        file.begin(0).expect("segment 0");
        assert_eq!(file.put_shard(5, &[]).unwrap_err().kind(), "usage");
        assert_eq!(file.put_shard(0, &[1, 2]).unwrap_err().kind(), "usage");
        assert_eq!(file.open_segment(1).unwrap_err().kind(), "usage");
        // Too few shards: the segment's error, then the file reads from k columns.
        assert_eq!(file.open_segment(0).unwrap_err().kind(), "corrupt");
        for (c, column) in columns.iter().enumerate().skip(2) {
            let mut shard = Vec::new();
            file.verify_shard(c, 0, &answer(column), &mut shard)
                .expect("one segment: its span is the whole column");
            file.put_shard(c, &shard).expect("shard");
        }
        assert_eq!(
            file.open_segment(0).expect("rebuilt from 2 parity columns"),
            &data[..]
        );
        // The same, verified straight into the decoder's slots; a bad answer is not used.
        file.begin(0).expect("segment 0");
        let mut bad = answer(&columns[0]);
        let at = bad.len() - 1;
        bad[at] ^= 1;
        assert_eq!(
            file.verify_into_slot(0, 0, &bad).unwrap_err().kind(),
            "corrupt"
        );
        for (c, column) in columns.iter().enumerate().skip(2) {
            file.verify_into_slot(c, 0, &answer(column))
                .expect("verifies");
        }
        assert_eq!(file.open_segment(0).expect("opens"), &data[..]);
    }
}
