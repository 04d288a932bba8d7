//! The peer-to-peer layer: libp2p over TCP with Noise and Yamux.
//!
//! - gossipsub, one topic per context (`mero/ctx/<id>`), flood publish: every
//!   delta goes straight to every peer subscribed to its context.
//! - request-response (`/mero/sync/1`): catch-up digests and pages, missing
//!   deltas by id, app bytecode ([`codec`]).
//! - identify and ping; explicit bootstrap peers, redialled while down; mDNS
//!   when enabled.
//!
//! The swarm runs on one task. Everything that touches the node's state (and
//! RocksDB) runs on blocking threads: gossip goes to a dedicated applier
//! thread that applies deltas in batches; requests and responses are handled
//! on tokio's blocking pool and report back to the swarm task by channel.
//! This module decides nothing about deltas: that is `mero_sync` and
//! [`crate::sync`].

pub mod codec;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent, behaviour::toggle::Toggle};
use libp2p::{
    Multiaddr, PeerId, Swarm, allow_block_list, gossipsub, identify, mdns, noise, ping, tcp, yamux,
};
use mero_sync::SignedDelta;
use mero_sync::protocol::{
    GOSSIP_BATCH_BYTES, GOSSIP_BATCH_LIMIT, Request, Response, decode_gossip, encode_gossip,
};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::config::NetworkConfig;
use crate::ids::{AppHash, ContextId, DeltaId};
use crate::node::Node;

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

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<codec::Codec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
}

/// One connected peer, as `/admin/network` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerInfo {
    /// Its peer id.
    pub peer_id: String,
    /// Addresses of its connections.
    pub addrs: Vec<String>,
    /// Contexts it follows that this node follows too.
    pub contexts: Vec<ContextId>,
}

/// The network's state, for `/admin/network`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetStatus {
    /// This node's peer id.
    pub peer_id: String,
    /// Where it listens (with `/p2p/<peer id>`: give these to other nodes).
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerInfo>,
    /// Whether the node is cut off from the network (test hook).
    pub paused: bool,
}

enum Command {
    Publish(SignedDelta),
    Subscribe(ContextId),
    Unsubscribe(ContextId),
    Want(ContextId, Vec<DeltaId>, Option<String>),
    FetchApp(AppHash),
    Sync(ContextId),
    Dial(Vec<String>),
    Status(oneshot::Sender<NetStatus>),
    Pause(bool),
    /// Stop: drain the applier, then answer.
    Shutdown(oneshot::Sender<()>),
    Respond(ResponseChannel<Response>, Response),
    Request(PeerId, Request),
    Round(PeerId, ContextId),
    RoundDone(PeerId, ContextId),
}

/// The node's handle on the network: implements [`Network`].
#[derive(Clone)]
pub struct NetHandle {
    tx: mpsc::UnboundedSender<Command>,
    addrs: Arc<RwLock<Vec<String>>>,
    peer_id: PeerId,
}

impl NetHandle {
    fn send(&self, cmd: Command) {
        // The swarm task ends only when the node shuts down.
        let _ = self.tx.send(cmd);
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The network's state.
    pub async fn status(&self) -> Option<NetStatus> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Status(tx));
        rx.await.ok()
    }

    /// Cuts the node off from every peer (`true`) or reconnects it (`false`).
    /// A test hook for partitions.
    pub fn pause(&self, paused: bool) {
        self.send(Command::Pause(paused));
    }

    /// Stops the network: closes every connection and waits until gossip
    /// already received has been applied. Later calls do nothing.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Shutdown(tx));
        let _ = rx.await;
    }
}

impl NetHandle {
    /// Publishes a delta on its context's topic (together with whatever
    /// else was committed meanwhile: see [`mero_sync::protocol::encode_gossip`]).
    pub fn publish(&self, delta: SignedDelta) {
        self.send(Command::Publish(delta));
    }
    /// Starts following a context's topic.
    pub fn subscribe(&self, ctx: ContextId) {
        self.send(Command::Subscribe(ctx));
    }
    /// Stops following a context's topic.
    pub fn unsubscribe(&self, ctx: ContextId) {
        self.send(Command::Unsubscribe(ctx));
    }
    /// Asks peers (`from` first, if connected) for these deltas.
    pub fn want(&self, ctx: ContextId, ids: Vec<DeltaId>, from: Option<String>) {
        self.send(Command::Want(ctx, ids, from));
    }
    /// Fetches an app's WASM from peers; the node installs it when it arrives.
    pub fn fetch_app(&self, hash: AppHash) {
        self.send(Command::FetchApp(hash));
    }
    /// Starts a catch-up round for `ctx` with every connected peer.
    pub fn sync(&self, ctx: ContextId) {
        self.send(Command::Sync(ctx));
    }
    /// Connects (and keeps reconnecting) to these multiaddrs.
    pub fn dial(&self, addrs: &[String]) {
        self.send(Command::Dial(addrs.to_vec()));
    }
    /// This node's listen addresses, with its peer id.
    pub fn addresses(&self) -> Vec<String> {
        self.addrs.read().unwrap().clone()
    }
}

fn topic(ctx: &ContextId) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("mero/ctx/{ctx}"))
}

fn parse_addrs(addrs: &[String]) -> Result<Vec<Multiaddr>, NetError> {
    addrs
        .iter()
        .map(|a| a.parse().map_err(|_| NetError::BadAddr(a.clone())))
        .collect()
}

fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

fn build_swarm(secret: [u8; 32], cfg: &NetworkConfig) -> Result<Swarm<Behaviour>, NetError> {
    let mut secret = secret;
    let key = libp2p::identity::Keypair::ed25519_from_bytes(&mut secret)
        .map_err(|e| NetError::Transport(e.to_string()))?;
    let gossip_cfg = gossipsub::ConfigBuilder::default()
        .flood_publish(true)
        // The first heartbeat builds meshes; flood publish does not wait for it.
        .heartbeat_initial_delay(Duration::from_millis(100))
        .heartbeat_interval(Duration::from_millis(700))
        .max_transmit_size(8 << 20)
        // Deltas carry their author's signature; signing every gossip message
        // again with the node key would only double the cost.
        .validation_mode(gossipsub::ValidationMode::None)
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(crate::ids::sha256(&m.data).to_vec())
        })
        .build()
        .map_err(|e| NetError::Transport(e.to_string()))?;
    let mdns_on = cfg.mdns;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_behaviour(|key| {
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
                        .with_max_concurrent_streams(256),
                ),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/mero/1.0.0".into(),
                    key.public(),
                )),
                ping: ping::Behaviour::default(),
                mdns: if mdns_on {
                    Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer)?)
                } else {
                    None
                }
                .into(),
                blocked: Default::default(),
            })
        })
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build();
    Ok(swarm)
}

/// Starts the network for `node`: listens, dials the bootstrap peers,
/// subscribes to every context, and connects the node to it.
pub async fn start(node: Arc<Node>, cfg: &NetworkConfig) -> Result<NetHandle, NetError> {
    let mut swarm = build_swarm(node.identity_secret(), cfg)?;
    for addr in parse_addrs(&cfg.listen)? {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Transport(format!("listening on {addr}: {e}")))?;
    }
    let bootstrap = parse_addrs(&cfg.bootstrap)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = NetHandle {
        tx: tx.clone(),
        addrs: Arc::default(),
        peer_id: *swarm.local_peer_id(),
    };
    let (gossip_tx, gossip_rx) = std::sync::mpsc::channel();
    let applier = {
        let node = node.clone();
        std::thread::Builder::new()
            .name("mero-applier".into())
            .spawn(move || applier(node, gossip_rx))
            .map_err(|e| NetError::Transport(e.to_string()))?
    };
    let mut task = Task {
        swarm,
        node: node.clone(),
        tx,
        handle: handle.clone(),
        gossip_tx,
        applier: Some(applier),
        topics: HashMap::new(),
        known: bootstrap,
        outbound: HashMap::new(),
        rounds: HashSet::new(),
        wanted_apps: HashSet::new(),
        paused: false,
    };
    for addr in task.known.clone() {
        task.dial(addr);
    }
    node.set_network(handle.clone());
    let sync_every = Duration::from_millis(cfg.sync_interval_ms.max(50));
    tokio::spawn(async move { task.run(rx, sync_every).await });
    Ok(handle)
}

/// Applies gossiped deltas in batches, one context lock and one write batch
/// per context per batch.
fn applier(node: Arc<Node>, rx: std::sync::mpsc::Receiver<(ContextId, PeerId, Vec<SignedDelta>)>) {
    while let Ok(first) = rx.recv() {
        // Up to about this many deltas per lock and write batch.
        let mut taken = first.2.len();
        let mut messages = vec![first];
        while taken < 1024 {
            match rx.try_recv() {
                Ok(m) => {
                    taken += m.2.len();
                    messages.push(m);
                }
                Err(_) => break,
            }
        }
        let mut by_ctx: Vec<(ContextId, PeerId, Vec<SignedDelta>)> = Vec::new();
        for (ctx, peer, mut deltas) in messages {
            match by_ctx.iter_mut().find(|(c, _, _)| *c == ctx) {
                Some((_, p, v)) => {
                    *p = peer;
                    v.append(&mut deltas);
                }
                None => by_ctx.push((ctx, peer, deltas)),
            }
        }
        for (ctx, peer, deltas) in by_ctx {
            if let Err(e) = node.receive(&ctx, deltas, Some(peer.to_string())) {
                tracing::debug!(context = %ctx, "gossip not applied: {e}");
            }
        }
    }
}

struct Task {
    swarm: Swarm<Behaviour>,
    node: Arc<Node>,
    tx: mpsc::UnboundedSender<Command>,
    handle: NetHandle,
    gossip_tx: std::sync::mpsc::Sender<(ContextId, PeerId, Vec<SignedDelta>)>,
    /// The applier thread, joined on shutdown.
    applier: Option<std::thread::JoinHandle<()>>,
    topics: HashMap<gossipsub::TopicHash, ContextId>,
    /// Addresses to keep connected to: bootstrap peers and invitation addresses.
    known: Vec<Multiaddr>,
    outbound: HashMap<OutboundRequestId, (PeerId, Request)>,
    /// Catch-up rounds in flight, so periodic sync does not pile up.
    rounds: HashSet<(PeerId, ContextId)>,
    wanted_apps: HashSet<AppHash>,
    paused: bool,
}

impl Task {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Command>, sync_every: Duration) {
        let mut tick = tokio::time::interval(sync_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm(ev),
                cmd = rx.recv() => {
                    let cmd = match cmd {
                        Some(Command::Publish(d)) => match self.publish_queued(d, &mut rx) {
                            Some(next) => next,
                            None => continue,
                        },
                        Some(cmd) => cmd,
                        None => break,
                    };
                    if let Command::Shutdown(reply) = cmd {
                        self.close().await;
                        let _ = reply.send(());
                        break;
                    }
                    self.on_command(cmd);
                }
                _ = tick.tick() => self.on_tick(),
            }
        }
    }

    /// Publishes `first` and every delta already queued behind it, a batch
    /// per context per message, in commit order. Stops at the first other
    /// command and returns it, so commands keep their order.
    fn publish_queued(
        &mut self,
        first: SignedDelta,
        rx: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Option<Command> {
        let mut batches: Vec<(ContextId, Vec<SignedDelta>, usize)> = Vec::new();
        let mut next = Some(Command::Publish(first));
        let other = loop {
            match next.take() {
                Some(Command::Publish(d)) => {
                    let ctx = d.body.header.context;
                    let size = d.body.payload.len();
                    match batches.iter_mut().rev().find(|(c, ..)| *c == ctx) {
                        Some((_, v, bytes))
                            if v.len() < GOSSIP_BATCH_LIMIT && *bytes < GOSSIP_BATCH_BYTES =>
                        {
                            v.push(d);
                            *bytes += size;
                        }
                        _ => batches.push((ctx, vec![d], size)),
                    }
                }
                Some(cmd) => break Some(cmd),
                None => break None,
            }
            next = rx.try_recv().ok();
        };
        for (ctx, deltas, _) in batches {
            if let Err(e) = self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic(&ctx), encode_gossip(&deltas))
            {
                // No subscribed peer yet: catch-up delivers it later.
                tracing::debug!(context = %ctx, "publish: {e}");
            }
        }
        other
    }

    /// Ends the applier after it applied what it holds: its channel closes
    /// when the last sender, ours, is replaced.
    async fn close(&mut self) {
        self.gossip_tx = std::sync::mpsc::channel().0;
        if let Some(applier) = self.applier.take() {
            let _ = tokio::task::spawn_blocking(move || applier.join()).await;
        }
    }

    /// Connects (and keeps reconnecting) to these multiaddrs.
    pub fn dial(&mut self, addr: Multiaddr) {
        if self.paused {
            return;
        }
        if let Some(p) = peer_of(&addr)
            && (self.swarm.is_connected(&p) || p == *self.swarm.local_peer_id())
        {
            return;
        }
        if let Err(e) = self.swarm.dial(addr.clone()) {
            tracing::debug!(%addr, "dial failed: {e}");
        }
    }

    fn request(&mut self, peer: PeerId, req: Request) {
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, req.clone());
        self.outbound.insert(id, (peer, req));
    }

    fn start_round(&mut self, peer: PeerId, ctx: ContextId) {
        if self.paused || !self.rounds.insert((peer, ctx)) {
            return;
        }
        match self.node.digest_request(&ctx) {
            Some(req) => {
                self.node.metrics().sync_round(&ctx);
                self.request(peer, req)
            }
            None => {
                self.rounds.remove(&(peer, ctx));
            }
        }
    }

    fn connected(&self) -> Vec<PeerId> {
        self.swarm.connected_peers().copied().collect()
    }

    fn on_tick(&mut self) {
        if self.paused {
            return;
        }
        // Addresses without a peer id cannot be checked for an existing
        // connection: dial them only while the node has none at all.
        let idle = self.swarm.connected_peers().next().is_none();
        for addr in self.known.clone() {
            if idle || peer_of(&addr).is_some() {
                self.dial(addr);
            }
        }
        for p in self.connected() {
            self.catch_up_with(p);
        }
    }

    /// Starts a round for every context with `peer` and asks it for the
    /// apps this node still lacks.
    fn catch_up_with(&mut self, peer: PeerId) {
        for ctx in self.node.context_ids() {
            self.start_round(peer, ctx);
        }
        self.wanted_apps.retain(|h| !self.node.has_app(h));
        for hash in self.wanted_apps.clone() {
            self.request(peer, Request::App { hash });
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish(_) => unreachable!("`run` batches publishing"),
            Command::Subscribe(ctx) => {
                let t = topic(&ctx);
                self.topics.insert(t.hash(), ctx);
                if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&t) {
                    tracing::warn!(context = %ctx, "subscribe: {e}");
                }
            }
            Command::Unsubscribe(ctx) => {
                let t = topic(&ctx);
                self.topics.remove(&t.hash());
                self.swarm.behaviour_mut().gossipsub.unsubscribe(&t);
            }
            Command::Want(ctx, ids, from) => {
                let from = from.and_then(|p| p.parse::<PeerId>().ok());
                let peers = match from {
                    Some(p) if self.swarm.is_connected(&p) => vec![p],
                    _ => self.connected(),
                };
                for ids in ids.chunks(mero_sync::protocol::BY_ID_LIMIT) {
                    for p in &peers {
                        let req = Request::ById {
                            context: ctx,
                            ids: ids.to_vec(),
                        };
                        self.request(*p, req);
                    }
                }
            }
            Command::FetchApp(hash) => {
                self.wanted_apps.insert(hash);
                for p in self.connected() {
                    self.request(p, Request::App { hash });
                }
            }
            Command::Sync(ctx) => {
                for p in self.connected() {
                    self.start_round(p, ctx);
                }
            }
            Command::Dial(addrs) => {
                for a in addrs {
                    match a.parse::<Multiaddr>() {
                        Ok(addr) => {
                            if !self.known.contains(&addr) {
                                self.known.push(addr.clone());
                            }
                            self.dial(addr);
                        }
                        Err(_) => tracing::warn!("ignoring invalid address {a}"),
                    }
                }
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Pause(paused) => self.pause(paused),
            Command::Shutdown(_) => unreachable!("`run` handles shutdown itself"),
            Command::Respond(channel, resp) => {
                // The peer may be gone; then the answer is moot.
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, resp);
            }
            Command::Request(peer, req) => self.request(peer, req),
            Command::Round(peer, ctx) => self.start_round(peer, ctx),
            Command::RoundDone(peer, ctx) => {
                self.rounds.remove(&(peer, ctx));
            }
        }
    }

    fn pause(&mut self, paused: bool) {
        self.paused = paused;
        let peers: Vec<PeerId> = if paused {
            self.connected()
                .into_iter()
                .chain(self.known.iter().filter_map(peer_of))
                .collect()
        } else {
            self.swarm
                .behaviour()
                .blocked
                .blocked_peers()
                .iter()
                .copied()
                .collect()
        };
        for p in peers {
            if paused {
                self.swarm.behaviour_mut().blocked.block_peer(p);
            } else {
                self.swarm.behaviour_mut().blocked.unblock_peer(p);
            }
        }
        if !paused {
            self.on_tick();
        }
        tracing::info!(
            paused,
            "network {}",
            if paused { "paused" } else { "resumed" }
        );
    }

    fn status(&self) -> NetStatus {
        let gossip = &self.swarm.behaviour().gossipsub;
        let mut peers: HashMap<PeerId, PeerInfo> = HashMap::new();
        for p in self.swarm.connected_peers() {
            peers.insert(
                *p,
                PeerInfo {
                    peer_id: p.to_string(),
                    addrs: Vec::new(),
                    contexts: Vec::new(),
                },
            );
        }
        for (p, topics) in gossip.all_peers() {
            if let Some(info) = peers.get_mut(p) {
                info.contexts = topics
                    .iter()
                    .filter_map(|t| self.topics.get(t))
                    .copied()
                    .collect();
            }
        }
        let mut peers: Vec<_> = peers.into_values().collect();
        peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        NetStatus {
            peer_id: self.swarm.local_peer_id().to_string(),
            listen_addrs: self.handle.addresses(),
            peers,
            paused: self.paused,
        }
    }

    fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = format!("{address}/p2p/{}", self.swarm.local_peer_id());
                // Scripts and tests read this line to learn the address.
                println!("merod p2p listening on {full}");
                self.handle.addrs.write().unwrap().push(full);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                if num_established.get() == 1 {
                    self.catch_up_with(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::debug!(peer = %peer_id, "disconnected");
                self.rounds.retain(|(p, _)| *p != peer_id);
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour(ev),
            _ => {}
        }
    }

    fn on_behaviour(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message,
                ..
            }) => {
                let Some(ctx) = self.topics.get(&message.topic).copied() else {
                    return;
                };
                match decode_gossip(&message.data) {
                    Ok(deltas) => {
                        let _ = self.gossip_tx.send((ctx, propagation_source, deltas));
                    }
                    Err(e) => {
                        tracing::warn!(peer = %propagation_source, context = %ctx, "undecodable gossip: {e}")
                    }
                }
            }
            BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. }) => {
                match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => {
                        let node = self.node.clone();
                        let tx = self.tx.clone();
                        tokio::task::spawn_blocking(move || {
                            let (resp, differ) = node.answer(&request);
                            let _ = tx.send(Command::Respond(channel, resp));
                            if differ && let Some(ctx) = request.context() {
                                // Their heads differ: pull from them as well.
                                let _ = tx.send(Command::Round(peer, ctx));
                            }
                        });
                    }
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => {
                        let Some((peer, req)) = self.outbound.remove(&request_id) else {
                            return;
                        };
                        let node = self.node.clone();
                        let tx = self.tx.clone();
                        tokio::task::spawn_blocking(move || {
                            let next = node.on_response(&req, response, &peer.to_string());
                            let ctx = req.context();
                            match (next, ctx) {
                                (Some(next), _) => {
                                    let _ = tx.send(Command::Request(peer, next));
                                }
                                (None, Some(ctx)) => {
                                    let _ = tx.send(Command::RoundDone(peer, ctx));
                                }
                                (None, None) => {}
                            }
                        });
                    }
                }
            }
            BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => {
                if let Some((_, req)) = self.outbound.remove(&request_id) {
                    tracing::debug!(%peer, "request failed: {error}");
                    if let Some(ctx) = req.context() {
                        self.rounds.remove(&(peer, ctx));
                    }
                }
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                tracing::debug!(peer = %peer_id, agent = %info.agent_version, "identified");
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                for (peer, addr) in list {
                    tracing::info!(%peer, %addr, "discovered by mDNS");
                    self.dial(addr.with(libp2p::multiaddr::Protocol::P2p(peer)));
                }
            }
            _ => {}
        }
    }
}
