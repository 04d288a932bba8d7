//! Reservations on relays: a node that peers cannot dial (behind a NAT)
//! holds a slot on each configured relay (`[network] relays`), so peers
//! reach it through a `/p2p-circuit` address until a hole punch gives
//! them a direct connection. Bookkeeping only: the swarm task listens on
//! what [`Relays::due`] names and reports back what happened.

use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use mero_api::RelayReservation;

use super::peer_of;

/// The first retry after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

struct Slot {
    relay: Multiaddr,
    peer: PeerId,
    listener: Option<ListenerId>,
    circuit: Option<Multiaddr>,
    accepted: bool,
    since_ms: Option<u64>,
    renewals: u32,
    error: Option<String>,
    retry_at: Instant,
    backoff: Duration,
}

/// One slot per configured relay.
pub(super) struct Relays {
    slots: Vec<Slot>,
}

impl Relays {
    /// Relays named by address with `/p2p/<peer id>`; other addresses are
    /// refused by the config check before this. One slot per relay: the
    /// first address of each counts (libp2p reserves every listener of
    /// one relay on the same connection, and a new reservation there ends
    /// the one before, so two slots on one relay would end each other).
    pub fn new(relays: &[Multiaddr], now: Instant) -> Self {
        let mut seen = std::collections::HashSet::new();
        let slots = relays
            .iter()
            .filter_map(|a| {
                let peer = peer_of(a).filter(|p| seen.insert(*p))?;
                Some(Slot {
                    peer,
                    relay: a.clone(),
                    listener: None,
                    circuit: None,
                    accepted: false,
                    since_ms: None,
                    renewals: 0,
                    error: None,
                    retry_at: now,
                    backoff: FIRST_BACKOFF,
                })
            })
            .collect();
        Self { slots }
    }

    /// Circuit addresses to listen on now (one per relay without a live
    /// listener whose retry time came); report each with [`Self::listening`]
    /// or [`Self::failed`].
    pub fn due(&self, now: Instant) -> Vec<(usize, Multiaddr)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.listener.is_none() && s.retry_at <= now)
            .map(|(i, s)| (i, s.relay.clone().with(Protocol::P2pCircuit)))
            .collect()
    }

    /// The swarm took the listener for slot `i`.
    pub fn listening(&mut self, i: usize, listener: ListenerId) {
        if let Some(s) = self.slots.get_mut(i) {
            s.listener = Some(listener);
        }
    }

    /// Listening on slot `i` failed at once, or its listener closed.
    pub fn failed(&mut self, i: usize, error: String, now: Instant) {
        if let Some(s) = self.slots.get_mut(i) {
            s.listener = None;
            s.circuit = None;
            s.accepted = false;
            s.error = Some(error);
            s.retry_at = now + s.backoff;
            s.backoff = (s.backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// A listener closed: `true` when it was one of ours (then it is
    /// retried after a backoff).
    pub fn closed(&mut self, listener: ListenerId, error: Option<String>, now: Instant) -> bool {
        let Some(i) = self.index(listener) else {
            return false;
        };
        let why = error.unwrap_or_else(|| "the relay connection closed".into());
        self.failed(i, why, now);
        true
    }

    /// The circuit address a listener of ours got: `true` when it was ours.
    pub fn address(&mut self, listener: ListenerId, addr: &Multiaddr) -> bool {
        let Some(i) = self.index(listener) else {
            return false;
        };
        self.slots[i].circuit = Some(addr.clone());
        true
    }

    /// The relay `peer` accepted (or renewed) our reservation.
    pub fn accepted(&mut self, peer: &PeerId, renewal: bool, now_ms: u64) {
        for s in self.slots.iter_mut().filter(|s| s.peer == *peer) {
            s.accepted = true;
            s.error = None;
            s.backoff = FIRST_BACKOFF;
            if renewal {
                s.renewals += 1;
            } else {
                s.since_ms = Some(now_ms);
            }
        }
    }

    /// For `/admin/network`.
    pub fn status(&self) -> Vec<RelayReservation> {
        self.slots
            .iter()
            .map(|s| RelayReservation {
                relay: s.relay.to_string(),
                address: s.circuit.as_ref().map(|a| a.to_string()),
                accepted: s.accepted && s.listener.is_some(),
                since_ms: s.since_ms,
                renewals: s.renewals,
                error: s.error.clone(),
            })
            .collect()
    }

    fn index(&self, listener: ListenerId) -> Option<usize> {
        self.slots.iter().position(|s| s.listener == Some(listener))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_reservation_is_retried_later_and_later() {
        let relay = PeerId::random();
        let addr: Multiaddr = format!("/ip4/192.0.2.1/tcp/4001/p2p/{relay}")
            .parse()
            .unwrap();
        let t0 = Instant::now();
        let again: Multiaddr = format!("/ip4/192.0.2.1/udp/4001/quic-v1/p2p/{relay}")
            .parse()
            .unwrap();
        let none: Multiaddr = "/ip4/192.0.2.2/tcp/1".parse().unwrap();
        let mut relays = Relays::new(&[addr.clone(), again, none], t0);
        let due = relays.due(t0);
        assert_eq!(due.len(), 1, "one slot per relay; no peer id, no relay");
        assert_eq!(due[0].1, addr.clone().with(Protocol::P2pCircuit));

        let l = ListenerId::next();
        relays.listening(0, l);
        assert!(relays.due(t0).is_empty(), "one listener per relay");
        relays.accepted(&relay, false, 5);
        relays.accepted(&relay, true, 6);
        let s = &relays.status()[0];
        assert!(s.accepted);
        assert_eq!((s.since_ms, s.renewals), (Some(5), 1));

        assert!(relays.closed(l, None, t0));
        assert!(!relays.status()[0].accepted);
        assert!(relays.due(t0).is_empty(), "not at once");
        assert_eq!(relays.due(t0 + FIRST_BACKOFF).len(), 1);
        relays.failed(0, "refused".into(), t0);
        assert!(
            relays.due(t0 + FIRST_BACKOFF).is_empty(),
            "the wait doubled"
        );
        assert_eq!(relays.due(t0 + FIRST_BACKOFF * 3).len(), 1);
        assert!(!relays.closed(ListenerId::next(), None, t0), "not ours");
    }
}
