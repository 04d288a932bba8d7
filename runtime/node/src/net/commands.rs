//! The node's commands to the swarm task, and what it reports back:
//! network status, per-peer traffic of a context, and (dev mode only)
//! the injected faults.

use std::collections::{HashMap, HashSet};

use libp2p::gossipsub::MessageAcceptance;
use libp2p::{Multiaddr, PeerId};
use mero_sync::protocol::Response;

use super::codec::Frame;
use super::faults::{FaultSpec, response_bytes};
use super::guard::{GARBAGE, REFUSED};
use super::handle::{Command, FaultLinks, FaultsCmd, NetStatus, PeerInfo, Peering};
use super::nat::with_peer;
use super::peer_of;
use super::swarm::Task;
use super::traffic::Via;
use crate::ids::ContextId;
use crate::node::now_ms;

/// Most listen addresses remembered per peer (from identify), and most
/// peers remembered: what a heal redials.
pub(super) const LEARNED_PER_PEER: usize = 8;
pub(super) const LEARNED_PEERS: usize = 1_024;

impl Task {
    pub(super) fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish(_) => unreachable!("`run` batches publishing"),
            Command::Shutdown(_) => unreachable!("`run` handles shutdown itself"),
            Command::Follow(ctx, topic) => self.follow(ctx, topic),
            Command::Seek(ctx, topics) => self.seek(ctx, topics),
            Command::Unfollow(ctx) => {
                self.unfollow(ctx);
                self.traffic.forget(&ctx);
            }
            Command::Want(requests, from) => {
                let from = from.and_then(|p| p.parse::<PeerId>().ok());
                for req in requests {
                    let ctx = req.request.context();
                    let peers = match from {
                        Some(p) if self.swarm.is_connected(&p) && self.shares(&p, &ctx) => vec![p],
                        _ => self.sharing(&ctx),
                    };
                    for p in peers {
                        self.request(p, req.clone());
                    }
                }
            }
            Command::FetchApp(hash, ctx) => {
                self.wanted_apps.insert(hash, ctx);
                for p in self.sharing(&ctx) {
                    self.ask_apps(p);
                }
            }
            Command::AppArrived(hash) => {
                self.wanted_apps.remove(&hash);
            }
            Command::Sync(ctx) => {
                for p in self.sharing(&ctx) {
                    self.start_rounds(p, vec![ctx]);
                }
            }
            Command::Dial(addrs) => {
                let mut told = Vec::new();
                for a in addrs {
                    match a.parse::<Multiaddr>() {
                        Ok(addr) => {
                            if !self.known.contains(&addr) {
                                self.known.push(addr.clone());
                            }
                            told.push(addr.clone());
                            self.dial(addr);
                        }
                        Err(_) => tracing::warn!("ignoring invalid address {a}"),
                    }
                }
                self.meet_told(&told);
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Faults(f) => self.on_faults(f),
            Command::Peering(ctx, reply) => {
                let _ = reply.send(self.peering(&ctx));
            }
            Command::Respond {
                peer,
                channel,
                response,
                context,
                admitted,
                strike,
                differ,
            } => {
                self.guard.end(&peer);
                if admitted {
                    self.members.entry(peer).or_default().insert(context);
                    if differ {
                        // Their heads differ: pull from them as well.
                        self.start_rounds(peer, vec![context]);
                    }
                } else if strike {
                    self.strike(peer, REFUSED);
                }
                // The peer may be gone; then the answer is moot.
                if let Response::Deltas { deltas, .. } = &response {
                    let bytes = response_bytes(&response);
                    self.traffic
                        .sent(peer, context, deltas.len(), bytes, Via::CatchUp);
                }
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Command::Next(peer, ctx, next) => match next {
                Some(req) => self.request(peer, req),
                None => {
                    self.rounds.remove(&(peer, ctx));
                }
            },
            Command::Requests(peer, requests) => {
                for req in requests {
                    self.request(peer, req);
                }
            }
            Command::Ask(peer, req, reply) => {
                if self.cut_off(&peer) || !self.swarm.is_connected(&peer) {
                    return reply(Err(format!("not connected to {peer}")));
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, Frame::Request(req));
                self.asks.insert(id, reply);
            }
            Command::Peers(ctx, reply) => reply(self.sharing(&ctx)),
            Command::Garbage(peer) => self.strike(peer, GARBAGE),
            Command::Validated(id, peer, verdict) => {
                let garbage = verdict == MessageAcceptance::Reject;
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &peer, verdict);
                if garbage {
                    self.strike(peer, GARBAGE);
                }
            }
        }
    }

    fn on_faults(&mut self, cmd: FaultsCmd) {
        match cmd {
            FaultsCmd::Get(reply) => {
                let _ = reply.send(self.faults.as_ref().map(|f| f.view()));
            }
            FaultsCmd::Set(spec, reply) => {
                self.set_faults(spec);
                let _ = reply.send(self.faults.as_ref().map(|f| f.view()));
            }
        }
    }

    /// Replaces the faults: blocks and unblocks peers to match, hands held
    /// items on, and after a heal redials and catches up at once.
    fn set_faults(&mut self, spec: FaultSpec) {
        let Some(faults) = self.faults.as_mut() else {
            return;
        };
        let (isolated, blocked) = (spec.isolated, spec.blocked.clone());
        let released = faults.set(spec, now_ms());
        let want: HashSet<PeerId> = if isolated {
            self.connected()
                .into_iter()
                .chain(self.known.iter().filter_map(peer_of))
                .chain(self.learned.keys().copied())
                .collect()
        } else {
            blocked
        };
        let have: HashSet<PeerId> = self
            .swarm
            .behaviour()
            .blocked
            .blocked_peers()
            .iter()
            .copied()
            .collect();
        for p in want.difference(&have) {
            self.swarm.behaviour_mut().blocked.block_peer(*p);
        }
        let healed: Vec<PeerId> = have.difference(&want).copied().collect();
        for p in &healed {
            self.swarm.behaviour_mut().blocked.unblock_peer(*p);
        }
        for item in released {
            self.deliver(item);
        }
        if !healed.is_empty() {
            for p in &healed {
                for addr in self.learned.get(p).cloned().unwrap_or_default() {
                    self.dial(addr.with(libp2p::multiaddr::Protocol::P2p(*p)));
                }
            }
            self.on_tick();
        }
        tracing::info!(
            blocked = want.len(),
            healed = healed.len(),
            "dev faults set"
        );
    }

    /// Remembers where `peer` listens (identify), to redial it after a heal.
    pub(super) fn learn(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if self.faults.is_none() {
            return;
        }
        if !self.learned.contains_key(&peer) && self.learned.len() >= LEARNED_PEERS {
            return;
        }
        let addrs: Vec<Multiaddr> = addrs
            .into_iter()
            .filter(|a| peer_of(a).is_none())
            .take(LEARNED_PER_PEER)
            .collect();
        self.learned.insert(peer, addrs);
    }

    /// Whether a dev fault cuts this node off from `peer`.
    pub(super) fn cut_off(&self, peer: &PeerId) -> bool {
        self.faults.as_ref().is_some_and(|f| f.blocks(peer))
    }

    /// What `/admin/contexts/{id}/sync` merges into its per-peer rows.
    fn peering(&self, ctx: &ContextId) -> Peering {
        let connected: HashSet<String> = self
            .connected()
            .iter()
            .filter(|p| !self.cut_off(p))
            .map(PeerId::to_string)
            .collect();
        let sharing = self.sharing(ctx).iter().map(PeerId::to_string).collect();
        let mut down_since = HashMap::new();
        let mut traffic = HashMap::new();
        for (p, sent, received) in self.traffic.of(ctx) {
            traffic.insert(p.to_string(), (sent, received));
        }
        for p in self.traffic.down_peers() {
            if let Some(t) = self.traffic.down_since(&p) {
                down_since.insert(p.to_string(), t);
            }
        }
        let faults = self.faults.as_ref().map(|f| {
            let spec = f.spec();
            FaultLinks {
                isolated: spec.isolated,
                blocked: spec.blocked.iter().map(PeerId::to_string).collect(),
                links: spec
                    .links
                    .iter()
                    .map(|(p, l)| (p.map(|p| p.to_string()), *l))
                    .collect(),
            }
        });
        Peering {
            connected,
            sharing,
            down_since,
            traffic,
            faults,
        }
    }

    pub(super) fn status(&self) -> NetStatus {
        let gossip = &self.swarm.behaviour().gossipsub;
        let mut peers: HashMap<PeerId, PeerInfo> = HashMap::new();
        // A blocked peer's connections are closing: not a peer any more.
        for p in self.swarm.connected_peers().filter(|p| !self.cut_off(p)) {
            let Some((path, rtt_ms)) = self.reach.paths.path(p) else {
                continue;
            };
            peers.insert(
                *p,
                PeerInfo {
                    peer_id: p.to_string(),
                    contexts: Vec::new(),
                    path,
                    connections: self.reach.paths.connections(p),
                    rtt_ms,
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
        let mut banned: Vec<String> = self.guard.banned().map(ToString::to_string).collect();
        banned.sort();
        NetStatus {
            peer_id: self.swarm.local_peer_id().to_string(),
            listen_addrs: self
                .addrs
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            external_addrs: self
                .swarm
                .external_addresses()
                .map(|a| with_peer(a.clone(), *self.swarm.local_peer_id()).to_string())
                .collect(),
            peers,
            banned,
            relays: self.reach.relays.status(),
            relay_service: self.reach.service.as_ref().map(|s| s.view()),
            meet: self.meet.view(),
            faults: self.faults.as_ref().map(|f| f.view()),
        }
    }
}
