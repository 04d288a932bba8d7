//! One context's replication state and every decision about its deltas:
//! the DAG, the access view of every applied delta, the key epochs this
//! node holds, and the rules that accept, buffer, refuse or flag a delta.
//!
//! The node (`mero-node`) and the simulation (`tests/sim.rs`) both drive
//! a [`Replica`]; neither decides anything about a received delta itself.
//!
//! A delta is judged only against its own causal past:
//!
//! 1. its signature (batch-checked), context, and that its author's
//!    previous delta is among its parents ([`Dag`]);
//! 2. its key epoch is the current one of its causal past, and this node
//!    holds that key;
//! 3. its payload opens under its header (the header is the associated
//!    data, so a payload moved under another header does not open) and is
//!    of the header's kind;
//! 4. its author may do what it does in the [`Access`] of its causal past;
//! 5. a call's state update holds only the author's own ops, continuing
//!    the author's counter from its previous delta exactly up to the
//!    header's `clock`, and at most [`Limits::max_events`] events;
//! 6. those ops change owned entries (`mero_engine::owned`) only in the
//!    author's own entry.
//!
//! So the same delta with the same causal past gets the same decision on
//! every node. An author that signs two deltas with one seq (an
//! equivocation) cannot freeze anyone: both are accepted where valid, the
//! state is rebuilt in one canonical order (both reuse the author's op ids,
//! and the first imported wins them), and any member that sees both
//! publishes an [`Op::Evidence`] after which the author's deltas are refused.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mero_engine::update_span;

use crate::access::Access;
use crate::crypto::{ContextKey, MemberSecret, SealedKeys};
use crate::dag::{Dag, Notes, Ready, Reject};
use crate::delta::{Draft, Evidence, Op, SignedDelta, SignedHeader};
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey};
use crate::protocol::DeltaSource;
use crate::views::Views;

/// Where a replica's state lives: the node's Loro doc, or the simulation's.
pub trait Engine {
    /// The state engine peer id ops of `author` carry.
    fn peer_of(&self, author: &MemberKey) -> u64;
    /// Imports one delta's update. With `owner`, an update whose ops change
    /// owned state that member does not own (`mero_engine::owned`) is
    /// refused with [`Reject::NotOwner`] and leaves no trace; `None` skips
    /// that check (a migration, or a stored delta judged before). One that
    /// does not apply is [`Reject::Apply`].
    fn import(&mut self, update: &[u8], owner: Option<&MemberKey>) -> Result<(), Reject>;
    /// Replaces the state with `updates` imported in this order; an update
    /// that does not import (its op ids are taken) is skipped.
    fn rebuild(&mut self, updates: &[Vec<u8>]) -> Result<(), String>;
    /// Replaces the state with a full snapshot from a peer (a snapshot
    /// join); one that does not load, or is shallow (it would leave out
    /// history later concurrent updates build on), is an error.
    fn load(&mut self, snapshot: &[u8]) -> Result<(), String>;
    /// The ops the state holds: per state engine peer, the op counter its
    /// ops end at.
    fn version(&self) -> BTreeMap<u64, u32>;
}

/// Bounds on what one received delta may carry, and on the deltas a
/// replica holds while their parents are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most events one call delta may carry.
    pub max_events: usize,
    /// Largest payload of one delta (see [`Dag::with_max_payload`]).
    pub max_payload: usize,
    /// Most deltas waiting for parents (see [`Dag::with_max_pending`]).
    pub max_pending: usize,
    /// Most bytes waiting for parents.
    pub max_pending_bytes: usize,
    /// Most deltas of one author waiting for parents.
    pub max_pending_per_author: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_events: 256,
            max_payload: crate::dag::DEFAULT_MAX_PAYLOAD,
            max_pending: crate::dag::DEFAULT_MAX_PENDING,
            max_pending_bytes: crate::dag::DEFAULT_MAX_PENDING_BYTES,
            max_pending_per_author: crate::dag::DEFAULT_MAX_PENDING_PER_AUTHOR,
        }
    }
}

/// What [`Replica::receive`] did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Applied deltas, in order, with their operations.
    pub applied: Vec<(DeltaId, SignedDelta, Op)>,
    /// Refused deltas and why.
    pub rejected: Vec<(DeltaId, Reject)>,
    /// How many went into the buffer to wait for parents.
    pub buffered: usize,
    /// Those of them still waiting at the end (the others' parents came
    /// later in the same call).
    pub waiting: Vec<DeltaId>,
    /// Epoch keys this node learned (to persist).
    pub keys: Vec<(DeltaId, ContextKey)>,
    /// Equivocations newly applied: (the delta first applied, the other).
    pub forks: Vec<(DeltaId, DeltaId)>,
    /// The state must be rebuilt in canonical order
    /// ([`Replica::rebuild`]) once the applied deltas are stored.
    pub rebuild: bool,
}

/// One context's replica protocol state.
#[derive(Debug)]
pub struct Replica {
    pub(crate) context: ContextId,
    pub(crate) dag: Dag,
    pub(crate) views: Views,
    /// The view of the current heads.
    pub(crate) current: u32,
    pub(crate) keys: BTreeMap<DeltaId, ContextKey>,
    /// Secrets that may open epoch keys sealed to them.
    pub(crate) openers: Vec<MemberSecret>,
    pub(crate) forked: BTreeSet<MemberKey>,
    pub(crate) limits: Limits,
}

impl Replica {
    /// An empty replica of the context `creator` made.
    pub fn new(context: ContextId, creator: MemberKey) -> Self {
        Self {
            context,
            dag: Dag::new(context),
            views: Views::new(Access::genesis(context, creator)),
            current: 0,
            keys: BTreeMap::new(),
            openers: Vec::new(),
            forked: BTreeSet::new(),
            limits: Limits::default(),
        }
    }

    /// Sets how many deltas may wait for parents (see [`Dag::with_max_pending`]).
    pub fn with_max_pending(mut self, n: usize) -> Self {
        self.dag = Dag::new(self.context).with_max_pending(n);
        self
    }

    /// Sets the receive limits. Call it on a new replica, before any delta.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self.dag = Dag::new(self.context)
            .with_max_pending(limits.max_pending)
            .with_max_pending_bytes(limits.max_pending_bytes)
            .with_max_pending_per_author(limits.max_pending_per_author)
            .with_max_payload(limits.max_payload);
        self
    }

    /// The context.
    pub fn context(&self) -> ContextId {
        self.context
    }

    /// The DAG.
    pub fn dag(&self) -> &Dag {
        &self.dag
    }

    /// Who may do what now (after every applied delta).
    pub fn access(&self) -> &Access {
        self.views.access(self.current)
    }

    /// The access view after an applied delta: who could do what in the
    /// causal past of a delta made on it alone.
    pub fn access_of(&self, id: &DeltaId) -> Option<&Access> {
        self.dag.notes(id).map(|n| self.views.access(n.view))
    }

    /// Adds the key of an epoch.
    pub fn add_key(&mut self, epoch: DeltaId, key: ContextKey) {
        self.keys.insert(epoch, key);
    }

    /// The key of an epoch, if held.
    pub fn key(&self, epoch: &DeltaId) -> Option<&ContextKey> {
        self.keys.get(epoch)
    }

    /// Every epoch key held.
    pub fn keys(&self) -> &BTreeMap<DeltaId, ContextKey> {
        &self.keys
    }

    /// The key deltas made now are sealed with.
    pub fn current_key(&self) -> Option<&ContextKey> {
        self.keys.get(&self.access().epoch())
    }

    /// Adds a secret that may open epoch keys sealed to its public key
    /// (this node's member key; while joining, the invitation's key).
    pub fn add_opener(&mut self, secret: MemberSecret) {
        if !self.openers.iter().any(|s| s.public() == secret.public()) {
            self.openers.push(secret);
        }
    }

    /// Authors that equivocated, as this node has seen.
    pub fn forked(&self) -> &BTreeSet<MemberKey> {
        &self.forked
    }

    /// The state engine op counter at which `author`'s newest applied delta
    /// ends (0 before its first).
    pub fn clock_of(&self, author: &MemberKey) -> u32 {
        let seq = self.dag.seq_of(author);
        self.dag
            .by_seq(author, seq)
            .and_then(|p| self.dag.notes(&p))
            .map_or(0, |n| n.clock)
    }

    /// The header fields of `author`'s next delta.
    pub fn draft(&self, author: &MemberKey, app: AppHash) -> Draft {
        let seq = self.dag.seq_of(author) + 1;
        let mut parents = self.dag.heads();
        let prev = self.dag.by_seq(author, seq - 1);
        if let Some(p) = prev
            && !parents.contains(&p)
        {
            parents.push(p);
        }
        let clock = prev.and_then(|p| self.dag.notes(&p)).map_or(0, |n| n.clock);
        Draft {
            context: self.context,
            seq,
            parents,
            app,
            epoch: self.access().epoch(),
            clock,
        }
    }

    /// Makes, checks and records a delta of `op` by `author`: the same
    /// checks a receiver runs, so a node never sends what others refuse.
    /// A call's update must be the author's own (see the module docs).
    pub fn author(
        &mut self,
        author: &MemberSecret,
        op: Op,
        app: AppHash,
        peer: u64,
    ) -> Result<(DeltaId, SignedDelta), Reject> {
        let app = op.upgrades_to().unwrap_or(app);
        let mut draft = self.draft(&author.public(), app);
        if let Some(update) = op.update() {
            draft.clock = own_update(update, peer, draft.clock, None)?;
        }
        if let Op::Call(p) = &op {
            // The receivers' limits, before signing: a delta they refuse
            // would cut this author off for good (its next deltas name it).
            if p.events.len() > self.limits.max_events {
                return Err(Reject::BadUpdate(format!(
                    "{} events; a delta may carry {}",
                    p.events.len(),
                    self.limits.max_events
                )));
            }
        }
        let key = self.current_key().ok_or(Reject::NoKey)?;
        let (id, d) = SignedDelta::create_with_id(author, key, draft, &op);
        if d.body.payload.len() > self.limits.max_payload {
            return Err(Reject::Invalid("a payload larger than a delta may carry"));
        }
        self.access().check(d.header(), &op)?;
        let height = self.dag.height_after(&d.header().parents);
        let mut keys = Vec::new();
        let notes = self.note(id, height, self.current, &d, &op, &mut keys);
        let ready = self.dag.record(id, d.header(), notes);
        debug_assert!(ready.is_empty(), "nothing waits for a delta made here");
        self.refresh_current();
        Ok((id, d))
    }

    /// Seals a fresh epoch key to everyone who should read from now on
    /// (see [`Access::rotation_readers`]), leaving out `except`.
    pub fn seal_new_epoch(&self, except: Option<&MemberKey>) -> SealedKeys {
        let readers = self.access().rotation_readers(except);
        SealedKeys::seal(&ContextKey::generate(), &self.context.0, &readers)
    }

    /// Evidence of an equivocation this replica applied, from `source`.
    pub fn evidence(
        &self,
        fork: &(DeltaId, DeltaId),
        source: &impl DeltaSource,
    ) -> Option<Evidence> {
        let a = source.delta(&fork.0)?;
        let b = source.delta(&fork.1)?;
        Some(Evidence {
            a: SignedHeader::of(&a),
            b: SignedHeader::of(&b),
        })
    }

    /// Receives deltas from a peer; see the module docs for the rules.
    pub fn receive(&mut self, deltas: Vec<SignedDelta>, engine: &mut impl Engine) -> Outcome {
        let mut out = Outcome::default();
        let checked = self.dag.check_signatures(&deltas);
        let forks_before = self.dag.forks().len();
        for (delta, (id, signed)) in deltas.into_iter().zip(checked) {
            let mut dag = std::mem::replace(&mut self.dag, Dag::new(self.context));
            let mut applied = Vec::new();
            let r = dag.receive_checked(id, signed, delta, |id, d, ready| {
                let (notes, op) = self.judge(id, d, ready, engine, &mut out.keys)?;
                applied.push((*id, d.clone(), op));
                Ok(notes)
            });
            self.dag = dag;
            if r.buffered {
                out.waiting.push(id);
            }
            out.buffered += usize::from(r.buffered);
            out.rejected.extend(r.rejected);
            out.applied.extend(applied);
        }
        out.waiting.retain(|id| !self.dag.contains(id));
        out.forks = self.dag.forks()[forks_before..].to_vec();
        for (a, _) in &out.forks {
            if let Some((author, _)) = self.dag.author_seq(a) {
                self.forked.insert(author);
            }
        }
        out.rebuild = out
            .applied
            .iter()
            .any(|(_, d, _)| self.forked.contains(&d.header().author));
        if !out.applied.is_empty() {
            self.refresh_current();
        }
        out
    }

    /// Judges one causally ready delta; on success imports its update and
    /// returns what to record with it.
    fn judge(
        &mut self,
        id: &DeltaId,
        d: &SignedDelta,
        ready: &Ready,
        engine: &mut impl Engine,
        keys: &mut Vec<(DeltaId, ContextKey)>,
    ) -> Result<(Notes, Op), Reject> {
        let h = d.header();
        let view = self.views.of(&ready.parents);
        let access = self.views.access(view);
        if h.epoch != access.epoch() {
            return Err(Reject::WrongEpoch);
        }
        let key = self.keys.get(&h.epoch).ok_or(Reject::NoKey)?;
        let op = d.open(key).map_err(|e| Reject::BadPayload(e.to_string()))?;
        access.check(h, &op)?;
        let prev = ready.prev.map_or(0, |n| n.clock);
        if let Op::Call(p) = &op
            && p.events.len() > self.limits.max_events
        {
            return Err(Reject::BadUpdate(format!(
                "{} events; at most {} per delta",
                p.events.len(),
                self.limits.max_events
            )));
        }
        if let Some(update) = op.update() {
            own_update(update, engine.peer_of(&h.author), prev, Some(h.clock))?;
            // An equivocator's branches reuse its op ids, so which of them
            // the state holds must not depend on arrival order: its deltas
            // enter the state only through the canonical rebuild.
            let forked = ready.sibling.is_some() || self.forked.contains(&h.author);
            // An admin's migration may rewrite every member's owned entries:
            // admins choose the code every node runs anyway.
            let owner = matches!(op, Op::Call(_)).then_some(&h.author);
            if !update.is_empty() && !forked {
                engine.import(update, owner)?;
            }
        } else if h.clock != prev {
            return Err(Reject::BadUpdate("only calls move the op counter".into()));
        }
        let notes = self.note(*id, ready.height, view, d, &op, keys);
        Ok((notes, op))
    }

    /// The notes of an accepted delta made on view `before`; a control
    /// delta also makes the view after it (and may bring an epoch key).
    pub(crate) fn note(
        &mut self,
        id: DeltaId,
        height: u64,
        before: u32,
        d: &SignedDelta,
        op: &Op,
        keys: &mut Vec<(DeltaId, ContextKey)>,
    ) -> Notes {
        let h = d.header();
        let clock = h.clock;
        if !h.kind.is_control() {
            return Notes {
                view: before,
                clock,
            };
        }
        if let Op::Remove { keys: sealed, .. } | Op::Rotate { keys: sealed } = op
            && let Some(key) = self
                .openers
                .iter()
                .find_map(|s| s.open_sealed(&self.context.0, sealed))
        {
            self.keys.insert(id, key.clone());
            keys.push((id, key));
        }
        Notes {
            view: self.views.after(before, id, height, h, op),
            clock,
        }
    }

    pub(crate) fn refresh_current(&mut self) {
        let heads: Vec<Notes> = self
            .dag
            .heads()
            .iter()
            .filter_map(|h| self.dag.notes(h))
            .collect();
        self.current = self.views.of(&heads);
    }

    /// Rebuilds the state from every applied call delta, reading them from
    /// `source`, in the one order every node agrees on: needed once an
    /// author's forks reuse its op ids (the first imported wins them).
    /// Honest authors' updates never collide, so their order is free; an
    /// equivocator's come after them by seq, the one holding more ops first
    /// (so every op id a descendant may depend on exists), then by id.
    pub fn rebuild(
        &self,
        engine: &mut impl Engine,
        source: &impl DeltaSource,
    ) -> Result<(), String> {
        let mut honest = Vec::new();
        let mut forked = Vec::new();
        for id in self.dag.log() {
            let d = source
                .delta(id)
                .ok_or_else(|| format!("delta {id} is not stored"))?;
            let h = d.header();
            if h.kind != crate::delta::OpKind::Call {
                continue;
            }
            let key = self
                .keys
                .get(&h.epoch)
                .ok_or_else(|| format!("no key for the epoch of {id}"))?;
            let update = match d.open(key) {
                Ok(Op::Call(p)) => p.update,
                Ok(Op::Migrate { update, .. }) => update,
                _ => continue,
            };
            if update.is_empty() {
                continue;
            }
            if self.forked.contains(&h.author) {
                let order = (h.author, h.seq, std::cmp::Reverse(h.clock), *id);
                forked.push((order, update));
            } else {
                honest.push(update);
            }
        }
        forked.sort_unstable_by_key(|(order, _)| *order);
        honest.extend(forked.into_iter().map(|(_, u)| u));
        engine.rebuild(&honest)
    }

    /// Re-records a stored log (deltas this node accepted before, in log
    /// order, after the ones this replica holds: none, or a checkpoint's)
    /// without judging it again, importing the call updates from position
    /// `from` of `log` on (the ones before are in the state the caller
    /// restored from a snapshot). With forks, the whole state is rebuilt in
    /// canonical order instead, reading deltas before `log` from `older`.
    pub fn restore(
        &mut self,
        log: &[SignedDelta],
        from: usize,
        engine: &mut impl Engine,
        older: &impl DeltaSource,
    ) -> Result<(), String> {
        let base = self.dag.len();
        let mut updates = Vec::new();
        let mut keys = Vec::new();
        for (pos, d) in log.iter().enumerate() {
            let id = d.id();
            let h = d.header();
            let parents: Vec<Notes> = h.parents.iter().filter_map(|p| self.dag.notes(p)).collect();
            let before = self.views.of(&parents);
            let height = self.dag.height_after(&h.parents);
            let op = match self.keys.get(&h.epoch).map(|k| d.open(k)) {
                Some(Ok(op)) => op,
                _ => return Err(format!("stored delta {id} does not open")),
            };
            if let Some(update) = op.update()
                && pos >= from
                && !update.is_empty()
            {
                // Stored deltas were judged when they arrived: no owned check.
                updates.push(update.to_vec());
            }
            let notes = self.note(id, height, before, d, &op, &mut keys);
            if self.dag.by_seq(&h.author, h.seq).is_some() {
                self.forked.insert(h.author);
            }
            self.dag.record(id, h, notes);
        }
        self.refresh_current();
        if !self.forked.is_empty() {
            let index: HashMap<DeltaId, usize> = self.dag.log()[base..]
                .iter()
                .enumerate()
                .map(|(i, id)| (*id, i))
                .collect();
            let source = |id: &DeltaId| {
                index
                    .get(id)
                    .map(|i| log[*i].clone())
                    .or_else(|| older.delta(id))
            };
            return self.rebuild(engine, &source);
        }
        for u in &updates {
            engine.import(u, None).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Checks that `update` holds only ops of `peer`, from counter `from` on,
/// and up to `to` if given; returns where it ends.
fn own_update(update: &[u8], peer: u64, from: u32, to: Option<u32>) -> Result<u32, Reject> {
    if update.is_empty() {
        return match to {
            Some(t) if t != from => Err(Reject::BadUpdate(
                "an empty update does not move the op counter".into(),
            )),
            _ => Ok(from),
        };
    }
    let span = update_span(update).map_err(|e| Reject::BadUpdate(e.to_string()))?;
    match span.as_slice() {
        [(p, start, end)] if *p == peer && *start == from && *end > from => match to {
            Some(t) if t != *end => Err(Reject::BadUpdate(format!(
                "the update ends at op {end}, the header says {t}"
            ))),
            _ => Ok(*end),
        },
        _ => Err(Reject::BadUpdate(format!(
            "the update must hold only the author's ops from its counter {from} on; it holds {span:?}"
        ))),
    }
}

impl Engine for mero_engine::ContextState {
    fn peer_of(&self, author: &MemberKey) -> u64 {
        mero_engine::ContextState::peer_id_for(&author.0)
    }

    fn import(&mut self, update: &[u8], owner: Option<&MemberKey>) -> Result<(), Reject> {
        let imported = match owner {
            Some(author) => self.import_call(update, &author.0),
            None => mero_engine::ContextState::import(self, update),
        };
        match imported {
            Ok(_) => Ok(()),
            Err(mero_engine::EngineError::NotOwner(why)) => Err(Reject::NotOwner(why)),
            Err(e) => Err(Reject::Apply(e.to_string())),
        }
    }

    fn rebuild(&mut self, updates: &[Vec<u8>]) -> Result<(), String> {
        mero_engine::ContextState::rebuild(self, updates.iter().map(Vec::as_slice));
        Ok(())
    }

    fn load(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let loaded = mero_engine::ContextState::from_snapshot(snapshot, self.peer())
            .map_err(|e| e.to_string())?;
        if loaded.is_shallow() {
            return Err("a shallow snapshot (history left out)".into());
        }
        *self = loaded;
        Ok(())
    }

    fn version(&self) -> BTreeMap<u64, u32> {
        mero_engine::ContextState::version(self)
            .iter()
            .map(|(p, c)| (*p, u32::try_from(*c).unwrap_or(0)))
            .collect()
    }
}
