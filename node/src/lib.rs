//! `mosaic-node`: everything a Mosaic participant runs.
//!
//! Today this crate holds the [`codec`]: the pure, synchronous transformation between a
//! plaintext file and its erasure-coded, encrypted, BLAKE3-addressed *columns* plus the
//! small *manifest* that names them. The store, network, DHT and client pipelines are
//! built on top of it (see `docs/architecture.md`).
//!
//! Dependencies point down only: the codec knows nothing of files, sockets or async
//! runtimes, so it can be property-tested and benchmarked alone.

pub mod codec;
