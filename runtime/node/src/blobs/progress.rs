//! A fetch's progress, as the readers waiting for its chunks see it.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use mero_sync::blob::BlobId;

use crate::ids::ContextId;

/// A fetch in progress, as readers wait on it.
pub(crate) struct Fetch {
    pub(super) ctx: ContextId,
    pub(super) id: BlobId,
    state: Mutex<Progress>,
    changed: Condvar,
}

#[derive(Default)]
pub(super) struct Progress {
    /// The manifest is stored.
    pub manifest: bool,
    /// Which chunks are stored.
    pub have: Vec<bool>,
    /// Once over: `Ok` when the blob is complete, else why it stopped.
    pub ended: Option<Result<(), String>>,
}

impl Fetch {
    pub(super) fn new(ctx: ContextId, id: BlobId) -> Self {
        Self {
            ctx,
            id,
            state: Mutex::default(),
            changed: Condvar::new(),
        }
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_all();
    }

    /// Waits until the manifest is stored; why not, if the fetch ended
    /// without it or `timeout` passed.
    pub fn wait_manifest(&self, timeout: Duration) -> Result<(), String> {
        self.wait(timeout, |p| p.manifest)
    }

    /// Waits until chunk `index` is stored.
    pub fn wait_chunk(&self, index: u32, timeout: Duration) -> Result<(), String> {
        self.wait(timeout, |p| {
            p.have.get(index as usize).copied().unwrap_or(false)
        })
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&Progress) -> bool) -> Result<(), String> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |p| !done(p) && p.ended.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        if done(&state) {
            return Ok(());
        }
        match &state.ended {
            Some(Ok(())) => Ok(()),
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!("it did not arrive within {timeout:?}")),
        }
    }
}
