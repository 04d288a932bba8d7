//! The connection book: every open connection, how it reaches its peer
//! (straight or through which relay, over which transport) and whether a
//! hole punch made it. Bookkeeping only; the swarm task feeds it and acts
//! on what it answers.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use mero_api::{Connection, Direction, PathKind, PeerPath, Transport};

struct Conn {
    peer: PeerId,
    address: Multiaddr,
    /// From the endpoint, not the address: an inbound circuit's address
    /// names the relay only when we dialled the relay.
    relayed: bool,
    direction: Direction,
    since_ms: u64,
    hole_punched: bool,
    rtt: Option<Duration>,
}

impl Conn {
    fn relay(&self) -> Option<PeerId> {
        relay_of(&self.address)
    }

    fn transport(&self) -> Transport {
        if self.relayed {
            Transport::Other
        } else {
            transport(&self.address)
        }
    }
}

/// Open connections by id. Holds one entry per connection the swarm
/// holds, so the connection limits bound it.
#[derive(Default)]
pub(super) struct Paths {
    conns: HashMap<ConnectionId, Conn>,
}

impl Paths {
    /// A connection opened.
    pub fn opened(&mut self, id: ConnectionId, peer: PeerId, at: &ConnectedPoint, now_ms: u64) {
        let (address, direction) = match at {
            ConnectedPoint::Dialer { address, .. } => (address.clone(), Direction::Outbound),
            // A relayed inbound connection shows the circuit it came through.
            ConnectedPoint::Listener { local_addr, .. } if at.is_relayed() => {
                (local_addr.clone(), Direction::Inbound)
            }
            ConnectedPoint::Listener { send_back_addr, .. } => {
                (send_back_addr.clone(), Direction::Inbound)
            }
        };
        self.conns.insert(
            id,
            Conn {
                peer,
                address,
                relayed: at.is_relayed(),
                direction,
                since_ms: now_ms,
                hole_punched: false,
                rtt: None,
            },
        );
    }

    /// A connection closed.
    pub fn closed(&mut self, id: ConnectionId) {
        self.conns.remove(&id);
    }

    /// A hole punch made this direct connection.
    pub fn punched(&mut self, id: ConnectionId) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.hole_punched = true;
        }
    }

    /// A ping's round trip on this connection.
    pub fn rtt(&mut self, id: ConnectionId, rtt: Duration) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.rtt = Some(rtt);
        }
    }

    /// `peer`'s relayed connections, when it also has a direct one: the
    /// ones to close (request-response spreads requests over every
    /// connection, and a relay caps what a circuit carries).
    pub fn redundant_relayed(&self, peer: &PeerId) -> Vec<ConnectionId> {
        let mine = || self.conns.iter().filter(|(_, c)| c.peer == *peer);
        if !mine().any(|(_, c)| !c.relayed) {
            return Vec::new();
        }
        mine()
            .filter(|(_, c)| c.relayed)
            .map(|(id, _)| *id)
            .collect()
    }

    /// `peer`'s connections, oldest first.
    pub fn connections(&self, peer: &PeerId) -> Vec<Connection> {
        let mut mine: Vec<&Conn> = self.conns.values().filter(|c| c.peer == *peer).collect();
        mine.sort_by_key(|c| c.since_ms);
        mine.into_iter()
            .map(|c| Connection {
                address: c.address.to_string(),
                transport: c.transport(),
                direction: c.direction,
                relayed: c.relayed,
                relay: c.relay().map(|r| r.to_string()),
                since_ms: c.since_ms,
                hole_punched: c.hole_punched,
            })
            .collect()
    }

    /// How `peer` is reached, and the round trip there: the oldest direct
    /// connection if any, else the oldest relayed one. `None`: not connected.
    pub fn path(&self, peer: &PeerId) -> Option<(PeerPath, Option<f64>)> {
        let best = self
            .conns
            .values()
            .filter(|c| c.peer == *peer)
            .min_by_key(|c| (c.relayed, c.since_ms))?;
        let path = PeerPath {
            kind: if best.relayed {
                PathKind::Relayed
            } else {
                PathKind::Direct
            },
            via: best.relay().map(|r| r.to_string()),
            transport: best.transport(),
        };
        Some((path, best.rtt.map(|d| d.as_secs_f64() * 1e3)))
    }
}

/// The relay's peer id in a circuit address (`…/p2p/<relay>/p2p-circuit/…`).
pub(super) fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut last = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(id) => last = Some(id),
            Protocol::P2pCircuit => return last,
            _ => {}
        }
    }
    None
}

/// The transport an address names; a circuit is `Other`.
pub(super) fn transport(addr: &Multiaddr) -> Transport {
    let mut t = Transport::Other;
    for p in addr.iter() {
        match p {
            Protocol::P2pCircuit => return Transport::Other,
            Protocol::QuicV1 => t = Transport::Quic,
            Protocol::Tcp(_) if t == Transport::Other => t = Transport::Tcp,
            _ => {}
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::core::{Endpoint, transport::PortUse};

    fn dial(addr: &str) -> ConnectedPoint {
        ConnectedPoint::Dialer {
            address: addr.parse().unwrap(),
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        }
    }

    #[test]
    fn a_peer_reached_through_a_relay_and_then_directly() {
        let (relay, peer) = (PeerId::random(), PeerId::random());
        let mut paths = Paths::default();
        let circuit = format!("/ip4/10.0.0.1/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{peer}");
        let relayed = ConnectionId::new_unchecked(1);
        paths.opened(relayed, peer, &dial(&circuit), 10);
        let (path, _) = paths.path(&peer).unwrap();
        assert_eq!(path.kind, PathKind::Relayed);
        assert_eq!(path.via, Some(relay.to_string()));
        assert!(
            paths.redundant_relayed(&peer).is_empty(),
            "the only way there"
        );

        let direct = ConnectionId::new_unchecked(2);
        paths.opened(direct, peer, &dial("/ip4/192.0.2.7/udp/4001/quic-v1"), 20);
        paths.punched(direct);
        paths.rtt(direct, Duration::from_millis(42));
        let (path, rtt) = paths.path(&peer).unwrap();
        assert_eq!(
            (path.kind, path.transport),
            (PathKind::Direct, Transport::Quic)
        );
        assert_eq!(rtt, Some(42.0));
        assert_eq!(paths.redundant_relayed(&peer), vec![relayed]);
        let conns = paths.connections(&peer);
        assert!(conns[0].relayed && !conns[1].relayed && conns[1].hole_punched);

        paths.closed(relayed);
        paths.closed(direct);
        assert!(paths.path(&peer).is_none());
    }

    #[test]
    fn an_inbound_circuit_is_relayed_even_when_its_address_names_no_relay() {
        let peer = PeerId::random();
        let mut paths = Paths::default();
        let at = ConnectedPoint::Listener {
            local_addr: "/ip4/192.0.2.1/tcp/4001/p2p-circuit".parse().unwrap(),
            send_back_addr: format!("/p2p/{peer}").parse().unwrap(),
        };
        paths.opened(ConnectionId::new_unchecked(1), peer, &at, 1);
        let (path, _) = paths.path(&peer).unwrap();
        assert_eq!((path.kind, path.via), (PathKind::Relayed, None));
        assert!(paths.connections(&peer)[0].relayed);
    }

    #[test]
    fn transports_and_relays_from_addresses() {
        let a: Multiaddr = "/ip4/1.2.3.4/tcp/1".parse().unwrap();
        assert_eq!(transport(&a), Transport::Tcp);
        assert_eq!(relay_of(&a), None);
        let q: Multiaddr = "/ip6/::1/udp/1/quic-v1".parse().unwrap();
        assert_eq!(transport(&q), Transport::Quic);
    }
}
