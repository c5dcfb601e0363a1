//! `mosaic-server`: a Mosaic storage node, what `mosaic node run` runs.
//!
//! - [`node`]: the wiring ([`Node::spawn`]): identity, store, endpoint, DHT, tasks;
//! - `handler.rs`: the storage protocol's handler (store, pin, unpin, stat, status);
//! - [`store`]: the node's blobs (iroh-blobs file store) with pins, orphans and
//!   quotas (redb);
//! - `announcer.rs`: keeps the node's DHT records fresh;
//! - `collector.rs`: drops unpinned blobs above the high watermark;
//! - `health.rs`: checks the files it holds part of and repairs them (keyless, no
//!   coordinator), by the pure rules of [`policy`];
//! - [`peers`]: what one peer may make the node do (limits per peer identity);
//! - [`metrics`]: counters and gauges for `/metrics`;
//! - `scrub.rs`: re-hashes what it stores at a bounded rate and heals what rotted.
//!
//! Layer rule (enforced by this crate's dependency list): it builds on the client (a
//! node repairing a file is a client of its peers), the wire and the codec; it never
//! depends on the gateway or the CLI. See `docs/architecture.md`.

mod announcer;
mod collector;
mod handler;
mod health;
pub mod metrics;
mod names;
pub mod node;
pub mod peers;
pub mod policy;
pub mod relay;
mod scrub;
pub mod store;

pub use announcer::AnnounceStatus;
pub use handler::Admission;
pub use health::{CHECKS_IN_FLIGHT, HealthOptions};
pub use node::{
    DEFAULT_CAPACITY, DEFAULT_DHT_PORT, DEFAULT_QUIC_PORT, Node, NodeError, NodeOptions,
};
pub use peers::PeerLimitOptions;
