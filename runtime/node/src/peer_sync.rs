//! Per context, where this replica stands against each peer: the last
//! [`PeerView`] catch-up showed, since when, and the last exchange.
//!
//! Kept in the context's runtime and updated under the context lock the
//! record points already hold (answering a request, handling a response,
//! applying gossip), so it costs no lock of its own and goes with the
//! context. Status only: nothing is decided from it, and what a peer
//! reports moves only its own row. At most [`MAX_PEERS`] rows per context;
//! beyond, the row exchanged with least recently is forgotten.

use std::collections::HashMap;

use mero_sync::progress::PeerView;

/// Most peers remembered per context.
pub const MAX_PEERS: usize = 256;

/// What is known about one peer of a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerRecord {
    /// The last classified view (`None`: exchanged, never classified).
    pub view: Option<PeerView>,
    /// When the view first became of its current kind (ms since the epoch).
    pub since_ms: u64,
    /// The last exchange of any kind (ms since the epoch).
    pub last_exchange_ms: u64,
    /// Classified exchanges so far.
    pub rounds: u64,
}

/// The peers of one context.
#[derive(Debug, Default)]
pub struct PeerBook {
    peers: HashMap<String, PeerRecord>,
}

fn same_kind(a: &PeerView, b: &PeerView) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

impl PeerBook {
    /// The row of `peer`, made room for if new.
    fn row(&mut self, peer: &str, now_ms: u64) -> &mut PeerRecord {
        if !self.peers.contains_key(peer) && self.peers.len() >= MAX_PEERS {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, r)| r.last_exchange_ms)
                .map(|(p, _)| p.clone());
            if let Some(p) = oldest {
                self.peers.remove(&p);
            }
        }
        self.peers.entry(peer.to_owned()).or_insert(PeerRecord {
            view: None,
            since_ms: now_ms,
            last_exchange_ms: now_ms,
            rounds: 0,
        })
    }

    /// A catch-up message showed `view` of `peer`.
    pub fn saw(&mut self, peer: &str, view: PeerView, now_ms: u64) {
        let row = self.row(peer, now_ms);
        if !row.view.is_some_and(|v| same_kind(&v, &view)) {
            row.since_ms = now_ms;
        }
        row.view = Some(view);
        row.last_exchange_ms = now_ms;
        row.rounds = row.rounds.saturating_add(1);
    }

    /// Deltas from `peer` were applied (gossip, or a page).
    pub fn touched(&mut self, peer: &str, now_ms: u64) {
        self.row(peer, now_ms).last_exchange_ms = now_ms;
    }

    /// The last page of a round that started behind `peer` arrived: this
    /// replica has what the peer had when it answered.
    pub fn caught_up(&mut self, peer: &str, now_ms: u64) {
        let row = self.row(peer, now_ms);
        row.last_exchange_ms = now_ms;
        let next = match row.view {
            Some(PeerView::Behind { .. }) => PeerView::InSync,
            Some(PeerView::Diverged { extra, .. }) => PeerView::Ahead { extra },
            _ => return,
        };
        row.view = Some(next);
        row.since_ms = now_ms;
    }

    /// Every row, sorted by peer id.
    pub fn snapshot(&self) -> Vec<(String, PeerRecord)> {
        let mut out: Vec<_> = self.peers.iter().map(|(p, r)| (p.clone(), *r)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_moves_only_when_the_kind_changes() {
        let mut b = PeerBook::default();
        b.saw("p", PeerView::Behind { lacking: 3 }, 10);
        b.saw("p", PeerView::Behind { lacking: 1 }, 20);
        let (_, r) = &b.snapshot()[0];
        assert_eq!(
            (r.view, r.since_ms, r.last_exchange_ms, r.rounds),
            (Some(PeerView::Behind { lacking: 1 }), 10, 20, 2)
        );
        b.caught_up("p", 30);
        let (_, r) = &b.snapshot()[0];
        assert_eq!((r.view, r.since_ms), (Some(PeerView::InSync), 30));
        b.touched("p", 40);
        assert_eq!(b.snapshot()[0].1.since_ms, 30);
        assert_eq!(b.snapshot()[0].1.last_exchange_ms, 40);
    }

    #[test]
    fn rows_are_bounded_and_the_stalest_goes() {
        let mut b = PeerBook::default();
        for i in 0..MAX_PEERS as u64 {
            b.saw(&format!("p{i}"), PeerView::InSync, 100 + i);
        }
        b.touched("p0", 10_000);
        b.saw("new", PeerView::InSync, 20_000);
        let rows = b.snapshot();
        assert_eq!(rows.len(), MAX_PEERS);
        assert!(rows.iter().any(|(p, _)| p == "p0"), "recently touched kept");
        assert!(!rows.iter().any(|(p, _)| p == "p1"), "stalest evicted");
        assert!(rows.iter().any(|(p, _)| p == "new"));
    }
}
