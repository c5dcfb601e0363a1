//! `mosaic-node`: everything a Mosaic participant runs.
//!
//! - [`codec`]: the pure, synchronous transformation between a plaintext file and its
//!   erasure-coded, encrypted, BLAKE3-addressed *columns* plus the *manifest*;
//! - [`store`]: a node's blobs (iroh-blobs) and pins (redb);
//! - [`proto`]: Mosaic's storage protocol; [`net`]: the iroh endpoint;
//! - [`dht`]: content routing and address lookup on the Mainline DHT;
//! - [`daemon`]: a storage node; [`client`]: the put pipeline and the client's
//!   connections; [`reader`]: reading files segment by segment (get, gateway);
//!   [`pinning`]: pinning a file's blobs and reading where they are pinned.
//!
//! See `docs/architecture.md`.
//!
//! Dependencies point down only: the codec knows nothing of files, sockets or async
//! runtimes, so it can be property-tested and benchmarked alone.

pub mod client;
pub mod codec;
pub mod daemon;
pub mod dht;
pub mod dir;
pub mod identity;
pub mod net;
pub mod pinning;
pub mod proto;
pub mod reader;
pub mod store;
