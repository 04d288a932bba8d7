//! Serving snapshots to joiners. A member builds one under the context's
//! lock (checkpoint, control deltas and frontier from the store, the state
//! exported), encodes and signs it after the lock, and keeps it for
//! [`KEEP`] so every part request and other joiners at the same heads are
//! served from memory.
//!
//! Bounds: [`MAX_BUILDS`] builds at once per node (more are declined, the
//! joiner pages instead or asks again), one snapshot kept per context, and
//! [`MAX_CACHE_BYTES`] kept in all (the oldest go first).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mero_sync::delta::SignedHeader;
use mero_sync::protocol::{DeltaSource, Response};
use mero_sync::snapshot::{self, Manifest, Snapshot};

use crate::ids::ContextId;
use crate::node::Node;
use crate::slot::Loaded;

/// How long a built snapshot is kept after it was made.
pub const KEEP: Duration = Duration::from_secs(120);
/// Most snapshot builds running at once on a node.
pub const MAX_BUILDS: usize = 2;
/// Most bytes of built snapshots kept.
pub const MAX_CACHE_BYTES: usize = 512 << 20;

struct Built {
    manifest: Manifest,
    id: [u8; 32],
    digest: [u8; 32],
    parts: Arc<Vec<Vec<u8>>>,
    bytes: usize,
    made: Instant,
}

/// Snapshots this node built, by context.
#[derive(Default)]
pub(crate) struct Served {
    built: Mutex<HashMap<ContextId, Built>>,
    building: AtomicUsize,
}

impl Served {
    fn keep(&self, ctx: ContextId, b: Built) {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        built.retain(|_, b| b.made.elapsed() < KEEP);
        built.insert(ctx, b);
        let mut total: usize = built.values().map(|b| b.bytes).sum();
        while total > MAX_CACHE_BYTES && built.len() > 1 {
            let oldest = built
                .iter()
                .min_by_key(|(_, b)| b.made)
                .map(|(c, _)| *c)
                .expect("not empty");
            total -= built.remove(&oldest).map_or(0, |b| b.bytes);
        }
    }

    fn cached(&self, ctx: &ContextId, digest: &[u8; 32]) -> Option<Manifest> {
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let b = built.get(ctx)?;
        (b.digest == *digest && b.made.elapsed() < KEEP).then(|| b.manifest.clone())
    }

    /// Part `index` of the snapshot `manifest` of `ctx`, if still kept.
    pub fn part(&self, ctx: &ContextId, manifest: &[u8; 32], index: u32) -> Response {
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = built
            .get(ctx)
            .filter(|b| b.id == *manifest)
            .and_then(|b| b.parts.get(index as usize).cloned());
        Response::Part { bytes }
    }
}

/// Holds a build slot; gives it back when dropped.
struct Building<'a>(&'a AtomicUsize);

impl Drop for Building<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Node {
    /// Answers a joiner's [`Request::Snapshot`](mero_sync::protocol::Request::Snapshot)
    /// for the replica `rt` (locked, the requester admitted): a manifest of
    /// a snapshot at its current heads, or none when its history is shorter
    /// than `min_len`, it cannot build one (joining itself, unpublished
    /// ops, history below a checkpoint it lacks) or is busy.
    pub(crate) fn offer_snapshot(&self, rt: Loaded<'_>, min_len: u64) -> Response {
        let declined = Response::Offer { manifest: None };
        let ctx = rt.id;
        let dag = rt.dag();
        if (dag.len() as u64) < min_len.max(1)
            || rt.meta.joining.is_some()
            || rt.state.has_unpublished()
        {
            return declined;
        }
        let served = &self.snapshots().served;
        let digest = dag.digest();
        if let Some(manifest) = served.cached(&ctx, &digest) {
            return Response::Offer {
                manifest: Some(manifest),
            };
        }
        if served.building.fetch_add(1, Ordering::SeqCst) >= MAX_BUILDS {
            served.building.fetch_sub(1, Ordering::SeqCst);
            return declined;
        }
        let _slot = Building(&served.building);
        let started = Instant::now();
        let checkpoint = rt.replica.checkpoint();
        let db = self.db();
        let control: Option<Vec<_>> = checkpoint
            .control
            .iter()
            .map(|pos| db.delta(&ctx, *pos).ok().flatten())
            .collect();
        let frontier: Option<Vec<_>> = {
            let source = crate::context::stored(db, ctx, dag);
            snapshot::frontier_ids(dag)
                .iter()
                .map(|id| source.delta(id).map(|d| SignedHeader::of(&d)))
                .collect()
        };
        let indexed = started.elapsed();
        let state = rt.state.snapshot().ok();
        let secret = rt.secret.clone();
        drop(rt);
        let exported = started.elapsed();
        let (Some(control), Some(frontier), Some(state)) = (control, frontier, state) else {
            tracing::debug!(context = %ctx, "cannot build a snapshot: history below a checkpoint is not stored here");
            return declined;
        };
        let snap = Snapshot {
            checkpoint,
            control,
            frontier,
            state,
        };
        let (manifest, parts) = snapshot::build(&snap, &secret);
        drop(snap);
        self.metrics().snapshot_built();
        tracing::info!(
            context = %ctx,
            deltas = manifest.len,
            bytes = manifest.bytes,
            checkpoint_ms = indexed.as_millis() as u64,
            state_ms = (exported - indexed).as_millis() as u64,
            ms = started.elapsed().as_millis() as u64,
            "built a snapshot for a joiner"
        );
        served.keep(
            ctx,
            Built {
                id: manifest.id(),
                manifest: manifest.clone(),
                digest,
                bytes: manifest.bytes as usize,
                parts: Arc::new(parts),
                made: Instant::now(),
            },
        );
        Response::Offer {
            manifest: Some(manifest),
        }
    }
}
