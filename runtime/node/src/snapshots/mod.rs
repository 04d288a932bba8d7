//! Snapshot joins on the node: serving a snapshot of a context to a joiner
//! ([`serve`]), fetching and installing one when joining ([`fetch`]), and
//! fetching the history below it afterwards ([`backfill`]).
//! What a snapshot holds and what a joiner checks is `mero_sync::snapshot`;
//! this module moves the bytes, bounds what they cost, and stores the result.
//!
//! It must not decide whether a snapshot is trustworthy: `install` in
//! mero-sync does.

pub(crate) mod backfill;
pub(crate) mod fetch;
pub(crate) mod serve;

use std::collections::HashSet;
use std::sync::Mutex;

use crate::ids::ContextId;

/// The node's snapshot state: what it serves, and the joins fetching one.
#[derive(Default)]
pub(crate) struct Snapshots {
    pub served: serve::Served,
    /// Contexts whose join is fetching a snapshot: catch-up waits for it.
    fetching: Mutex<HashSet<ContextId>>,
}

impl Snapshots {
    /// Whether `ctx` is fetching a snapshot (catch-up rounds hold off).
    pub fn fetching(&self, ctx: &ContextId) -> bool {
        self.fetching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(ctx)
    }

    /// Marks `ctx` as fetching; false if it already was.
    fn begin(&self, ctx: ContextId) -> bool {
        self.fetching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(ctx)
    }

    fn end(&self, ctx: &ContextId) {
        self.fetching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(ctx);
    }
}
