//! Light contexts: a replica that stays idle is set aside ("cold") and
//! only a [`Cold`] record stays in memory, a few KiB: the context's
//! metadata, its member key, the gossip topic it follows and a
//! [`Summary`] — heads digest, the [`Gate`] of its access, the current
//! epoch. That answers what most traffic asks of an idle context: a peer's
//! digest (in sync or not; admitted or not), its listing and status, the
//! topic to follow. Anything else (a call, a page, gossip with deltas)
//! loads the replica back, exactly as a restart would: from the latest
//! snapshot plus the log after it.
//!
//! The summary is also stored (column family `cold`) when a replica goes
//! cold, tagged with the log length it describes; at start-up a context
//! whose stored summary matches its metadata starts cold, so a restart
//! reads no delta log. A stale or missing summary just means the context
//! is loaded at start, as before.
//!
//! This module must not make a replica cold while anything is under way
//! in it (queued calls, a cross-context reservation, deltas waiting for
//! parents, a join), and must never wait for a context's lock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mero_sync::gate::{Gate, Proof, Refusal, Topic, admit_gate};
use mero_sync::replica::Limits;
use mero_sync::{ContextKey, MemberSecret};
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};

use crate::context::ContextRuntime;
use crate::error::NodeError;
use crate::ids::{AppHash, ContextId, DeltaId};
use crate::node::{ContextInfo, Node, context_info, now_ms};
use crate::peer_sync::PeerBook;
use crate::slot::Resident;
use crate::store::{ContextMeta, Store};
use crate::sync::SyncStatus;

/// What a cold context answers from, stored when it goes cold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// The log length this describes (every applied delta is logged, so
    /// also the DAG's length): a summary whose length is not the
    /// metadata's is stale.
    log_len: u64,
    /// This node's member's delta count.
    seq: u64,
    /// Active members (as a loaded context lists them: flagged ones too).
    members: u64,
    /// The heads digest.
    digest: [u8; 32],
    /// The current key epoch (its key, in the secrets, names the topic).
    epoch: DeltaId,
    /// Who the access admits.
    gate: Gate,
    /// The app the access chose.
    app: Option<AppHash>,
    /// Equivocations applied.
    forks: u64,
}

impl Summary {
    fn of(rt: &ContextRuntime) -> Self {
        let access = rt.replica.access();
        Self {
            log_len: rt.meta.log_len,
            seq: rt.dag().seq_of(&rt.meta.member),
            members: access.members().filter(|(_, m)| m.active()).count() as u64,
            digest: rt.dag().digest(),
            epoch: access.epoch(),
            gate: Gate::of(access),
            app: access.app(),
            forks: rt.dag().forks().len() as u64,
        }
    }
}

/// A context whose replica is not loaded.
pub(crate) struct Cold {
    pub meta: ContextMeta,
    secret: MemberSecret,
    summary: Summary,
    topic: Option<Topic>,
    /// Status kept across the replica's absence.
    peers: PeerBook,
    rejected: BTreeMap<&'static str, u64>,
    heads_changed_ms: u64,
}

impl Cold {
    /// Whether `proof` admits a request from `peer` (as the loaded
    /// replica's access would: [`admit_gate`]).
    pub fn admit(&self, ctx: &ContextId, proof: &Proof, peer: &[u8]) -> Result<(), Refusal> {
        admit_gate(&self.summary.gate, ctx, proof, peer, now_ms())
    }

    /// The heads digest.
    pub fn digest(&self) -> [u8; 32] {
        self.summary.digest
    }

    /// This node's proof for requests from transport id `peer` (a cold
    /// context is never joining: its member key).
    pub fn proof(&self, ctx: &ContextId, peer: &[u8]) -> Proof {
        Proof::member(&self.secret, ctx, peer)
    }

    /// Where the context stands against each peer.
    pub fn peers_mut(&mut self) -> &mut PeerBook {
        &mut self.peers
    }
}

/// Where cold replicas load from, and how often they did.
pub(crate) struct Residency {
    db: Arc<Store>,
    limits: Limits,
    loads: Counter,
    evictions: Counter,
}

impl Residency {
    /// Loads from `db` with `limits`, counting in `loads` and `evictions`.
    pub fn new(db: Arc<Store>, limits: Limits, (loads, evictions): (Counter, Counter)) -> Self {
        Self {
            db,
            limits,
            loads,
            evictions,
        }
    }

    /// Loads `cold`'s replica from the store (as a restart does), moving
    /// its status over.
    pub fn load(&self, id: ContextId, cold: &mut Cold) -> Result<ContextRuntime, NodeError> {
        let mut rt = ContextRuntime::restore(&self.db, id, cold.meta.clone(), self.limits)?;
        rt.peers = std::mem::take(&mut cold.peers);
        rt.rejected = std::mem::take(&mut cold.rejected);
        rt.heads_changed_ms = cold.heads_changed_ms;
        rt.announced = cold.topic.clone();
        self.loads.inc();
        tracing::debug!(context = %id, "loaded a cold context");
        Ok(rt)
    }

    /// The cold record of `rt`, once its summary is stored (with a
    /// snapshot of its state at the end of its log, so loading it again
    /// replays no call); `None` if something is under way in it or the
    /// store refused the write.
    pub fn evict(&self, rt: &mut ContextRuntime) -> Option<Cold> {
        if rt.meta.joining.is_some() || rt.failure().is_some() || rt.dag().pending_len() > 0 {
            return None;
        }
        let summary = Summary::of(rt);
        let mut batch = self.db.batch();
        batch.put_cold_summary(&self.db, &rt.id, &postcard::to_allocvec(&summary).ok()?);
        let mut meta = rt.meta.clone();
        if meta.snapshot_pos < meta.log_len {
            let snapshot = rt.state.snapshot().ok()?;
            // The next load reads this and no log at all.
            let checkpoint = rt.replica.checkpoint();
            batch.put_restore_point(&self.db, &rt.id, meta.log_len, &snapshot, &checkpoint);
            meta.snapshot_pos = meta.log_len;
            batch.put_context(&self.db, &rt.id, &meta);
        }
        if let Err(e) = self.db.write(batch) {
            tracing::warn!(context = %rt.id, "could not store a cold summary; keeping it loaded: {e}");
            return None;
        }
        rt.meta = meta;
        self.evictions.inc();
        Some(Cold {
            meta: rt.meta.clone(),
            secret: rt.secret.clone(),
            topic: rt.topic(),
            summary,
            peers: std::mem::take(&mut rt.peers),
            rejected: std::mem::take(&mut rt.rejected),
            heads_changed_ms: rt.heads_changed_ms,
        })
    }

    /// At start-up: the cold record of a context whose stored summary
    /// describes its current log; `None` if it must be loaded.
    pub fn at_start(&self, id: ContextId, meta: &ContextMeta) -> Option<Cold> {
        if meta.joining.is_some() {
            return None;
        }
        let bytes = self.db.cold_summary(&id).ok()??;
        let summary: Summary = postcard::from_bytes(&bytes).ok()?;
        if summary.log_len != meta.log_len {
            return None;
        }
        let secrets = self.db.secrets(&id).ok()?;
        let topic = secrets
            .keys
            .iter()
            .find(|(epoch, _)| *epoch == summary.epoch)
            .map(|(_, key)| Topic::of(&id, &ContextKey(*key)));
        Some(Cold {
            meta: meta.clone(),
            secret: MemberSecret::from_bytes(&secrets.member),
            summary,
            topic,
            peers: PeerBook::default(),
            rejected: BTreeMap::new(),
            heads_changed_ms: 0,
        })
    }
}

impl Resident {
    /// The context's metadata.
    pub fn meta(&self) -> &ContextMeta {
        match self {
            Resident::Loaded(rt) => &rt.meta,
            Resident::Cold(c) => &c.meta,
        }
    }

    /// The app the context's access chose (it may still be missing here).
    pub fn chosen_app(&self) -> Option<AppHash> {
        match self {
            Resident::Loaded(rt) => rt.replica.access().app(),
            Resident::Cold(c) => c.summary.app,
        }
    }

    /// Whether the replica is in memory.
    pub fn is_loaded(&self) -> bool {
        matches!(self, Resident::Loaded(_))
    }

    /// What `/admin/contexts` shows of context `id` (quarantine aside).
    pub fn info(&self, id: ContextId) -> ContextInfo {
        match self {
            Resident::Loaded(rt) => context_info(rt),
            Resident::Cold(c) => ContextInfo {
                id,
                app: c.meta.app,
                member: c.meta.member,
                seq: c.summary.seq,
                deltas: c.summary.log_len,
                heads: c.meta.heads.clone(),
                members: c.summary.members as usize,
                joining: false,
                pending_app: c.summary.app.filter(|a| *a != c.meta.app),
                quarantined: None,
            },
        }
    }

    /// The gossip topic to follow; a loaded replica also notes that the
    /// network was told.
    pub fn follow(&mut self) -> Option<Topic> {
        match self {
            Resident::Loaded(rt) => {
                let topic = rt.topic();
                rt.announced = topic.clone();
                topic
            }
            Resident::Cold(c) => c.topic.clone(),
        }
    }

    /// Where the replica stands against each peer.
    pub fn peers(&self) -> &PeerBook {
        match self {
            Resident::Loaded(rt) => &rt.peers,
            Resident::Cold(c) => &c.peers,
        }
    }

    /// Deltas waiting for missing parents (none in a cold replica).
    pub fn pending_len(&self) -> usize {
        match self {
            Resident::Loaded(rt) => rt.dag().pending_len(),
            Resident::Cold(_) => 0,
        }
    }

    /// `/admin/contexts/{id}/sync`.
    pub fn sync_status(&self, ctx: ContextId) -> SyncStatus {
        match self {
            Resident::Loaded(rt) => SyncStatus {
                context: ctx,
                deltas: rt.dag().len() as u64,
                heads: rt.dag().heads(),
                digest: hex::encode(rt.dag().digest()),
                vector: rt.dag().vector(),
                pending: rt.dag().pending_len(),
                rejected: rt.rejected.clone(),
                joining: rt.meta.joining.is_some(),
                forks: rt.dag().forks().len(),
                heads_changed_ms: rt.heads_changed_ms,
                peers: rt.peers.snapshot(),
            },
            Resident::Cold(c) => SyncStatus {
                context: ctx,
                deltas: c.summary.log_len,
                heads: c.meta.heads.clone(),
                digest: hex::encode(c.summary.digest),
                vector: c.meta.vector.clone(),
                pending: 0,
                rejected: c.rejected.clone(),
                joining: false,
                forks: c.summary.forks as usize,
                heads_changed_ms: c.heads_changed_ms,
                peers: c.peers.snapshot(),
            },
        }
    }
}

impl Node {
    /// Makes every replica that has not been used for `idle` cold, unless
    /// something is under way in it; returns how many it made cold. Never
    /// waits for a context's lock. The node runs it every second with
    /// `store.idle_evict_secs` (see [`crate::config::StoreConfig`]).
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let before = now_ms().saturating_sub(idle.as_millis() as u64);
        let evicted = self
            .runtimes()
            .iter()
            .filter(|slot| slot.evict_if_idle(before))
            .count();
        if evicted > 0 {
            trim_heap();
        }
        evicted
    }

    /// Starts the thread that makes idle replicas cold, if the config asks
    /// for it; it ends with the node.
    pub(crate) fn start_evictor(self: &Arc<Self>) {
        let secs = self.config().store.idle_evict_secs;
        if secs == 0 {
            return;
        }
        let node = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("mero-evict".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    let Some(node) = node.upgrade() else { return };
                    node.evict_idle(Duration::from_secs(secs));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("idle contexts will stay loaded: cannot start the eviction thread: {e}");
        }
    }

    /// Whether `ctx`'s replica is cold (not in memory).
    pub fn is_cold(&self, ctx: &ContextId) -> bool {
        self.context(ctx)
            .is_ok_and(|slot| !slot.inspect().is_loaded())
    }

    /// How many replicas are in memory.
    pub fn resident(&self) -> usize {
        self.runtimes()
            .iter()
            .filter(|s| s.inspect().is_loaded())
            .count()
    }
}

/// Returns freed memory to the OS: replicas free many small allocations,
/// which glibc's allocator otherwise keeps mapped, so the process would
/// never look lighter.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it has no
    // preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
