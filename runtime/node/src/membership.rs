//! Membership operations of a node: invite, join, leave, upgrade.
//!
//! Each one is a signed delta (or, for invitations, a signed token), so every
//! member reaches the same member set and app version from the DAG alone.

use std::time::Duration;

use mero_sync::members::InvitationBody;
use mero_sync::{ContextKey, Invitation, InvitationToken, MemberSecret, Op};
use serde::Serialize;

use crate::context::{ContextRuntime, Effects};
use crate::error::NodeError;
use crate::ids::{AppHash, ContextId, MemberKey};
use crate::node::{ContextInfo, Node, context_info, now_ms};
use crate::store::ContextMeta;

/// One member as `/admin/contexts/{id}/members` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberInfo {
    /// Member key.
    pub key: MemberKey,
    /// Who invited it (none: the creator).
    pub invited_by: Option<MemberKey>,
    /// Whether it may invite.
    pub can_invite: bool,
    /// Whether it left.
    pub left: bool,
    /// Deltas it authored that this node applied.
    pub deltas: u64,
    /// Whether it is this node.
    pub me: bool,
}

impl Node {
    /// Issues an invitation to a context, valid for `valid_for`.
    pub fn invite(
        &self,
        ctx: &ContextId,
        valid_for: Duration,
        can_invite: bool,
    ) -> Result<InvitationToken, NodeError> {
        let rt = self.context(ctx)?;
        let rt = rt.lock().unwrap();
        let me = rt.meta.member;
        match rt.meta.members.get(&me) {
            Some(m) if m.can_invite && m.left_at.is_none() => {}
            _ => {
                return Err(NodeError::Forbidden(
                    "this node's member key may not invite to this context".into(),
                ));
            }
        }
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&crate::ids::random32()[..16]);
        let body = InvitationBody {
            context: *ctx,
            creator: rt.meta.creator,
            salt: rt.meta.salt,
            app: rt.meta.app,
            inviter: me,
            can_invite,
            expires_at_ms: now_ms().saturating_add(valid_for.as_millis() as u64),
            key_commitment: rt.key.commitment(),
            heads: rt.dag.heads(),
            addrs: self.net().map(|n| n.addresses()).unwrap_or_default(),
            nonce,
        };
        Ok(InvitationToken {
            invitation: Invitation::sign(&rt.secret, body),
            key: rt.key.0,
        })
    }

    /// Joins a context with an invitation token: stores the context, then
    /// catches up from the members the invitation names. The join delta is
    /// written once the inviter's heads are in.
    pub fn join(&self, token: &str) -> Result<ContextInfo, NodeError> {
        let token: InvitationToken = token.parse()?;
        token.check(now_ms())?;
        let inv = &token.invitation.body;
        let id = inv.context;
        if self.contexts.read().unwrap().contains_key(&id) {
            return Err(NodeError::BadRequest(format!(
                "this node is already a member of context {id}"
            )));
        }
        let secret = MemberSecret::generate();
        let meta = ContextMeta::empty(
            inv.app,
            secret.public(),
            inv.creator,
            inv.salt,
            now_ms(),
            Some(token.invitation.clone()),
        );
        let mut rt = ContextRuntime::fresh(self.db(), id, meta, secret, ContextKey(token.key));
        let mut batch = self.db().batch();
        rt.stage_secrets(self.db(), &mut batch);
        let mut fx = Effects::default();
        rt.commit(self.db(), batch, self.policy(), &mut fx)?;
        self.complete_join(&mut rt, &mut fx);
        let info = self.register(rt);
        if let Some(net) = self.net() {
            net.dial(&inv.addrs);
            if !self.has_app(&inv.app) {
                net.fetch_app(inv.app);
            }
            net.sync(id);
        }
        self.finish(id, fx, None);
        tracing::info!(context = %id, "joining context");
        Ok(info)
    }

    /// Writes the join delta if this node is joining and has every head the
    /// invitation named. The caller commits.
    pub(crate) fn complete_join(&self, rt: &mut ContextRuntime, fx: &mut Effects) {
        let Some(inv) = rt.meta.joining.clone() else {
            return;
        };
        if !inv.body.heads.iter().all(|h| rt.dag.contains(h)) {
            return;
        }
        let joined_at_ms = now_ms().min(inv.body.expires_at_ms);
        let mut members = rt.meta.members.clone();
        if let Err(e) = members.join(
            &rt.id,
            &rt.key.commitment(),
            rt.meta.member,
            1,
            &inv,
            joined_at_ms,
        ) {
            tracing::error!(context = %rt.id, "cannot join: {e}");
            return;
        }
        // The join travels in the same batch as the rest of the change.
        let mut batch = self.db().batch();
        let op = Op::Join {
            invitation: inv,
            joined_at_ms,
        };
        let (_, d) = rt.author(&op, rt.meta.app, self.db(), &mut batch);
        rt.meta.members = members;
        rt.meta.joining = None;
        match rt.commit(self.db(), batch, self.policy(), fx) {
            Ok(()) => {
                tracing::info!(context = %rt.id, member = %rt.meta.member, "joined context");
                fx.publish.push(d);
            }
            Err(e) => tracing::error!(context = %rt.id, "writing the join failed: {e}"),
        }
    }

    /// The members of a context.
    pub fn members(&self, ctx: &ContextId) -> Result<Vec<MemberInfo>, NodeError> {
        let rt = self.context(ctx)?;
        let rt = rt.lock().unwrap();
        Ok(rt
            .meta
            .members
            .iter()
            .map(|(k, m)| MemberInfo {
                key: *k,
                invited_by: m.invited_by,
                can_invite: m.can_invite,
                left: m.left_at.is_some(),
                deltas: rt.dag.seq_of(k),
                me: *k == rt.meta.member,
            })
            .collect())
    }

    /// Leaves a context: publishes a leave delta, then forgets the context.
    pub fn leave(&self, ctx: &ContextId) -> Result<(), NodeError> {
        let rt = self.context(ctx)?;
        let mut rt = rt.lock().unwrap();
        let mut fx = Effects::default();
        if rt.meta.joining.is_none() {
            let mut batch = self.db().batch();
            let app = rt.meta.app;
            let (_, d) = rt.author(&Op::Leave, app, self.db(), &mut batch);
            rt.commit(self.db(), batch, self.policy(), &mut fx)?;
            fx.publish.push(d);
        }
        drop(rt);
        self.finish(*ctx, fx, None);
        self.forget_context(ctx)?;
        tracing::info!(context = %ctx, "left context");
        Ok(())
    }

    /// Deletes this node's replica of a context without telling the other
    /// members (use [`Node::leave`] for that): its log, state, keys, event
    /// log and private data are gone; the others keep the context.
    pub fn delete_context(&self, ctx: &ContextId) -> Result<(), NodeError> {
        // Wait for any change in progress, then keep others out.
        let rt = self.context(ctx)?;
        let _guard = rt.lock().unwrap();
        self.forget_context(ctx)?;
        tracing::info!(context = %ctx, "deleted context");
        Ok(())
    }

    fn forget_context(&self, ctx: &ContextId) -> Result<(), NodeError> {
        let mut batch = self.db().batch();
        batch.delete_context(self.db(), ctx);
        self.db().write(batch)?;
        self.contexts.write().unwrap().remove(ctx);
        if let Some(net) = self.net() {
            net.unsubscribe(*ctx);
        }
        self.metrics().forget(ctx);
        Ok(())
    }

    /// Switches a context to another installed app version; every member
    /// follows (fetching the WASM if it lacks it). State is kept.
    pub fn upgrade(&self, ctx: &ContextId, app: &AppHash) -> Result<ContextInfo, NodeError> {
        self.app(app)?;
        let rt = self.context(ctx)?;
        let mut rt = rt.lock().unwrap();
        if rt.meta.joining.is_some() {
            return Err(NodeError::Joining(*ctx));
        }
        let mut batch = self.db().batch();
        let (_, d) = rt.author(&Op::Upgrade, *app, self.db(), &mut batch);
        let mut fx = Effects::default();
        rt.commit(self.db(), batch, self.policy(), &mut fx)?;
        fx.publish.push(d);
        let info = context_info(&rt);
        drop(rt);
        self.finish(*ctx, fx, None);
        tracing::info!(context = %ctx, app = %app, "upgraded context");
        Ok(info)
    }
}
