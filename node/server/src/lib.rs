//! `mosaic-server`: a Mosaic storage node, what `mosaic node run` runs.
//!
//! - [`node`]: the wiring ([`Node::spawn`]): identity, store, endpoint, DHT, tasks;
//! - `handler.rs`: the storage protocol's handler (store, pin, unpin, stat, status);
//! - [`store`]: the node's blobs (iroh-blobs file store) with pins, orphans and
//!   quotas (redb);
//! - `announcer.rs`: keeps the node's DHT records fresh;
//! - `collector.rs`: drops unpinned blobs above the high watermark.
//!
//! Repair and scrub, when they come, are background tasks beside the announcer and
//! the collector.
//!
//! Layer rule (enforced by this crate's dependency list): it builds on the wire and the
//! codec; it never depends on the client, the gateway or the CLI. See
//! `docs/architecture.md`.

mod announcer;
mod collector;
mod handler;
pub mod node;
pub mod store;

pub use announcer::AnnounceStatus;
pub use node::{Admission, Node, NodeError, NodeOptions};
