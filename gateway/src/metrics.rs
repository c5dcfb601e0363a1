//! The gateway's metrics, in Prometheus text format at `/metrics`
//! (`prometheus-client`). Names and meanings are listed in `docs/gateway.md`.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::cache::DiskCache;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

/// Everything the gateway counts.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<StatusLabel, Counter>,
    bytes_out: Counter,
    ttfb: Histogram,
    segments: Family<SourceLabel, Counter>,
    peer_errors: Counter,
    cache_bytes: Gauge,
    cache_ratio: Gauge<f64, AtomicU64>,
    memory_bytes: Gauge,
    memory_hits: Counter,
    cache: Arc<DiskCache>,
    connections: Gauge,
    refused: Family<ReasonLabel, Counter>,
    /// Responses sent, for the web page (the family above is not summed cheaply).
    responses: AtomicU64,
}

impl Metrics {
    /// Registers every metric.
    pub fn new(cache: Arc<DiskCache>) -> Self {
        let mut registry = Registry::with_prefix("mosaic_gateway");
        let requests = Family::<StatusLabel, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP responses by status",
            requests.clone(),
        );
        let bytes_out = Counter::default();
        registry.register(
            "http_response_body_bytes",
            "Body bytes sent",
            bytes_out.clone(),
        );
        // 1 ms .. ~16 s.
        let ttfb = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "time_to_first_byte_seconds",
            "From a request's arrival until its response head and first body bytes are ready",
            ttfb.clone(),
        );
        let segments = Family::<SourceLabel, Counter>::default();
        registry.register(
            "segments",
            "Segments served, by source (cache or network)",
            segments.clone(),
        );
        let peer_errors = Counter::default();
        registry.register(
            "peer_fetch_errors",
            "Column fetches from storage nodes that failed or stalled (each failed over)",
            peer_errors.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register(
            "cache_bytes",
            "Bytes held in the segment cache",
            cache_bytes.clone(),
        );
        let cache_ratio = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "cache_hit_ratio",
            "Segment cache lookups that hit, over all lookups since start",
            cache_ratio.clone(),
        );
        let memory_bytes = Gauge::default();
        registry.register(
            "cache_memory_bytes",
            "Bytes of opened public segments held in memory",
            memory_bytes.clone(),
        );
        let memory_hits = Counter::default();
        registry.register(
            "cache_memory_hits",
            "Segments served from the opened segments in memory",
            memory_hits.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "http_connections",
            "HTTP connections open",
            connections.clone(),
        );
        let refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "http_connections_refused",
            "HTTP connections refused by a limit, by limit (client_connections)",
            refused.clone(),
        );
        Self {
            registry,
            connections,
            refused,
            requests,
            bytes_out,
            ttfb,
            segments,
            peer_errors,
            cache_bytes,
            cache_ratio,
            memory_bytes,
            memory_hits,
            cache,
            responses: Default::default(),
        }
    }

    /// A response with `status` was ready `seconds` after its request arrived.
    pub fn response(&self, status: u16, seconds: f64) {
        self.requests.get_or_create(&StatusLabel { status }).inc();
        self.responses.fetch_add(1, Ordering::Relaxed);
        self.ttfb.observe(seconds);
    }

    /// A connection opened.
    pub(crate) fn connection_opened(&self) {
        self.connections.inc();
    }

    /// A connection closed.
    pub(crate) fn connection_closed(&self) {
        self.connections.dec();
    }

    /// A connection refused by the limit named `reason`.
    pub(crate) fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Body bytes sent.
    pub fn bytes_out(&self, n: u64) {
        self.bytes_out.inc_by(n);
    }

    /// A segment served from the cache (`true`) or the network.
    pub fn segment(&self, cached: bool) {
        let source = if cached { "cache" } else { "network" };
        self.segments.get_or_create(&SourceLabel { source }).inc();
    }

    /// Column fetches that failed over.
    pub fn peer_errors(&self, n: u64) {
        self.peer_errors.inc_by(n);
    }

    /// For the web page: responses sent, body bytes sent, the segment cache's bytes,
    /// budget and hit ratio since start.
    pub(crate) fn summary(&self) -> serde_json::Value {
        let (hits, misses) = self.cache.hits_misses();
        let lookups = hits + misses;
        let responses = self.responses.load(Ordering::Relaxed);
        serde_json::json!({
            "responses": responses,
            "bytes_sent": self.bytes_out.get(),
            "cache": {
                "bytes": self.cache.bytes(),
                "capacity": self.cache.budget(),
                "hit_ratio": if lookups == 0 { 0.0 } else { hits as f64 / lookups as f64 },
                "memory_bytes": self.cache.memory_bytes(),
            },
        })
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        self.cache_bytes.set(self.cache.bytes() as i64);
        self.memory_bytes.set(self.cache.memory_bytes() as i64);
        let memory_hits = self.cache.memory_hits();
        self.memory_hits
            .inc_by(memory_hits.saturating_sub(self.memory_hits.get()));
        let (hits, misses) = self.cache.hits_misses();
        let lookups = hits + misses;
        self.cache_ratio.set(if lookups == 0 {
            0.0
        } else {
            hits as f64 / lookups as f64
        });
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
