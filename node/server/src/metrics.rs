//! A storage node's metrics, in the Prometheus/OpenMetrics text format
//! (`prometheus-client`), served by `mosaic node run --metrics ADDR` at `/metrics`.
//! Names and meanings: `docs/operations.md`, "Metrics".
//!
//! Counters are bumped where things happen (the storage protocol's handler); gauges of
//! state (space, blobs, backlogs, DHT peers, health) are read when the text is rendered,
//! so a scrape sees them as of that moment and nothing polls in between. So are the
//! counts kept elsewhere (late DHT answers, counted by the DHT's receive filter): their
//! counter is raised to the count read, never lowered.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use mosaic_wire::proto::HealthStats;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabel {
    request: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

/// What a node counts.
#[derive(Debug)]
pub struct NodeMetrics {
    registry: Registry,
    requests: Family<RequestLabel, Counter>,
    limited: Family<LimitLabel, Counter>,
    connections: Gauge,
    bytes_received: Counter,
    dht_late_dropped: Counter,
    state: State,
}

/// Gauges set at render time.
#[derive(Debug, Default)]
struct State {
    capacity: Gauge,
    used: Gauge,
    blobs: Gauge,
    announce_backlog: Gauge,
    dht_peers: Gauge,
    names: Gauge,
    files: Gauge,
    repair_backlog: Gauge,
    repairs_done: Gauge,
    repairs_failed: Gauge,
    corrupt_found: Gauge,
    dht_request_timeout: Gauge<f64, AtomicU64>,
}

/// What the node is, as of a scrape.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    /// Bytes it may hold.
    pub capacity: u64,
    /// Bytes it holds.
    pub used: u64,
    /// Blobs it holds.
    pub blobs: u64,
    /// Records the announcer has yet to publish.
    pub announce_backlog: u64,
    /// Nodes in its DHT routing table.
    pub dht_peers: u64,
    /// Name records it keeps.
    pub names: u64,
    /// Health checks, repair, scrub.
    pub health: HealthStats,
    /// The DHT's KRPC request timeout, as estimated by its receive filter.
    pub dht_request_timeout: Duration,
    /// DHT answers dropped because they came after their request had timed out.
    pub dht_late_answers_dropped: u64,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mosaic_node");
        let requests = Family::<RequestLabel, Counter>::default();
        registry.register(
            "requests",
            "Storage-protocol requests answered, by request and outcome (ok, or the refusal)",
            requests.clone(),
        );
        let limited = Family::<LimitLabel, Counter>::default();
        registry.register(
            "peer_limited",
            "Requests and connections refused because one peer was over a limit, by limit",
            limited.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Storage-protocol connections open",
            connections.clone(),
        );
        let bytes_received = Counter::default();
        registry.register(
            "upload_bytes",
            "Bytes of blobs received and kept (stores and adoptions)",
            bytes_received.clone(),
        );
        let state = State::default();
        let gauges: [(&str, &str, &Gauge); 11] = [
            ("capacity_bytes", "Bytes the node may hold", &state.capacity),
            ("used_bytes", "Bytes held", &state.used),
            ("blobs", "Blobs held", &state.blobs),
            (
                "announce_backlog",
                "Records the announcer has yet to publish in its round",
                &state.announce_backlog,
            ),
            (
                "dht_peers",
                "Nodes in the DHT routing table",
                &state.dht_peers,
            ),
            ("names", "Name records kept and republished", &state.names),
            ("files", "Files this node holds part of", &state.files),
            (
                "repair_backlog",
                "Files waiting for a repair",
                &state.repair_backlog,
            ),
            ("repairs_done", "Repairs completed", &state.repairs_done),
            (
                "repairs_failed",
                "Repairs that failed",
                &state.repairs_failed,
            ),
            (
                "corrupt_blobs_found",
                "Blobs the scrubber found corrupt (and dropped)",
                &state.corrupt_found,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "dht_request_timeout_seconds",
            "The DHT's request timeout as estimated from the answers it let through (at least 0.5 s)",
            state.dht_request_timeout.clone(),
        );
        let dht_late_dropped = Counter::default();
        registry.register(
            "dht_late_answers_dropped",
            "DHT answers dropped because they came after their request had timed out",
            dht_late_dropped.clone(),
        );
        Self {
            registry,
            requests,
            limited,
            connections,
            bytes_received,
            dht_late_dropped,
            state,
        }
    }

    /// A request of kind `request` was answered with `outcome`.
    pub(crate) fn request(&self, request: &'static str, outcome: &'static str) {
        self.requests
            .get_or_create(&RequestLabel { request, outcome })
            .inc();
    }

    /// A peer went over the limit named `limit`.
    pub(crate) fn limited(&self, limit: &'static str) {
        self.limited.get_or_create(&LimitLabel { limit }).inc();
    }

    pub(crate) fn connection_opened(&self) {
        self.connections.inc();
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.dec();
    }

    pub(crate) fn received(&self, bytes: u64) {
        self.bytes_received.inc_by(bytes);
    }

    /// The text exposition, with the state gauges set from `state`.
    pub fn render(&self, state: &NodeState) -> String {
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let s = &self.state;
        s.capacity.set(g(state.capacity));
        s.used.set(g(state.used));
        s.blobs.set(g(state.blobs));
        s.announce_backlog.set(g(state.announce_backlog));
        s.dht_peers.set(g(state.dht_peers));
        s.names.set(g(state.names));
        s.files.set(g(state.health.files));
        s.repair_backlog.set(g(state.health.repair_backlog));
        s.repairs_done.set(g(state.health.repairs_done));
        s.repairs_failed.set(g(state.health.repairs_failed));
        s.corrupt_found.set(g(state.health.corrupt_found));
        s.dht_request_timeout
            .set(state.dht_request_timeout.as_secs_f64());
        // Counted by the DHT filter: raise ours to its count (a max, so two scrapes
        // racing cannot count anything twice).
        self.dht_late_dropped
            .inner()
            .fetch_max(state.dht_late_answers_dropped, Ordering::Relaxed);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_state_appear_in_the_text() {
        let m = NodeMetrics::new();
        m.request("store", "ok");
        m.request("store", "ok");
        m.request("lookup", "busy");
        m.limited("rate");
        m.received(1234);
        let text = m.render(&NodeState {
            capacity: 10,
            used: 3,
            dht_peers: 7,
            dht_request_timeout: Duration::from_millis(750),
            dht_late_answers_dropped: 5,
            ..NodeState::default()
        });
        assert!(
            text.contains(r#"mosaic_node_requests_total{request="store",outcome="ok"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"mosaic_node_peer_limited_total{limit="rate"} 1"#));
        assert!(text.contains("mosaic_node_upload_bytes_total 1234"));
        assert!(text.contains("mosaic_node_capacity_bytes 10"));
        assert!(text.contains("mosaic_node_dht_peers 7"));
        assert!(text.contains("mosaic_node_dht_request_timeout_seconds 0.75"));
        assert!(text.contains("mosaic_node_dht_late_answers_dropped_total 5"));
        assert!(text.ends_with("# EOF\n"));
        // The count is the filter's: a later scrape shows the new count, not a sum.
        let text = m.render(&NodeState {
            dht_late_answers_dropped: 8,
            ..NodeState::default()
        });
        assert!(text.contains("mosaic_node_dht_late_answers_dropped_total 8"));
    }
}
