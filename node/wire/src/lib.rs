//! `mosaic-wire`: how Mosaic participants find and talk to each other.
//!
//! - [`proto`]: the storage protocol's messages and framing (`/mosaic/storage/1`);
//! - [`request`]: one request to one peer, typed: the storage protocol's exchanges
//!   and iroh-blobs' verified gets, each handshake written once;
//! - [`endpoint`]: the iroh endpoint configured for Mosaic, and dialing a peer;
//! - [`dht`]: content routing and address records on the Mainline DHT;
//! - [`addr`]: what an address record holds: where a participant can be reached;
//! - [`identity`]: secret key files (a participant's identity);
//! - [`relay`]: relays run by Mosaic nodes: their addresses, TLS pins, access token;
//! - [`hosts`]: host names and DNS bootstrap lists (a pure-Rust resolver);
//! - [`limit`]: per-client slots and rates, what one stranger may make a server do.
//!
//! Layer rule (enforced by this crate's dependency list): below it only the codec
//! (for hashes); no storage, no HTTP, no file pipelines. Both the client and the storage
//! node build on it. Every error type answers [`mosaic_codec::ErrorKind`] through
//! `kind()`; a node's refusal reaches callers as a [`proto::Refusal`], never as text.
//! See `docs/architecture.md` and `docs/protocol.md`.
//!
//! Feature `net` (on by default) is the network: without it only the protocol's data
//! compiles ([`proto`]'s messages, [`record`], [`addr`], [`relay`]'s addresses,
//! [`limit`]), with no iroh, for the fuzz targets (`fuzz/`).

pub mod addr;
#[cfg(feature = "net")]
pub mod dht;
// The DHT's receive filter against late answers (issue 27), used by `dht` only.
#[cfg(feature = "net")]
mod dht_late;
#[cfg(feature = "net")]
pub mod endpoint;
#[cfg(feature = "net")]
pub mod hosts;
#[cfg(feature = "net")]
pub mod identity;
pub mod limit;
pub mod proto;
pub mod record;
pub mod relay;
#[cfg(feature = "net")]
pub mod request;
