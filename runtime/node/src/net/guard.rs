//! What a peer may cost this node: a score of the garbage it sent, which
//! bans it for a while once it crosses the limit, and its inbound requests
//! in flight. Pure bookkeeping; the swarm task acts on the answers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// How much one piece of garbage counts: a forged or malformed gossip
/// message or request frame.
pub const GARBAGE: u32 = 10;
/// How much a request refused for want of a membership proof counts. An
/// honest node can send some (a joiner asking a member that has not seen
/// its invitation yet), so they weigh little.
pub const REFUSED: u32 = 1;

/// The guard's limits (from `[network]`).
#[derive(Debug, Clone, Copy)]
pub struct GuardLimits {
    /// Score at which a peer is banned.
    pub strike_limit: u32,
    /// How long a ban lasts.
    pub ban: Duration,
    /// Inbound requests one peer may have in flight; more are answered
    /// "busy" at once.
    pub inflight_per_peer: usize,
    /// Inbound requests all peers together may have in flight.
    pub inflight_total: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Score {
    points: f64,
    at: Option<Instant>,
}

/// Per-peer scores, bans and requests in flight.
#[derive(Debug)]
pub struct Guard {
    limits: GuardLimits,
    scores: HashMap<PeerId, Score>,
    banned: HashMap<PeerId, Instant>,
    inflight: HashMap<PeerId, usize>,
    inflight_total: usize,
}

impl Guard {
    /// A guard with these limits.
    pub fn new(limits: GuardLimits) -> Self {
        Self {
            limits,
            scores: HashMap::new(),
            banned: HashMap::new(),
            inflight: HashMap::new(),
            inflight_total: 0,
        }
    }

    /// Adds `weight` to the peer's score, which decays by the whole limit
    /// per minute, so only a peer that keeps sending garbage is banned.
    /// `true` if the peer is now banned (the caller disconnects it).
    pub fn strike(&mut self, peer: PeerId, weight: u32, now: Instant) -> bool {
        if self.banned.contains_key(&peer) {
            return false;
        }
        let limit = f64::from(self.limits.strike_limit.max(1));
        let score = self.scores.entry(peer).or_default();
        if let Some(at) = score.at {
            let rate = limit / 60.0;
            score.points = (score.points - rate * now.duration_since(at).as_secs_f64()).max(0.0);
        }
        score.points += f64::from(weight);
        score.at = Some(now);
        if score.points < limit {
            return false;
        }
        self.scores.remove(&peer);
        self.banned.insert(peer, now + self.limits.ban);
        true
    }

    /// Whether the peer is banned now.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.contains_key(peer)
    }

    /// Banned peers.
    pub fn banned(&self) -> impl Iterator<Item = &PeerId> {
        self.banned.keys()
    }

    /// Lifts the bans that expired; returns those peers.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        let done: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in &done {
            self.banned.remove(p);
        }
        done
    }

    /// Takes a slot for an inbound request of `peer`; `false` if it (or
    /// everyone together) has too many in flight.
    pub fn begin(&mut self, peer: PeerId) -> bool {
        let n = self.inflight.entry(peer).or_default();
        if *n >= self.limits.inflight_per_peer || self.inflight_total >= self.limits.inflight_total
        {
            return false;
        }
        *n += 1;
        self.inflight_total += 1;
        true
    }

    /// Frees the slot of an answered request.
    pub fn end(&mut self, peer: &PeerId) {
        if let Some(n) = self.inflight.get_mut(peer) {
            *n -= 1;
            self.inflight_total -= 1;
            if *n == 0 {
                self.inflight.remove(peer);
            }
        }
    }

    /// Drops the scores that decayed to nothing (a reconnect does not
    /// clear a score: only time does), so the table stays as small as the
    /// set of peers misbehaving lately.
    pub fn prune(&mut self, now: Instant) {
        let rate = f64::from(self.limits.strike_limit.max(1)) / 60.0;
        self.scores.retain(|_, s| {
            s.at.is_some_and(|at| s.points > rate * now.duration_since(at).as_secs_f64())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::new(GuardLimits {
            strike_limit: 100,
            ban: Duration::from_secs(100),
            inflight_per_peer: 2,
            inflight_total: 3,
        })
    }

    #[test]
    fn steady_garbage_bans_and_the_ban_expires() {
        let mut g = guard();
        let p = PeerId::random();
        let t = Instant::now();
        for _ in 0..9 {
            assert!(!g.strike(p, GARBAGE, t));
        }
        assert!(g.strike(p, GARBAGE, t));
        assert!(g.is_banned(&p));
        assert!(g.expire(t + Duration::from_secs(50)).is_empty());
        assert_eq!(g.expire(t + Duration::from_secs(101)), vec![p]);
        assert!(!g.is_banned(&p));
    }

    #[test]
    fn occasional_refusals_never_ban() {
        let mut g = guard();
        let p = PeerId::random();
        let t = Instant::now();
        // One refused request a second: the score decays faster than that.
        for i in 0..1_000 {
            assert!(!g.strike(p, REFUSED, t + Duration::from_secs(i)));
        }
    }

    #[test]
    fn scores_fade_and_are_pruned_only_once_faded() {
        let mut g = guard();
        let p = PeerId::random();
        let t = Instant::now();
        for _ in 0..5 {
            g.strike(p, GARBAGE, t);
        }
        g.prune(t + Duration::from_secs(10));
        assert_eq!(g.scores.len(), 1, "50 points, 17 decayed: kept");
        g.prune(t + Duration::from_secs(31));
        assert!(g.scores.is_empty());
        // Five more after it faded do not ban: the score started over.
        for _ in 0..5 {
            assert!(!g.strike(p, GARBAGE, t + Duration::from_secs(31)));
        }
    }

    #[test]
    fn requests_in_flight_are_capped_per_peer_and_in_total() {
        let mut g = guard();
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(g.begin(a) && g.begin(a));
        assert!(!g.begin(a));
        assert!(g.begin(b));
        assert!(!g.begin(b), "total cap");
        g.end(&a);
        assert!(g.begin(b));
    }
}
