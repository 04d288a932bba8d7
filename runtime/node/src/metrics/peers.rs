//! Scrape-time sync gauges: per context how far behind it is and how many
//! peers are in sync or unreachable; per (context, peer) only when asked
//! (`[metrics] per_peer`, or dev mode), because a thousand contexts times
//! their peers are too many series for most scrapers. Rebuilt on every
//! scrape from the contexts' peer records, so a gone peer's series goes.

use std::collections::HashSet;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{ContextLabel, Ctx, label};
use crate::ids::ContextId;
use crate::peer_sync::PeerRecord;
use mero_sync::progress::PeerView;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    context: Ctx,
    peer: String,
}

/// What a scrape needs to know of one context's peers.
pub struct ContextPeers {
    /// The context.
    pub context: ContextId,
    /// Its peer records.
    pub peers: Vec<(String, PeerRecord)>,
}

/// The sync gauges.
#[derive(Clone, Default)]
pub(super) struct PeerGauges {
    behind: Family<ContextLabel, Gauge>,
    in_sync: Family<ContextLabel, Gauge>,
    unreachable: Family<ContextLabel, Gauge>,
    peer_behind: Family<PeerLabel, Gauge>,
    peer_ahead: Family<PeerLabel, Gauge>,
    peer_in_sync: Family<PeerLabel, Gauge>,
    peer_age: Family<PeerLabel, Gauge>,
    dev: Gauge,
}

fn numbers(v: Option<PeerView>) -> (u64, u64, bool) {
    match v {
        Some(PeerView::InSync) => (0, 0, true),
        Some(PeerView::Behind { lacking }) => (lacking, 0, false),
        Some(PeerView::Ahead { extra }) => (0, extra, false),
        Some(PeerView::Diverged { lacking, extra }) => (lacking, extra, false),
        Some(PeerView::Forked { .. }) | None => (0, 0, false),
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PeerGauges {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "context_behind_deltas",
            "Most deltas a connected peer of the context has that this node lacks (at the last exchange)",
            self.behind.clone(),
        );
        r.register(
            "context_peers_in_sync",
            "Connected peers of the context in sync with this node",
            self.in_sync.clone(),
        );
        r.register(
            "context_peers_unreachable",
            "Peers of the context known but not connected",
            self.unreachable.clone(),
        );
        r.register(
            "peer_behind_deltas",
            "Deltas the peer has that this node lacks (per_peer or dev mode only)",
            self.peer_behind.clone(),
        );
        r.register(
            "peer_ahead_deltas",
            "Deltas this node has that the peer lacks (per_peer or dev mode only)",
            self.peer_ahead.clone(),
        );
        r.register(
            "peer_in_sync",
            "1 if the peer is connected and in sync (per_peer or dev mode only)",
            self.peer_in_sync.clone(),
        );
        r.register(
            "peer_last_exchange_age_seconds",
            "Seconds since the last exchange with the peer (per_peer or dev mode only)",
            self.peer_age.clone(),
        );
        r.register(
            "dev_mode",
            "1 if the node runs with `merod run --dev` (fault injection on)",
            self.dev.clone(),
        );
    }

    /// Sets every gauge from the contexts' records; `connected`: the peers
    /// connected now; per-peer series only with `per_peer`.
    pub(super) fn set(
        &self,
        contexts: &[ContextPeers],
        connected: &HashSet<String>,
        per_peer: bool,
        dev: bool,
        now_ms: u64,
    ) {
        for f in [&self.behind, &self.in_sync, &self.unreachable] {
            f.clear();
        }
        for f in [
            &self.peer_behind,
            &self.peer_ahead,
            &self.peer_in_sync,
            &self.peer_age,
        ] {
            f.clear();
        }
        self.dev.set(i64::from(dev));
        for c in contexts {
            let l = label(&c.context);
            let (mut behind, mut in_sync, mut unreachable) = (0u64, 0i64, 0i64);
            for (peer, r) in &c.peers {
                let up = connected.contains(peer);
                let (lacking, extra, same) = numbers(r.view);
                if up {
                    behind = behind.max(lacking);
                    in_sync += i64::from(same);
                } else {
                    unreachable += 1;
                }
                if per_peer {
                    let pl = PeerLabel {
                        context: Ctx(c.context),
                        peer: peer.clone(),
                    };
                    self.peer_behind.get_or_create(&pl).set(gauge(lacking));
                    self.peer_ahead.get_or_create(&pl).set(gauge(extra));
                    self.peer_in_sync
                        .get_or_create(&pl)
                        .set(i64::from(up && same));
                    let age = now_ms.saturating_sub(r.last_exchange_ms) / 1000;
                    self.peer_age.get_or_create(&pl).set(gauge(age));
                }
            }
            self.behind.get_or_create(&l).set(gauge(behind));
            self.in_sync.get_or_create(&l).set(in_sync);
            self.unreachable.get_or_create(&l).set(unreachable);
        }
    }
}
