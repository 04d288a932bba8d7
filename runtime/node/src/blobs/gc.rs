//! Garbage collection: a blob is kept while its id appears in its
//! context's current state (the text form `blob:<hex>`, anywhere in the
//! state's JSON: a value, a key, inside a longer string); an unreferenced
//! blob is deleted once its grace period (`[blobs] gc_grace_secs`, counted
//! from its upload, arrival or last re-upload) is over. Blobs of contexts
//! this node no longer has go at once; blobs in use (a download, a fetch,
//! an upload) wait for the next round. A cold context is not loaded to be
//! collected: its unreferenced blobs wait until it is used again.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use mero_sync::blob::BlobId;

use super::store::{self, Stage};
use crate::ids::ContextId;
use crate::node::Node;

/// Runs one collection; how many blobs (and leftover uploads) it deleted.
pub(crate) fn collect(node: &Node) -> usize {
    let blobs = node.blobs();
    let grace = Duration::from_secs(blobs.config.gc_grace_secs);
    let mut deleted = 0;
    for (ctx, dir) in blobs.store.contexts() {
        let Some(ctx) = ctx.filter(|c| node.has_context(c).is_ok()) else {
            // A context deleted (or a stray directory): nothing refers to it.
            if blobs.unless_in_use(&dir, || remove(&dir)) == Some(true) {
                deleted += 1;
            }
            continue;
        };
        let Some(referenced) = referenced(node, &ctx) else {
            continue;
        };
        for (stage, id, dir) in blobs.store.entries(&ctx) {
            if id.is_some_and(|id| referenced.contains(&id)) {
                continue;
            }
            if stage != Stage::Upload && id.is_none() {
                // Not a blob directory: leave it to the operator.
                continue;
            }
            let expired = || store::age(&dir).is_some_and(|a| a >= grace);
            let gone = blobs.unless_in_use(&dir, || expired() && remove(&dir));
            if gone == Some(true) {
                tracing::debug!(context = %ctx, blob = ?id, "collected an unreferenced blob");
                deleted += 1;
            }
        }
    }
    blobs.metrics.collected(deleted);
    deleted
}

/// The blobs the current state of `ctx` refers to; `None` when the state
/// cannot be read (quarantined), is not whole yet (joining) or is not in
/// memory (a cold context is not loaded for this: its blobs wait until it
/// is used again): then nothing is collected.
fn referenced(node: &Node, ctx: &ContextId) -> Option<HashSet<BlobId>> {
    if node.is_cold(ctx) || node.context_info(ctx).ok()?.joining {
        return None;
    }
    let state = node.state_json(ctx).ok()?.to_string();
    Some(
        mero_abi::blob::find_all(&state)
            .into_iter()
            .map(BlobId)
            .collect(),
    )
}

fn remove(dir: &Path) -> bool {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "collecting a blob: {e}");
            false
        }
    }
}

/// Fetches a restart interrupted (partial blobs with a manifest), to resume.
pub(crate) fn interrupted(node: &Node) -> Vec<(ContextId, BlobId)> {
    let blobs = node.blobs();
    let mut out = Vec::new();
    for (ctx, _) in blobs.store.contexts() {
        let Some(ctx) = ctx.filter(|c| node.has_context(c).is_ok()) else {
            continue;
        };
        for (stage, id, dir) in blobs.store.entries(&ctx) {
            if let (Stage::Partial, Some(id)) = (stage, id)
                && dir.join(store::MANIFEST).is_file()
            {
                out.push((ctx, id));
            }
        }
    }
    out
}
