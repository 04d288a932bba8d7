//! Prometheus metrics: what the node counts while it works, encoded as
//! OpenMetrics text for `GET /metrics`.
//!
//! Counters are bumped where the work happens (calls in `node`, deltas in
//! `sync` and `node::finish`, rounds in `net`); gauges that describe current
//! state (buffered deltas, peers, contexts) are read at scrape time instead
//! of being kept in step. This module must not decide anything: it only counts.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ids::ContextId;
use crate::node::CallKind;

mod peers;

pub use peers::ContextPeers;

/// A context id as a label value. Kept as bytes and written out in base58
/// only at scrape time: base58 is quadratic, and formatting it on every call
/// showed up in profiles of the write path.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Ctx(ContextId);

impl EncodeLabelValue for Ctx {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        write!(encoder, "{}", self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContextLabel {
    context: Ctx,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabel {
    context: Ctx,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    context: Ctx,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabel {
    context: Ctx,
    reason: &'static str,
}

type HistogramFamily = Family<ContextLabel, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Blob counters ([`crate::blobs`]), shared with the threads that fetch
/// and collect blobs.
#[derive(Clone, Default)]
pub struct BlobMetrics {
    fetched_chunks: Family<ContextLabel, Counter>,
    fetched_bytes: Family<ContextLabel, Counter>,
    served_chunks: Family<ContextLabel, Counter>,
    served_bytes: Family<ContextLabel, Counter>,
    uploaded_bytes: Family<ContextLabel, Counter>,
    refused: Family<ReasonLabel, Counter>,
    peer_failures: Counter,
    collected: Counter,
}

impl BlobMetrics {
    /// Counts a chunk fetched from a peer, checked and stored.
    pub fn fetched(&self, ctx: &ContextId, bytes: usize) {
        self.fetched_chunks.get_or_create(&label(ctx)).inc();
        self.fetched_bytes
            .get_or_create(&label(ctx))
            .inc_by(bytes as u64);
    }

    /// Counts a chunk served to a peer.
    pub fn served(&self, ctx: &ContextId, bytes: usize) {
        self.served_chunks.get_or_create(&label(ctx)).inc();
        self.served_bytes
            .get_or_create(&label(ctx))
            .inc_by(bytes as u64);
    }

    /// Counts bytes uploaded over HTTP.
    pub fn uploaded(&self, ctx: &ContextId, bytes: u64) {
        self.uploaded_bytes.get_or_create(&label(ctx)).inc_by(bytes);
    }

    /// Counts a part a peer sent that was refused (`garbage`: it did not
    /// check out; `unknown_epoch`: sealed with a key this node lacks).
    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Counts a chunk request that failed in transport (the peer died, or
    /// timed out): the fetch moved on.
    pub fn peer_failure(&self) {
        self.peer_failures.inc();
    }

    /// Counts blobs deleted by garbage collection.
    pub fn collected(&self, n: usize) {
        self.collected.inc_by(n as u64);
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "blob_chunks_fetched",
            "Blob chunks fetched from peers, checked against their manifest and stored",
            self.fetched_chunks.clone(),
        );
        r.register(
            "blob_bytes_fetched",
            "Plaintext bytes of blob chunks fetched from peers",
            self.fetched_bytes.clone(),
        );
        r.register(
            "blob_chunks_served",
            "Blob chunks sent to member peers",
            self.served_chunks.clone(),
        );
        r.register(
            "blob_bytes_served",
            "Sealed bytes of blob chunks sent to member peers",
            self.served_bytes.clone(),
        );
        r.register(
            "blob_bytes_uploaded",
            "Bytes of blobs uploaded over HTTP",
            self.uploaded_bytes.clone(),
        );
        r.register(
            "blob_parts_refused",
            "Blob chunks or manifests from peers refused, by reason",
            self.refused.clone(),
        );
        r.register(
            "blob_peer_failures",
            "Blob requests to a peer that failed in transport; the fetch asked another",
            self.peer_failures.clone(),
        );
        r.register(
            "blobs_collected",
            "Unreferenced blobs deleted after their grace period",
            self.collected.clone(),
        );
    }
}

/// The node's metrics registry.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabel, Counter>,
    call_errors: Family<ErrorLabel, Counter>,
    call_seconds: HistogramFamily,
    sent: Family<ContextLabel, Counter>,
    received: Family<ContextLabel, Counter>,
    rejected: Family<RejectLabel, Counter>,
    equivocations: Family<ContextLabel, Counter>,
    handlers_refused: Family<ContextLabel, Counter>,
    buffered: Family<ContextLabel, Gauge>,
    events: Family<ContextLabel, Counter>,
    sync_rounds: Family<ContextLabel, Counter>,
    requests_refused: Family<ContextLabel, Counter>,
    requests_unknown: Counter,
    gossip_invalid: Counter,
    peers_banned: Counter,
    quarantined: Gauge,
    resident: Gauge,
    loads: Counter,
    evictions: Counter,
    snapshot_joins: Counter,
    snapshots_built: Counter,
    peers: Gauge,
    contexts: Gauge,
    subscribers: Gauge,
    dropped_subscribers: Counter,
    blobs: BlobMetrics,
    sync: peers::PeerGauges,
}

fn call_histogram() -> Histogram {
    // 50 µs to ~1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

fn label(ctx: &ContextId) -> ContextLabel {
    ContextLabel { context: Ctx(*ctx) }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mero");
        let m = Self {
            calls: Family::default(),
            call_errors: Family::default(),
            call_seconds: Family::new_with_constructor(call_histogram as fn() -> Histogram),
            sent: Family::default(),
            received: Family::default(),
            rejected: Family::default(),
            equivocations: Family::default(),
            handlers_refused: Family::default(),
            buffered: Family::default(),
            events: Family::default(),
            sync_rounds: Family::default(),
            requests_refused: Family::default(),
            requests_unknown: Counter::default(),
            gossip_invalid: Counter::default(),
            peers_banned: Counter::default(),
            quarantined: Gauge::default(),
            resident: Gauge::default(),
            loads: Counter::default(),
            evictions: Counter::default(),
            snapshot_joins: Counter::default(),
            snapshots_built: Counter::default(),
            peers: Gauge::default(),
            contexts: Gauge::default(),
            subscribers: Gauge::default(),
            dropped_subscribers: Counter::default(),
            blobs: BlobMetrics::default(),
            sync: peers::PeerGauges::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "calls",
            "Method calls, by context and kind",
            m.calls.clone(),
        );
        r.register(
            "call_errors",
            "Failed method calls, by context and error code",
            m.call_errors.clone(),
        );
        r.register(
            "call_duration_seconds",
            "Wall time of method calls, including persisting",
            m.call_seconds.clone(),
        );
        r.register("deltas_sent", "Deltas this node published", m.sent.clone());
        r.register(
            "deltas_received",
            "Deltas received from peers or imports",
            m.received.clone(),
        );
        r.register(
            "deltas_rejected",
            "Received deltas refused, by reason",
            m.rejected.clone(),
        );
        r.register(
            "equivocations",
            "Pairs of deltas one member signed with one seq (the member is flagged)",
            m.equivocations.clone(),
        );
        r.register(
            "handlers_refused",
            "Events from peers that named a handler their app does not declare (not run)",
            m.handlers_refused.clone(),
        );
        r.register(
            "deltas_buffered",
            "Received deltas waiting for missing parents",
            m.buffered.clone(),
        );
        r.register(
            "stream_items",
            "Items appended to a context's event stream",
            m.events.clone(),
        );
        r.register(
            "sync_rounds",
            "Catch-up rounds started with a peer",
            m.sync_rounds.clone(),
        );
        r.register(
            "requests_refused",
            "Peer requests about a context refused: no valid proof of membership",
            m.requests_refused.clone(),
        );
        r.register(
            "requests_unknown_context",
            "Peer requests about a context this node does not hold (no label: anyone can name any)",
            m.requests_unknown.clone(),
        );
        r.register(
            "gossip_invalid",
            "Gossip messages refused as garbage (undecodable, forged, malformed) and not forwarded",
            m.gossip_invalid.clone(),
        );
        r.register(
            "peers_banned",
            "Peers disconnected and banned for sending garbage",
            m.peers_banned.clone(),
        );
        r.register(
            "contexts_quarantined",
            "Contexts whose replica failed and whose calls and deltas are refused until restart",
            m.quarantined.clone(),
        );
        r.register(
            "contexts_resident",
            "Contexts whose replica is in memory (the others are cold: loaded on use)",
            m.resident.clone(),
        );
        r.register(
            "context_loads",
            "Cold contexts loaded back into memory",
            m.loads.clone(),
        );
        r.register(
            "context_evictions",
            "Idle contexts made cold",
            m.evictions.clone(),
        );
        r.register(
            "snapshot_joins",
            "Contexts this node joined from a snapshot instead of replaying their history",
            m.snapshot_joins.clone(),
        );
        r.register(
            "snapshots_built",
            "Snapshots this node built for joiners",
            m.snapshots_built.clone(),
        );
        r.register("peers", "Connected peers", m.peers.clone());
        r.register("contexts", "Contexts on this node", m.contexts.clone());
        r.register(
            "subscribers",
            "Open WebSocket and SSE subscriptions",
            m.subscribers.clone(),
        );
        r.register(
            "subscribers_dropped",
            "Subscribers disconnected for reading too slowly",
            m.dropped_subscribers.clone(),
        );
        m.blobs.register(r);
        m.sync.register(r);
        Self { registry, ..m }
    }

    /// The blob counters.
    pub fn blobs(&self) -> &BlobMetrics {
        &self.blobs
    }

    /// Counts a finished call and its latency.
    pub fn call(&self, ctx: &ContextId, kind: CallKind, seconds: f64, error: Option<&'static str>) {
        let kind = match kind {
            CallKind::Execute => "execute",
            CallKind::Query => "query",
            CallKind::Handler => "handler",
        };
        let context = Ctx(*ctx);
        self.calls.get_or_create(&CallLabel { context, kind }).inc();
        if let Some(code) = error {
            self.call_errors
                .get_or_create(&ErrorLabel { context, code })
                .inc();
        }
        self.call_seconds
            .get_or_create(&ContextLabel { context })
            .observe(seconds);
    }

    /// Counts deltas published.
    pub fn sent(&self, ctx: &ContextId, n: usize) {
        self.sent.get_or_create(&label(ctx)).inc_by(n as u64);
    }

    /// A context was joined from a snapshot.
    pub fn snapshot_joined(&self) {
        self.snapshot_joins.inc();
    }

    /// A snapshot was built for a joiner.
    pub fn snapshot_built(&self) {
        self.snapshots_built.inc();
    }

    /// Counts received deltas and the reasons any were refused.
    pub fn received(&self, ctx: &ContextId, n: usize, rejected: &[&'static str]) {
        self.received.get_or_create(&label(ctx)).inc_by(n as u64);
        for reason in rejected {
            self.rejected
                .get_or_create(&RejectLabel {
                    context: Ctx(*ctx),
                    reason,
                })
                .inc();
        }
    }

    /// Counts equivocations newly seen.
    pub fn equivocations(&self, ctx: &ContextId, n: usize) {
        self.equivocations
            .get_or_create(&label(ctx))
            .inc_by(n as u64);
    }

    /// Counts an event whose claimed handler was not run.
    pub fn handler_refused(&self, ctx: &ContextId) {
        self.handlers_refused.get_or_create(&label(ctx)).inc();
    }

    /// Counts stream items.
    pub fn stream_items(&self, ctx: &ContextId, n: usize) {
        self.events.get_or_create(&label(ctx)).inc_by(n as u64);
    }

    /// Counts a peer request about a context this node does not hold.
    pub fn request_unknown(&self) {
        self.requests_unknown.inc();
    }

    /// Counts a peer request refused for want of a valid membership proof.
    pub fn request_refused(&self, ctx: &ContextId) {
        self.requests_refused.get_or_create(&label(ctx)).inc();
    }

    /// Counts a gossip message refused as garbage.
    pub fn gossip_invalid(&self) {
        self.gossip_invalid.inc();
    }

    /// Counts a banned peer.
    pub fn peer_banned(&self) {
        self.peers_banned.inc();
    }

    /// Counts a catch-up round.
    pub fn sync_round(&self, ctx: &ContextId) {
        self.sync_rounds.get_or_create(&label(ctx)).inc();
    }

    /// A subscriber connected (`+1`) or left (`-1`).
    pub fn subscriber(&self, delta: i64) {
        self.subscribers.inc_by(delta);
    }

    /// Counts a subscriber dropped for being too slow.
    pub fn dropped_subscriber(&self) {
        self.dropped_subscribers.inc();
    }

    /// Forgets a deleted context's series.
    pub fn forget(&self, ctx: &ContextId) {
        let l = label(ctx);
        for f in [
            &self.sent,
            &self.received,
            &self.events,
            &self.sync_rounds,
            &self.equivocations,
            &self.handlers_refused,
        ] {
            f.remove(&l);
        }
        self.buffered.remove(&l);
        self.call_seconds.remove(&l);
    }

    /// Sets the scrape-time sync gauges (see [`peers`]) before an
    /// [`encode`](Self::encode).
    pub fn set_sync(
        &self,
        contexts: &[ContextPeers],
        connected: &std::collections::HashSet<String>,
        per_peer: bool,
        dev: bool,
    ) {
        self.sync
            .set(contexts, connected, per_peer, dev, crate::node::now_ms());
    }

    /// The counters of cold contexts loaded and of idle ones made cold.
    pub fn residency(&self) -> (Counter, Counter) {
        (self.loads.clone(), self.evictions.clone())
    }

    /// Sets how many contexts are in memory (at scrape time).
    pub fn set_resident(&self, resident: usize) {
        self.resident.set(resident as i64);
    }

    /// Encodes everything, after setting the scrape-time gauges:
    /// `buffered` per context, `peers`, the context count and how many
    /// contexts are `quarantined`.
    pub fn encode(
        &self,
        buffered: &[(ContextId, usize)],
        peers: usize,
        quarantined: usize,
    ) -> String {
        self.quarantined.set(quarantined as i64);
        for (ctx, n) in buffered {
            self.buffered.get_or_create(&label(ctx)).set(*n as i64);
        }
        self.peers.set(peers as i64);
        self.contexts.set(buffered.len() as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
