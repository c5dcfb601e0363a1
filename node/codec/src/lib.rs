//! The Mosaic file codec: plaintext ⇄ encrypted, erasure-coded columns + a manifest.
//!
//! Pure and synchronous: functions over byte slices and `std::io` readers and writers,
//! no files, no sockets, no async. Async callers run it under `spawn_blocking` or in a
//! bounded pipeline.
//!
//! ```text
//! plaintext ─▶ segments of S bytes ─▶ seal (XChaCha20-Poly1305, or a BLAKE3 tag when
//! public) ─▶ pad, split into k data shards ─▶ + m Reed–Solomon parity shards
//!   shard j of every segment, concatenated = column j: one BLAKE3-addressed blob
//! manifest = layout + column hashes + sealed metadata;  file id = BLAKE3(manifest)
//! readcap  = file id + file key (text: mr1…);           public id = file id (mi1…)
//! ```
//!
//! Invariants (checked by the tests in `tests/codec.rs`):
//! - any `k` of the `n` columns rebuild the file;
//! - every segment occupies `[i·L, i·L + shard_len(i))` in every column, `L` a multiple
//!   of 1 KiB, so a plaintext range maps to the same chunk range of `k` columns;
//! - no decode ever yields wrong plaintext: a damaged shard fails its segment's tag
//!   (and its column's hash), and the decoder names the column;
//! - memory is one stripe (`n·L` bytes) per encoder or decoder, whatever the file size.
//!
//! The byte-exact format is in `docs/format.md`.
//!
//! Layer rule (enforced by this crate's dependency list): no async runtime, no network,
//! no database, no file system; `std::io` traits only. The crate compiles for
//! `wasm32-unknown-unknown`. Every error type answers [`ErrorKind`] through `kind()`.

mod caps;
mod decode;
mod encode;
mod erasure;
mod hash;
mod kind;
mod layout;
mod manifest;
pub mod name;
mod rebuild;
mod seal;

pub use caps::{Cap, CapError, PublicId, ReadCap};
pub use decode::{
    ColumnFault, DecodeError, DecodeReport, Decoder, MAX_SUBSET_TRIES, Opened, SegmentError,
    decode_file, decode_range, verify_columns,
};
pub use encode::{Access, EncodeError, Encoder, Stripe, encode};
pub use hash::{Hash, HashParseError};
pub use kind::ErrorKind;
pub use layout::{
    COLUMN_ALIGN, DEFAULT_DATA_COLUMNS, DEFAULT_PARITY_COLUMNS, DEFAULT_SEGMENT_SIZE,
    FORMAT_VERSION, LAST_SHARD_ALIGN, Layout, MAX_COLUMNS, MAX_LENGTH, MAX_SEGMENT_SIZE,
    MAX_STRIPE, MIN_SEGMENT_SIZE, Params, ParamsError, TAG_LEN,
};
pub use manifest::{
    MAGIC, MAX_MANIFEST_LEN, MAX_MEDIA_TYPE_LEN, MAX_NAME_LEN, Manifest, ManifestError, Metadata,
    MetadataError,
};
pub use rebuild::{RebuildMismatch, Rebuilder};
pub use seal::{ConvergenceSecret, FileKey, Suite};
