//! The peer-to-peer layer: libp2p over TCP (Noise, Yamux) and QUIC, with
//! circuit relay v2 and hole punching (DCUtR) for nodes behind NATs.
//!
//! - gossipsub, one topic per context and key epoch, named after the epoch
//!   key ([`mero_sync::gate::topic_name`]) so only members can subscribe;
//!   flood publish. A message is forwarded only after the node checked it
//!   (`validate_messages`): garbage is dropped and counts against the peer
//!   that sent it.
//! - request-response (`/mero/sync/2`): catch-up digests and pages, missing
//!   deltas by id, app bytecode ([`codec`]). Every request carries the
//!   requester's proof of membership; the node answers only members.
//! - identify and ping; explicit bootstrap peers, redialled while down; mDNS
//!   when enabled; connection limits; bans.
//! - relays: a node holds slots on its configured relays (`relays`) and can
//!   serve as one (`relay`, limits per circuit); a peer reached through a
//!   relay is upgraded to a direct connection by hole punching, and the
//!   relayed one is then closed.
//!
//! Parts: [`behaviour`] (the protocols and their limits), [`handle`] (what
//! the node holds: a bounded command queue), `swarm` (the task that owns
//! the swarm), `commands` (the node's commands to it), `inbound` (what
//! peers send, routed to the workers), `applier` (the thread that applies
//! gossip), [`guard`] (peer scores, bans, requests in flight), `traffic`
//! (per-peer counts), [`faults`] (dev-mode partitions, delay and loss),
//! [`config`] (`[network]`), `paths` (how each connection reaches its
//! peer), `relays` (this node's reservations), `nat` (relay and hole-punch
//! events).
//!
//! The swarm task never blocks: everything that touches the node (context
//! locks, RocksDB) runs on the applier thread or on tokio's blocking pool,
//! through the [`Replication`] interface, and reports back by channel.
//! This module decides nothing about deltas: that is `mero_sync`, bound to
//! the node's contexts by [`crate::sync`].

mod applier;
pub mod behaviour;
pub mod codec;
mod commands;
pub mod config;
pub mod faults;
pub mod guard;
pub mod handle;
mod inbound;
pub mod meet;
mod nat;
mod paths;
mod relays;
mod swarm;
mod traffic;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use mero_sync::SignedDelta;
use mero_sync::gate::Topic;
use mero_sync::protocol::{Envelope, Response};
use tokio::sync::mpsc;

pub use handle::{NetHandle, NetStatus, PeerInfo, Peering};

/// Whether the network may inject faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// An operator's node: no fault state exists.
    Operator,
    /// `merod run --dev`: faults at `/admin/dev/faults`.
    Dev,
}

use crate::config::NetworkConfig;
use crate::context::ReceiveReport;
use crate::error::NodeError;
use crate::ids::ContextId;
use crate::sync::Answer;

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A configured address is not a multiaddr.
    #[error("`{0}` is not a valid multiaddr (example: /ip4/127.0.0.1/tcp/2429)")]
    BadAddr(String),
    /// libp2p refused to start.
    #[error("libp2p: {0}")]
    Transport(String),
}

/// What the network needs from the node, and all it may ask. Every method
/// may block (context locks, RocksDB): the network calls them only on its
/// applier thread and on tokio's blocking pool, never on the swarm task.
pub trait Replication: Send + Sync + 'static {
    /// Contexts to follow at start, with their current gossip topics.
    fn followed(&self) -> Vec<(ContextId, Option<Topic>)>;
    /// The request that opens a catch-up round for `ctx`.
    fn opening(&self, ctx: &ContextId) -> Option<Envelope>;
    /// A request for `app` from peers of `ctx` with a fresh proof (a
    /// joiner's changes when its join is in); `None` once the node has it.
    fn app_request(&self, ctx: &ContextId, app: &crate::ids::AppHash) -> Option<Envelope>;
    /// Answers a request from the peer whose transport id is `peer`.
    fn answer(&self, peer: &[u8], request: &Envelope) -> Answer;
    /// Handles the response to `request` from `from`; the next request to
    /// send it, if any.
    fn on_response(&self, request: &Envelope, response: Response, from: &str) -> Option<Envelope>;
    /// The node's counters.
    fn metrics(&self) -> &crate::metrics::Metrics;
    /// Applies gossiped deltas of `ctx` sent by `from`.
    fn gossip(
        &self,
        ctx: &ContextId,
        deltas: Vec<SignedDelta>,
        from: &str,
    ) -> Result<ReceiveReport, NodeError>;
}

/// A handle for a node about to open, and what [`start`] needs to run the
/// network behind it. The handle queues commands until the network starts.
pub struct Pending {
    handle: NetHandle,
    rx: mpsc::Receiver<handle::Command>,
    tx: mpsc::Sender<handle::Command>,
    addrs: Arc<RwLock<Vec<String>>>,
    meet_addrs: Arc<RwLock<Vec<String>>>,
    mode: NetMode,
}

impl Pending {
    /// A handle for the node whose libp2p key is `secret`.
    pub fn new(secret: [u8; 32], cfg: &NetworkConfig, mode: NetMode) -> Result<Self, NetError> {
        let mut bytes = secret;
        let peer_id = libp2p::identity::Keypair::ed25519_from_bytes(&mut bytes)
            .map_err(|e| NetError::Transport(e.to_string()))?
            .public()
            .to_peer_id();
        let (tx, rx) = mpsc::channel(cfg.command_queue.max(16));
        let addrs = Arc::default();
        let meet_addrs = Arc::default();
        let handle = NetHandle::new(
            tx.clone(),
            Arc::clone(&addrs),
            Arc::clone(&meet_addrs),
            peer_id,
            mode == NetMode::Dev,
        );
        Ok(Self {
            handle,
            rx,
            tx,
            addrs,
            meet_addrs,
            mode,
        })
    }

    /// The handle to give the node.
    pub fn handle(&self) -> NetHandle {
        self.handle.clone()
    }
}

fn parse_addrs(addrs: &[String]) -> Result<Vec<Multiaddr>, NetError> {
    addrs
        .iter()
        .map(|a| a.parse().map_err(|_| NetError::BadAddr(a.clone())))
        .collect()
}

/// The peer an address leads to: its last `/p2p` (in a circuit address
/// `…/p2p/<relay>/p2p-circuit/p2p/<peer>`, the one after the relay).
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter()
        .filter_map(|p| match p {
            libp2p::multiaddr::Protocol::P2p(id) => Some(id),
            _ => None,
        })
        .last()
}

/// Starts the network behind `pending`'s handle for the node `node`, whose
/// libp2p key is `secret`: listens, dials the bootstrap peers and follows
/// every context the node has.
pub async fn start(
    node: Arc<dyn Replication>,
    secret: [u8; 32],
    pending: Pending,
    cfg: &NetworkConfig,
) -> Result<NetHandle, NetError> {
    let mut swarm = behaviour::build_swarm(secret, cfg)?;
    let listen = parse_addrs(&cfg.listen)?;
    let loopback_only = listen.iter().all(nat::is_loopback);
    for addr in listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Transport(format!("listening on {addr}: {e}")))?;
    }
    for addr in parse_addrs(&cfg.external_addresses)? {
        swarm.add_external_address(addr);
    }
    let bootstrap = parse_addrs(&cfg.bootstrap)?;
    let relays = parse_addrs(&cfg.relays)?;
    let bootstrap_and_relays: Vec<Multiaddr> = bootstrap.iter().chain(&relays).cloned().collect();
    let applier = applier::Applier::spawn(node.clone(), pending.tx.clone(), cfg.gossip_queue)
        .map_err(|e| NetError::Transport(format!("starting the applier thread: {e}")))?;
    let followed = {
        let node = node.clone();
        tokio::task::spawn_blocking(move || node.followed())
            .await
            .map_err(|e| NetError::Transport(e.to_string()))?
    };
    let limits = guard::GuardLimits {
        strike_limit: cfg.strike_limit,
        ban: Duration::from_secs(cfg.ban_secs.max(1)),
        inflight_per_peer: cfg.max_inflight_per_peer.max(1),
        inflight_total: cfg.max_inflight.max(1),
    };
    let mut task = swarm::Task::new(
        swarm,
        node,
        pending.tx,
        pending.addrs,
        applier,
        bootstrap,
        limits,
    );
    task.meet = meet::Discovery::new(bootstrap_and_relays, pending.meet_addrs, &cfg.meet);
    task.reach = nat::Reach {
        paths: Default::default(),
        relays: relays::Relays::new(&relays, std::time::Instant::now()),
        service: cfg.relay.serve.then(|| {
            nat::ServiceStats::new(cfg.relay.max_circuit_bytes, cfg.relay.max_circuit_secs)
        }),
        public: cfg.public,
        loopback_only,
    };
    if let Some(relay) = task.swarm.behaviour_mut().relay.as_mut() {
        // Offer the service now; libp2p would wait for a confirmed address.
        relay.set_status(Some(libp2p::relay::Status::Enable));
    }
    if pending.mode == NetMode::Dev {
        task.faults = Some(faults::Faults::default());
    }
    for (ctx, topic) in followed {
        task.follow(ctx, topic);
    }
    task.dial_known();
    task.reserve_due();
    let sync_every = Duration::from_millis(cfg.sync_interval_ms.max(50));
    let rx = pending.rx;
    tokio::spawn(async move { task.run(rx, sync_every).await });
    Ok(pending.handle)
}
