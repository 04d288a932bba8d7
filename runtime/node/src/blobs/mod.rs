//! Blobs: large files of a context, stored on disk outside the delta log
//! and fetched from members on demand (see docs/blobs.md).
//!
//! What a blob is, how its id is made and how its parts are sealed and
//! checked is `mero_sync::blob`; this module moves and stores the bytes:
//!
//! - `store`: the directories and files under `<home>/blobs`.
//! - `upload`: an HTTP upload, chunk by chunk as it streams in.
//! - `read`: reading chunks back (HTTP downloads, app reads), waiting for
//!   a fetch when the node does not hold them yet.
//! - `fetch`: a fetch from member peers, one thread per blob, resumable;
//!   `progress`: what readers waiting for it see.
//! - `serve`: answering members' manifest and chunk requests.
//! - `gc`: deleting blobs the state no longer refers to, after a grace.
//!
//! Disk work runs on the blocking pool (HTTP, calls) or on the blob
//! threads (fetches, the worker that collects garbage), never on an async
//! worker.

mod fetch;
mod gc;
mod progress;
mod read;
mod serve;
mod store;
mod upload;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::Duration;

use mero_sync::blob::{BlobId, BlobKeys};
use mero_sync::gate::Proof;

pub use read::{BlobReader, open};
pub use upload::Upload;

use crate::config::BlobsConfig;
use crate::error::NodeError;
use crate::ids::ContextId;
use crate::metrics::BlobMetrics;
use crate::node::Node;
use fetch::Fetch;
use store::BlobStore;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The context, or this node's part in it, does not allow it.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// No member peer had the blob (or none could be reached).
    #[error("{0} is not on this node and no member peer sent it: {1}")]
    NotFound(BlobId, String),
    /// Over `[blobs] max_blob_bytes`.
    #[error(
        "the blob is {size} bytes; this node takes at most {max} ([blobs] max_blob_bytes in config.toml)"
    )]
    TooLarge {
        /// Its size (or the bytes received so far).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The disk (or the user's quota) is full.
    #[error("the node's disk is full ({0}); free space, then upload again")]
    DiskFull(String),
    /// Another storage failure.
    #[error("blob storage: {0}")]
    Io(String),
    /// Too many fetches at once.
    #[error("{0}")]
    Busy(String),
    /// A stored part does not open or check out.
    #[error("{0} is damaged on this node ({1}); it will be fetched again from members")]
    Corrupt(BlobId, String),
    /// The request itself is wrong (a range past the end, a bad body).
    #[error("{0}")]
    BadRequest(String),
}

impl BlobError {
    /// A storage error, with disk-full told apart.
    pub(crate) fn io(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                BlobError::DiskFull(e.to_string())
            }
            _ => BlobError::Io(e.to_string()),
        }
    }

    /// A stable machine-readable code, as the HTTP API reports it.
    pub fn code(&self) -> &'static str {
        match self {
            BlobError::Node(e) => e.code(),
            BlobError::NotFound(..) => "blob_not_found",
            BlobError::TooLarge { .. } => "blob_too_large",
            BlobError::DiskFull(_) => "disk_full",
            BlobError::Io(_) => "storage",
            BlobError::Busy(_) => "busy",
            BlobError::Corrupt(..) => "blob_corrupt",
            BlobError::BadRequest(_) => "bad_request",
        }
    }
}

/// The node's blobs: the store, the fetches running, and which blob
/// directories are in use (the collector leaves those alone).
pub(crate) struct Blobs {
    store: BlobStore,
    config: BlobsConfig,
    metrics: BlobMetrics,
    fetches: Mutex<HashMap<(ContextId, BlobId), Arc<Fetch>>>,
    /// Directories being read or written, with how many users each.
    in_use: Mutex<HashMap<PathBuf, usize>>,
    /// Blobs app reads asked for (a call cannot start a fetch itself: it
    /// holds its context's lock); the worker starts them.
    wanted: Mutex<Wanted>,
    wake: Condvar,
    /// Members' blob requests being answered ([`serve::MAX_SERVING`]).
    serving: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Wanted {
    queue: VecDeque<(ContextId, BlobId)>,
    /// A worker runs ([`start`]): without one, app reads cannot fetch.
    worker: bool,
}

/// Most blobs waiting for the worker to start their fetch.
const WANTED_LIMIT: usize = 256;

impl Blobs {
    /// The blobs under `root`.
    pub fn new(root: PathBuf, config: BlobsConfig, metrics: BlobMetrics) -> Self {
        Self {
            store: BlobStore::new(root),
            config,
            metrics,
            fetches: Mutex::default(),
            in_use: Mutex::default(),
            wanted: Mutex::default(),
            wake: Condvar::new(),
            serving: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Marks `dir` in use until the guard drops.
    fn hold(self: &Arc<Self>, dir: PathBuf) -> InUse {
        *self
            .in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(dir.clone())
            .or_default() += 1;
        InUse {
            blobs: Arc::downgrade(self),
            dir,
        }
    }

    /// Runs `f` (which may delete `dir`) unless `dir` is in use, under the
    /// lock uses take, so no use starts meanwhile.
    fn unless_in_use<T>(&self, dir: &Path, f: impl FnOnce() -> T) -> Option<T> {
        let held = self.in_use.lock().unwrap_or_else(PoisonError::into_inner);
        if held.contains_key(dir) {
            return None;
        }
        let out = f();
        drop(held);
        Some(out)
    }

    /// Asks the worker to fetch a blob; whether a worker will.
    fn want(&self, ctx: ContextId, id: BlobId) -> bool {
        let mut w = self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
        if !w.worker {
            return false;
        }
        if w.queue.len() < WANTED_LIMIT && !w.queue.contains(&(ctx, id)) {
            w.queue.push_back((ctx, id));
            self.wake.notify_one();
        }
        true
    }

    /// The fetch of a blob in progress, if any.
    fn fetch_of(&self, ctx: &ContextId, id: &BlobId) -> Option<Arc<Fetch>> {
        self.fetches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(*ctx, *id))
            .cloned()
    }
}

/// A blob directory in use; released on drop.
pub(crate) struct InUse {
    blobs: Weak<Blobs>,
    dir: PathBuf,
}

impl Drop for InUse {
    fn drop(&mut self) {
        let Some(blobs) = self.blobs.upgrade() else {
            return;
        };
        let mut held = blobs.in_use.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.dir) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.dir);
            }
        }
    }
}

impl Node {
    /// The epoch keys this node holds for `ctx`, as blob keys.
    pub(crate) fn blob_keys(&self, ctx: &ContextId) -> Result<BlobKeys, NodeError> {
        let rt = self.context(ctx)?;
        let rt = rt.lock()?;
        Ok(keys_of(&rt))
    }

    /// The blob keys and this node's current proof of membership, for a
    /// fetch's requests.
    pub(crate) fn blob_access(&self, ctx: &ContextId) -> Result<(BlobKeys, Proof), NodeError> {
        let rt = self.context(ctx)?;
        let rt = rt.lock()?;
        Ok((keys_of(&rt), rt.proof(self.transport_id())))
    }
}

pub(crate) fn keys_of(rt: &crate::context::ContextRuntime) -> BlobKeys {
    BlobKeys::new(&rt.id, rt.replica.keys(), rt.replica.access().epoch())
}

/// Starts fetching blob `id` of `ctx` from member peers, or joins the fetch
/// already running.
pub fn fetch(node: &Arc<Node>, ctx: ContextId, id: BlobId) -> Result<(), BlobError> {
    fetch::start(node, ctx, id).map(drop)
}

/// Starts the blob worker of a node: it runs garbage collection every
/// `[blobs] gc_interval_secs`, starts the fetches app reads asked for, and
/// resumes the fetches a restart interrupted. It stops when the node
/// begins shutting down or is dropped. `merod run` starts it.
pub fn start(node: &Arc<Node>) -> std::io::Result<()> {
    let blobs = node.blobs().clone();
    blobs
        .wanted
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .worker = true;
    let weak = Arc::downgrade(node);
    let closing = node.closing();
    std::thread::Builder::new()
        .name("mero-blobs".into())
        .spawn(move || worker(weak, blobs, closing))
        .map(drop)
}

fn worker(node: Weak<Node>, blobs: Arc<Blobs>, closing: tokio::sync::watch::Receiver<bool>) {
    let every = Duration::from_secs(blobs.config.gc_interval_secs.max(1));
    let mut next_gc = std::time::Instant::now() + every;
    if let Some(node) = node.upgrade() {
        for (ctx, id) in gc::interrupted(&node) {
            if let Err(e) = fetch::start(&node, ctx, id) {
                tracing::warn!(context = %ctx, blob = %id, "resuming a blob fetch: {e}");
            }
        }
    }
    loop {
        let wanted: Vec<(ContextId, BlobId)> = {
            let w = blobs.wanted.lock().unwrap_or_else(PoisonError::into_inner);
            let timeout = next_gc.saturating_duration_since(std::time::Instant::now());
            let (mut w, _) = blobs
                .wake
                .wait_timeout_while(w, timeout, |w| w.queue.is_empty())
                .unwrap_or_else(PoisonError::into_inner);
            w.queue.drain(..).collect()
        };
        if *closing.borrow() {
            return;
        }
        let Some(node) = node.upgrade() else {
            return;
        };
        for (ctx, id) in wanted {
            if let Err(e) = fetch::start(&node, ctx, id) {
                tracing::debug!(context = %ctx, blob = %id, "not fetching a blob an app read: {e}");
            }
        }
        if std::time::Instant::now() >= next_gc {
            let collected = gc::collect(&node);
            if collected > 0 {
                tracing::info!(blobs = collected, "collected unreferenced blobs");
            }
            next_gc = std::time::Instant::now() + every;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BlobError;
    use std::io::{Error, ErrorKind};

    #[test]
    fn a_full_disk_is_told_apart() {
        for kind in [ErrorKind::StorageFull, ErrorKind::QuotaExceeded] {
            let e = BlobError::io(Error::from(kind));
            assert_eq!(e.code(), "disk_full");
            assert!(e.to_string().contains("disk is full"), "{e}");
        }
        assert_eq!(
            BlobError::io(Error::from(ErrorKind::PermissionDenied)).code(),
            "storage"
        );
    }
}
