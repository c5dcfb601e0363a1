//! The streaming encoder: plaintext → `n` columns + the manifest, one segment at a time.
//!
//! Stages per segment, in order: read `S` bytes into the stripe buffer → seal in place
//! (tag appended) → zero the padding → Reed–Solomon parity → hash every shard into its
//! column's BLAKE3 hasher → hand the `n` shards to the caller. Memory is one stripe
//! (`n · L` bytes, ≈ 1.7 MiB at the defaults) whatever the file size.
//!
//! The plaintext length is declared up front because every segment's tag binds it; a
//! source that ends early or runs long is an error (the file changed while being read),
//! never a silently different file.

use std::io::{self, Read, Write};

use super::{
    erasure::Erasure,
    hash::Hash,
    layout::{Layout, MAX_LENGTH, Params, TAG_LEN},
    manifest::{Manifest, Metadata, MetadataError},
    seal::{FileKey, SALT_LEN, Sealer, Suite},
};

/// Who may read the file.
#[derive(Debug, Clone)]
pub enum Access {
    /// Everyone: segments are not encrypted. Share the [`super::PublicId`].
    Public,
    /// Holders of the key: segments are sealed with XChaCha20-Poly1305.
    Private(FileKey),
}

/// Encoding failed; nothing written so far is a valid file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The source ended before the declared length.
    #[error(
        "the input ended after {read} of the {expected} bytes expected: did the file shrink while it was read?"
    )]
    InputTooShort {
        /// Declared length.
        expected: u64,
        /// Bytes actually read.
        read: u64,
    },
    /// The source has more than the declared length.
    #[error(
        "the input has more than the {expected} bytes expected: did the file grow while it was read?"
    )]
    InputTooLong {
        /// Declared length.
        expected: u64,
    },
    /// Reading the source failed.
    #[error("reading the input failed at byte {offset}: {source}")]
    Read {
        /// Bytes read before the failure.
        offset: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// Writing a column failed.
    #[error("writing column {column} failed: {source}")]
    WriteColumn {
        /// The column index.
        column: usize,
        /// The I/O error.
        source: io::Error,
    },
    /// Wrong number of column outputs.
    #[error("{given} column outputs were given for {expected} columns")]
    ColumnCount {
        /// Outputs given.
        given: usize,
        /// `n`.
        expected: usize,
    },
    /// The file exceeds the format's maximum length.
    #[error("the file is {length} bytes; the format's maximum is {MAX_LENGTH}")]
    TooLarge {
        /// The declared length.
        length: u64,
    },
    /// Metadata that cannot be stored.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Encoding a file again ([`Encoder::again`]), a segment came out other than the
    /// first time: the input changed in between. Nothing of that segment was emitted.
    #[error(
        "segment {segment} of the input differs from when it was first encoded: did the file change while it was uploaded?"
    )]
    InputChanged {
        /// The segment.
        segment: u64,
    },
}

/// The `n` shards of one segment, column 0 first.
#[derive(Debug)]
pub struct Stripe<'a> {
    buf: &'a [u8],
    shard_len: usize,
    index: u64,
    tag: [u8; TAG_LEN],
}

impl<'a> Stripe<'a> {
    /// Segment index.
    pub fn index(&self) -> u64 {
        self.index
    }
    /// The segment's authentication tag: keep them to encode the file again
    /// ([`Encoder::again`]).
    pub fn tag(&self) -> [u8; TAG_LEN] {
        self.tag
    }
    /// Shard `column` (`0..n`).
    pub fn shard(&self, column: usize) -> &'a [u8] {
        &self.buf[column * self.shard_len..(column + 1) * self.shard_len]
    }
    /// All `n` shards in column order.
    pub fn shards(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.buf.chunks_exact(self.shard_len)
    }
}

/// Encodes one file segment by segment. See [`encode`] for the whole loop.
#[derive(Debug)]
pub struct Encoder {
    suite: Suite,
    layout: Layout,
    salt: [u8; SALT_LEN],
    /// Encoding again ([`Encoder::again`]): each segment's tag from the first time.
    expected_tags: Option<Vec<[u8; TAG_LEN]>>,
    sealer: Sealer,
    erasure: Erasure,
    hashers: Vec<blake3::Hasher>,
    stripe: Vec<u8>,
    next: u64,
    read: u64,
}

impl Encoder {
    /// An encoder for a file of exactly `length` bytes.
    pub fn new(params: Params, access: &Access, length: u64) -> Result<Self, EncodeError> {
        let layout = Layout::new(params, length).ok_or(EncodeError::TooLarge { length })?;
        let salt = match access {
            Access::Public => [0; SALT_LEN],
            Access::Private(key) => key.salt(),
        };
        Ok(Self::with_salt(layout, access, salt, None))
    }

    /// An encoder that produces the columns of an earlier encoding of the same file
    /// again (to send a column to another node after the first one failed): same key,
    /// same salt as `manifest`, so the same bytes. `tags` are the segments' tags from
    /// the first encoding ([`Stripe::tag`]); a segment whose tag differs (the input
    /// changed) is refused with [`EncodeError::InputChanged`] before any of its bytes
    /// are emitted, so a nonce is never used for two different plaintexts.
    pub fn again(
        manifest: &Manifest,
        access: &Access,
        tags: Vec<[u8; TAG_LEN]>,
    ) -> Result<Self, EncodeError> {
        let layout = *manifest.layout();
        if tags.len() as u64 != layout.segments() {
            return Err(EncodeError::InputChanged {
                segment: tags.len().min(layout.segments() as usize) as u64,
            });
        }
        Ok(Self::with_salt(layout, access, manifest.salt(), Some(tags)))
    }

    fn with_salt(
        layout: Layout,
        access: &Access,
        salt: [u8; SALT_LEN],
        expected_tags: Option<Vec<[u8; TAG_LEN]>>,
    ) -> Self {
        let params = layout.params();
        let (suite, key) = match access {
            Access::Public => (Suite::Public, None),
            Access::Private(key) => (Suite::XChaCha20Poly1305, Some(key)),
        };
        let n = params.columns();
        Self {
            suite,
            layout,
            salt,
            expected_tags,
            sealer: Sealer::new(suite, layout, salt, key),
            erasure: Erasure::new(params.data_columns(), params.parity_columns()),
            hashers: vec![blake3::Hasher::new(); n],
            stripe: vec![0; n * max_shard_len(&layout)],
            next: 0,
            read: 0,
        }
    }

    /// The file's geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Reads the next segment from `input` and codes it; `None` once every segment is
    /// done. Reads exactly the segment's plaintext length, no more.
    pub fn next_stripe(
        &mut self,
        input: &mut impl Read,
    ) -> Result<Option<Stripe<'_>>, EncodeError> {
        let index = self.next;
        if index == self.layout.segments() {
            return Ok(None);
        }
        let params = self.layout.params();
        let (k, n) = (params.data_columns(), params.columns());
        let plain = self.layout.plain_len(index);
        let sealed = plain + TAG_LEN;
        let shard = self.layout.segment_shard_len(index);
        let buf = &mut self.stripe[..n * shard];

        let got = read_full(input, &mut buf[..plain]).map_err(|source| EncodeError::Read {
            offset: self.read,
            source,
        })?;
        self.read += got as u64;
        if got < plain {
            return Err(EncodeError::InputTooShort {
                expected: self.layout.length(),
                read: self.read,
            });
        }
        self.sealer.seal_segment(index, &mut buf[..sealed]);
        let tag: [u8; TAG_LEN] = buf[plain..sealed].try_into().expect("TAG_LEN bytes");
        if let Some(expected) = &self.expected_tags {
            if expected[index as usize] != tag {
                // Wipe the segment sealed under a nonce already used for other bytes.
                buf.fill(0);
                return Err(EncodeError::InputChanged { segment: index });
            }
        }
        buf[sealed..k * shard].fill(0);
        let (data, parity) = buf.split_at_mut(k * shard);
        let data: Vec<&[u8]> = data.chunks_exact(shard).collect();
        let mut parity: Vec<&mut [u8]> = parity.chunks_exact_mut(shard).collect();
        self.erasure.encode(&data, &mut parity);
        for (hasher, s) in self.hashers.iter_mut().zip(buf.chunks_exact(shard)) {
            hasher.update(s);
        }
        self.next += 1;
        Ok(Some(Stripe {
            buf: &self.stripe[..n * shard],
            shard_len: shard,
            index,
            tag,
        }))
    }

    /// The manifest, once every segment has been coded.
    ///
    /// # Panics
    /// If called before [`Encoder::next_stripe`] returned `None`: a programming error.
    pub fn finish(self, metadata: &Metadata) -> Result<Manifest, EncodeError> {
        assert_eq!(
            self.next,
            self.layout.segments(),
            "finish() before the last segment"
        );
        let columns = self
            .hashers
            .iter()
            .map(|h| Hash::from(h.finalize()))
            .collect();
        Ok(Manifest::build(
            self.suite,
            self.layout,
            self.salt,
            columns,
            metadata,
            &self.sealer,
        )?)
    }
}

/// Encodes `length` bytes of `input` into `columns` (one writer per column, `n` in all)
/// and returns the manifest. Checks that `input` holds exactly `length` bytes.
pub fn encode<W: Write>(
    params: Params,
    access: &Access,
    metadata: &Metadata,
    length: u64,
    mut input: impl Read,
    columns: &mut [W],
) -> Result<Manifest, EncodeError> {
    if columns.len() != params.columns() {
        return Err(EncodeError::ColumnCount {
            given: columns.len(),
            expected: params.columns(),
        });
    }
    // Reject bad metadata before reading a byte.
    metadata.encode()?;
    let mut encoder = Encoder::new(params, access, length)?;
    while let Some(stripe) = encoder.next_stripe(&mut input)? {
        for (column, (out, shard)) in columns.iter_mut().zip(stripe.shards()).enumerate() {
            out.write_all(shard)
                .map_err(|source| EncodeError::WriteColumn { column, source })?;
        }
    }
    let mut probe = [0u8; 1];
    if read_full(&mut input, &mut probe).map_err(|source| EncodeError::Read {
        offset: length,
        source,
    })? != 0
    {
        return Err(EncodeError::InputTooLong { expected: length });
    }
    encoder.finish(metadata)
}

/// The largest shard of a file: a one-segment file needs only its own (small) stripe.
pub(crate) fn max_shard_len(layout: &Layout) -> usize {
    (0..layout.segments().min(2))
        .map(|i| layout.segment_shard_len(i))
        .max()
        .unwrap_or(0)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(crate) fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
