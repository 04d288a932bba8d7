//! The receiving side of replication and catch-up, as node operations the
//! network layer calls: apply deltas from peers, answer peers' requests,
//! and decide the next request after a response.
//!
//! The protocol itself (what to answer, when to page) is `mero_sync::protocol`;
//! this module only binds it to the node's contexts and store.

use std::collections::BTreeMap;

use mero_sync::SignedDelta;
use mero_sync::dag::SeqVector;
use mero_sync::protocol::{self, Request, Response};
use serde::Serialize;

use crate::context::{Effects, ReceiveReport};
use crate::error::NodeError;
use crate::ids::{ContextId, DeltaId, sha256};
use crate::node::Node;

/// A context's replication state, for `/admin/contexts/{id}/sync`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
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
        let rt = self.context(ctx)?;
        let mut rt = rt.lock().unwrap();
        let mut fx = Effects::default();
        let received = deltas.len();
        let report = rt.receive(self.db(), deltas, self.policy(), &mut fx)?;
        self.metrics().received(ctx, received, &report.reasons);
        if !fx.forks.is_empty() {
            self.metrics().equivocations(ctx, fx.forks.len());
        }
        if report.applied > 0 {
            self.after_change(&mut rt, &mut fx);
        }
        drop(rt);
        self.finish(*ctx, fx, from);
        Ok(report)
    }

    /// Answers a peer's request. The flag says the peer's heads differ from
    /// ours, so the caller should start a round of its own towards it.
    pub fn answer(&self, req: &Request) -> (Response, bool) {
        if let Request::App { hash } = req {
            let wasm = self.app_wasm(hash).ok().flatten();
            return (Response::App { wasm }, false);
        }
        let Some(ctx) = req.context() else {
            return (error("unsupported request"), false);
        };
        let Ok(rt) = self.context(&ctx) else {
            return (error(&format!("unknown context {ctx}")), false);
        };
        let rt = rt.lock().unwrap();
        let source = crate::context::stored(self.db(), ctx, rt.dag());
        protocol::answer(rt.dag(), &source, req)
    }

    /// The request that opens a catch-up round for `ctx`.
    pub fn digest_request(&self, ctx: &ContextId) -> Option<Request> {
        let rt = self.context(ctx).ok()?;
        let rt = rt.lock().unwrap();
        Some(Request::Digest {
            context: *ctx,
            digest: rt.dag().digest(),
        })
    }

    /// Ids of every context on this node.
    pub fn context_ids(&self) -> Vec<ContextId> {
        self.contexts.read().unwrap().keys().copied().collect()
    }

    /// Handles the response to `req` from peer `from`; returns the next
    /// request to send that peer, if any.
    pub fn on_response(&self, req: &Request, resp: Response, from: &str) -> Option<Request> {
        match resp {
            Response::App { wasm: Some(wasm) } => {
                let Request::App { hash } = req else {
                    return None;
                };
                if sha256(&wasm) != hash.0 {
                    tracing::warn!(peer = from, app = %hash, "peer sent WASM with the wrong hash");
                    return None;
                }
                if let Err(e) = self.install_app(&wasm) {
                    tracing::warn!(app = %hash, "fetched app does not install: {e}");
                }
                None
            }
            Response::App { wasm: None } => None,
            Response::Error { message } => {
                tracing::debug!(peer = from, "peer answered: {message}");
                None
            }
            Response::Digest { .. } => {
                let ctx = req.context()?;
                let rt = self.context(&ctx).ok()?;
                let rt = rt.lock().unwrap();
                protocol::after_digest(rt.dag(), ctx, &resp)
            }
            Response::Deltas { deltas, more } => {
                let ctx = req.context()?;
                let report = match self.receive(&ctx, deltas, Some(from.to_owned())) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(context = %ctx, "applying a page failed: {e}");
                        return None;
                    }
                };
                if !matches!(req, Request::Page { .. }) || report.applied == 0 {
                    return None;
                }
                let rt = self.context(&ctx).ok()?;
                let rt = rt.lock().unwrap();
                protocol::next_page(rt.dag(), ctx, more)
            }
        }
    }

    /// Deltas of a context's log from position `from`, at most `limit`, in
    /// apply order (parents first).
    pub fn export_deltas(
        &self,
        ctx: &ContextId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<SignedDelta>, NodeError> {
        let len = self.context(ctx)?.lock().unwrap().dag().len() as u64;
        let end = from.saturating_add(limit as u64).min(len);
        let mut out = Vec::new();
        for pos in from..end {
            if let Some(d) = self.db().delta(ctx, pos)? {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// A context's replication state.
    pub fn sync_status(&self, ctx: &ContextId) -> Result<SyncStatus, NodeError> {
        let rt = self.context(ctx)?;
        let rt = rt.lock().unwrap();
        Ok(SyncStatus {
            context: *ctx,
            deltas: rt.dag().len() as u64,
            heads: rt.dag().heads(),
            digest: hex::encode(rt.dag().digest()),
            vector: rt.dag().vector(),
            pending: rt.dag().pending_len(),
            rejected: rt.rejected.clone(),
            joining: rt.meta.joining.is_some(),
            forks: rt.dag().forks().len(),
        })
    }
}

fn error(message: &str) -> Response {
    Response::Error {
        message: message.to_owned(),
    }
}
