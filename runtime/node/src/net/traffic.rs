//! Per-peer, per-context traffic, counted by the swarm task (it sees every
//! message, so no lock), and when peers went away.
//!
//! Only traffic with peers that share the context is counted (gossip from
//! proven members, catch-up with peers asked or answered). At most
//! [`MAX_ENTRIES`] (peer, context) pairs and [`MAX_DOWN`] disconnected
//! peers are kept; beyond, the least recently updated goes. A context's
//! entries go when the node stops following it.

use std::collections::HashMap;

use libp2p::PeerId;
use mero_api::Traffic as Counts;

use crate::ids::ContextId;

/// Most (peer, context) pairs counted.
pub const MAX_ENTRIES: usize = 16_384;
/// Most disconnected peers remembered.
pub const MAX_DOWN: usize = 1_024;

/// How deltas travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A gossip message.
    Gossip,
    /// A catch-up answer (a page, or deltas by id).
    CatchUp,
}

#[derive(Debug, Default, Clone)]
struct Entry {
    sent: Counts,
    received: Counts,
    touched: u64,
}

/// What the swarm task counts.
#[derive(Debug, Default)]
pub(crate) struct TrafficBook {
    entries: HashMap<(PeerId, ContextId), Entry>,
    /// Peers not connected any more, and since when (ms since the epoch).
    down: HashMap<PeerId, u64>,
    clock: u64,
}

fn add(c: &mut Counts, deltas: usize, bytes: usize, via: Via) {
    c.messages = c.messages.saturating_add(1);
    c.deltas = c.deltas.saturating_add(deltas as u64);
    c.bytes = c.bytes.saturating_add(bytes as u64);
    match via {
        Via::Gossip => c.gossip_deltas = c.gossip_deltas.saturating_add(deltas as u64),
        Via::CatchUp => c.catch_up_deltas = c.catch_up_deltas.saturating_add(deltas as u64),
    }
}

impl TrafficBook {
    fn entry(&mut self, peer: PeerId, ctx: ContextId) -> &mut Entry {
        self.clock += 1;
        if !self.entries.contains_key(&(peer, ctx)) && self.entries.len() >= MAX_ENTRIES {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.touched)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.entries.remove(&k);
            }
        }
        let clock = self.clock;
        let e = self.entries.entry((peer, ctx)).or_default();
        e.touched = clock;
        e
    }

    /// A message with `deltas` deltas and `bytes` bytes went to `peer`.
    pub fn sent(&mut self, peer: PeerId, ctx: ContextId, deltas: usize, bytes: usize, via: Via) {
        add(&mut self.entry(peer, ctx).sent, deltas, bytes, via);
    }

    /// A message with `deltas` deltas and `bytes` bytes came from `peer`.
    pub fn received(
        &mut self,
        peer: PeerId,
        ctx: ContextId,
        deltas: usize,
        bytes: usize,
        via: Via,
    ) {
        add(&mut self.entry(peer, ctx).received, deltas, bytes, via);
    }

    /// `peer` connected.
    pub fn up(&mut self, peer: &PeerId) {
        self.down.remove(peer);
    }

    /// `peer`'s last connection closed at `now_ms`.
    pub fn went_down(&mut self, peer: PeerId, now_ms: u64) {
        if !self.down.contains_key(&peer) && self.down.len() >= MAX_DOWN {
            let oldest = self.down.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p);
            if let Some(p) = oldest {
                self.down.remove(&p);
            }
        }
        self.down.insert(peer, now_ms);
    }

    /// Since when `peer` has been disconnected, if it is.
    pub fn down_since(&self, peer: &PeerId) -> Option<u64> {
        self.down.get(peer).copied()
    }

    /// The peers not connected now that were before.
    pub fn down_peers(&self) -> Vec<PeerId> {
        self.down.keys().copied().collect()
    }

    /// Forgets a context.
    pub fn forget(&mut self, ctx: &ContextId) {
        self.entries.retain(|(_, c), _| c != ctx);
    }

    /// Per peer: what was sent to it and received from it about `ctx`.
    pub fn of(&self, ctx: &ContextId) -> Vec<(PeerId, Counts, Counts)> {
        self.entries
            .iter()
            .filter(|((_, c), _)| c == ctx)
            .map(|((p, _), e)| (*p, e.sent.clone(), e.received.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_way_and_by_path() {
        let (p, ctx) = (PeerId::random(), ContextId([1; 32]));
        let mut t = TrafficBook::default();
        t.sent(p, ctx, 3, 300, Via::Gossip);
        t.received(p, ctx, 5, 500, Via::CatchUp);
        t.received(p, ctx, 1, 100, Via::Gossip);
        let rows = t.of(&ctx);
        assert_eq!(rows.len(), 1);
        let (_, sent, got) = &rows[0];
        assert_eq!((sent.messages, sent.deltas, sent.gossip_deltas), (1, 3, 3));
        assert_eq!(
            (
                got.messages,
                got.deltas,
                got.bytes,
                got.catch_up_deltas,
                got.gossip_deltas
            ),
            (2, 6, 600, 5, 1)
        );
        t.forget(&ctx);
        assert!(t.of(&ctx).is_empty());
    }

    #[test]
    fn entries_and_down_peers_are_bounded() {
        let ctx = ContextId([2; 32]);
        let mut t = TrafficBook::default();
        let first = PeerId::random();
        t.sent(first, ctx, 1, 1, Via::Gossip);
        for _ in 0..MAX_ENTRIES {
            t.sent(PeerId::random(), ctx, 1, 1, Via::Gossip);
        }
        assert_eq!(t.entries.len(), MAX_ENTRIES);
        assert!(
            !t.of(&ctx).iter().any(|(p, ..)| *p == first),
            "oldest evicted"
        );
        for i in 0..=MAX_DOWN as u64 {
            t.went_down(PeerId::random(), i);
        }
        assert_eq!(t.down.len(), MAX_DOWN);
    }
}
