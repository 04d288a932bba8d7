//! How this node reaches peers behind NATs and is reached from behind
//! them: the swarm task's handling of relay reservations, of its own relay
//! service, and of hole punches. A relayed connection whose peer is also
//! reachable directly is closed: request-response spreads requests over
//! every connection to a peer, and a relay caps what a circuit carries.

use std::collections::HashSet;
use std::time::Instant;

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, dcutr, relay};

use super::paths::Paths;
use super::relays::Relays;
use super::swarm::Task;
use crate::node::now_ms;

/// The swarm task's view of paths and relays.
pub(super) struct Reach {
    /// Every open connection and how it reaches its peer.
    pub paths: Paths,
    /// Slots on the configured relays.
    pub relays: Relays,
    /// This node's relay service, when it runs one.
    pub service: Option<ServiceStats>,
    /// Listen addresses are reachable as they are (`network.public`).
    pub public: bool,
    /// Every listen address is loopback (a node for local tests): then its
    /// loopback addresses are the ones to announce.
    pub loopback_only: bool,
}

impl Reach {
    /// Nothing configured: no relays, no service.
    pub fn none() -> Self {
        Self {
            paths: Paths::default(),
            relays: Relays::new(&[], Instant::now()),
            service: None,
            public: false,
            loopback_only: false,
        }
    }
}

/// What this node's relay service carries now.
pub(super) struct ServiceStats {
    reservations: HashSet<PeerId>,
    /// (source, destination) pairs with an open circuit: libp2p may report
    /// one circuit closed twice, so a plain counter would drift. Bounded by
    /// `max_circuits` (only accepted circuits enter).
    circuits: HashSet<(PeerId, PeerId)>,
    max_circuit_bytes: u64,
    max_circuit_secs: u64,
}

impl ServiceStats {
    pub fn new(max_circuit_bytes: u64, max_circuit_secs: u64) -> Self {
        Self {
            reservations: HashSet::new(),
            circuits: HashSet::new(),
            max_circuit_bytes,
            max_circuit_secs,
        }
    }

    pub fn view(&self) -> mero_api::RelayService {
        mero_api::RelayService {
            reservations: self.reservations.len() as u32,
            circuits: self.circuits.len() as u32,
            max_circuit_bytes: self.max_circuit_bytes,
            max_circuit_secs: self.max_circuit_secs,
        }
    }
}

impl Task {
    /// Listens on the circuits of relays whose slot is due (at start, and
    /// after a backoff once a slot was lost).
    pub(super) fn reserve_due(&mut self) {
        let now = Instant::now();
        for (i, addr) in self.reach.relays.due(now) {
            match self.swarm.listen_on(addr.clone()) {
                Ok(id) => self.reach.relays.listening(i, id),
                Err(e) => {
                    tracing::warn!(%addr, "cannot reserve a relay slot: {e}");
                    self.reach.relays.failed(i, e.to_string(), now);
                }
            }
        }
    }

    /// A new listen address: a relay circuit of ours, or a direct one
    /// (an external address too when `network.public`).
    pub(super) fn listening_on(&mut self, listener: ListenerId, address: Multiaddr) {
        let me = *self.swarm.local_peer_id();
        let circuit = self.reach.relays.address(listener, &address);
        let full = with_peer(address.clone(), me);
        if circuit {
            tracing::info!(%full, "reachable through a relay");
            println!("merod p2p relayed at {full}");
        } else {
            // Scripts and tests read this line to learn the address.
            println!("merod p2p listening on {full}");
            if self.reach.public && announced(&address, self.reach.loopback_only) {
                self.swarm.add_external_address(address);
            }
        }
        let mut addrs = self
            .addrs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let full = full.to_string();
        if !addrs.contains(&full) {
            addrs.push(full);
        }
    }

    /// Listen addresses went away (a relay slot lost, an interface down).
    pub(super) fn not_listening_on(&mut self, gone: &[Multiaddr]) {
        if self.reach.public {
            for a in gone {
                self.swarm.remove_external_address(a);
            }
        }
        let me = *self.swarm.local_peer_id();
        let gone: Vec<String> = gone
            .iter()
            .map(|a| with_peer(a.clone(), me).to_string())
            .collect();
        self.addrs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|a| !gone.contains(a));
    }

    /// A listener closed: a relay slot of ours is retried later.
    pub(super) fn listener_closed(&mut self, listener: ListenerId, error: Option<String>) {
        if self.reach.relays.closed(listener, error, Instant::now()) {
            tracing::info!("lost a relay slot; reserving again later");
        }
    }

    pub(super) fn on_relay_client(&mut self, ev: relay::client::Event) {
        match ev {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                tracing::debug!(relay = %relay_peer_id, renewal, "relay slot accepted");
                self.reach
                    .relays
                    .accepted(&relay_peer_id, renewal, now_ms());
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                tracing::debug!(peer = %src_peer_id, "peer reached us through a relay");
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, .. } => {
                tracing::debug!(relay = %relay_peer_id, "reached a peer through a relay");
            }
        }
    }

    pub(super) fn on_relay_service(&mut self, ev: relay::Event) {
        // libp2p reports a reservation closed when any connection of its
        // holder closes; the slot lives on while another one is open.
        let gone = |p: &PeerId| !self.swarm.is_connected(p);
        let (closed, timed_out) = match &ev {
            relay::Event::ReservationClosed { src_peer_id } => (gone(src_peer_id), false),
            relay::Event::ReservationTimedOut { .. } => (false, true),
            _ => (false, false),
        };
        let Some(s) = self.reach.service.as_mut() else {
            return;
        };
        match ev {
            relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                s.reservations.insert(src_peer_id);
            }
            relay::Event::ReservationClosed { src_peer_id }
            | relay::Event::ReservationTimedOut { src_peer_id }
                if closed || timed_out =>
            {
                s.reservations.remove(&src_peer_id);
            }
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => {
                s.circuits.insert((src_peer_id, dst_peer_id));
            }
            relay::Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                ..
            } => {
                s.circuits.remove(&(src_peer_id, dst_peer_id));
            }
            _ => {}
        }
    }

    pub(super) fn on_hole_punch(&mut self, ev: dcutr::Event) {
        match ev.result {
            Ok(conn) => {
                tracing::info!(peer = %ev.remote_peer_id, "hole punched: direct connection");
                self.reach.paths.punched(conn);
                self.drop_relayed(&ev.remote_peer_id);
            }
            Err(e) => tracing::info!(peer = %ev.remote_peer_id, "hole punch failed: {e}"),
        }
    }

    /// Closes `peer`'s relayed connections when a direct one exists.
    pub(super) fn drop_relayed(&mut self, peer: &PeerId) {
        for id in self.reach.paths.redundant_relayed(peer) {
            self.swarm.close_connection(id);
        }
    }
}

/// `addr` ending in `/p2p/<me>`.
pub(super) fn with_peer(addr: Multiaddr, me: PeerId) -> Multiaddr {
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr
    } else {
        addr.with(Protocol::P2p(me))
    }
}

/// Whether a public node announces this listen address as external: not
/// the wildcard, and loopback only on a node that listens on nothing else
/// (listening on `0.0.0.0` also yields `127.0.0.1`, which no peer elsewhere
/// can dial).
fn announced(addr: &Multiaddr, loopback_only: bool) -> bool {
    let wildcard = addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    });
    !wildcard && (loopback_only || !is_loopback(addr))
}

/// Whether `addr` is on the loopback interface.
pub(super) fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_node_announces_what_peers_elsewhere_can_dial() {
        let a = |s: &str| s.parse::<Multiaddr>().unwrap();
        assert!(announced(&a("/ip4/198.51.100.1/tcp/4001"), false));
        assert!(!announced(&a("/ip4/127.0.0.1/tcp/4001"), false));
        assert!(!announced(&a("/ip6/::1/udp/4001/quic-v1"), false));
        assert!(announced(&a("/ip4/127.0.0.1/tcp/4001"), true));
        assert!(!announced(&a("/ip4/0.0.0.0/tcp/4001"), true));
        assert!(!is_loopback(&a("/ip4/0.0.0.0/tcp/4001")));
    }
}
