//! RocksDB storage: one column family per kind of record.
//!
//! Everything one call changes (delta, context head, private storage, an
//! occasional snapshot) goes into one [`WriteBatch`], so a crash leaves either
//! all of it or none. State itself is never stored directly: it is rebuilt
//! from the latest snapshot plus the deltas after it.

use std::path::Path;

use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch};
use serde::{Deserialize, Serialize};

use mero_sync::SignedDelta;
use mero_sync::dag::SeqVector;

use crate::error::NodeError;
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey};

const CF_APPS: &str = "apps";
const CF_MODULES: &str = "modules";
const CF_CONTEXTS: &str = "contexts";
const CF_DELTAS: &str = "deltas";
const CF_SNAPSHOTS: &str = "snapshots";
const CF_PRIVATE: &str = "private";
const CF_SECRETS: &str = "secrets";
const CF_EVENTS: &str = "events";
const CF_REVOKED: &str = "revoked";
/// Context id → what answers for it while its replica is not loaded
/// ([`crate::cold::Summary`], postcard).
const CF_COLD: &str = "cold";
/// Context id → the replica's [`mero_sync::checkpoint::Checkpoint`] at
/// some log length ([`StoredCheckpoint`], postcard): a load reads it and
/// the log after it, not the whole log.
const CF_CHECKPOINTS: &str = "checkpoints";
/// Apps this node's operator installed (not fetched from peers): the ones
/// whose contexts may call other contexts.
const CF_TRUSTED: &str = "trusted_apps";
/// What a start may have to replay after a crash, at most (about).
const MAX_WAL_BYTES: u64 = 64 << 20;
/// Memtables of all column families together.
const MEMTABLE_BYTES: usize = 64 << 20;
/// The block cache all column families share.
const BLOCK_CACHE_BYTES: usize = 8 << 20;

const ALL_CFS: [&str; 12] = [
    CF_TRUSTED,
    CF_APPS,
    CF_MODULES,
    CF_CONTEXTS,
    CF_DELTAS,
    CF_SNAPSHOTS,
    CF_PRIVATE,
    CF_SECRETS,
    CF_EVENTS,
    CF_REVOKED,
    CF_COLD,
    CF_CHECKPOINTS,
];

/// A checkpoint as stored: the log length it covers. After a snapshot
/// join, the log below `base` holds only the control deltas.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    /// Log length covered.
    pub base: u64,
    /// The DAG and views at `base`.
    pub checkpoint: mero_sync::checkpoint::Checkpoint,
}

/// The key, in the checkpoints family, of the manifest of the snapshot a
/// context joined with: kept as evidence (a sender that lied is named by
/// its signature).
fn received_key(ctx: &ContextId) -> Vec<u8> {
    checkpoint_key(ctx, b"/received")
}

/// The key, in the checkpoints family, of how far the history below a
/// snapshot join's checkpoint was fetched (`snapshots::backfill`).
fn backfill_key(ctx: &ContextId) -> Vec<u8> {
    checkpoint_key(ctx, b"/backfill")
}

fn checkpoint_key(ctx: &ContextId, suffix: &[u8]) -> Vec<u8> {
    let mut k = ctx.0.to_vec();
    k.extend_from_slice(suffix);
    k
}

/// What the node keeps about a context besides its deltas. Written in the
/// same batch as every delta it reflects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextMeta {
    /// The app version it runs here. It follows the app the context's
    /// upgrades chose once this node has that app and verified its hash;
    /// until then the previous one keeps serving.
    pub app: AppHash,
    /// This node's member key in the context.
    pub member: MemberKey,
    /// The context's creator and salt (the id is derived from them).
    pub creator: MemberKey,
    /// See [`mero_sync::access::context_id`].
    pub salt: [u8; 32],
    /// When this node created or joined it, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Deltas in the local log.
    pub log_len: u64,
    /// Current DAG heads.
    pub heads: Vec<DeltaId>,
    /// Applied deltas per author.
    pub vector: SeqVector,
    /// Log length covered by the latest snapshot (0: none).
    pub snapshot_pos: u64,
    /// While joining: the invitation this node joins with. The join delta
    /// is written once the invitation's heads are applied.
    pub joining: Option<Joining>,
}

/// What a joining node knows of its invitation (its secret is in
/// [`ContextSecrets::invite`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joining {
    /// The invitation's delta.
    pub invite: DeltaId,
    /// The inviter's heads: the join comes after them.
    pub heads: Vec<DeltaId>,
    /// The invitation's expiry, ms since the Unix epoch.
    pub expires_at_ms: u64,
}

impl ContextMeta {
    /// Metadata of a context this node has just created or started joining:
    /// no deltas yet, the creator as the only member.
    pub fn empty(
        app: AppHash,
        member: MemberKey,
        creator: MemberKey,
        salt: [u8; 32],
        created_at_ms: u64,
        joining: Option<Joining>,
    ) -> Self {
        Self {
            app,
            member,
            creator,
            salt,
            created_at_ms,
            log_len: 0,
            heads: Vec::new(),
            vector: SeqVector::new(),
            snapshot_pos: 0,
            joining,
        }
    }
}

/// A context's secrets: this node's member key, the keys of the epochs it
/// can read, and while joining the invitation's secret key.
#[derive(Clone, Serialize, Deserialize)]
pub struct ContextSecrets {
    /// Secret half of [`ContextMeta::member`].
    pub member: [u8; 32],
    /// Epoch id → the symmetric key that seals that epoch's payloads.
    pub keys: Vec<(DeltaId, [u8; 32])>,
    /// The invitation's secret key this node joined with, if any: epoch
    /// keys sealed to the invitation open with it.
    pub invite: Option<[u8; 32]>,
}

/// A record of a column family keyed by a 32-byte id.
type IdRecord = ([u8; 32], Vec<u8>);

/// The node's database.
pub struct Store {
    db: DB,
}

/// Key of a record at a position of a context's sequence (deltas, events).
fn delta_key(ctx: &ContextId, pos: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&ctx.0);
    k[32..].copy_from_slice(&pos.to_be_bytes());
    k
}

fn scoped_key(ctx: &ContextId, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + key.len());
    k.extend_from_slice(&ctx.0);
    k.extend_from_slice(key);
    k
}

/// Creates `path` (and its parents) and makes it readable by its owner only.
fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Corrupt(format!("{what}: {e}"))
}

impl Store {
    /// Makes the store safe to drop at process exit, whoever still holds
    /// it: syncs the write-ahead log and stops RocksDB's background work
    /// (left to exit-time destructors, it is torn down under its own
    /// threads). Writes after this may fail.
    ///
    /// It also flushes every memtable, so the next start has no log to
    /// replay (hundreds of MB after a busy run: seconds of start-up).
    pub fn close(&self) {
        if let Err(e) = self.db.flush_wal(true) {
            tracing::warn!("syncing the write-ahead log at shutdown: {e}");
        }
        let cfs: Vec<_> = ALL_CFS.iter().map(|n| self.cf(n)).collect();
        if let Err(e) = self
            .db
            .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())
        {
            tracing::warn!("flushing the store at shutdown (the next start replays its log): {e}");
        }
        self.db.cancel_all_background_work(true);
    }

    /// Opens (creating if needed) the database at `path`. The directory
    /// holds member and epoch keys: it is made (or tightened to) 0700.
    pub fn open(path: &Path) -> Result<Self, NodeError> {
        private_dir(path).map_err(|e| {
            NodeError::Corrupt(format!("cannot make {} private: {e}", path.display()))
        })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Column families written rarely (metadata, secrets) would keep
        // old log files alive, and a start replays all of them: past this
        // size RocksDB flushes the families that hold the oldest log.
        opts.set_max_total_wal_size(MAX_WAL_BYTES);
        // One memory budget for the whole store, however many contexts it
        // holds: memtables of every family together, and one block cache
        // (index blocks included) instead of RocksDB's 32 MiB per family.
        opts.set_db_write_buffer_size(MEMTABLE_BYTES);
        let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        let mut family = Options::default();
        family.set_block_based_table_factory(&table);
        let cfs = ALL_CFS
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(*n, family.clone()));
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        Ok(Self { db })
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family is created at open")
    }

    /// Applies a batch atomically.
    pub fn write(&self, batch: Batch) -> Result<(), NodeError> {
        Ok(self.db.write(batch.0)?)
    }

    /// Starts a batch.
    pub fn batch(&self) -> Batch {
        Batch(WriteBatch::default())
    }

    /// Stores an app's module bytes.
    pub fn put_app(&self, hash: &AppHash, wasm: &[u8]) -> Result<(), NodeError> {
        Ok(self.db.put_cf(self.cf(CF_APPS), hash.0, wasm)?)
    }

    /// Every record of a column family keyed by a 32-byte id.
    fn by_id(&self, cf: &str) -> Result<Vec<IdRecord>, NodeError> {
        self.db
            .iterator_cf(self.cf(cf), IteratorMode::Start)
            .map(|r| {
                let (k, v) = r?;
                let id =
                    <[u8; 32]>::try_from(&k[..]).map_err(|_| corrupt(cf, "key is not 32 bytes"))?;
                Ok((id, v.into_vec()))
            })
            .collect()
    }

    /// Every installed app.
    pub fn apps(&self) -> Result<Vec<(AppHash, Vec<u8>)>, NodeError> {
        Ok(self
            .by_id(CF_APPS)?
            .into_iter()
            .map(|(k, v)| (AppHash(k), v))
            .collect())
    }

    /// A precompiled module, by cache key.
    pub fn module(&self, key: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.db.get_cf(self.cf(CF_MODULES), key)?)
    }

    /// Caches a precompiled module.
    pub fn put_module(&self, key: &[u8], bytes: &[u8]) -> Result<(), NodeError> {
        Ok(self.db.put_cf(self.cf(CF_MODULES), key, bytes)?)
    }

    /// Every context with its metadata.
    pub fn contexts(&self) -> Result<Vec<(ContextId, ContextMeta)>, NodeError> {
        self.by_id(CF_CONTEXTS)?
            .into_iter()
            .map(|(k, v)| {
                let meta = postcard::from_bytes(&v).map_err(|e| corrupt("context meta", e))?;
                Ok((ContextId(k), meta))
            })
            .collect()
    }

    /// One context's metadata.
    pub fn context(&self, ctx: &ContextId) -> Result<Option<ContextMeta>, NodeError> {
        match self.db.get_cf(self.cf(CF_CONTEXTS), ctx.0)? {
            None => Ok(None),
            Some(v) => Ok(Some(
                postcard::from_bytes(&v).map_err(|e| corrupt("context meta", e))?,
            )),
        }
    }

    /// An app's module bytes.
    pub fn app(&self, hash: &AppHash) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.db.get_cf(self.cf(CF_APPS), hash.0)?)
    }

    /// A context's secrets.
    pub fn secrets(&self, ctx: &ContextId) -> Result<ContextSecrets, NodeError> {
        let v = self
            .db
            .get_cf(self.cf(CF_SECRETS), ctx.0)?
            .ok_or_else(|| corrupt("secrets", format!("none stored for context {ctx}")))?;
        postcard::from_bytes(&v).map_err(|e| corrupt("secrets", e))
    }

    /// The summary a context's replica left when it was last made cold
    /// (raw bytes; [`crate::cold`] decodes them).
    pub fn cold_summary(&self, ctx: &ContextId) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.db.get_cf(self.cf(CF_COLD), ctx.0)?)
    }

    /// The delta at log position `pos` of a context.
    pub fn delta(&self, ctx: &ContextId, pos: u64) -> Result<Option<SignedDelta>, NodeError> {
        match self.db.get_cf(self.cf(CF_DELTAS), delta_key(ctx, pos))? {
            None => Ok(None),
            Some(v) => Ok(Some(
                SignedDelta::from_bytes(&v).map_err(|e| corrupt("delta", e))?,
            )),
        }
    }

    /// The latest snapshot of a context: (log length covered, bytes).
    pub fn snapshot(&self, ctx: &ContextId) -> Result<Option<(u64, Vec<u8>)>, NodeError> {
        match self.db.get_cf(self.cf(CF_SNAPSHOTS), ctx.0)? {
            None => Ok(None),
            Some(v) if v.len() >= 8 => {
                let seq = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                Ok(Some((seq, v[8..].to_vec())))
            }
            Some(_) => Err(corrupt("snapshot", "too short")),
        }
    }

    /// A context's stored checkpoint, if it has one.
    pub fn checkpoint(&self, ctx: &ContextId) -> Result<Option<StoredCheckpoint>, NodeError> {
        match self.db.get_cf(self.cf(CF_CHECKPOINTS), ctx.0)? {
            None => Ok(None),
            Some(v) => Ok(Some(
                postcard::from_bytes(&v).map_err(|e| corrupt("checkpoint", e))?,
            )),
        }
    }

    /// The manifest of the snapshot a context joined with, if it did.
    pub fn received(
        &self,
        ctx: &ContextId,
    ) -> Result<Option<mero_sync::snapshot::Manifest>, NodeError> {
        match self.db.get_cf(self.cf(CF_CHECKPOINTS), received_key(ctx))? {
            None => Ok(None),
            Some(v) => Ok(Some(
                postcard::from_bytes(&v).map_err(|e| corrupt("manifest", e))?,
            )),
        }
    }

    /// Log positions below which the history under a snapshot join's
    /// checkpoint is stored (0: none fetched yet, or no snapshot join).
    pub fn backfilled(&self, ctx: &ContextId) -> Result<u64, NodeError> {
        match self.db.get_cf(self.cf(CF_CHECKPOINTS), backfill_key(ctx))? {
            Some(v) if v.len() == 8 => Ok(u64::from_be_bytes(v[..].try_into().expect("8 bytes"))),
            Some(_) => Err(corrupt("backfill position", "not 8 bytes")),
            None => Ok(0),
        }
    }

    /// Records [`backfilled`](Self::backfilled).
    pub fn write_backfilled(&self, ctx: &ContextId, pos: u64) -> Result<(), NodeError> {
        let mut b = self.batch();
        b.put_backfilled(self, ctx, pos);
        self.write(b)
    }

    /// A context's log from position `from` on, in order.
    pub fn log_from(&self, ctx: &ContextId, from: u64) -> Result<Vec<SignedDelta>, NodeError> {
        let start = delta_key(ctx, from);
        let mut out = Vec::new();
        for r in self.db.iterator_cf(
            self.cf(CF_DELTAS),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (k, v) = r?;
            if !k.starts_with(&ctx.0) {
                break;
            }
            out.push(SignedDelta::from_bytes(&v).map_err(|e| corrupt("delta", e))?);
        }
        Ok(out)
    }

    /// Up to `limit` items of a context's event log with ids above `after`,
    /// in order: (id, JSON).
    pub fn events_after(
        &self,
        ctx: &ContextId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, NodeError> {
        let start = delta_key(ctx, after.saturating_add(1));
        let mut out = Vec::new();
        for r in self.db.iterator_cf(
            self.cf(CF_EVENTS),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (k, v) = r?;
            if !k.starts_with(&ctx.0) || out.len() >= limit {
                break;
            }
            let id = u64::from_be_bytes(
                k[32..]
                    .try_into()
                    .map_err(|_| corrupt("event", "bad key"))?,
            );
            out.push((id, v.into_vec()));
        }
        Ok(out)
    }

    /// The id of the newest item in a context's event log (0: none).
    pub fn last_event_id(&self, ctx: &ContextId) -> Result<u64, NodeError> {
        let end = delta_key(ctx, u64::MAX);
        if let Some(r) = self
            .db
            .iterator_cf(
                self.cf(CF_EVENTS),
                IteratorMode::From(&end, Direction::Reverse),
            )
            .next()
        {
            let (k, _) = r?;
            if k.starts_with(&ctx.0) && k.len() == 40 {
                return Ok(u64::from_be_bytes(k[32..].try_into().expect("8 bytes")));
            }
        }
        Ok(0)
    }

    /// Every revoked client-token id, with the expiry (Unix seconds) after
    /// which the entry no longer matters.
    pub fn revoked(&self) -> Result<Vec<(String, u64)>, NodeError> {
        self.db
            .iterator_cf(self.cf(CF_REVOKED), IteratorMode::Start)
            .map(|r| {
                let (k, v) = r?;
                let id = String::from_utf8(k.into_vec()).map_err(|e| corrupt("revoked", e))?;
                let exp = v
                    .get(..8)
                    .map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8 bytes")));
                Ok((id, exp))
            })
            .collect()
    }

    /// Records a revoked client-token id.
    pub fn put_revoked(&self, id: &str, exp: u64) -> Result<(), NodeError> {
        Ok(self
            .db
            .put_cf(self.cf(CF_REVOKED), id.as_bytes(), exp.to_be_bytes())?)
    }

    /// Forgets revocations of tokens that have expired anyway.
    pub fn forget_revoked(&self, ids: &[String]) -> Result<(), NodeError> {
        let mut b = WriteBatch::default();
        for id in ids {
            b.delete_cf(self.cf(CF_REVOKED), id.as_bytes());
        }
        Ok(self.db.write(b)?)
    }

    /// Removes an installed app's module bytes.
    pub fn delete_app(&self, hash: &AppHash) -> Result<(), NodeError> {
        self.db.delete_cf(self.cf(CF_TRUSTED), hash.0)?;
        Ok(self.db.delete_cf(self.cf(CF_APPS), hash.0)?)
    }

    /// Records that this node's operator installed app `hash`.
    pub fn put_trusted(&self, hash: &AppHash) -> Result<(), NodeError> {
        Ok(self.db.put_cf(self.cf(CF_TRUSTED), hash.0, [])?)
    }

    /// The apps this node's operator installed.
    pub fn trusted(&self) -> Result<Vec<AppHash>, NodeError> {
        Ok(self
            .by_id(CF_TRUSTED)?
            .into_iter()
            .map(|(k, _)| AppHash(k))
            .collect())
    }

    /// Reads a context's node-private key.
    pub fn private_get(&self, ctx: &ContextId, key: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.db.get_cf(self.cf(CF_PRIVATE), scoped_key(ctx, key))?)
    }
}

/// An atomic group of writes.
pub struct Batch(WriteBatch);

impl Batch {
    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds everything `other` staged after what this batch holds, so one
    /// write commits both (a cross-context call commits its callees in its
    /// caller's write). RocksDB's batch format is a 12-byte header (a
    /// sequence number, then the record count, little-endian) followed by
    /// the records: appending is concatenating the records and adding the
    /// counts, as RocksDB's own `WriteBatchInternal::Append` does.
    pub fn append(&mut self, other: Batch) {
        const HEADER: usize = 12;
        if other.is_empty() {
            return;
        }
        let (mine, theirs) = (self.0.data(), other.0.data());
        let mut rep = Vec::with_capacity(mine.len() + theirs.len() - HEADER);
        rep.extend_from_slice(mine);
        rep.extend_from_slice(&theirs[HEADER..]);
        let count =
            u32::try_from(self.0.len() + other.0.len()).expect("a batch of under 2^32 writes");
        rep[8..HEADER].copy_from_slice(&count.to_le_bytes());
        self.0 = WriteBatch::from_data(&rep);
    }

    /// Records a context's metadata.
    /// Stores a context's cold summary ([`Store::cold_summary`]).
    pub fn put_cold_summary(&mut self, store: &Store, ctx: &ContextId, bytes: &[u8]) {
        self.0.put_cf(store.cf(CF_COLD), ctx.0, bytes);
    }

    /// Stores a context's metadata.
    pub fn put_context(&mut self, store: &Store, ctx: &ContextId, meta: &ContextMeta) {
        let v = postcard::to_allocvec(meta).expect("metadata serializes");
        self.0.put_cf(store.cf(CF_CONTEXTS), ctx.0, v);
    }

    /// Records a context's secrets.
    pub fn put_secrets(&mut self, store: &Store, ctx: &ContextId, secrets: &ContextSecrets) {
        let v = postcard::to_allocvec(secrets).expect("secrets serialize");
        self.0.put_cf(store.cf(CF_SECRETS), ctx.0, v);
    }

    /// Stores a delta at log position `pos` of its context.
    pub fn put_delta(&mut self, store: &Store, pos: u64, delta: &SignedDelta) {
        self.0.put_cf(
            store.cf(CF_DELTAS),
            delta_key(&delta.body.header.context, pos),
            delta.to_bytes(),
        );
    }

    /// Forgets a context: metadata, secrets, log, snapshot, private data.
    pub fn delete_context(&mut self, store: &Store, ctx: &ContextId) {
        let mut end = ctx.0;
        // The next 32-byte prefix bounds the range (ids are hashes: never all 0xff).
        for b in end.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        for cf in [CF_DELTAS, CF_PRIVATE, CF_EVENTS, CF_CHECKPOINTS] {
            self.0.delete_range_cf(store.cf(cf), ctx.0, end);
        }
        for cf in [CF_CONTEXTS, CF_SECRETS, CF_SNAPSHOTS, CF_COLD] {
            self.0.delete_cf(store.cf(cf), ctx.0);
        }
    }

    /// Appends an item to its context's event log.
    pub fn put_event(&mut self, store: &Store, item: &crate::events::StreamItem) {
        self.0.put_cf(
            store.cf(CF_EVENTS),
            delta_key(&item.context, item.id),
            item.json.as_bytes(),
        );
    }

    /// Drops a context's event-log items with ids below `below`.
    pub fn prune_events(&mut self, store: &Store, ctx: &ContextId, below: u64) {
        self.0.delete_range_cf(
            store.cf(CF_EVENTS),
            delta_key(ctx, 0),
            delta_key(ctx, below),
        );
    }

    /// Writes what a context restores from: its Loro `state` and its
    /// `checkpoint`, both at log length `base` (a [`StoredCheckpoint`]).
    pub fn put_restore_point(
        &mut self,
        store: &Store,
        ctx: &ContextId,
        base: u64,
        state: &[u8],
        checkpoint: &mero_sync::checkpoint::Checkpoint,
    ) {
        self.put_snapshot(store, ctx, base, state);
        // postcard writes a struct as its fields in order: this tuple is a
        // `StoredCheckpoint`, without moving the checkpoint into one.
        let v = postcard::to_allocvec(&(base, checkpoint)).expect("checkpoints serialize");
        self.0.put_cf(store.cf(CF_CHECKPOINTS), ctx.0, v);
    }

    /// Records the manifest of the snapshot a context joined with.
    pub fn put_received(
        &mut self,
        store: &Store,
        ctx: &ContextId,
        m: &mero_sync::snapshot::Manifest,
    ) {
        let v = postcard::to_allocvec(m).expect("manifests serialize");
        self.0
            .put_cf(store.cf(CF_CHECKPOINTS), received_key(ctx), v);
    }

    /// Records how far the history below a snapshot join was fetched.
    pub fn put_backfilled(&mut self, store: &Store, ctx: &ContextId, pos: u64) {
        self.0.put_cf(
            store.cf(CF_CHECKPOINTS),
            backfill_key(ctx),
            pos.to_be_bytes(),
        );
    }

    /// Replaces a context's snapshot.
    pub fn put_snapshot(&mut self, store: &Store, ctx: &ContextId, pos: u64, bytes: &[u8]) {
        let mut v = Vec::with_capacity(8 + bytes.len());
        v.extend_from_slice(&pos.to_be_bytes());
        v.extend_from_slice(bytes);
        self.0.put_cf(store.cf(CF_SNAPSHOTS), ctx.0, v);
    }

    /// Writes (`Some`) or removes (`None`) a node-private key.
    pub fn private(&mut self, store: &Store, ctx: &ContextId, key: &[u8], value: Option<&[u8]>) {
        let k = scoped_key(ctx, key);
        match value {
            Some(v) => self.0.put_cf(store.cf(CF_PRIVATE), k, v),
            None => self.0.delete_cf(store.cf(CF_PRIVATE), k),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_data_directory_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _store = super::Store::open(&data).unwrap();
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    /// An appended batch writes both batches' puts and deletes, across
    /// column families, in one write.
    #[test]
    fn an_appended_batch_writes_both() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::Store::open(&dir.path().join("data")).unwrap();
        let (a, b) = (
            crate::ids::ContextId([1; 32]),
            crate::ids::ContextId([2; 32]),
        );
        let mut first = store.batch();
        first.private(&store, &a, b"gone", Some(b"x"));
        store.write(first).unwrap();
        let mut first = store.batch();
        first.private(&store, &a, b"k", Some(b"1"));
        first.private(&store, &a, b"gone", None);
        let mut second = store.batch();
        second.private(&store, &b, b"k", Some(b"2"));
        second.private(&store, &b, b"k2", Some(b"3"));
        first.append(second);
        first.append(store.batch());
        store.write(first).unwrap();
        assert_eq!(
            store.private_get(&a, b"k").unwrap().as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(store.private_get(&a, b"gone").unwrap(), None);
        assert_eq!(
            store.private_get(&b, b"k").unwrap().as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(
            store.private_get(&b, b"k2").unwrap().as_deref(),
            Some(&b"3"[..])
        );
    }
}
