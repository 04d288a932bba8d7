//! Membership operations of a node: invite, revoke, join, leave, remove,
//! change roles, upgrade, and the deltas a node writes on its own after a
//! change (its join, evidence of an equivocation, a new key epoch).
//!
//! Each one is a signed delta, so every member reaches the same members,
//! roles, keys and app version from the DAG alone (`mero_sync::access`).
//! Before writing one, a node runs the same check every receiver will, so
//! it never sends what the others refuse.

use std::time::Duration;

use mero_sync::access::{Invite, Join, Standing};
use mero_sync::{InvitationToken, MemberSecret, Op, Role};

use crate::context::{ContextRuntime, Effects};
use crate::error::NodeError;
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey};
use crate::node::{ContextInfo, Node, context_info, now_ms};
use crate::store::{ContextMeta, Joining};

/// One member as `/admin/contexts/{id}/members` shows it.
#[derive(Debug, Clone)]
pub struct MemberInfo {
    /// Member key.
    pub key: MemberKey,
    /// Its role.
    pub role: Role,
    /// Who invited it (none: the creator).
    pub invited_by: Option<MemberKey>,
    /// Whether it left.
    pub left: bool,
    /// Whether an admin removed it.
    pub removed: bool,
    /// If it was shown to sign two deltas with one seq: those two deltas.
    pub flagged: Option<(DeltaId, DeltaId)>,
    /// Deltas it authored that this node applied.
    pub deltas: u64,
    /// Whether it is this node.
    pub me: bool,
}

/// What [`Node::invite`] makes: the token and the invitation's delta.
#[derive(Debug, Clone)]
pub struct Invitation {
    /// The token to hand the joiner.
    pub token: InvitationToken,
    /// The invitation's delta (revoke it by this id).
    pub id: DeltaId,
}

impl Node {
    /// Opens an invitation to a context: an [`Op::Invite`] delta and a
    /// token holding its one-time secret key and the current epoch key.
    pub fn invite(
        &self,
        ctx: &ContextId,
        valid_for: Duration,
        role: Role,
        uses: u32,
    ) -> Result<Invitation, NodeError> {
        if uses == 0 {
            return Err(NodeError::BadRequest(
                "an invitation admits at least one join (uses >= 1)".into(),
            ));
        }
        let secret = MemberSecret::generate();
        let expires_at_ms = now_ms().saturating_add(valid_for.as_millis() as u64);
        let op = Op::Invite(Invite {
            key: secret.public(),
            role,
            uses,
            expires_at_ms,
        });
        let addrs = self.net().map(|n| n.invite_addresses()).unwrap_or_default();
        self.write_control(
            ctx,
            |rt| {
                // Refused before the invite is written, not after.
                InvitationToken::new_past(rt.replica.keys(), &rt.replica.access().epoch())?;
                Ok(op)
            },
            |rt, id| {
                // Read again: what the write brought about may have started an epoch.
                let epoch = rt.replica.access().epoch();
                let key = rt.replica.key(&epoch).map_or([0; 32], |k| k.0);
                let past = InvitationToken::new_past(rt.replica.keys(), &epoch)?;
                let token = InvitationToken {
                    context: *ctx,
                    creator: rt.meta.creator,
                    salt: rt.meta.salt,
                    app: rt.meta.app,
                    invite: id,
                    secret: secret.to_bytes(),
                    epoch,
                    key,
                    heads: rt.dag().heads(),
                    expires_at_ms,
                    addrs,
                    past,
                };
                Ok(Invitation { token, id })
            },
        )?
    }

    /// Revokes an unused invitation; a join with it that comes after the
    /// revocation is refused everywhere. The epoch key its token carried
    /// is replaced (see [`mero_sync::Access::rotation_due`]).
    pub fn revoke(&self, ctx: &ContextId, invite: DeltaId) -> Result<ContextInfo, NodeError> {
        self.write_control(ctx, |_| Ok(Op::Revoke { invite }), |rt, _| context_info(rt))
    }

    /// Removes a member: a new epoch key goes to everyone else, so the
    /// removed member reads nothing written from now on.
    pub fn remove_member(
        &self,
        ctx: &ContextId,
        member: &MemberKey,
    ) -> Result<ContextInfo, NodeError> {
        let op = |rt: &ContextRuntime| {
            Ok(Op::Remove {
                member: *member,
                keys: rt.replica.seal_new_epoch(Some(member)),
            })
        };
        let info = self.write_control(ctx, op, |rt, _| context_info(rt))?;
        tracing::info!(context = %ctx, %member, "removed member");
        Ok(info)
    }

    /// Changes a member's role.
    pub fn set_role(
        &self,
        ctx: &ContextId,
        member: &MemberKey,
        role: Role,
    ) -> Result<ContextInfo, NodeError> {
        let op = Op::SetRole {
            member: *member,
            role,
        };
        self.write_control(ctx, |_| Ok(op), |rt, _| context_info(rt))
    }

    /// Writes a control delta by this node's member, commits it, runs what
    /// it brings about, and publishes; `then` reads the context under the
    /// same lock, right after. `op` may refuse: nothing is written then.
    fn write_control<T>(
        &self,
        ctx: &ContextId,
        op: impl FnOnce(&ContextRuntime) -> Result<Op, NodeError>,
        then: impl FnOnce(&ContextRuntime, DeltaId) -> T,
    ) -> Result<T, NodeError> {
        let slot = self.context(ctx)?;
        let mut rt = slot.lock()?;
        if rt.meta.joining.is_some() {
            return Err(NodeError::Joining(*ctx));
        }
        let mut fx = Effects::default();
        let op = op(&rt)?;
        let id = self.author_control(&mut rt, op, &mut fx)?;
        self.after_change(&mut rt, &mut fx);
        let out = then(&rt, id);
        self.announce(*ctx, &mut fx);
        drop(rt);
        self.finish(*ctx, fx, None);
        Ok(out)
    }

    /// Authors and commits one control delta; it is queued for publishing.
    pub(crate) fn author_control(
        &self,
        rt: &mut ContextRuntime,
        op: Op,
        fx: &mut Effects,
    ) -> Result<DeltaId, NodeError> {
        let mut batch = self.db().batch();
        let app = rt.meta.app;
        let (id, d) = rt.author(op, app, self.db(), &mut batch)?;
        rt.commit(self.db(), batch, self.policy(), fx)?;
        fx.publish.push(d);
        Ok(id)
    }

    /// What a node writes on its own after its replica changed: its join
    /// once the invitation's heads are in; evidence of an equivocation it
    /// saw; a new key epoch when it is an admin and the current key is held
    /// by someone who should not read, or not by a member. Also switches
    /// the app this node runs to the one the context chose, once installed.
    pub(crate) fn after_change(&self, rt: &mut ContextRuntime, fx: &mut Effects) {
        self.complete_join(rt, fx);
        self.follow_app(rt, fx);
        self.write_after_change(rt, fx);
        // Last: what was just written may have started a key epoch.
        let topic = rt.topic();
        if topic != rt.announced {
            rt.announced = topic.clone();
            fx.topic = Some(topic);
        }
    }

    /// The deltas `after_change` writes: evidence, a rotation.
    fn write_after_change(&self, rt: &mut ContextRuntime, fx: &mut Effects) {
        if rt.meta.joining.is_some() {
            return;
        }
        let me = rt.meta.member;
        let role = rt.replica.access().role(&me);
        for fork in std::mem::take(&mut fx.forks) {
            let Some((forker, _)) = rt.dag().author_seq(&fork.0) else {
                continue;
            };
            if role.is_none() || rt.replica.access().flagged().contains_key(&forker) {
                continue;
            }
            let evidence = {
                let source = crate::context::stored(self.db(), rt.id, rt.dag());
                rt.replica.evidence(&fork, &source)
            };
            let Some(evidence) = evidence else {
                continue;
            };
            tracing::warn!(context = %rt.id, member = %forker, "member signed two deltas with one seq; publishing the evidence");
            if let Err(e) = self.author_control(rt, Op::Evidence(Box::new(evidence)), fx) {
                tracing::error!(context = %rt.id, "writing evidence failed: {e}");
            }
        }
        if role == Some(Role::Admin) && rt.replica.access().rotation_due() {
            let keys = rt.replica.seal_new_epoch(None);
            match self.author_control(rt, Op::Rotate { keys }, fx) {
                Ok(id) => tracing::info!(context = %rt.id, epoch = %id, "started a new key epoch"),
                Err(e) => tracing::error!(context = %rt.id, "rotating the key failed: {e}"),
            }
        }
    }

    /// Runs the app the context's upgrades chose, if this node has it;
    /// otherwise keeps serving the old one and asks peers for the new one.
    fn follow_app(&self, rt: &mut ContextRuntime, fx: &mut Effects) {
        let Some(wanted) = rt.replica.access().app() else {
            return;
        };
        if wanted == rt.meta.app {
            return;
        }
        if !self.has_app(&wanted) {
            tracing::warn!(context = %rt.id, app = %wanted, running = %rt.meta.app, "the context upgraded to an app this node lacks; serving the old one until it is fetched and verified");
            fx.apps.push(wanted);
            return;
        }
        rt.meta.app = wanted;
        let mut batch = self.db().batch();
        batch.put_context(self.db(), &rt.id, &rt.meta);
        match self.db().write(batch) {
            Ok(()) => {
                tracing::info!(context = %rt.id, app = %wanted, "now running the upgraded app")
            }
            Err(e) => tracing::error!(context = %rt.id, "recording the app switch failed: {e}"),
        }
    }

    /// Switches every context waiting for `app` to it (called once it is installed).
    pub(crate) fn app_arrived(&self, app: &AppHash) {
        if let Some(net) = self.net() {
            net.app_arrived(*app);
        }
        for slot in self.runtimes() {
            // Only the contexts that wait for it are loaded.
            let waits = slot
                .peek()
                .is_ok_and(|r| r.chosen_app() == Some(*app) && r.meta().app != *app);
            if !waits {
                continue;
            }
            let Ok(mut rt) = slot.lock() else {
                continue;
            };
            if rt.replica.access().app() == Some(*app) && rt.meta.app != *app {
                let mut fx = Effects::default();
                self.follow_app(&mut rt, &mut fx);
            }
        }
    }

    /// Joins a context with an invitation token: stores the context, then
    /// catches up from the members the invitation names. The join delta is
    /// written once the inviter's heads are in.
    pub fn join(&self, token: &str) -> Result<ContextInfo, NodeError> {
        let token: InvitationToken = token.parse()?;
        token.check(now_ms())?;
        let id = token.context;
        if self.contexts.read().unwrap().contains_key(&id) {
            return Err(NodeError::BadRequest(format!(
                "this node is already a member of context {id}"
            )));
        }
        let secret = MemberSecret::generate();
        let joining = Joining {
            invite: token.invite,
            heads: token.heads.clone(),
            expires_at_ms: token.expires_at_ms,
        };
        let meta = ContextMeta::empty(
            token.app,
            secret.public(),
            token.creator,
            token.salt,
            now_ms(),
            Some(joining),
        );
        let keys = token.epoch_keys();
        let invite = Some(MemberSecret::from_bytes(&token.secret));
        let limits = self.replica_limits();
        let mut rt = ContextRuntime::fresh(self.db(), id, meta, secret, keys, invite, limits);
        let mut batch = self.db().batch();
        rt.stage_secrets(self.db(), &mut batch);
        let mut fx = Effects::default();
        rt.commit(self.db(), batch, self.policy(), &mut fx)?;
        self.complete_join(&mut rt, &mut fx);
        self.announce(id, &mut fx);
        let info = self.register(rt);
        if let Some(net) = self.net() {
            net.dial(&token.addrs);
            self.fetch_app(id, token.app);
            // A long history comes as a snapshot; catch-up starts after.
            match self.me().upgrade() {
                Some(me) => crate::snapshots::fetch::start(&me, id),
                None => net.sync(id),
            }
        }
        self.finish(id, fx, None);
        tracing::info!(context = %id, "joining context");
        Ok(info)
    }

    /// Writes the join delta if this node is joining and has every head the
    /// invitation named. The caller commits.
    pub(crate) fn complete_join(&self, rt: &mut ContextRuntime, fx: &mut Effects) {
        let Some(joining) = rt.meta.joining.clone() else {
            return;
        };
        if !joining.heads.iter().all(|h| rt.dag().contains(h)) {
            return;
        }
        let Some(invite) = rt.invite.clone() else {
            return;
        };
        let joined_at_ms = now_ms().min(joining.expires_at_ms);
        let join = Join::new(
            &rt.id,
            &rt.meta.member,
            joining.invite,
            &invite,
            joined_at_ms,
        );
        let mut batch = self.db().batch();
        let app = rt.meta.app;
        match rt.author(Op::Join(join), app, self.db(), &mut batch) {
            Ok((_, d)) => {
                rt.meta.joining = None;
                match rt.commit(self.db(), batch, self.policy(), fx) {
                    Ok(()) => {
                        tracing::info!(context = %rt.id, member = %rt.meta.member, "joined context");
                        fx.publish.push(d);
                    }
                    Err(e) => tracing::error!(context = %rt.id, "writing the join failed: {e}"),
                }
            }
            // Refused by this node's own replica: every other node would
            // refuse it too. The operator needs a new invitation.
            Err(e) => tracing::error!(context = %rt.id, "cannot join with this invitation: {e}"),
        }
    }

    /// The members of a context, as this node's replica knows them.
    pub fn members(&self, ctx: &ContextId) -> Result<Vec<MemberInfo>, NodeError> {
        let rt = self.context(ctx)?;
        let rt = rt.inspect_loaded()?;
        let access = rt.replica.access();
        Ok(access
            .members()
            .map(|(k, m)| MemberInfo {
                key: *k,
                role: m.role,
                invited_by: m.invited_by,
                left: m.standing == Standing::Left,
                removed: m.standing == Standing::Removed,
                flagged: access.flagged().get(k).copied(),
                deltas: rt.dag().seq_of(k),
                me: *k == rt.meta.member,
            })
            .collect())
    }

    /// Leaves a context: publishes a leave delta, then forgets the context.
    /// An admin that stays starts a new key epoch without this member.
    pub fn leave(&self, ctx: &ContextId) -> Result<(), NodeError> {
        let rt = self.context(ctx)?;
        let mut rt = rt.lock()?;
        let mut fx = Effects::default();
        if rt.meta.joining.is_none() {
            self.author_control(&mut rt, Op::Leave, &mut fx)?;
        }
        self.announce(*ctx, &mut fx);
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
        self.forget_context(ctx)?;
        tracing::info!(context = %ctx, "deleted context");
        Ok(())
    }

    /// Removes a context from the node and the store. A change waiting for
    /// its lock (a call, gossip) finds it gone and writes nothing, so no
    /// stray rows survive to trouble the next start.
    fn forget_context(&self, ctx: &ContextId) -> Result<(), NodeError> {
        let slot = self.context(ctx)?;
        // Wait for any change in progress (quarantined or not, a caller's
        // reservation included), then keep every later one out.
        let _guard = slot.inspect_unreserved();
        slot.retire(true);
        let mut batch = self.db().batch();
        batch.delete_context(self.db(), ctx);
        if let Err(e) = self.db().write(batch) {
            slot.retire(false);
            return Err(e);
        }
        self.contexts.write().unwrap().remove(ctx);
        if let Some(net) = self.net() {
            net.unfollow(*ctx);
        }
        self.metrics().forget(ctx);
        Ok(())
    }
}
