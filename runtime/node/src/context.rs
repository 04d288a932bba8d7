//! One context on this node: its replica (Loro state, DAG, members), its
//! keys, and the two ways it changes: a delta authored here, or deltas
//! received from peers. Both end in one RocksDB write batch.
//!
//! Callers hold the context's lock for the whole of a change and run the
//! returned [`Effects`] (publishing, events, handlers) after releasing it.

use std::collections::BTreeMap;
use std::sync::Arc;

use mero_engine::{ContextState, EmittedEvent, PrivateStorage};
use mero_sync::{ContextKey, Dag, MemberSecret, Op, Reject, SignedDelta};
use serde::Serialize;

use crate::error::NodeError;
use crate::events::{Names, PendingEvent, StreamItem};
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey};
use crate::store::{Batch, ContextMeta, ContextSecrets, Store};

/// Delta bytes, as a multiple of the last snapshot's size, after which the
/// next snapshot is due. Snapshots are compressed and deltas are not, so a
/// factor of 1 still spent about a tenth of all apply time on snapshots.
const SNAPSHOT_GROWTH: usize = 4;

/// What a change asks of the node once the context lock is released.
#[derive(Debug, Default)]
pub struct Effects {
    /// Deltas to publish to the context's topic.
    pub publish: Vec<SignedDelta>,
    /// App events of the deltas being committed; the commit numbers them.
    pub events: Vec<PendingEvent>,
    /// Numbered stream items for local subscribers, persisted by the commit.
    pub stream: Vec<Arc<StreamItem>>,
    /// Handler calls to run: (method, JSON args).
    pub handlers: Vec<(String, Vec<u8>)>,
    /// Parents to ask peers for.
    pub want: Vec<DeltaId>,
    /// Apps this context now needs and the node may lack.
    pub apps: Vec<AppHash>,
}

impl Effects {
    /// Records a call delta's events for local subscribers and, for a delta
    /// from a peer (`local == false`) when `run_handlers`, the handlers they name.
    pub fn call_events(
        &mut self,
        delta: DeltaId,
        author: MemberKey,
        local: bool,
        events: Vec<EmittedEvent>,
        run_handlers: bool,
    ) {
        for e in events {
            if !local
                && run_handlers
                && let Some(h) = e.handler
            {
                self.handlers.push((h, e.data.clone().into_bytes()));
            }
            self.events.push(PendingEvent {
                delta,
                author,
                local,
                kind: e.kind,
                data: PendingEvent::data(e.data),
            });
        }
    }
}

/// How commits persist beyond the deltas themselves.
#[derive(Debug, Clone, Copy)]
pub struct CommitPolicy {
    /// Write a state snapshot every this many deltas.
    pub snapshot_every: u64,
    /// Event-log items kept per context.
    pub event_retention: u64,
}

/// What a receive did, for the caller and the counters.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ReceiveReport {
    /// Deltas applied.
    pub applied: usize,
    /// Deltas refused.
    pub rejected: usize,
    /// Deltas buffered for missing parents.
    pub buffered: usize,
    /// Why each refused delta was refused.
    #[serde(skip)]
    pub reasons: Vec<&'static str>,
}

pub(crate) struct DbPrivate {
    pub db: Arc<Store>,
    pub ctx: ContextId,
}

impl PrivateStorage for DbPrivate {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.db.private_get(&self.ctx, key) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(context = %self.ctx, "private storage read failed: {e}");
                None
            }
        }
    }
}

/// One context's replica and keys, behind the context's lock.
pub(crate) struct ContextRuntime {
    pub id: ContextId,
    pub meta: ContextMeta,
    pub state: ContextState,
    pub private: Arc<dyn PrivateStorage>,
    pub dag: Dag,
    pub secret: MemberSecret,
    pub key: ContextKey,
    /// Refused deltas by reason, since the node started.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Id of the newest item of the context's event stream.
    pub event_seq: u64,
    /// Text of ids used in stream items.
    pub names: Names,
    /// Size of the latest snapshot, and payload bytes of the deltas after
    /// it: see [`ContextRuntime::snapshot_due`].
    snapshot_len: usize,
    unsnapshotted: usize,
}

impl ContextRuntime {
    /// A new, empty replica (creating or joining).
    pub fn fresh(
        db: &Arc<Store>,
        id: ContextId,
        meta: ContextMeta,
        secret: MemberSecret,
        key: ContextKey,
    ) -> Self {
        Self {
            id,
            state: ContextState::new(ContextState::peer_id_for(&meta.member.0)),
            meta,
            private: Arc::new(DbPrivate {
                db: db.clone(),
                ctx: id,
            }),
            dag: Dag::new(id),
            secret,
            key,
            rejected: BTreeMap::new(),
            event_seq: 0,
            names: Names::new(&id),
            snapshot_len: 0,
            unsnapshotted: 0,
        }
    }

    /// Stages this replica's secrets (member key, context key) in `batch`.
    pub fn stage_secrets(&self, db: &Store, batch: &mut Batch) {
        let secrets = ContextSecrets {
            member: self.secret.to_bytes(),
            key: self.key.0,
        };
        batch.put_secrets(db, &self.id, &secrets);
    }

    /// Rebuilds a replica from the store: the DAG from the whole log, the
    /// state from the latest snapshot plus the deltas after it.
    pub fn restore(db: &Arc<Store>, id: ContextId, meta: ContextMeta) -> Result<Self, NodeError> {
        let secrets = db.secrets(&id)?;
        let log = db.log(&id)?;
        if log.len() as u64 != meta.log_len {
            return Err(NodeError::Corrupt(format!(
                "context {id}: {} deltas stored, metadata says {}",
                log.len(),
                meta.log_len
            )));
        }
        let mut rt = Self::fresh(
            db,
            id,
            meta,
            MemberSecret::from_bytes(&secrets.member),
            ContextKey(secrets.key),
        );
        rt.event_seq = db.last_event_id(&id)?;
        let peer = rt.state.peer();
        let from = match db.snapshot(&id)? {
            Some((pos, bytes)) if pos <= rt.meta.log_len => {
                rt.state = ContextState::from_snapshot(&bytes, peer)?;
                rt.snapshot_len = bytes.len();
                pos
            }
            _ => 0,
        };
        for (pos, d) in log.iter().enumerate() {
            rt.dag.record(d.id(), &d.body);
            if pos as u64 >= from
                && let Ok(Op::Call(p)) = d.open(&rt.key)
            {
                rt.state.import(&p.update)?;
                rt.unsnapshotted += d.body.payload.len();
            }
        }
        Ok(rt)
    }

    /// Makes a delta of `op` by this node, applies it to the DAG and stages
    /// it in `batch`. The caller has already applied the op's effect on state.
    pub fn author(
        &mut self,
        op: &Op,
        app: AppHash,
        db: &Store,
        batch: &mut Batch,
    ) -> (DeltaId, SignedDelta) {
        let d = SignedDelta::create(
            &self.secret,
            &self.key,
            self.id,
            self.dag.seq_of(&self.meta.member) + 1,
            self.dag.heads(),
            app,
            op,
        );
        let id = d.id();
        batch.put_delta(db, self.dag.len() as u64, &d);
        self.unsnapshotted += d.body.payload.len();
        self.dag.record(id, &d.body);
        if let Op::Upgrade = op {
            let height = self.dag.height(&id).unwrap_or(0);
            self.meta.app = app;
            self.meta.app_chosen_by = Some((height, id));
        }
        (id, d)
    }

    /// Whether this commit should also write a snapshot: once at least
    /// `snapshot_every` deltas came after the last one, and they carry at
    /// least [`SNAPSHOT_GROWTH`] times its size in bytes. A snapshot costs
    /// time in proportion to the whole state, so a fixed count alone would
    /// make every write slower as the state grows; this way the cost per
    /// delta stays proportional to the delta. A restart reads the whole log
    /// anyway (to rebuild the DAG), so replaying a few snapshots' worth of it
    /// adds at most a constant factor.
    fn snapshot_due(&self, policy: CommitPolicy) -> bool {
        self.meta.log_len - self.meta.snapshot_pos >= policy.snapshot_every
            && self.unsnapshotted >= SNAPSHOT_GROWTH * self.snapshot_len
    }

    /// Writes `batch` plus the context metadata, the numbered stream items
    /// for `fx.events` and the new heads (and, when due, a snapshot). If the
    /// write fails, the in-memory replica is rebuilt from the store so memory
    /// never runs ahead of disk, and no stream item is announced.
    pub fn commit(
        &mut self,
        db: &Arc<Store>,
        mut batch: Batch,
        policy: CommitPolicy,
        fx: &mut Effects,
    ) -> Result<(), NodeError> {
        self.meta.log_len = self.dag.len() as u64;
        self.meta.heads = self.dag.heads();
        self.meta.vector = self.dag.vector();
        if self.snapshot_due(policy) {
            let snapshot = self.state.snapshot()?;
            batch.put_snapshot(db, &self.id, self.meta.log_len, &snapshot);
            self.meta.snapshot_pos = self.meta.log_len;
            self.snapshot_len = snapshot.len();
            self.unsnapshotted = 0;
        }
        batch.put_context(db, &self.id, &self.meta);
        let first_new = fx.stream.len();
        let seq_before = self.event_seq;
        for e in fx.events.drain(..) {
            self.event_seq += 1;
            fx.stream.push(Arc::new(StreamItem::event(
                self.event_seq,
                self.id,
                &mut self.names,
                e,
            )));
        }
        self.event_seq += 1;
        fx.stream.push(Arc::new(StreamItem::state(
            self.event_seq,
            self.id,
            &self.names,
            &self.meta.heads,
            self.meta.log_len,
        )));
        for item in &fx.stream[first_new..] {
            batch.put_event(db, item);
        }
        // Pruning in steps keeps range tombstones rare.
        const PRUNE_STEP: u64 = 64;
        if self.event_seq > policy.event_retention
            && seq_before / PRUNE_STEP != self.event_seq / PRUNE_STEP
        {
            batch.prune_events(db, &self.id, self.event_seq - policy.event_retention + 1);
        }
        if let Err(e) = db.write(batch) {
            tracing::error!(context = %self.id, "persisting failed, reloading the context: {e}");
            fx.stream.truncate(first_new);
            self.event_seq = seq_before;
            if let Ok(Some(meta)) = db.context(&self.id)
                && let Ok(fresh) = Self::restore(db, self.id, meta)
            {
                let rejected = std::mem::take(&mut self.rejected);
                *self = fresh;
                self.rejected = rejected;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Applies deltas from peers (each verified, buffered until its parents
    /// are in, checked for membership, decrypted, imported) and persists
    /// everything applied in one batch.
    pub fn receive(
        &mut self,
        db: &Arc<Store>,
        deltas: Vec<SignedDelta>,
        policy: CommitPolicy,
        fx: &mut Effects,
    ) -> Result<ReceiveReport, NodeError> {
        let mut report = ReceiveReport::default();
        let mut batch = db.batch();
        let run_handlers = self.meta.joining.is_none();
        let checked = self.dag.check_signatures(&deltas);
        for (delta, (id, signed)) in deltas.into_iter().zip(checked) {
            let Self {
                id: ctx,
                meta,
                state,
                dag,
                key,
                rejected,
                unsnapshotted,
                ..
            } = self;
            let mut pos = dag.len() as u64;
            let r = dag.receive_checked(id, signed, delta, |id, d, height| {
                apply_remote(ctx, meta, state, key, id, d, height, run_handlers, fx)?;
                batch.put_delta(db, pos, d);
                *unsnapshotted += d.body.payload.len();
                pos += 1;
                Ok(())
            });
            report.applied += r.applied.len();
            report.rejected += r.rejected.len();
            report.buffered += usize::from(r.buffered);
            for (id, why) in &r.rejected {
                *rejected.entry(why.label()).or_default() += 1;
                report.reasons.push(why.label());
                if !matches!(why, Reject::Duplicate) {
                    tracing::warn!(context = %ctx, delta = %id, "refused a delta: {why}");
                }
            }
        }
        if report.buffered > 0 {
            fx.want = self.dag.wanted();
        }
        if report.applied > 0 {
            self.commit(db, batch, policy, fx)?;
        }
        Ok(report)
    }
}

/// Applies one causally ready remote delta to the replica.
#[allow(clippy::too_many_arguments)]
fn apply_remote(
    ctx: &ContextId,
    meta: &mut ContextMeta,
    state: &mut ContextState,
    key: &ContextKey,
    id: &DeltaId,
    d: &SignedDelta,
    height: u64,
    run_handlers: bool,
    fx: &mut Effects,
) -> Result<(), Reject> {
    let op = d.open(key).map_err(|e| Reject::BadPayload(e.to_string()))?;
    let b = &d.body;
    if let Op::Join {
        invitation,
        joined_at_ms,
    } = &op
    {
        return meta
            .members
            .join(
                ctx,
                &key.commitment(),
                b.author,
                b.seq,
                invitation,
                *joined_at_ms,
            )
            .map_err(|e| Reject::NotMember(e.to_string()));
    }
    if !meta.members.can_write(&b.author, b.seq) {
        return Err(Reject::NotMember(format!("{} may not write", b.author)));
    }
    match op {
        Op::Call(p) => {
            state
                .import(&p.update)
                .map_err(|e| Reject::Apply(e.to_string()))?;
            fx.call_events(*id, b.author, false, p.events, run_handlers);
        }
        Op::Upgrade => {
            if Some((height, *id)) > meta.app_chosen_by {
                meta.app = b.app;
                meta.app_chosen_by = Some((height, *id));
                fx.apps.push(b.app);
            }
        }
        Op::Leave => meta.members.leave(&b.author, b.seq),
        Op::Join { .. } => unreachable!("handled above"),
    }
    Ok(())
}
