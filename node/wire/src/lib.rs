//! `mosaic-wire`: how Mosaic participants find and talk to each other.
//!
//! - [`proto`]: the storage protocol's messages and framing (`/mosaic/storage/1`);
//! - [`request`]: one request to one peer, typed: the storage protocol's exchanges
//!   and iroh-blobs' verified gets, each handshake written once;
//! - [`endpoint`]: the iroh endpoint configured for Mosaic, and dialing a peer;
//! - [`dht`]: content routing and address records on the Mainline DHT;
//! - [`identity`]: secret key files (a participant's identity);
//! - [`relay`]: relays run by Mosaic nodes: their addresses, TLS pins, access token;
//! - [`names`]: host names and DNS bootstrap lists (a pure-Rust resolver).
//!
//! Layer rule (enforced by this crate's dependency list): below it only the codec
//! (for hashes); no storage, no HTTP, no file pipelines. Both the client and the storage
//! node build on it. Every error type answers [`mosaic_codec::ErrorKind`] through
//! `kind()`; a node's refusal reaches callers as a [`proto::Refusal`], never as text.
//! See `docs/architecture.md` and `docs/protocol.md`.

pub mod dht;
pub mod endpoint;
pub mod identity;
pub mod names;
pub mod proto;
pub mod record;
pub mod relay;
pub mod request;
