//! What peers send: gossip messages, requests and responses, each handed
//! to the applier or the blocking pool; the swarm task only routes them.

use std::panic::{AssertUnwindSafe, catch_unwind};

use libp2p::PeerId;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::request_response::{self, OutboundRequestId};
use mero_sync::protocol::{Response, decode_gossip};

use super::applier::Message;
use super::codec::Frame;
use super::faults::{Admit, Inbound, response_bytes};
use super::guard::GARBAGE;
use super::handle::Command;
use super::swarm::Task;
use super::traffic::Via;

/// The answer to a request when the peer has too many in flight.
const BUSY: &str = "busy: too many requests in flight; retry later";

impl Task {
    /// What a peer sent: handled now, or (dev mode) held for a delayed
    /// link, or lost.
    pub(super) fn admit(&mut self, item: Inbound) {
        let Some(faults) = self.faults.as_mut() else {
            return self.deliver(item);
        };
        match faults.admit(item, std::time::Instant::now()) {
            Admit::Pass(item) => self.deliver(item),
            Admit::Held => {}
            Admit::Dropped(item) => self.lose(item),
        }
    }

    /// Hands on the held items that are due.
    pub(super) fn release_due(&mut self) {
        let due = match self.faults.as_mut() {
            Some(f) => f.due(std::time::Instant::now()),
            None => return,
        };
        for item in due {
            self.deliver(item);
        }
    }

    /// Handles what a peer sent.
    pub(super) fn deliver(&mut self, item: Inbound) {
        match item {
            Inbound::Gossip(peer, id, message) => self.on_gossip(peer, id, message),
            Inbound::Request(peer, frame, channel) => self.on_request(peer, frame, channel),
            Inbound::Response(_, id, response) => self.on_response(id, response),
        }
    }

    /// Drops what a lossy link (or the held bounds) lost: gossip is
    /// ignored (not forwarded, no strike), a request answered busy, a
    /// response treated as a failed request.
    fn lose(&mut self, item: Inbound) {
        match item {
            Inbound::Gossip(peer, id, _) => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &peer, MessageAcceptance::Ignore);
            }
            Inbound::Request(_, _, channel) => {
                let busy = Response::Error {
                    message: BUSY.into(),
                };
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, busy);
            }
            Inbound::Response(peer, id, _) => {
                if let Some(reply) = self.asks.remove(&id) {
                    return reply(Err("lost by a dev-mode fault".into()));
                }
                if let Some((_, req)) = self.outbound.remove(&id) {
                    self.rounds.remove(&(peer, req.request.context()));
                }
            }
        }
    }

    /// A gossip message: applied (and later forwarded) only if it comes
    /// from a peer that proved it belongs to the topic's context, decodes,
    /// and fits the applier's queue.
    pub(super) fn on_gossip(
        &mut self,
        peer: PeerId,
        id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let ignore = |task: &mut Self, id: &gossipsub::MessageId| {
            task.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(id, &peer, MessageAcceptance::Ignore);
        };
        let Some(ctx) = self.topics.get(&message.topic).copied() else {
            return ignore(self, &id);
        };
        if !self.members.get(&peer).is_some_and(|c| c.contains(&ctx)) {
            // Not (yet) proven a member: catch-up brings what it had.
            return ignore(self, &id);
        }
        let Some(Some((_, topic))) = self.follows.get(&ctx) else {
            return ignore(self, &id);
        };
        let read = topic
            .open(&message.data)
            .ok_or_else(|| "not sealed for the topic".to_owned())
            .and_then(|plain| decode_gossip(&plain).map_err(|e| e.to_string()));
        let deltas = match read {
            Ok(d) => d,
            Err(why) => {
                tracing::debug!(%peer, context = %ctx, "unreadable gossip: {why}");
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &peer, MessageAcceptance::Reject);
                return self.strike(peer, GARBAGE);
            }
        };
        self.traffic
            .received(peer, ctx, deltas.len(), message.data.len(), Via::Gossip);
        let Some(applier) = &self.applier else {
            return ignore(self, &id);
        };
        let m = Message {
            ctx,
            peer,
            id,
            deltas,
        };
        if let Err(id) = applier.offer(m) {
            tracing::debug!(context = %ctx, "the applier is behind; dropping a gossip message (catch-up repairs it)");
            ignore(self, &id);
        }
    }

    pub(super) fn on_request(
        &mut self,
        peer: PeerId,
        request: Frame,
        channel: request_response::ResponseChannel<Response>,
    ) {
        if self.guard.is_banned(&peer) {
            return;
        }
        let request = match request {
            Frame::Request(r) => r,
            Frame::Malformed(why) => {
                tracing::debug!(%peer, "malformed request: {why}");
                let refused = Response::Error {
                    message: format!("malformed request: {why}"),
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, refused);
                return self.strike(peer, GARBAGE);
            }
        };
        if !self.guard.begin(peer) {
            let busy = Response::Error {
                message: BUSY.into(),
            };
            let _ = self.swarm.behaviour_mut().sync.send_response(channel, busy);
            return;
        }
        let node = self.node.clone();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let context = request.request.context();
            let answer = catch_unwind(AssertUnwindSafe(|| node.answer(&peer.to_bytes(), &request)));
            let cmd = match answer {
                Ok(a) => Command::Respond {
                    peer,
                    channel,
                    response: a.response,
                    context,
                    admitted: a.admitted,
                    strike: !a.admitted && a.known,
                    differ: a.differ,
                },
                Err(_) => Command::Respond {
                    peer,
                    channel,
                    response: Response::Error {
                        message: "the node failed to answer".into(),
                    },
                    context,
                    admitted: false,
                    strike: false,
                    differ: false,
                },
            };
            let _ = tx.blocking_send(cmd);
        });
    }

    pub(super) fn on_response(&mut self, request_id: OutboundRequestId, response: Response) {
        if let Some(reply) = self.asks.remove(&request_id) {
            return reply(Ok(response));
        }
        let Some((peer, req)) = self.outbound.remove(&request_id) else {
            return;
        };
        if let Response::Deltas { deltas, .. } = &response {
            let bytes = response_bytes(&response);
            self.traffic.received(
                peer,
                req.request.context(),
                deltas.len(),
                bytes,
                Via::CatchUp,
            );
        }
        let node = self.node.clone();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let ctx = req.request.context();
            let next = catch_unwind(AssertUnwindSafe(|| {
                node.on_response(&req, response, &peer.to_string())
            }))
            .ok()
            .flatten();
            let _ = tx.blocking_send(Command::Next(peer, ctx, next));
        });
    }
}
