//! What one peer may make a storage node do: connections, requests in flight, uploads
//! and DHT work at once, and a request budget a second weighted by what each request
//! costs the node. Limits and costs: `docs/operations.md`, "Limits".
//!
//! Invariants: every storage-protocol request passes `PeerLimits::admit` before any
//! work is done for it; over a limit, it is refused with
//! [`mosaic_wire::proto::Refusal::Busy`] (the peer may try again later or elsewhere)
//! and changes nothing; state is per peer identity and bounded (see
//! [`mosaic_wire::limit`]).

use std::time::Instant;

use iroh::EndpointId;
use mosaic_wire::{
    limit::{Buckets, Rate, Slot, Slots},
    proto::Request,
};

/// Limits per peer identity.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerLimitOptions {
    /// Connections open at once.
    pub connections: usize,
    /// Requests being answered at once.
    pub in_flight: usize,
    /// Uploads (stores and adoptions) at once.
    pub uploads: usize,
    /// DHT work at once: lookups, name records, repair checks asked for.
    pub dht: usize,
    /// Request cost units a second, and at once (see [`cost`]).
    pub rate: Rate,
}

impl Default for PeerLimitOptions {
    /// Far above what a client's put or get, a gateway, or a repairing peer asks
    /// (measured in `docs/performance.md`), far below what takes the node down.
    fn default() -> Self {
        Self {
            connections: 16,
            in_flight: 128,
            uploads: 32,
            dht: 8,
            rate: Rate {
                per_second: 1000.0,
                burst: 4000,
            },
        }
    }
}

/// What a request costs the node, in units of the cheapest (a lookup in its own
/// database): hashes asked about, bytes to store, DHT queries it starts.
pub fn cost(request: &Request) -> u32 {
    let per_hashes = |n: usize| 1 + (n / 64) as u32;
    match request {
        Request::Stat { hashes }
        | Request::Status { hashes }
        | Request::Pin { hashes }
        | Request::Unpin { hashes } => per_hashes(hashes.len()),
        // Each MiB is a write to disk and a hash.
        Request::Store { size } | Request::Adopt { size, .. } => {
            1 + u32::try_from(size >> 20).unwrap_or(u32::MAX)
        }
        // A DHT lookup: tens of datagrams over a few round trips.
        Request::Lookup(_) => 16,
        // A DHT put (after a read).
        Request::HoldName { .. } => 32,
        // A check of a whole file: lookups of every column's holders.
        Request::Repair { .. } => 64,
    }
}

/// The name of a request's kind, for metrics and refusals.
pub fn kind(request: &Request) -> &'static str {
    match request {
        Request::Stat { .. } => "stat",
        Request::Status { .. } => "status",
        Request::Pin { .. } => "pin",
        Request::Unpin { .. } => "unpin",
        Request::Store { .. } => "store",
        Request::Adopt { .. } => "adopt",
        Request::Lookup(_) => "lookup",
        Request::HoldName { .. } => "hold_name",
        Request::Repair { .. } => "repair",
    }
}

/// The state behind the limits.
#[derive(Debug)]
pub(crate) struct PeerLimits {
    options: PeerLimitOptions,
    connections: Slots<EndpointId>,
    in_flight: Slots<EndpointId>,
    uploads: Slots<EndpointId>,
    dht: Slots<EndpointId>,
    budget: Buckets<EndpointId>,
}

/// Peers whose request budget is remembered.
const REMEMBERED: usize = 65_536;

/// A limit a peer is over: which, and what to tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OverLimit {
    /// The limit's name (metrics).
    pub limit: &'static str,
    /// For the peer.
    pub message: String,
}

/// What an admitted request holds until it is answered.
#[derive(Debug)]
pub(crate) struct Admitted {
    _slots: Vec<Slot<EndpointId>>,
}

impl PeerLimits {
    pub(crate) fn new(options: PeerLimitOptions) -> Self {
        Self {
            connections: Slots::new(options.connections),
            in_flight: Slots::new(options.in_flight),
            uploads: Slots::new(options.uploads),
            dht: Slots::new(options.dht),
            budget: Buckets::new(options.rate, REMEMBERED),
            options,
        }
    }

    /// One of `peer`'s connections, or what to tell it.
    pub(crate) fn connection(&self, peer: EndpointId) -> Result<Slot<EndpointId>, OverLimit> {
        self.connections.take(peer).ok_or_else(|| OverLimit {
            limit: "connections",
            message: format!(
                "at most {} connections from one peer: reuse one",
                self.options.connections
            ),
        })
    }

    /// Admits `request` from `peer` at `now`, or says which limit it is over.
    pub(crate) fn admit(
        &self,
        peer: EndpointId,
        request: &Request,
        now: Instant,
    ) -> Result<Admitted, OverLimit> {
        let over = |limit: &'static str, what: &str, n: usize| OverLimit {
            limit,
            message: format!(
                "this node answers at most {n} {what} from one peer at once: wait for some to finish"
            ),
        };
        let mut slots = Vec::with_capacity(2);
        slots.push(
            self.in_flight
                .take(peer)
                .ok_or_else(|| over("in_flight", "requests", self.options.in_flight))?,
        );
        match request {
            Request::Store { .. } | Request::Adopt { .. } => {
                slots.push(
                    self.uploads
                        .take(peer)
                        .ok_or_else(|| over("uploads", "uploads", self.options.uploads))?,
                );
            }
            Request::Lookup(_) | Request::HoldName { .. } | Request::Repair { .. } => {
                slots.push(self.dht.take(peer).ok_or_else(|| {
                    over(
                        "dht",
                        "lookups, name records or repair checks",
                        self.options.dht,
                    )
                })?);
            }
            _ => {}
        }
        if let Err(wait) = self.budget.admit(peer, cost(request), now) {
            return Err(OverLimit {
                limit: "rate",
                message: format!(
                    "too many requests from one peer ({} cost units a second here): try again in {} ms",
                    self.options.rate.per_second,
                    // Rounded up: a peer that waits as told is admitted.
                    wait.as_nanos().div_ceil(1_000_000).max(1)
                ),
            });
        }
        Ok(Admitted { _slots: slots })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> EndpointId {
        iroh::SecretKey::from_bytes(&[n; 32]).public()
    }

    #[test]
    fn each_limit_is_per_peer_and_given_back() {
        let limits = PeerLimits::new(PeerLimitOptions {
            connections: 1,
            in_flight: 3,
            uploads: 1,
            dht: 1,
            rate: Rate {
                per_second: 0.0,
                burst: 1,
            },
        });
        let (a, b) = (peer(1), peer(2));
        let c = limits.connection(a).expect("first connection");
        assert_eq!(
            limits.connection(a).expect_err("second").limit,
            "connections"
        );
        assert!(limits.connection(b).is_ok(), "another peer has its own");
        drop(c);
        assert!(limits.connection(a).is_ok());

        let now = Instant::now();
        let store = Request::Store { size: 10 };
        let lookup = Request::Lookup(mosaic_wire::proto::Lookup::StorageNodes);
        let stat = Request::Stat { hashes: vec![] };
        let up = limits.admit(a, &store, now).expect("one upload");
        assert_eq!(
            limits.admit(a, &store, now).expect_err("two").limit,
            "uploads"
        );
        let dht = limits.admit(a, &lookup, now).expect("one lookup");
        assert_eq!(limits.admit(a, &lookup, now).expect_err("two").limit, "dht");
        let s = limits.admit(a, &stat, now).expect("a third request");
        let full = limits.admit(a, &stat, now).expect_err("a fourth");
        assert_eq!(full.limit, "in_flight");
        assert!(
            full.message.contains("at most 3 requests"),
            "{}",
            full.message
        );
        assert!(
            limits.admit(b, &store, now).is_ok(),
            "another peer is not held up"
        );
        drop((up, dht, s));
        assert!(limits.admit(a, &store, now).is_ok(), "slots come back");
    }

    #[test]
    fn dear_requests_spend_the_budget_faster() {
        let limits = PeerLimits::new(PeerLimitOptions {
            rate: Rate {
                per_second: 100.0,
                burst: 100,
            },
            ..PeerLimitOptions::default()
        });
        let now = Instant::now();
        let repair = Request::Repair { file: [0; 32] };
        assert!(limits.admit(peer(1), &repair, now).is_ok());
        let over = limits
            .admit(peer(1), &repair, now)
            .expect_err("64 + 64 > 100");
        assert_eq!(over.limit, "rate");
        assert!(
            over.message.contains("try again in 280 ms"),
            "{}",
            over.message
        );
        for _ in 0..36 {
            assert!(
                limits
                    .admit(peer(1), &Request::Stat { hashes: vec![] }, now)
                    .is_ok()
            );
        }
        assert!(
            limits
                .admit(peer(1), &Request::Stat { hashes: vec![] }, now)
                .is_err()
        );
        assert_eq!(cost(&Request::Store { size: 5 << 20 }), 6);
        assert_eq!(
            cost(&Request::Stat {
                hashes: vec![[0; 32]; 128]
            }),
            3
        );
    }
}
