//! One context on this node: its replica (Loro state, and the
//! [`Replica`] holding the DAG, access views and epoch keys), and the two
//! ways it changes: a delta authored here, or deltas received from peers.
//! Both end in one RocksDB write batch. What to accept is decided by
//! `mero_sync::Replica`, never here.
//!
//! Callers hold the context's lock for the whole of a change and run the
//! returned [`Effects`] (publishing, events, handlers) after releasing it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mero_engine::{ContextState, EmittedEvent, PrivateStorage};
use mero_sync::gate::Proof;
use mero_sync::protocol::DeltaSource;
use mero_sync::replica::Limits;
use mero_sync::{ContextKey, Dag, MemberSecret, Op, Reject, Replica, Role, SignedDelta};
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
    /// Events received from peers whose handlers (as the app's ABI
    /// declares them) should run here.
    pub handlers: Vec<HandlerCall>,
    /// Parents to ask peers for.
    pub want: Vec<DeltaId>,
    /// Apps this context now needs and the node may lack.
    pub apps: Vec<AppHash>,
    /// Equivocations newly seen: (the delta first applied, the other).
    pub forks: Vec<(DeltaId, DeltaId)>,
    /// The context's gossip topic changed (a new key epoch): follow this one.
    pub topic: Option<Option<mero_sync::gate::Topic>>,
    /// Contexts a call of this change called into, committing in its write
    /// ([`crate::xcall`]).
    pub callees: crate::xcall::Callees,
}

/// Where a [`ContextRuntime::stage`] started, to undo it.
#[derive(Debug, Clone, Copy)]
pub struct Staged {
    first_new: usize,
    seq_before: u64,
}

/// An event from a peer whose declared handler should run here.
#[derive(Debug)]
pub struct HandlerCall {
    /// The event's kind: the ABI names its handler.
    pub kind: String,
    /// The event's JSON fields: the handler's arguments.
    pub args: Vec<u8>,
    /// The handler the event itself named. Never used to pick a method; a
    /// name other than the declared one is counted as refused.
    pub claimed: Option<String>,
}

impl Effects {
    /// Records a call delta's events for local subscribers and, for a delta
    /// from a peer (`local == false`) when `run_handlers`, queues them for
    /// their handlers. The handler is never taken from the event itself:
    /// the node looks it up in the app's ABI by the event's kind.
    pub fn call_events(
        &mut self,
        delta: DeltaId,
        author: MemberKey,
        local: bool,
        events: Vec<EmittedEvent>,
        run_handlers: bool,
    ) {
        for e in events {
            if !local && run_handlers {
                self.handlers.push(HandlerCall {
                    kind: e.kind.clone(),
                    args: e.data.clone().into_bytes(),
                    claimed: e.handler.clone(),
                });
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

/// A context's applied deltas as the store holds them, by id: what
/// catch-up answers, canonical rebuilds and evidence read.
pub(crate) fn stored<'a>(db: &'a Store, ctx: ContextId, dag: &'a Dag) -> impl DeltaSource + 'a {
    move |id: &DeltaId| db.delta(&ctx, dag.position(id)?).ok().flatten()
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
    /// Those still waiting for parents when the call returned.
    #[serde(skip)]
    pub waiting: Vec<DeltaId>,
    /// Why each refused delta was refused.
    #[serde(skip)]
    pub reasons: Vec<&'static str>,
    /// Refused deltas only a broken or lying sender could have sent
    /// ([`Reject::is_garbage`]), and whether for a bad signature (then only
    /// the copies whose signature fails were garbage: a forged copy shares
    /// its id with the honest delta).
    #[serde(skip)]
    pub garbage: Vec<(DeltaId, bool)>,
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
    /// The DAG, access views and epoch keys: every decision about deltas.
    pub replica: Replica,
    pub secret: MemberSecret,
    /// While joining: the invitation's secret key.
    pub invite: Option<MemberSecret>,
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
    /// What received deltas may hold.
    limits: Limits,
    /// Why this replica can no longer be trusted, if it failed.
    failed: Option<String>,
    /// The gossip topic the network was last told to follow.
    pub announced: Option<mero_sync::gate::Topic>,
    /// Where this replica stands against each peer, as catch-up showed it
    /// (status only; kept under this lock, gone with the context).
    pub peers: crate::peer_sync::PeerBook,
    /// When the heads last changed (ms since the epoch; 0: not since start).
    pub heads_changed_ms: u64,
}

impl ContextRuntime {
    /// A new, empty replica (creating or joining) holding `keys`.
    pub fn fresh(
        db: &Arc<Store>,
        id: ContextId,
        meta: ContextMeta,
        secret: MemberSecret,
        keys: Vec<(DeltaId, ContextKey)>,
        invite: Option<MemberSecret>,
        limits: Limits,
    ) -> Self {
        let mut replica = Replica::new(id, meta.creator).with_limits(limits);
        for (epoch, key) in keys {
            replica.add_key(epoch, key);
        }
        replica.add_opener(secret.clone());
        if let Some(i) = &invite {
            replica.add_opener(i.clone());
        }
        Self {
            id,
            state: ContextState::new(ContextState::peer_id_for(&meta.member.0)),
            meta,
            private: Arc::new(DbPrivate {
                db: db.clone(),
                ctx: id,
            }),
            replica,
            secret,
            invite,
            rejected: BTreeMap::new(),
            event_seq: 0,
            names: Names::new(&id),
            snapshot_len: 0,
            unsnapshotted: 0,
            limits,
            failed: None,
            announced: None,
            peers: crate::peer_sync::PeerBook::default(),
            heads_changed_ms: 0,
        }
    }

    /// Why this replica must be quarantined, if it must: its state could
    /// not be rolled back or rebuilt.
    pub fn failure(&self) -> Option<&str> {
        self.state.broken().or(self.failed.as_deref())
    }

    /// The DAG.
    pub fn dag(&self) -> &mero_sync::Dag {
        self.replica.dag()
    }

    /// This node's proof, for requests it sends from transport id `peer`,
    /// that it belongs here: its invitation while joining, its member key
    /// after.
    pub fn proof(&self, peer: &[u8]) -> Proof {
        match (&self.meta.joining, &self.invite) {
            (Some(j), Some(invite)) => Proof::invite(invite, j.invite, &self.id, peer),
            _ => Proof::member(&self.secret, &self.id, peer),
        }
    }

    /// The gossip topic of the current key epoch, if this node holds its
    /// key and has joined. A joiner has none: until its DAG reaches the
    /// invitation's heads, its current epoch is an old one (it holds every
    /// earlier key), whose topic nobody follows; it asks the peers it is
    /// connected to instead, which its invitation named.
    pub fn topic(&self) -> Option<mero_sync::gate::Topic> {
        if self.meta.joining.is_some() {
            return None;
        }
        let key = self.replica.current_key()?;
        Some(mero_sync::gate::Topic::of(&self.id, key))
    }

    /// While joining: the topics of every key the invitation gave, under
    /// which the members are looked up at meet servers (the node gossips on
    /// nothing yet, [`Self::topic`], and its access is still the genesis
    /// one, so it cannot tell which key is the members' current one).
    pub fn seek_topics(&self) -> Vec<mero_sync::gate::Topic> {
        if self.meta.joining.is_none() {
            return Vec::new();
        }
        self.replica
            .keys()
            .values()
            .map(|k| mero_sync::gate::Topic::of(&self.id, k))
            .collect()
    }

    /// Stages this replica's secrets (member key, epoch keys, invitation
    /// key) in `batch`.
    pub fn stage_secrets(&self, db: &Store, batch: &mut Batch) {
        let secrets = ContextSecrets {
            member: self.secret.to_bytes(),
            keys: self.replica.keys().iter().map(|(e, k)| (*e, k.0)).collect(),
            invite: self.invite.as_ref().map(MemberSecret::to_bytes),
        };
        batch.put_secrets(db, &self.id, &secrets);
    }

    /// Rebuilds a replica from the store: the DAG and access views from the
    /// checkpoint (if one is stored) and the log after it, the state from
    /// the latest snapshot plus the deltas after it.
    pub fn restore(
        db: &Arc<Store>,
        id: ContextId,
        meta: ContextMeta,
        limits: Limits,
    ) -> Result<Self, NodeError> {
        let corrupt = |e: String| NodeError::Corrupt(format!("context {id}: {e}"));
        let secrets = db.secrets(&id)?;
        let keys: Vec<_> = secrets
            .keys
            .iter()
            .map(|(e, k)| (*e, ContextKey(*k)))
            .collect();
        let invite = secrets.invite.as_ref().map(MemberSecret::from_bytes);
        let member = MemberSecret::from_bytes(&secrets.member);
        let mut rt = Self::fresh(db, id, meta, member, keys.clone(), invite, limits);
        // A checkpoint that does not load leaves the whole log to read,
        // which only a context joined from a snapshot lacks.
        let stored = match db.checkpoint(&id) {
            Ok(c) => c.filter(|c| c.base <= rt.meta.log_len),
            Err(e) => {
                tracing::warn!(context = %id, "the stored checkpoint does not decode; reading the whole log: {e}");
                None
            }
        };
        let stored = stored.and_then(|c| match rt.replica_at(db, &c.checkpoint, keys) {
            Ok(replica) => {
                rt.replica = replica;
                Some(c)
            }
            Err(e) => {
                tracing::warn!(context = %id, "the stored checkpoint does not load; reading the whole log: {e}");
                None
            }
        });
        let base = stored.as_ref().map_or(0, |c| c.base);
        let log = db.log_from(&id, base)?;
        if base + log.len() as u64 != rt.meta.log_len {
            return Err(corrupt(format!(
                "{} deltas stored after position {base}, metadata says {} in all",
                log.len(),
                rt.meta.log_len
            )));
        }
        rt.event_seq = db.last_event_id(&id)?;
        let peer = rt.state.peer();
        let from = match db.snapshot(&id)? {
            Some((pos, bytes)) if pos <= rt.meta.log_len && pos >= base => {
                rt.state = ContextState::from_snapshot(&bytes, peer)?;
                rt.snapshot_len = bytes.len();
                pos - base
            }
            _ if base > 0 => return Err(corrupt("no snapshot at or after its checkpoint".into())),
            _ => 0,
        };
        rt.unsnapshotted = log[from as usize..]
            .iter()
            .map(|d| d.body.payload.len())
            .sum();
        // Deltas below the checkpoint, by id, for a canonical rebuild.
        let below = std::cell::OnceCell::new();
        let older = |d: &DeltaId| {
            let c = stored.as_ref()?;
            let index: &HashMap<DeltaId, u64> = below.get_or_init(|| {
                c.checkpoint
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (e.id, i as u64))
                    .collect()
            });
            db.delta(&id, *index.get(d)?).ok().flatten()
        };
        rt.replica
            .restore(&log, from as usize, &mut rt.state, &older)
            .map_err(corrupt)?;
        // A snapshot may hold a failed call's reverted ops: they go out
        // with this node's next delta.
        let clock = rt.replica.clock_of(&rt.meta.member);
        rt.state.set_published(clock);
        Ok(rt)
    }

    /// The replica `cp` and the control deltas stored at its positions make.
    fn replica_at(
        &self,
        db: &Store,
        cp: &mero_sync::checkpoint::Checkpoint,
        keys: Vec<(DeltaId, ContextKey)>,
    ) -> Result<Replica, String> {
        let controls = cp
            .control
            .iter()
            .map(|pos| match db.delta(&self.id, *pos) {
                Ok(Some(d)) => Ok(d),
                Ok(None) => Err(format!("control delta {pos} is not stored")),
                Err(e) => Err(e.to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut openers = vec![self.secret.clone()];
        openers.extend(self.invite.clone());
        let (replica, _) =
            Replica::from_checkpoint(cp, &controls, self.meta.creator, keys, openers, self.limits)
                .map_err(|e| e.to_string())?;
        Ok(replica)
    }

    /// Makes a checked snapshot ([`mero_sync::snapshot::install`]) this
    /// empty joiner's replica and state, storing in one write its control
    /// deltas at their log positions, the checkpoint, the state as this
    /// replica's snapshot, the keys and the sender's manifest (evidence).
    pub fn install(
        &mut self,
        db: &Arc<Store>,
        snap: mero_sync::snapshot::Installed,
        state: ContextState,
        manifest: &mero_sync::snapshot::Manifest,
        policy: CommitPolicy,
        fx: &mut Effects,
    ) -> Result<(), NodeError> {
        let mero_sync::snapshot::Installed {
            replica, snapshot, ..
        } = snap;
        let len = replica.dag().len() as u64;
        let mut batch = db.batch();
        for (pos, d) in snapshot.checkpoint.control.iter().zip(&snapshot.control) {
            batch.put_delta(db, *pos, d);
        }
        batch.put_restore_point(db, &self.id, len, &snapshot.state, &snapshot.checkpoint);
        batch.put_received(db, &self.id, manifest);
        self.replica = replica;
        self.state = state;
        self.meta.snapshot_pos = len;
        self.snapshot_len = snapshot.state.len();
        self.unsnapshotted = 0;
        self.stage_secrets(db, &mut batch);
        self.commit(db, batch, policy, fx)
    }

    /// Makes a delta of `op` by this node, records it in the replica and
    /// stages it in `batch`. The caller has already applied the op's effect
    /// on state. Refused if this node's member may not do it.
    pub fn author(
        &mut self,
        op: Op,
        app: AppHash,
        db: &Store,
        batch: &mut Batch,
    ) -> Result<(DeltaId, SignedDelta), NodeError> {
        let keys = self.replica.keys().len();
        let pos = self.dag().len() as u64;
        let (id, d) = self
            .replica
            .author(&self.secret, op, app, self.state.peer())?;
        batch.put_delta(db, pos, &d);
        self.unsnapshotted += d.body.payload.len();
        if self.replica.keys().len() != keys {
            self.stage_secrets(db, batch);
        }
        Ok((id, d))
    }

    /// Whether this commit should also write a snapshot: once at least
    /// `snapshot_every` deltas came after the last one, and they carry at
    /// least [`SNAPSHOT_GROWTH`] times its size in bytes. A snapshot costs
    /// time in proportion to the whole state, so a fixed count alone would
    /// make every write slower as the state grows; this way the cost per
    /// delta stays proportional to the delta. Each snapshot comes with a
    /// checkpoint of the DAG, so a load reads both and the log after them:
    /// at most a few snapshots' worth of deltas.
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
        let staged = self.stage(db, &mut batch, policy, fx)?;
        if let Err(e) = db.write(batch) {
            tracing::error!(context = %self.id, "persisting failed, reloading the context: {e}");
            self.unstage(db, fx, staged);
            return Err(e);
        }
        Ok(())
    }

    /// Adds to `batch` what [`commit`](Self::commit) writes besides it: the
    /// metadata, the numbered stream items for `fx.events`, the heads and a
    /// snapshot when due. Another context's write may carry it (a
    /// cross-context callee commits in its caller's write); if that write
    /// fails, [`unstage`](Self::unstage).
    pub fn stage(
        &mut self,
        db: &Arc<Store>,
        batch: &mut Batch,
        policy: CommitPolicy,
        fx: &mut Effects,
    ) -> Result<Staged, NodeError> {
        self.meta.log_len = self.dag().len() as u64;
        let heads = self.dag().heads();
        if heads != self.meta.heads {
            self.heads_changed_ms = crate::node::now_ms();
        }
        self.meta.heads = heads;
        self.meta.vector = self.dag().vector();
        // A failed replica's state must never reach a snapshot.
        if self.snapshot_due(policy) && self.failure().is_none() {
            let snapshot = self.state.snapshot()?;
            let checkpoint = self.replica.checkpoint();
            batch.put_restore_point(db, &self.id, self.meta.log_len, &snapshot, &checkpoint);
            self.meta.snapshot_pos = self.meta.log_len;
            self.snapshot_len = snapshot.len();
            self.unsnapshotted = 0;
        }
        batch.put_context(db, &self.id, &self.meta);
        let staged = Staged {
            first_new: fx.stream.len(),
            seq_before: self.event_seq,
        };
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
        for item in &fx.stream[staged.first_new..] {
            batch.put_event(db, item);
        }
        // Pruning in steps keeps range tombstones rare.
        const PRUNE_STEP: u64 = 64;
        if self.event_seq > policy.event_retention
            && staged.seq_before / PRUNE_STEP != self.event_seq / PRUNE_STEP
        {
            batch.prune_events(db, &self.id, self.event_seq - policy.event_retention + 1);
        }
        Ok(staged)
    }

    /// Forgets a [`stage`](Self::stage) whose write failed: no stream item
    /// is announced, and the replica is rebuilt from the store.
    pub fn unstage(&mut self, db: &Arc<Store>, fx: &mut Effects, staged: Staged) {
        fx.stream.truncate(staged.first_new);
        self.event_seq = staged.seq_before;
        self.reload(db);
    }

    /// Replaces the in-memory replica with what the store holds, after a
    /// change that could not be completed; the refusal counters stay.
    pub fn reload(&mut self, db: &Arc<Store>) {
        if let Ok(Some(meta)) = db.context(&self.id)
            && let Ok(fresh) = Self::restore(db, self.id, meta, self.limits)
        {
            let rejected = std::mem::take(&mut self.rejected);
            *self = fresh;
            self.rejected = rejected;
        }
    }

    /// Applies deltas from peers ([`Replica::receive`] decides each) and
    /// persists everything applied, with any epoch keys learned, in one batch.
    pub fn receive(
        &mut self,
        db: &Arc<Store>,
        deltas: Vec<SignedDelta>,
        policy: CommitPolicy,
        fx: &mut Effects,
    ) -> Result<ReceiveReport, NodeError> {
        let member = self.meta.member;
        let run_handlers = self.meta.joining.is_none()
            && self
                .replica
                .access()
                .role(&member)
                .is_some_and(Role::writes);
        let first = self.dag().len() as u64;
        let mut out = self.replica.receive(deltas, &mut self.state);
        let mut report = ReceiveReport {
            applied: out.applied.len(),
            rejected: out.rejected.len(),
            buffered: out.buffered,
            waiting: std::mem::take(&mut out.waiting),
            reasons: Vec::new(),
            garbage: Vec::new(),
        };
        let mut batch = db.batch();
        for (pos, (id, d, op)) in (first..).zip(out.applied) {
            batch.put_delta(db, pos, &d);
            self.unsnapshotted += d.body.payload.len();
            // An upgrade's app is fetched, if missing, by `Node::after_change`.
            if let Op::Call(p) = op {
                fx.call_events(id, d.header().author, false, p.events, run_handlers);
            }
        }
        for (id, why) in &out.rejected {
            *self.rejected.entry(why.label()).or_default() += 1;
            report.reasons.push(why.label());
            if why.is_garbage() {
                report.garbage.push((*id, *why == Reject::BadSignature));
            }
            // One line per receive, not per delta: a flood of forgeries
            // must not become a flood of log lines.
            tracing::debug!(context = %self.id, delta = %id, "refused a delta: {why}");
        }
        if let Some((_, why)) = out.rejected.iter().find(|(_, w)| *w != Reject::Duplicate) {
            tracing::warn!(context = %self.id, refused = out.rejected.len(), "refused deltas, e.g.: {why}");
        }
        if !out.keys.is_empty() {
            self.stage_secrets(db, &mut batch);
        }
        if report.buffered > 0 {
            fx.want = self.dag().wanted();
        }
        fx.forks.extend(out.forks);
        if report.applied > 0 {
            self.commit(db, batch, policy, fx)?;
        }
        if out.rebuild {
            let source = stored(db, self.id, self.replica.dag());
            if let Err(e) = self.replica.rebuild(&mut self.state, &source) {
                self.failed = Some(format!("rebuilding the state failed: {e}"));
            }
        }
        Ok(report)
    }
}
