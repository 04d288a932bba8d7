//! The libp2p protocols a node runs and their limits.

use std::time::Duration;

use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, behaviour::toggle::Toggle};
use libp2p::{
    Swarm, allow_block_list, connection_limits, dcutr, gossipsub, identify, mdns, noise, ping,
    relay, tcp, yamux,
};

use super::config::{NetworkConfig, RelayServiceConfig};
use super::{NetError, codec, meet};

/// Field order matters: the swarm asks the behaviours in this order
/// whether to take a new connection and stops at the first that refuses.
/// The ones that refuse come first, so a refused connection never reaches
/// a behaviour that keeps state per connection (request-response records
/// it as live in `handle_established_*` and would send requests into it
/// that never fail nor time out).
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub limits: connection_limits::Behaviour,
    /// Peers banned for sending garbage.
    pub banned: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Peers cut off by a dev-mode partition (`merod run --dev` only;
    /// always empty on an operator's node).
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub gossipsub: gossipsub::Behaviour,
    pub sync: request_response::Behaviour<codec::Codec>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Reaching peers through relays, and holding slots on them.
    pub relay_client: relay::client::Behaviour,
    /// Serving as a relay (`[network.relay] serve`).
    pub relay: Toggle<relay::Behaviour>,
    /// Hole punching: a relayed connection becomes a direct one.
    pub dcutr: dcutr::Behaviour,
    /// Meeting members at meet servers (inbound too with
    /// `[network.meet] serve`).
    pub meet: request_response::Behaviour<meet::Codec>,
}

/// The swarm: TCP (Noise, Yamux), QUIC, DNS names, relayed connections,
/// and [`Behaviour`].
pub(crate) fn build_swarm(
    secret: [u8; 32],
    cfg: &NetworkConfig,
) -> Result<Swarm<Behaviour>, NetError> {
    let mut secret = secret;
    let key = libp2p::identity::Keypair::ed25519_from_bytes(&mut secret)
        .map_err(|e| NetError::Transport(e.to_string()))?;
    let gossip_cfg = gossipsub::ConfigBuilder::default()
        .flood_publish(true)
        // The first heartbeat builds meshes; flood publish does not wait for it.
        .heartbeat_initial_delay(Duration::from_millis(100))
        .heartbeat_interval(Duration::from_millis(700))
        .max_transmit_size(cfg.max_gossip_bytes)
        // A message is forwarded only once the node checked its deltas
        // (signature, membership, size): see `applier`.
        .validate_messages()
        // Deltas carry their author's signature; signing every gossip message
        // again with the node key would only double the cost.
        .validation_mode(gossipsub::ValidationMode::None)
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(crate::ids::sha256(&m.data).to_vec())
        })
        .build()
        .map_err(|e| NetError::Transport(e.to_string()))?;
    let mdns_on = cfg.mdns;
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(cfg.max_connections_per_peer))
        .with_max_established_incoming(Some(cfg.max_inbound_connections))
        .with_max_pending_incoming(Some(cfg.max_inbound_connections));
    let streams = cfg.max_streams_per_connection;
    let relay_service = cfg.relay.serve.then(|| relay_config(&cfg.relay));
    let meet_support = if cfg.meet.serve {
        ProtocolSupport::Full
    } else {
        ProtocolSupport::Outbound
    };
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_quic_config(|mut c| {
            // Keeps NAT mappings open and notices a dead path in seconds.
            c.keep_alive_interval = Duration::from_secs(5);
            c.max_idle_timeout = 30_000;
            c.handshake_timeout = Duration::from_secs(10);
            c
        })
        .with_dns()
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_behaviour(|key, relay_client| {
            let peer = key.public().to_peer_id();
            Ok(Behaviour {
                gossipsub: gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Anonymous,
                    gossip_cfg,
                )?,
                sync: request_response::Behaviour::with_codec(
                    codec::Codec,
                    [(codec::PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(20))
                        .with_max_concurrent_streams(streams),
                ),
                identify: identify::Behaviour::new(
                    identify::Config::new("/mero/1.0.0".into(), key.public())
                        // Peers learn new relay circuits at once.
                        .with_push_listen_addr_updates(true),
                ),
                ping: ping::Behaviour::default(),
                mdns: if mdns_on {
                    Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer)?)
                } else {
                    None
                }
                .into(),
                relay_client,
                relay: relay_service.map(|c| relay::Behaviour::new(peer, c)).into(),
                dcutr: dcutr::Behaviour::new(peer),
                meet: request_response::Behaviour::with_codec(
                    meet::Codec,
                    [(meet::PROTOCOL, meet_support)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(20))
                        .with_max_concurrent_streams(streams),
                ),
                limits: connection_limits::Behaviour::new(limits),
                blocked: Default::default(),
                banned: Default::default(),
            })
        })
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build();
    Ok(swarm)
}

/// libp2p's relay limits from `[network.relay]`; its rate limits (30
/// reservations and circuits per peer per 2 min, 60 per IP per minute) stay.
fn relay_config(c: &RelayServiceConfig) -> relay::Config {
    relay::Config {
        max_reservations: c.max_reservations,
        max_reservations_per_peer: c.max_reservations_per_peer,
        reservation_duration: Duration::from_secs(c.reservation_secs.max(60)),
        max_circuits: c.max_circuits,
        max_circuits_per_peer: c.max_circuits_per_peer,
        max_circuit_duration: Duration::from_secs(c.max_circuit_secs.max(1)),
        max_circuit_bytes: c.max_circuit_bytes,
        ..relay::Config::default()
    }
}
