//! The receiving side of replication and catch-up, as node operations the
//! network layer calls: apply deltas from peers, answer peers' requests,
//! and decide the next request after a response.
//!
//! The protocol itself (what to answer, when to page) is `mero_sync::protocol`;
//! this module only binds it to the node's contexts and store.

use std::collections::BTreeMap;

use mero_sync::SignedDelta;
use mero_sync::dag::SeqVector;
use mero_sync::gate;
use mero_sync::progress;
use mero_sync::protocol::{self, Envelope, Request, Response};

use crate::cold::Cold;
use crate::context::{Effects, ReceiveReport};
use crate::error::NodeError;
use crate::ids::{ContextId, DeltaId, sha256};
use crate::node::{Node, now_ms};
use crate::peer_sync::PeerRecord;
use crate::slot::Resident;

/// One log entry without its payload: position, id, header.
pub type DagRow = (u64, DeltaId, mero_sync::delta::DeltaHeader);

/// A context's replication state, for `/admin/contexts/{id}/sync`.
#[derive(Debug, Clone)]
pub struct SyncStatus {
    /// The context.
    pub context: ContextId,
    /// Deltas applied.
    pub deltas: u64,
    /// Current heads.
    pub heads: Vec<DeltaId>,
    /// Digest of the heads (hex): equal digests, equal state.
    pub digest: String,
    /// Applied deltas per author.
    pub vector: SeqVector,
    /// Deltas waiting for missing parents.
    pub pending: usize,
    /// Refused deltas by reason since the node started.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Whether this node is still catching up before its join.
    pub joining: bool,
    /// Equivocations applied (see `/admin/contexts/{id}/members` for who).
    pub forks: usize,
    /// When the heads last changed (ms since the epoch; 0: not since start).
    pub heads_changed_ms: u64,
    /// Where this replica stands against each peer, by peer id.
    pub peers: Vec<(String, PeerRecord)>,
}

impl Node {
    /// Applies deltas received from a peer (`from`, a peer id, is asked for
    /// missing parents).
    pub fn receive(
        &self,
        ctx: &ContextId,
        deltas: Vec<SignedDelta>,
        from: Option<String>,
    ) -> Result<ReceiveReport, NodeError> {
        let slot = self.context(ctx)?;
        let mut rt = slot.lock()?;
        let mut fx = Effects::default();
        let received = deltas.len();
        let report = rt.receive(self.db(), deltas, self.policy(), &mut fx)?;
        if let Some(peer) = &from
            && report.applied > 0
        {
            rt.peers.touched(peer, now_ms());
        }
        self.metrics().received(ctx, received, &report.reasons);
        if !fx.forks.is_empty() {
            self.metrics().equivocations(ctx, fx.forks.len());
        }
        if report.applied > 0 {
            self.after_change(&mut rt, &mut fx);
        }
        self.announce(*ctx, &mut fx);
        drop(rt);
        self.finish(*ctx, fx, from);
        Ok(report)
    }

    /// Answers a peer's request if its proof admits it to the request's
    /// context ([`mero_sync::gate`]); `peer` is the requester's transport id.
    /// A non-member gets the same answer whether or not the context is here.
    pub fn answer(&self, peer: &[u8], env: &Envelope) -> Answer {
        let ctx = env.request.context();
        let mut refused = Answer {
            response: error(NOT_ADMITTED),
            differ: false,
            admitted: false,
            known: false,
        };
        let Ok(slot) = self.context(&ctx) else {
            self.metrics().request_unknown();
            return refused;
        };
        refused.known = true;
        let Ok(mut resident) = slot.peek() else {
            return refused;
        };
        // A cold replica admits by its gate and answers an equal digest;
        // anything else loads it, but only for an admitted peer.
        if let Resident::Cold(cold) = &mut *resident
            && let Some(answer) = self.answer_cold(cold, peer, env)
        {
            return answer.unwrap_or(refused);
        }
        // A digest round does not count as a use of the context.
        let locked = if matches!(env.request, Request::Digest { .. }) {
            slot.promote(resident)
        } else {
            drop(resident);
            slot.lock()
        };
        let Ok(mut rt) = locked else {
            return refused;
        };
        if let Err(why) = gate::admit(rt.replica.access(), &ctx, &env.proof, peer, now_ms()) {
            self.refused(&ctx, why);
            return refused;
        }
        if matches!(
            env.request,
            Request::BlobManifest { .. } | Request::BlobChunk { .. }
        ) {
            let keys = crate::blobs::keys_of(&rt);
            drop(rt);
            return Answer {
                response: self.answer_blob(&ctx, &keys, &env.request),
                differ: false,
                admitted: true,
                known: true,
            };
        }
        match &env.request {
            Request::Snapshot { min_len, .. } => {
                return Answer {
                    response: self.offer_snapshot(rt, *min_len),
                    differ: false,
                    admitted: true,
                    known: true,
                };
            }
            Request::SnapshotPart {
                manifest, index, ..
            } => {
                drop(rt);
                return Answer {
                    response: self.snapshots().served.part(&ctx, manifest, *index),
                    differ: false,
                    admitted: true,
                    known: true,
                };
            }
            _ => {}
        }
        if let Request::App { hash, .. } = &env.request {
            // Only the apps this context runs, not whatever the node holds.
            let runs = *hash == rt.meta.app || rt.replica.access().app() == Some(*hash);
            drop(rt);
            let wasm = runs.then(|| self.app_wasm(hash).ok().flatten()).flatten();
            return Answer {
                response: Response::App { wasm },
                differ: false,
                admitted: true,
                known: true,
            };
        }
        if let Ok(id) = libp2p::PeerId::from_bytes(peer) {
            let id = id.to_string();
            match progress::view_of_request(rt.dag(), &env.request) {
                Some(view) => rt.peers.saw(&id, view, now_ms()),
                // A differing digest: their position comes with our round.
                None if matches!(env.request, Request::Digest { .. }) => {
                    rt.peers.touched(&id, now_ms())
                }
                None => {}
            }
        }
        let source = crate::context::stored(self.db(), ctx, rt.dag());
        let (response, differ) = protocol::answer(rt.dag(), &source, &env.request);
        Answer {
            response,
            differ,
            admitted: true,
            known: true,
        }
    }

    /// Notes a request the gate refused.
    fn refused(&self, ctx: &ContextId, why: gate::Refusal) {
        tracing::debug!(context = %ctx, "request refused: {why}");
        self.metrics().request_refused(ctx);
    }

    /// What a cold replica answers without loading: `Some(None)` refuses
    /// the requester, `Some(Some(_))` answers an equal digest; `None`
    /// needs the replica.
    fn answer_cold(&self, cold: &mut Cold, peer: &[u8], env: &Envelope) -> Option<Option<Answer>> {
        let ctx = env.request.context();
        if let Err(why) = cold.admit(&ctx, &env.proof, peer) {
            self.refused(&ctx, why);
            return Some(None);
        }
        let Request::Digest { digest, .. } = &env.request else {
            return None;
        };
        let response = protocol::answer_in_sync(&cold.digest(), digest)?;
        if let Ok(id) = libp2p::PeerId::from_bytes(peer) {
            cold.peers_mut()
                .saw(&id.to_string(), progress::PeerView::InSync, now_ms());
        }
        Some(Some(Answer {
            response,
            differ: false,
            admitted: true,
            known: true,
        }))
    }

    /// `request` with this node's proof that it belongs to the context.
    pub fn envelope(&self, request: Request) -> Option<Envelope> {
        let rt = self.context(&request.context()).ok()?;
        let rt = rt.lock().ok()?;
        let proof = rt.proof(self.transport_id());
        Some(Envelope { request, proof })
    }

    /// The request that opens a catch-up round for `ctx` (one lock for the
    /// digest and the proof).
    pub fn digest_request(&self, ctx: &ContextId) -> Option<Envelope> {
        let (digest, proof) = self.digest_and_proof(ctx)?;
        let request = Request::Digest {
            context: *ctx,
            digest,
        };
        Some(Envelope { request, proof })
    }

    /// This node's proof for requests about `ctx`, without loading it.
    pub(crate) fn proof_for(&self, ctx: &ContextId) -> Option<mero_sync::gate::Proof> {
        self.digest_and_proof(ctx).map(|(_, p)| p)
    }

    fn digest_and_proof(&self, ctx: &ContextId) -> Option<([u8; 32], mero_sync::gate::Proof)> {
        let slot = self.context(ctx).ok()?;
        let resident = slot.peek().ok()?;
        Some(match &*resident {
            Resident::Loaded(rt) => (rt.dag().digest(), rt.proof(self.transport_id())),
            Resident::Cold(cold) => (cold.digest(), cold.proof(ctx, self.transport_id())),
        })
    }

    /// Ids of every context on this node.
    pub fn context_ids(&self) -> Vec<ContextId> {
        self.contexts.read().unwrap().keys().copied().collect()
    }

    /// Handles the response to `req` from peer `from`; returns the next
    /// request to send that peer, if any.
    pub fn on_response(&self, req: &Request, resp: Response, from: &str) -> Option<Envelope> {
        let next = self.after_response(req, resp, from)?;
        self.envelope(next)
    }

    fn after_response(&self, req: &Request, resp: Response, from: &str) -> Option<Request> {
        match resp {
            Response::App { wasm: Some(wasm) } => {
                let Request::App { hash, .. } = req else {
                    return None;
                };
                // Nothing larger than an upload may be gets hashed or compiled.
                let max = self.config().limits.max_app_bytes;
                if wasm.len() > max {
                    tracing::warn!(peer = from, app = %hash, bytes = wasm.len(), "peer sent an app over limits.max_app_bytes ({max}); not installed");
                    return None;
                }
                if sha256(&wasm) != hash.0 {
                    tracing::warn!(peer = from, app = %hash, "peer sent WASM with the wrong hash");
                    return None;
                }
                if let Err(e) = self.install_fetched_app(&wasm) {
                    tracing::warn!(app = %hash, "fetched app does not install: {e}");
                }
                None
            }
            // Blob answers go to the fetch that asked (`NetHandle::ask`);
            // one here answers another request: ignored.
            Response::App { wasm: None }
            | Response::Blob { .. }
            | Response::Offer { .. }
            | Response::Part { .. } => None,
            Response::Error { message } => {
                tracing::debug!(peer = from, "peer answered: {message}");
                None
            }
            Response::Digest { in_sync, .. } => {
                let ctx = req.context();
                let slot = self.context(&ctx).ok()?;
                let mut resident = slot.peek().ok()?;
                // In sync with a cold replica: nothing to load for.
                if let Resident::Cold(cold) = &mut *resident
                    && in_sync
                {
                    cold.peers_mut()
                        .saw(from, progress::PeerView::InSync, now_ms());
                    return None;
                }
                let mut rt = slot.promote(resident).ok()?;
                if let Some(view) = progress::view_of_digest(rt.dag(), &resp) {
                    rt.peers.saw(from, view, now_ms());
                }
                protocol::after_digest(rt.dag(), ctx, &resp)
            }
            Response::Deltas { deltas, more } => {
                let ctx = req.context();
                let report = match self.receive(&ctx, deltas, Some(from.to_owned())) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(context = %ctx, "applying a page failed: {e}");
                        return None;
                    }
                };
                let page = matches!(req, Request::Page { .. });
                if page && !more {
                    // The round that started behind this peer is over.
                    if let Ok(slot) = self.context(&ctx)
                        && let Ok(mut rt) = slot.lock()
                    {
                        rt.peers.caught_up(from, now_ms());
                    }
                }
                if !page || report.applied == 0 {
                    return None;
                }
                let rt = self.context(&ctx).ok()?;
                let rt = rt.lock().ok()?;
                protocol::next_page(rt.dag(), ctx, more)
            }
        }
    }

    /// Deltas of a context's log from position `from`, at most `limit`, in
    /// apply order (parents first), and the position after the last one
    /// read. After a snapshot join some below its checkpoint may not be
    /// stored yet (`snapshots::backfill`): they are left out.
    pub fn export_deltas(
        &self,
        ctx: &ContextId,
        from: u64,
        limit: usize,
    ) -> Result<(Vec<SignedDelta>, u64), NodeError> {
        let len = self.context(ctx)?.lock()?.dag().len() as u64;
        let end = from.saturating_add(limit as u64).min(len);
        let mut out = Vec::new();
        for pos in from..end {
            if let Some(d) = self.db().delta(ctx, pos)? {
                out.push(d);
            }
        }
        Ok((out, end.max(from)))
    }

    /// The headers of a context's log from position `from` (or, with
    /// `last`, of its last `last` deltas), at most `limit`; and the log's
    /// length. The id list is read under the context lock, the stored
    /// deltas after it.
    pub fn dag_page(
        &self,
        ctx: &ContextId,
        from: u64,
        last: Option<usize>,
        limit: usize,
    ) -> Result<(Vec<DagRow>, u64), NodeError> {
        let len = self.context(ctx)?.lock()?.dag().len() as u64;
        let from = match last {
            Some(n) => len.saturating_sub(n.min(limit) as u64),
            None => from,
        };
        let end = from.saturating_add(limit as u64).min(len);
        let mut out = Vec::new();
        for pos in from..end {
            if let Some(d) = self.db().delta(ctx, pos)? {
                out.push((pos, d.id(), d.body.header));
            }
        }
        Ok((out, len))
    }

    /// A context's replication state.
    pub fn sync_status(&self, ctx: &ContextId) -> Result<SyncStatus, NodeError> {
        let slot = self.context(ctx)?;
        Ok(slot.inspect().sync_status(*ctx))
    }
}

/// What a peer gets when it is not admitted (or the context is not here).
pub(crate) const NOT_ADMITTED: &str = "unknown context, or not a member of it";

/// A node's answer to a peer's request.
#[derive(Debug)]
pub struct Answer {
    /// What to send back.
    pub response: Response,
    /// The peer's heads differ from ours: start a round towards it too.
    pub differ: bool,
    /// The peer proved it belongs to the request's context.
    pub admitted: bool,
    /// The context is on this node (never told to the peer: a refusal
    /// reads the same either way). Only a refusal about a context that is
    /// here counts against the peer: honest nodes ask every peer that may
    /// share a context, about contexts it may not have.
    pub known: bool,
}

fn error(message: &str) -> Response {
    Response::Error {
        message: message.to_owned(),
    }
}

impl crate::net::Replication for Node {
    fn followed(&self) -> Vec<(ContextId, Option<mero_sync::gate::Topic>)> {
        self.runtimes()
            .iter()
            .filter_map(|slot| {
                let topic = slot.peek().ok()?.follow();
                Some((slot.id(), topic))
            })
            .collect()
    }

    fn opening(&self, ctx: &ContextId) -> Option<Envelope> {
        // A join fetching a snapshot pages nothing meanwhile.
        if self.snapshots().fetching(ctx) {
            return None;
        }
        self.digest_request(ctx)
    }

    fn app_request(&self, ctx: &ContextId, app: &crate::ids::AppHash) -> Option<Envelope> {
        Node::app_request(self, ctx, app)
    }

    fn answer(&self, peer: &[u8], request: &Envelope) -> Answer {
        Node::answer(self, peer, request)
    }

    fn on_response(&self, request: &Envelope, response: Response, from: &str) -> Option<Envelope> {
        Node::on_response(self, &request.request, response, from)
    }

    fn metrics(&self) -> &crate::metrics::Metrics {
        Node::metrics(self)
    }

    fn gossip(
        &self,
        ctx: &ContextId,
        deltas: Vec<SignedDelta>,
        from: &str,
    ) -> Result<ReceiveReport, NodeError> {
        self.receive(ctx, deltas, Some(from.to_owned()))
    }
}
