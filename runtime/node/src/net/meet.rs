//! Finding a context's members at meet servers ([`mero_sync::meet`]): the
//! swarm task's side of both roles.
//!
//! As a client, a node treats as meet servers the peers it was told to
//! dial (bootstrap peers, relays, invitation addresses, each named by its
//! `/p2p` peer id) that list [`meet::PROTOCOL`] in identify; arbitrary
//! peers never see its tags. It posts a sealed record (its peer id and
//! reachable addresses) under the tag of every context it gossips in, every
//! [`POST_EVERY`] and at once when a topic changes (withdrawing the old
//! tag), and looks up the contexts with fewer than [`WANT_PEERS`] sharing
//! peers, joins in progress included (under the tag of every key the
//! invitation gave), dialing what it finds. While it joins, it asks about
//! the context only the peers it found so and those that keep no meet
//! board, so that no meet server learns which context a tag names.
//!
//! As a server (`[network.meet] serve`), it answers from a bounded
//! [`Board`]; the board never learns which context a tag names.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncWrite};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use mero_sync::gate::Topic;
use mero_sync::meet::{self, Board, MeetRequest, MeetResponse, Record};
use serde::{Deserialize, Serialize};

use super::codec;
use super::nat::is_loopback;
use super::swarm::Task;
use crate::ids::ContextId;
use crate::node::now_ms;

/// How often records are posted again; they are kept for [`TTL_SECS`].
pub const POST_EVERY: Duration = Duration::from_secs(60);
/// How long a meet server keeps a record (a node gone for longer is
/// forgotten).
const TTL_SECS: u32 = 180;
/// A context with fewer sharing peers than this is looked up.
pub const WANT_PEERS: usize = 3;
/// How often a context is looked up while it joins (every connected peer
/// counts as sharing it then, members or not), while it has no sharing
/// peer, and while it has some but fewer than [`WANT_PEERS`].
const LOOKUP_JOINING: Duration = Duration::from_secs(2);
const LOOKUP_ALONE: Duration = Duration::from_secs(5);
const LOOKUP_FEW: Duration = Duration::from_secs(30);
/// Members dialed per context per answer.
const DIALS_PER_CONTEXT: usize = 8;
/// Tags a joining context is looked up under: one per key an invitation
/// can give.
const MAX_SEEK_TOPICS: usize = mero_sync::invitation::MAX_PAST_EPOCHS + 1;
/// Peers remembered as found under one joining context's tag.
const MAX_MET: usize = 256;
/// Largest meet request and response on the wire.
const MAX_REQUEST: u64 = 512 << 10;
const MAX_RESPONSE: u64 = 1 << 20;

/// The meet protocol's name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new(meet::PROTOCOL);

/// `[network.meet]`: serving as a meet server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeetServiceConfig {
    /// Keep members' sealed records and answer lookups. The node learns
    /// peer ids, addresses and opaque tags, never contexts.
    pub serve: bool,
    /// Records kept in all.
    pub max_records: usize,
    /// Records kept under one tag.
    pub max_per_tag: usize,
    /// Tags one peer may post under.
    pub max_tags_per_peer: usize,
    /// Longest time a record is kept, in seconds.
    pub max_ttl_secs: u32,
}

impl Default for MeetServiceConfig {
    fn default() -> Self {
        let d = meet::BoardLimits::default();
        Self {
            serve: false,
            max_records: d.max_records,
            max_per_tag: d.max_per_tag,
            max_tags_per_peer: d.max_tags_per_poster,
            max_ttl_secs: d.max_ttl_secs,
        }
    }
}

impl MeetServiceConfig {
    fn limits(&self) -> meet::BoardLimits {
        meet::BoardLimits {
            max_records: self.max_records,
            max_per_tag: self.max_per_tag.max(1),
            max_tags_per_poster: self.max_tags_per_peer.max(1),
            max_ttl_secs: self.max_ttl_secs.max(1),
        }
    }
}

/// Postcard meet messages over a libp2p stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct Codec;

impl request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = MeetRequest;
    type Response = MeetResponse;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<MeetRequest> {
        codec::read(io, MAX_REQUEST).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<MeetResponse> {
        codec::read(io, MAX_RESPONSE).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: MeetRequest,
    ) -> io::Result<()> {
        codec::write(io, &req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: MeetResponse,
    ) -> io::Result<()> {
        codec::write(io, &res).await
    }
}

/// The swarm task's meet state.
pub(super) struct Discovery {
    /// Addresses this node was told to dial (bootstrap peers and relays;
    /// `Task::known` adds invitation addresses): the peers they name by id
    /// are the only ones it takes as meet servers.
    told: Vec<Multiaddr>,
    /// Connected meet servers, and the address each is known by.
    servers: HashMap<PeerId, Multiaddr>,
    /// Those addresses, for invitations ([`super::NetHandle::invite_addresses`]).
    shared: Arc<RwLock<Vec<String>>>,
    /// Joins in progress: the topics of every key the invitation gave, to
    /// look members up under (the joiner gossips on nothing yet, and does
    /// not know which key is the members' current one).
    seeking: HashMap<ContextId, Vec<Topic>>,
    /// Peers found under a joining context's tag: while joining, a node
    /// asks about the context only peers it met so or that serve no meet
    /// board (so a meet server never learns which context a tag names).
    met: HashMap<ContextId, HashSet<PeerId>>,
    /// Connected peers that identified themselves: whether each serves a
    /// meet board.
    identified: HashMap<PeerId, bool>,
    /// Lookups in flight: the contexts asked, in the request's order.
    lookups: HashMap<OutboundRequestId, Vec<(ContextId, Topic)>>,
    /// When each context was last looked up.
    looked: HashMap<ContextId, Instant>,
    /// When records were last posted; `None`: post at the next tick.
    posted: Option<Instant>,
    /// Tags posted at the last post.
    posted_tags: usize,
    /// Members found and dialed, since start.
    found: u64,
    /// This node's own board, when it serves.
    board: Option<Board>,
}

impl Discovery {
    /// A client that takes the peers `told` names (bootstrap and relay
    /// addresses) as meet servers, publishing their addresses in `shared`,
    /// and serves with `service` if asked to.
    pub fn new(
        told: Vec<Multiaddr>,
        shared: Arc<RwLock<Vec<String>>>,
        service: &MeetServiceConfig,
    ) -> Self {
        Self {
            told,
            servers: HashMap::new(),
            shared,
            seeking: HashMap::new(),
            met: HashMap::new(),
            identified: HashMap::new(),
            lookups: HashMap::new(),
            looked: HashMap::new(),
            posted: None,
            posted_tags: 0,
            found: 0,
            board: service.serve.then(|| Board::new(service.limits())),
        }
    }

    /// What `/admin/network` shows.
    pub fn view(&self) -> mero_api::MeetStatus {
        let mut servers: Vec<String> = self.servers.keys().map(ToString::to_string).collect();
        servers.sort();
        mero_api::MeetStatus {
            servers,
            posted_tags: self.posted_tags as u32,
            found: self.found,
            serving_records: self.board.as_ref().map(|b| b.len() as u32),
        }
    }

    /// Shares the meet servers' addresses with invitations.
    fn publish(&self) {
        let mut addrs: Vec<String> = self.servers.values().map(ToString::to_string).collect();
        addrs.sort();
        *self
            .shared
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = addrs;
    }
}

/// The part of `addr` that leads to `peer` (up to its `/p2p`): the relay's
/// own address in a circuit address through it.
fn leading_to(addr: &Multiaddr, peer: PeerId) -> Option<Multiaddr> {
    let mut out = Multiaddr::empty();
    for p in addr.iter() {
        let found = p == Protocol::P2p(peer);
        out.push(p);
        if found {
            return Some(out);
        }
    }
    None
}

impl Task {
    /// Looks `ctx`'s members up under `topics` while it joins.
    pub(super) fn seek(&mut self, ctx: ContextId, mut topics: Vec<Topic>) {
        topics.truncate(MAX_SEEK_TOPICS);
        self.meet.seeking.insert(ctx, topics);
        self.meet.looked.remove(&ctx);
    }

    /// Whether to ask `peer` about `ctx` while joining it: it was found
    /// under the context's tag, or it identified itself and keeps no meet
    /// board (the peers the invitation named).
    pub(super) fn may_ask_joining(&self, peer: &PeerId, ctx: &ContextId) -> bool {
        self.meet.met.get(ctx).is_some_and(|m| m.contains(peer))
            || self.meet.identified.get(peer) == Some(&false)
    }

    /// `ctx` gossips on `new` now instead of `old`: its members meet under
    /// the new tag, and the old one is withdrawn at once (whoever lost the
    /// epoch key loses the record now, not when it expires).
    pub(super) fn meet_topic_changed(&mut self, ctx: ContextId, old: Option<&Topic>, new: bool) {
        if new {
            self.meet.seeking.remove(&ctx);
            self.meet.met.remove(&ctx);
            self.meet.posted = None;
        }
        if let Some(old) = old {
            let tags = vec![meet::tag(old)];
            let me = self.swarm.local_peer_id().to_bytes();
            if let Some(b) = self.meet.board.as_mut() {
                b.withdraw(&me, &tags);
            }
            for s in self.meet.servers.keys().copied().collect::<Vec<_>>() {
                self.swarm
                    .behaviour_mut()
                    .meet
                    .send_request(&s, MeetRequest::Withdraw { tags: tags.clone() });
            }
        }
    }

    /// Forgets `ctx` (left or deleted).
    pub(super) fn meet_forget(&mut self, ctx: &ContextId) {
        self.meet.seeking.remove(ctx);
        self.meet.met.remove(ctx);
        self.meet.looked.remove(ctx);
    }

    /// A peer identified itself: a meet server if this node was told to
    /// dial it and it speaks the protocol.
    pub(super) fn meet_identified(&mut self, peer: PeerId, protocols: &[StreamProtocol]) {
        let serves = protocols.contains(&PROTOCOL);
        self.meet.identified.insert(peer, serves);
        if serves {
            self.take_as_meet_server(peer);
        }
    }

    /// This node was told to dial `addrs` (an invitation's): a connected
    /// meet server among them becomes one of this node's now, not at its
    /// next identify.
    pub(super) fn meet_told(&mut self, addrs: &[Multiaddr]) {
        let named: Vec<PeerId> = addrs
            .iter()
            .flat_map(|a| a.iter())
            .filter_map(|p| match p {
                Protocol::P2p(id) => Some(id),
                _ => None,
            })
            .collect();
        for peer in named {
            if self.meet.identified.get(&peer) == Some(&true) {
                self.take_as_meet_server(peer);
            }
        }
    }

    /// Takes `peer`, which serves meet, as a meet server if a told or
    /// known address leads to it.
    fn take_as_meet_server(&mut self, peer: PeerId) {
        if self.meet.servers.contains_key(&peer) {
            return;
        }
        let Some(addr) = self
            .meet
            .told
            .iter()
            .chain(&self.known)
            .find_map(|a| leading_to(a, peer))
        else {
            return;
        };
        tracing::debug!(%peer, %addr, "meet server");
        self.meet.servers.insert(peer, addr);
        self.meet.publish();
        self.post_to(&[peer]);
        let due: Vec<ContextId> = self.lookup_candidates();
        self.lookup_at(&[peer], due);
    }

    /// A peer's last connection closed.
    pub(super) fn meet_disconnected(&mut self, peer: &PeerId) {
        self.meet.identified.remove(peer);
        for m in self.meet.met.values_mut() {
            m.remove(peer);
        }
        if self.meet.servers.remove(peer).is_some() {
            self.meet.publish();
        }
    }

    /// Posts when due and looks up contexts short of peers.
    pub(super) fn meet_tick(&mut self) {
        if let Some(b) = self.meet.board.as_mut() {
            b.expire(now_ms());
        }
        let servers: Vec<PeerId> = self.meet.servers.keys().copied().collect();
        // A meet server posts onto its own board even when it uses no
        // other: joiners that reach it ask it only once they find it there.
        if (!servers.is_empty() || self.meet.board.is_some())
            && self.meet.posted.is_none_or(|t| t.elapsed() >= POST_EVERY)
        {
            self.post_to(&servers);
        }
        if servers.is_empty() {
            return;
        }
        let now = Instant::now();
        let due: Vec<ContextId> = self
            .lookup_candidates()
            .into_iter()
            .filter(|c| {
                let every = if self.meet.seeking.contains_key(c) {
                    LOOKUP_JOINING
                } else if self.sharing(c).is_empty() {
                    LOOKUP_ALONE
                } else {
                    LOOKUP_FEW
                };
                self.meet.looked.get(c).is_none_or(|t| now - *t >= every)
            })
            .collect();
        self.lookup_at(&servers, due);
    }

    /// Joins in progress, and contexts with fewer than [`WANT_PEERS`]
    /// sharing peers.
    fn lookup_candidates(&self) -> Vec<ContextId> {
        let short = self
            .follows
            .iter()
            .filter(|(c, t)| t.is_some() && self.sharing(c).len() < WANT_PEERS)
            .map(|(c, _)| c);
        self.meet.seeking.keys().chain(short).copied().collect()
    }

    fn meet_topics(&self, ctx: &ContextId) -> Vec<Topic> {
        match self.follows.get(ctx) {
            Some(Some((_, t))) => vec![t.clone()],
            _ => self.meet.seeking.get(ctx).cloned().unwrap_or_default(),
        }
    }

    /// Posts this node's record under every gossiped context's tag.
    fn post_to(&mut self, servers: &[PeerId]) {
        let me = *self.swarm.local_peer_id();
        let record = Record {
            peer: me.to_bytes(),
            addrs: self
                .reachable()
                .iter()
                .take(meet::MAX_ADDRS)
                .map(|a| a.to_vec())
                .collect(),
            at_ms: now_ms(),
        };
        let items: Vec<([u8; 32], Vec<u8>)> = self
            .follows
            .values()
            .flatten()
            .map(|(_, t)| (meet::tag(t), meet::seal(t, &record)))
            .collect();
        self.meet.posted = Some(Instant::now());
        self.meet.posted_tags = items.len();
        // A meet server that is a member keeps its own record too: joiners
        // ask only the peers they find there.
        if let Some(b) = self.meet.board.as_mut() {
            b.post(&me.to_bytes(), items.clone(), TTL_SECS, now_ms());
        }
        for chunk in items.chunks(meet::MAX_ITEMS) {
            for s in servers {
                self.swarm.behaviour_mut().meet.send_request(
                    s,
                    MeetRequest::Post {
                        items: chunk.to_vec(),
                        ttl_secs: TTL_SECS,
                    },
                );
            }
        }
    }

    /// Where members should dial this node, best first: external
    /// addresses (configured, confirmed, relay circuits), then listen
    /// addresses that are neither wildcards nor, unless every one is,
    /// loopback.
    fn reachable(&self) -> Vec<Multiaddr> {
        let mut out: Vec<Multiaddr> = self.swarm.external_addresses().cloned().collect();
        let listed = self
            .addrs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut listen: Vec<Multiaddr> = listed.iter().filter_map(|a| a.parse().ok()).collect();
        // Circuits first: behind a NAT they are what works.
        listen.sort_by_key(|a| !a.iter().any(|p| p == Protocol::P2pCircuit));
        for a in listen {
            if (self.reach.loopback_only || !is_loopback(&a)) && !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    fn lookup_at(&mut self, servers: &[PeerId], due: Vec<ContextId>) {
        let now = Instant::now();
        let asked: Vec<(ContextId, Topic)> = due
            .into_iter()
            .flat_map(|c| self.meet_topics(&c).into_iter().map(move |t| (c, t)))
            .collect();
        for chunk in asked.chunks(meet::MAX_ITEMS) {
            let tags = chunk.iter().map(|(_, t)| meet::tag(t)).collect::<Vec<_>>();
            for s in servers {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .meet
                    .send_request(s, MeetRequest::Lookup { tags: tags.clone() });
                self.meet.lookups.insert(id, chunk.to_vec());
            }
        }
        for (c, _) in asked {
            self.meet.looked.insert(c, now);
        }
    }

    /// A meet request or response, or a failed one.
    pub(super) fn on_meet(&mut self, ev: request_response::Event<MeetRequest, MeetResponse>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.answer_meet(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let asked = self.meet.lookups.remove(&request_id);
                    if let (Some(asked), MeetResponse::Found { per_tag }) = (asked, response) {
                        self.dial_found(asked, per_tag);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                self.meet.lookups.remove(&request_id);
                tracing::debug!("meet request failed: {error}");
            }
            _ => {}
        }
    }

    fn answer_meet(
        &mut self,
        peer: PeerId,
        req: MeetRequest,
        channel: ResponseChannel<MeetResponse>,
    ) {
        let response = match self.meet.board.as_mut() {
            Some(b) => b.answer(&peer.to_bytes(), req, now_ms()),
            None => MeetResponse::Refused {
                message: "this node is not a meet server".into(),
            },
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .meet
            .send_response(channel, response);
    }

    /// Dials the members a lookup found. Records that do not open are
    /// dropped, not scored: the server, not the poster, may be at fault.
    fn dial_found(&mut self, asked: Vec<(ContextId, Topic)>, per_tag: Vec<Vec<Vec<u8>>>) {
        let me = *self.swarm.local_peer_id();
        let mut dialed: HashMap<ContextId, usize> = HashMap::new();
        for ((ctx, topic), sealed) in asked.into_iter().zip(per_tag) {
            // A server that answers more than a board does is cut short.
            for s in sealed.iter().take(meet::MAX_FOUND_PER_TAG) {
                let Some(r) = meet::open(&topic, s) else {
                    continue;
                };
                let Ok(peer) = PeerId::from_bytes(&r.peer) else {
                    continue;
                };
                if peer == me || self.guard.is_banned(&peer) || self.cut_off(&peer) {
                    continue;
                }
                let newly_met = match self.meet.met.get_mut(&ctx) {
                    Some(m) if m.len() < MAX_MET => m.insert(peer),
                    Some(_) => false,
                    None if self.meet.seeking.contains_key(&ctx) => {
                        self.meet.met.insert(ctx, HashSet::from([peer]));
                        true
                    }
                    None => false,
                };
                if self.swarm.is_connected(&peer) {
                    if newly_met {
                        self.start_rounds(peer, vec![ctx]);
                    }
                    continue;
                }
                let n = dialed.entry(ctx).or_default();
                if *n >= DIALS_PER_CONTEXT {
                    continue;
                }
                let addrs: Vec<Multiaddr> = r
                    .addrs
                    .iter()
                    .filter_map(|a| Multiaddr::try_from(a.clone()).ok())
                    .collect();
                if addrs.is_empty() {
                    continue;
                }
                tracing::debug!(context = %ctx, %peer, "met a member; dialing");
                let opts = DialOpts::peer_id(peer)
                    .addresses(addrs)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                if let Err(e) = self.swarm.dial(opts) {
                    tracing::debug!(%peer, "dial failed: {e}");
                }
                *n += 1;
                self.meet.found += 1;
            }
        }
    }
}
