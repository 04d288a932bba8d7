//! The swarm task: owns the libp2p swarm, runs the node's commands, and
//! hands everything that needs the node to the applier thread or the
//! blocking pool. It never blocks and never locks a context.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, TopicHash};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identify, mdns, ping};
use mero_sync::SignedDelta;
use mero_sync::protocol::{
    Envelope, GOSSIP_BATCH_BYTES, GOSSIP_BATCH_LIMIT, Request, encode_gossip,
};
use tokio::sync::mpsc;

use super::applier::Applier;
use super::behaviour::{Behaviour, BehaviourEvent};
use super::codec::Frame;
use super::faults::{Faults, Inbound};
use super::guard::{GARBAGE, Guard, GuardLimits};
use super::handle::{AskReply, Command};
use super::meet::Discovery;
use super::nat::Reach;
use super::traffic::{TrafficBook, Via};
use super::{Replication, peer_of};
use crate::ids::{AppHash, ContextId};
use crate::node::now_ms;
use mero_sync::gate::Topic;

pub(super) struct Task {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) node: Arc<dyn Replication>,
    /// For workers' answers; the same queue as the node's commands.
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) addrs: Arc<RwLock<Vec<String>>>,
    /// Taken on shutdown.
    pub(super) applier: Option<Applier>,
    /// Followed contexts and the topic each gossips on.
    pub(super) follows: HashMap<ContextId, Option<(gossipsub::IdentTopic, Topic)>>,
    pub(super) topics: HashMap<TopicHash, ContextId>,
    /// Addresses to keep connected to: bootstrap peers and invitation addresses.
    pub(super) known: Vec<Multiaddr>,
    pub(super) outbound: HashMap<OutboundRequestId, (PeerId, Envelope)>,
    /// Requests whose answers go to a callback ([`Command::Ask`]).
    pub(super) asks: HashMap<OutboundRequestId, AskReply>,
    /// Catch-up rounds in flight, so periodic sync does not pile up.
    pub(super) rounds: HashSet<(PeerId, ContextId)>,
    pub(super) wanted_apps: HashMap<AppHash, ContextId>,
    /// Contexts each peer proved it belongs to: only their gossip is applied.
    pub(super) members: HashMap<PeerId, HashSet<ContextId>>,
    pub(super) guard: Guard,
    /// Dev-mode faults (`merod run --dev`); `None` on an operator's node,
    /// which has no fault state at all.
    pub(super) faults: Option<Faults>,
    /// Per-peer traffic of each context, and when peers went away.
    pub(super) traffic: TrafficBook,
    /// Where peers listen, as identify told (dev mode: what a heal redials).
    pub(super) learned: HashMap<PeerId, Vec<Multiaddr>>,
    /// Connection paths, relay slots, the relay service.
    pub(super) reach: Reach,
    /// Meet servers, what was posted and looked up there, and this node's
    /// own board when it serves.
    pub(super) meet: Discovery,
}

impl Task {
    pub fn new(
        swarm: Swarm<Behaviour>,
        node: Arc<dyn Replication>,
        tx: mpsc::Sender<Command>,
        addrs: Arc<RwLock<Vec<String>>>,
        applier: Applier,
        known: Vec<Multiaddr>,
        limits: GuardLimits,
    ) -> Self {
        Self {
            swarm,
            node,
            tx,
            addrs,
            applier: Some(applier),
            follows: HashMap::new(),
            topics: HashMap::new(),
            known,
            outbound: HashMap::new(),
            asks: HashMap::new(),
            rounds: HashSet::new(),
            wanted_apps: HashMap::new(),
            members: HashMap::new(),
            guard: Guard::new(limits),
            faults: None,
            traffic: TrafficBook::default(),
            learned: HashMap::new(),
            reach: Reach::none(),
            meet: Discovery::new(Vec::new(), Arc::default(), &Default::default()),
        }
    }

    pub async fn run(&mut self, mut rx: mpsc::Receiver<Command>, sync_every: Duration) {
        let mut tick = tokio::time::interval(sync_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Only while a delayed link holds something (dev mode).
            let due = self.faults.as_ref().and_then(Faults::next_due);
            let wake = tokio::time::Instant::from_std(due.unwrap_or_else(Instant::now));
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm(ev),
                _ = tokio::time::sleep_until(wake), if due.is_some() => self.release_due(),
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
                        self.close(&mut rx).await;
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
    pub(super) fn publish_queued(
        &mut self,
        first: SignedDelta,
        rx: &mut mpsc::Receiver<Command>,
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
            let Some(Some((topic, sealer))) = self.follows.get(&ctx) else {
                // No topic yet (joining): catch-up delivers it.
                continue;
            };
            let (topic, sealed) = (topic.clone(), sealer.seal(&encode_gossip(&deltas)));
            let hash = topic.hash();
            let subscribers: Vec<PeerId> = self
                .swarm
                .behaviour()
                .gossipsub
                .all_peers()
                .filter(|(_, topics)| topics.contains(&&hash))
                .map(|(p, _)| *p)
                .collect();
            for p in subscribers {
                self.traffic
                    .sent(p, ctx, deltas.len(), sealed.len(), Via::Gossip);
            }
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic, sealed) {
                // No subscribed peer yet: catch-up delivers it later.
                tracing::debug!(context = %ctx, "publish: {e}");
            }
        }
        other
    }

    /// Ends the applier after it applied what it holds, taking its
    /// verdicts meanwhile (it may be waiting to hand one over).
    async fn close(&mut self, rx: &mut mpsc::Receiver<Command>) {
        let Some(applier) = self.applier.take() else {
            return;
        };
        let thread = applier.close();
        let mut joined = tokio::task::spawn_blocking(move || thread.join());
        loop {
            tokio::select! {
                _ = &mut joined => return,
                cmd = rx.recv() => if cmd.is_none() { return },
            }
        }
    }

    /// Follows `ctx`, gossiping on `topic` (replacing its earlier topic).
    pub fn follow(&mut self, ctx: ContextId, topic: Option<Topic>) {
        let topic = topic.map(|t| (gossipsub::IdentTopic::new(t.name.clone()), t));
        if let Some(Some((old, old_topic))) = self.follows.get(&ctx).cloned()
            && Some(old.hash()) != topic.as_ref().map(|(t, _)| t.hash())
        {
            self.topics.remove(&old.hash());
            self.swarm.behaviour_mut().gossipsub.unsubscribe(&old);
            self.meet_topic_changed(ctx, Some(&old_topic), topic.is_some());
        } else if topic.is_some() && !matches!(self.follows.get(&ctx), Some(Some(_))) {
            self.meet_topic_changed(ctx, None, true);
        }
        if let Some((t, _)) = &topic {
            self.topics.insert(t.hash(), ctx);
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(t) {
                tracing::warn!(context = %ctx, "subscribe: {e}");
            }
        }
        self.follows.insert(ctx, topic);
    }

    pub(super) fn unfollow(&mut self, ctx: ContextId) {
        if let Some(Some((t, topic))) = self.follows.remove(&ctx) {
            self.topics.remove(&t.hash());
            self.swarm.behaviour_mut().gossipsub.unsubscribe(&t);
            self.meet_topic_changed(ctx, Some(&topic), false);
        }
        self.meet_forget(&ctx);
        self.rounds.retain(|(_, c)| *c != ctx);
    }

    /// Dials every known address.
    pub fn dial_known(&mut self) {
        for addr in self.known.clone() {
            self.dial(addr);
        }
    }

    pub(super) fn dial(&mut self, addr: Multiaddr) {
        if self.faults.as_ref().is_some_and(|f| f.spec().isolated) {
            return;
        }
        if let Some(p) = peer_of(&addr)
            && (self.swarm.is_connected(&p)
                || p == *self.swarm.local_peer_id()
                || self.guard.is_banned(&p)
                || self.cut_off(&p))
        {
            return;
        }
        if let Err(e) = self.swarm.dial(addr.clone()) {
            tracing::debug!(%addr, "dial failed: {e}");
        }
    }

    pub(super) fn request(&mut self, peer: PeerId, req: Envelope) {
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, Frame::Request(req.clone()));
        self.outbound.insert(id, (peer, req));
    }

    /// Starts catch-up rounds with `peer` for `contexts` (those without one
    /// in flight); the node prepares the openings on the blocking pool.
    pub(super) fn start_rounds(&mut self, peer: PeerId, contexts: Vec<ContextId>) {
        if self.cut_off(&peer) {
            return;
        }
        let fresh: Vec<ContextId> = contexts
            .into_iter()
            .filter(|c| self.rounds.insert((peer, *c)))
            .collect();
        if fresh.is_empty() {
            return;
        }
        self.prepare(
            peer,
            fresh,
            |node, ctx| {
                let req = node.opening(ctx)?;
                node.metrics().sync_round(ctx);
                Some(req)
            },
            move |ctx| Command::Next(peer, ctx, None),
        );
    }

    /// Has the node make a request to `peer` for each of `items` on the
    /// blocking pool (it locks contexts); an item it makes none for is
    /// reported with `none`.
    pub(super) fn prepare<T: Send + 'static>(
        &self,
        peer: PeerId,
        items: Vec<T>,
        make: impl Fn(&dyn Replication, &T) -> Option<Envelope> + Send + 'static,
        none: impl Fn(T) -> Command + Send + 'static,
    ) {
        let node = self.node.clone();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let mut requests = Vec::new();
            for item in items {
                match catch_unwind(AssertUnwindSafe(|| make(node.as_ref(), &item)))
                    .ok()
                    .flatten()
                {
                    Some(req) => requests.push(req),
                    None => {
                        let _ = tx.blocking_send(none(item));
                    }
                }
            }
            let _ = tx.blocking_send(Command::Requests(peer, requests));
        });
    }

    pub(super) fn connected(&self) -> Vec<PeerId> {
        self.swarm.connected_peers().copied().collect()
    }

    pub(super) fn on_tick(&mut self) {
        self.guard.prune(Instant::now());
        for p in self.guard.expire(Instant::now()) {
            tracing::info!(peer = %p, "ban expired");
            self.swarm.behaviour_mut().banned.unblock_peer(p);
        }
        if self.faults.as_ref().is_some_and(|f| f.spec().isolated) {
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
        self.reserve_due();
        self.meet_tick();
        for p in self.connected() {
            self.drop_relayed(&p);
            self.catch_up_with(p);
        }
    }

    /// Starts a round for every context with `peer` and asks it for the
    /// apps this node still lacks.
    pub(super) fn catch_up_with(&mut self, peer: PeerId) {
        let contexts: Vec<ContextId> = self
            .follows
            .keys()
            .filter(|c| self.shares(&peer, c))
            .copied()
            .collect();
        self.start_rounds(peer, contexts);
        self.ask_apps(peer);
    }

    /// Asks `peer` for the wanted apps of the contexts it shares, unless a
    /// request for one is already out to it; the node makes each request
    /// with its current proof, on the blocking pool.
    pub(super) fn ask_apps(&mut self, peer: PeerId) {
        let wanted: Vec<(AppHash, ContextId)> = self
            .wanted_apps
            .iter()
            .filter(|(hash, ctx)| {
                self.shares(&peer, ctx)
                    && !self.outbound.values().any(|(p, r)| {
                        *p == peer
                            && matches!(&r.request, Request::App { hash: h, .. } if h == *hash)
                    })
            })
            .map(|(h, c)| (*h, *c))
            .collect();
        if wanted.is_empty() {
            return;
        }
        self.prepare(
            peer,
            wanted,
            |node, (hash, ctx)| node.app_request(ctx, hash),
            |(hash, _)| Command::AppArrived(hash),
        );
    }

    /// Whether to ask `peer` about `ctx`, which shows it the context id and
    /// this node's member key there: it proved membership to this node, or
    /// it follows the context's current topic (named after the epoch key),
    /// or this node has no topic for the context yet (joining: it asks the
    /// peers its invitation named, once they identified themselves, except
    /// meet servers, and the members it found at meet servers).
    pub(super) fn shares(&self, peer: &PeerId, ctx: &ContextId) -> bool {
        if self.members.get(peer).is_some_and(|c| c.contains(ctx)) {
            return true;
        }
        match self.follows.get(ctx) {
            Some(Some((t, _))) => {
                let hash = t.hash();
                self.swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .any(|(p, topics)| p == peer && topics.contains(&&hash))
            }
            _ => self.may_ask_joining(peer, ctx),
        }
    }

    /// The connected peers to ask about `ctx`.
    pub(super) fn sharing(&self, ctx: &ContextId) -> Vec<PeerId> {
        self.swarm
            .connected_peers()
            .filter(|p| self.shares(p, ctx) && !self.cut_off(p))
            .copied()
            .collect()
    }

    /// Counts garbage from `peer`; bans it once it crosses the limit.
    pub(super) fn strike(&mut self, peer: PeerId, weight: u32) {
        if weight >= GARBAGE {
            self.node.metrics().gossip_invalid();
        }
        if self.guard.strike(peer, weight, Instant::now()) {
            tracing::warn!(%peer, "peer keeps sending garbage; disconnected and banned");
            self.node.metrics().peer_banned();
            self.members.remove(&peer);
            self.swarm.behaviour_mut().banned.block_peer(peer);
        }
    }

    pub(super) fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => self.listening_on(listener_id, address),
            SwarmEvent::ExpiredListenAddr { address, .. } => self.not_listening_on(&[address]),
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                self.not_listening_on(&addresses);
                self.listener_closed(listener_id, reason.err().map(|e| e.to_string()));
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                println!("merod p2p reachable at {address}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => {
                tracing::debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                self.reach
                    .paths
                    .opened(connection_id, peer_id, &endpoint, now_ms());
                if self.cut_off(&peer_id) {
                    // Isolated (dev mode): a peer nobody knew of yet.
                    self.swarm.behaviour_mut().blocked.block_peer(peer_id);
                    return;
                }
                self.traffic.up(&peer_id);
                if num_established.get() == 1 {
                    self.catch_up_with(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.reach.paths.closed(connection_id);
                if num_established == 0 {
                    tracing::debug!(peer = %peer_id, "disconnected");
                    self.traffic.went_down(peer_id, now_ms());
                    self.rounds.retain(|(p, _)| *p != peer_id);
                    self.members.remove(&peer_id);
                    self.meet_disconnected(&peer_id);
                }
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour(ev),
            _ => {}
        }
    }

    pub(super) fn on_behaviour(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source: peer,
                message_id,
                message,
            }) => self.admit(Inbound::Gossip(peer, message_id, message)),
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic }) => {
                // A peer that follows one of our topics shares that context:
                // compare heads now rather than at the next tick.
                if let Some(ctx) = self.topics.get(&topic).copied() {
                    self.start_rounds(peer_id, vec![ctx]);
                    self.ask_apps(peer_id);
                }
            }
            BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. }) => {
                match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => self.admit(Inbound::Request(peer, request, channel)),
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => self.admit(Inbound::Response(peer, request_id, response)),
                }
            }
            BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => {
                if let Some(reply) = self.asks.remove(&request_id) {
                    return reply(Err(error.to_string()));
                }
                if let Some((_, req)) = self.outbound.remove(&request_id) {
                    tracing::debug!(%peer, "request failed: {error}");
                    self.rounds.remove(&(peer, req.request.context()));
                }
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                tracing::debug!(peer = %peer_id, agent = %info.agent_version, "identified");
                self.meet_identified(peer_id, &info.protocols);
                self.learn(peer_id, info.listen_addrs);
                // Joins ask a peer only once it identified itself.
                if self.follows.values().any(Option::is_none) {
                    self.catch_up_with(peer_id);
                }
            }
            BehaviourEvent::Ping(ping::Event {
                connection,
                result: Ok(rtt),
                ..
            }) => self.reach.paths.rtt(connection, rtt),
            BehaviourEvent::RelayClient(ev) => self.on_relay_client(ev),
            BehaviourEvent::Relay(ev) => self.on_relay_service(ev),
            BehaviourEvent::Dcutr(ev) => self.on_hole_punch(ev),
            BehaviourEvent::Meet(ev) => self.on_meet(ev),
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
