//! `[network]`: transports, peers, limits, and the relay service.

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use serde::{Deserialize, Serialize};

/// `[network]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// libp2p listen multiaddrs: TCP (`/ip4/…/tcp/<port>`) and QUIC
    /// (`/ip4/…/udp/<port>/quic-v1`). Port 0 picks a free port.
    pub listen: Vec<String>,
    /// Peers to connect to at start and to keep reconnecting to
    /// (multiaddrs, ideally ending in `/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// Addresses peers elsewhere reach this node on, when its listen
    /// addresses are not (a port forwarded on a router, a DNS name):
    /// announced to peers, put into invitations, and required to serve as
    /// a relay.
    pub external_addresses: Vec<String>,
    /// This node's listen addresses are reachable as they are (a server
    /// with a public address): each one becomes an external address.
    pub public: bool,
    /// Relays to hold a slot on (multiaddrs ending in `/p2p/<peer id>`), so
    /// peers that cannot dial this node (behind a NAT) reach it through
    /// them, and then try to connect directly (hole punching).
    pub relays: Vec<String>,
    /// Serving as a relay for other nodes.
    pub relay: RelayServiceConfig,
    /// Serving as a meet server, where members of a context find each
    /// other ([`mero_sync::meet`]).
    pub meet: super::meet::MeetServiceConfig,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// How often to compare heads with each peer, in milliseconds.
    pub sync_interval_ms: u64,
    /// Largest gossip message, in bytes; larger ones are dropped unread.
    pub max_gossip_bytes: usize,
    /// Gossip messages waiting to be applied; when full, new ones are
    /// dropped (not forwarded) and catch-up fetches their deltas later.
    pub gossip_queue: usize,
    /// Commands from the node to the network waiting for the swarm task;
    /// when full, new ones are dropped and catch-up repairs the loss.
    pub command_queue: usize,
    /// Inbound requests one peer may have in flight; more are answered
    /// "busy" at once.
    pub max_inflight_per_peer: usize,
    /// Inbound requests all peers together may have in flight.
    pub max_inflight: usize,
    /// Connections one peer may hold open to this node.
    pub max_connections_per_peer: u32,
    /// Inbound connections in all.
    pub max_inbound_connections: u32,
    /// Concurrent request streams per connection.
    pub max_streams_per_connection: usize,
    /// Garbage score at which a peer is disconnected and banned: a forged
    /// or malformed message counts 10, a request without a valid
    /// membership proof 1, and the score decays by this much per minute.
    pub strike_limit: u32,
    /// How long a ban lasts, in seconds.
    pub ban_secs: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/127.0.0.1/tcp/0".into(),
                "/ip4/127.0.0.1/udp/0/quic-v1".into(),
            ],
            bootstrap: Vec::new(),
            external_addresses: Vec::new(),
            public: false,
            relays: Vec::new(),
            relay: RelayServiceConfig::default(),
            meet: Default::default(),
            mdns: false,
            sync_interval_ms: 2_000,
            max_gossip_bytes: 8 << 20,
            gossip_queue: 1_024,
            command_queue: 16_384,
            max_inflight_per_peer: 64,
            max_inflight: 256,
            max_connections_per_peer: 4,
            max_inbound_connections: 512,
            max_streams_per_connection: 64,
            strike_limit: 100,
            ban_secs: 600,
        }
    }
}

/// `[network.relay]`: circuit relay v2 for peers behind NATs. A relay sees
/// who talks to whom and how much, never what (Noise runs end to end).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayServiceConfig {
    /// Serve as a relay. Needs an address peers can dial: `public = true`
    /// or `external_addresses`.
    pub serve: bool,
    /// Peers holding a slot at once.
    pub max_reservations: usize,
    /// Slots one peer may hold.
    pub max_reservations_per_peer: usize,
    /// How long a slot lasts before its holder must renew it, in seconds.
    pub reservation_secs: u64,
    /// Circuits open at once.
    pub max_circuits: usize,
    /// Circuits one peer may have open.
    pub max_circuits_per_peer: usize,
    /// How long one circuit may last, in seconds.
    pub max_circuit_secs: u64,
    /// Bytes one circuit may carry (both ways); then the relay closes it.
    /// Peers meant to upgrade to a direct connection well before.
    pub max_circuit_bytes: u64,
}

impl Default for RelayServiceConfig {
    fn default() -> Self {
        Self {
            serve: false,
            max_reservations: 128,
            max_reservations_per_peer: 4,
            reservation_secs: 3_600,
            max_circuits: 16,
            max_circuits_per_peer: 4,
            max_circuit_secs: 120,
            max_circuit_bytes: 1 << 20,
        }
    }
}

impl NetworkConfig {
    /// Checks what a TOML parser cannot: addresses parse, relays name
    /// their peer, a relay service has an address to offer.
    pub fn validate(&self) -> Result<(), String> {
        let parse = |field: &str, list: &[String]| -> Result<Vec<Multiaddr>, String> {
            list.iter()
                .map(|a| {
                    a.parse::<Multiaddr>()
                        .map_err(|e| format!("network.{field}: `{a}` is not a multiaddr ({e})"))
                })
                .collect()
        };
        parse("listen", &self.listen)?;
        parse("bootstrap", &self.bootstrap)?;
        parse("external_addresses", &self.external_addresses)?;
        for r in parse("relays", &self.relays)? {
            if !matches!(r.iter().last(), Some(Protocol::P2p(_))) {
                return Err(format!(
                    "network.relays: `{r}` must end in /p2p/<the relay's peer id>"
                ));
            }
        }
        let r = &self.relay;
        if r.serve && !self.public && self.external_addresses.is_empty() {
            return Err("network.relay.serve needs an address peers can dial: set network.public = true or network.external_addresses".into());
        }
        if r.serve
            && [
                r.max_reservations,
                r.max_reservations_per_peer,
                r.max_circuits,
                r.max_circuits_per_peer,
            ]
            .contains(&0)
        {
            return Err(
                "network.relay: the reservation and circuit limits must be positive".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_needs_an_address_and_relays_name_their_peer() {
        let mut c = NetworkConfig::default();
        assert_eq!(c.validate(), Ok(()));
        c.relay.serve = true;
        assert!(c.validate().unwrap_err().contains("network.public"));
        c.public = true;
        assert_eq!(c.validate(), Ok(()));
        c.relays = vec!["/ip4/192.0.2.1/tcp/4001".into()];
        assert!(c.validate().unwrap_err().contains("/p2p/"));
        c.relays = vec!["not an address".into()];
        assert!(c.validate().unwrap_err().contains("not a multiaddr"));
    }
}
