//! Reading a blob back: from its directory if the node holds it, else
//! from a fetch as its chunks arrive. HTTP downloads and app reads both go
//! through [`BlobReader`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use mero_abi::host::BlobAnswer;
use mero_engine::BlobSource;
use mero_sync::blob::{BlobId, BlobKeys, CHUNK_SIZE, Manifest};

use super::fetch::{self, Fetch};
use super::store::{self, MANIFEST, Stage};
use super::{BlobError, Blobs, InUse};
use crate::ids::ContextId;
use crate::node::Node;

/// An open blob: its manifest and the keys to open its chunks. It holds
/// the blob's directories, so the collector leaves them alone meanwhile.
pub struct BlobReader {
    blobs: Arc<Blobs>,
    ctx: ContextId,
    id: BlobId,
    manifest: Arc<Manifest>,
    keys: BlobKeys,
    /// To start a fetch again if one is needed and none runs.
    node: Option<Arc<Node>>,
    _held: [InUse; 2],
}

impl BlobReader {
    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.manifest.size
    }

    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The plaintext of chunk `index`, waiting up to `wait` for a fetch to
    /// bring it (zero: only what is on disk now).
    pub fn chunk(&self, index: u32, wait: Duration) -> Result<Vec<u8>, BlobError> {
        let deadline = Instant::now() + wait;
        // Times the fetch said the chunk is in yet it was not found (it
        // may have moved from partial to complete between two looks).
        let mut stale = 0;
        loop {
            if let Some(plain) = self.on_disk(index)? {
                return Ok(plain);
            }
            if stale >= 3 {
                return Err(self.missing("its fetch stored it, but it is gone"));
            }
            let fetch = match self.blobs.fetch_of(&self.ctx, &self.id) {
                Some(f) => f,
                None if wait.is_zero() => {
                    self.blobs.want(self.ctx, self.id);
                    return Err(self.missing("it is being fetched from members; retry shortly"));
                }
                None => match &self.node {
                    Some(node) => fetch::start(node, self.ctx, self.id)?,
                    None => return Err(self.missing("no fetch runs for it")),
                },
            };
            // The fetch may have stored it just before we looked it up.
            if let Some(plain) = self.on_disk(index)? {
                return Ok(plain);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.missing("its fetch did not bring it in time"));
            }
            fetch
                .wait_chunk(index, left)
                .map_err(|why| BlobError::NotFound(self.id, why))?;
            stale += 1;
        }
    }

    fn missing(&self, why: &str) -> BlobError {
        BlobError::NotFound(
            self.id,
            format!("this node lacks some of its chunks; {why}"),
        )
    }

    /// Chunk `index` from disk, opened and checked; `None` if absent. A
    /// damaged chunk is deleted (a complete blob goes back to partial, so
    /// a fetch repairs it).
    fn on_disk(&self, index: u32) -> Result<Option<Vec<u8>>, BlobError> {
        let hash =
            self.manifest.chunks.get(index as usize).ok_or_else(|| {
                BlobError::BadRequest(format!("{} has no chunk {index}", self.id))
            })?;
        let name = index.to_string();
        for stage in [Stage::Complete, Stage::Partial] {
            let dir = self.blobs.store.dir(&self.ctx, &self.id, stage);
            let part = match store::read_part(&dir, &name) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(self.damaged(stage, &name, &e.to_string()));
                }
                Err(e) => return Err(BlobError::io(e)),
            };
            let plain = self
                .keys
                .get(&part.epoch)
                .and_then(|k| k.open_chunk(hash, &part.bytes))
                .filter(|p| Some(p.len()) == self.manifest.chunk_len(index));
            return match plain {
                Some(p) => Ok(Some(p)),
                None => Err(self.damaged(stage, &name, "a chunk does not open or check out")),
            };
        }
        Ok(None)
    }

    fn damaged(&self, stage: Stage, name: &str, why: &str) -> BlobError {
        let store = &self.blobs.store;
        let partial = store.dir(&self.ctx, &self.id, Stage::Partial);
        let moved = stage == Stage::Partial || {
            // Back to partial, so a fetch completes it again (a stale
            // partial directory of the same blob gives way).
            let from = store.dir(&self.ctx, &self.id, Stage::Complete);
            let _ = std::fs::remove_dir_all(&partial);
            let renamed = partial
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::rename(&from, &partial));
            if let Err(e) = &renamed {
                tracing::warn!(blob = %self.id, "moving a damaged blob back to partial: {e}");
            }
            renamed.is_ok()
        };
        if moved {
            store::remove_part(&partial, name);
            self.blobs.want(self.ctx, self.id);
        }
        tracing::warn!(context = %self.ctx, blob = %self.id, chunk = name, "damaged blob chunk: {why}");
        BlobError::Corrupt(self.id, why.to_owned())
    }
}

/// The blob reader of the node's directories, if they hold `id`'s manifest.
fn open_local(
    blobs: &Arc<Blobs>,
    keys: BlobKeys,
    ctx: &ContextId,
    id: &BlobId,
) -> Result<Option<BlobReader>, BlobError> {
    let held = [
        blobs.hold(blobs.store.dir(ctx, id, Stage::Complete)),
        blobs.hold(blobs.store.dir(ctx, id, Stage::Partial)),
    ];
    let Some((dir, _)) = blobs.store.locate(ctx, id) else {
        return Ok(None);
    };
    let part = match store::read_part(&dir, MANIFEST) {
        Ok(Some(p)) => p,
        // Completed or collected meanwhile: look again.
        Ok(None) => return Ok(None),
        Err(e) => return Err(BlobError::io(e)),
    };
    let Some(key) = keys.get(&part.epoch) else {
        return Err(BlobError::Corrupt(
            *id,
            "its manifest is sealed in a key epoch this node does not hold".into(),
        ));
    };
    let Some(manifest) = key.open_manifest(id, &part.bytes) else {
        return Err(BlobError::Corrupt(*id, "its manifest does not open".into()));
    };
    Ok(Some(BlobReader {
        blobs: blobs.clone(),
        ctx: *ctx,
        id: *id,
        manifest: Arc::new(manifest),
        keys,
        node: None,
        _held: held,
    }))
}

/// Opens blob `id` of `ctx`: from disk if the node holds its manifest, else
/// by fetching it from member peers (waiting up to `wait` for the
/// manifest; the chunks follow as [`BlobReader::chunk`] asks for them).
pub fn open(
    node: &Arc<Node>,
    ctx: ContextId,
    id: BlobId,
    wait: Duration,
) -> Result<BlobReader, BlobError> {
    let deadline = Instant::now() + wait;
    loop {
        let keys = node.blob_keys(&ctx)?;
        if let Some(mut r) = open_local(node.blobs(), keys, &ctx, &id)? {
            r.node = Some(node.clone());
            return Ok(r);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(BlobError::NotFound(
                id,
                "its manifest did not arrive in time".into(),
            ));
        }
        let fetch: Arc<Fetch> = fetch::start(node, ctx, id)?;
        fetch
            .wait_manifest(left)
            .map_err(|why| BlobError::NotFound(id, why))?;
    }
}

impl Node {
    /// What a call of `ctx` reads blobs through (see [`mero_engine::BlobSource`]).
    /// It holds the keys as they are when the call starts: the call holds
    /// the context's lock, which a blob read must not take again.
    pub(crate) fn blob_source(&self, rt: &crate::context::ContextRuntime) -> Arc<dyn BlobSource> {
        Arc::new(CallBlobs {
            blobs: self.blobs().clone(),
            ctx: rt.id,
            epoch_keys: rt.replica.keys().clone(),
            epoch: rt.replica.access().epoch(),
        })
    }
}

/// A call's view of its context's blobs.
struct CallBlobs {
    blobs: Arc<Blobs>,
    ctx: ContextId,
    // Kept raw and turned into blob keys only when a call reads a blob:
    // most calls read none, and deriving keys costs a hash per epoch.
    epoch_keys: std::collections::BTreeMap<mero_sync::ids::DeltaId, mero_sync::ContextKey>,
    epoch: mero_sync::ids::DeltaId,
}

impl BlobSource for CallBlobs {
    fn read(&self, id: &[u8; 32], offset: u64, len: u32) -> BlobAnswer {
        let id = BlobId(*id);
        let keys = BlobKeys::new(&self.ctx, &self.epoch_keys, self.epoch);
        let missing = |why: String| BlobAnswer::Missing { message: why };
        let reader = match open_local(&self.blobs, keys, &self.ctx, &id) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return missing(if self.blobs.want(self.ctx, id) {
                    format!(
                        "{id} is not on this node yet; it is being fetched from the context's members: retry shortly"
                    )
                } else {
                    format!("{id} is not on this node, and this node does not fetch blobs")
                });
            }
            Err(e) => return missing(e.to_string()),
        };
        let size = reader.size();
        let start = offset.min(size);
        let end = start.saturating_add(u64::from(len)).min(size);
        let mut bytes = Vec::with_capacity((end - start) as usize);
        let mut at = start;
        while at < end {
            let index = (at / CHUNK_SIZE as u64) as u32;
            let chunk = match reader.chunk(index, Duration::ZERO) {
                Ok(c) => c,
                Err(e) => return missing(e.to_string()),
            };
            let from = (at % CHUNK_SIZE as u64) as usize;
            let take = ((end - at) as usize).min(chunk.len() - from);
            bytes.extend_from_slice(&chunk[from..from + take]);
            at += take as u64;
        }
        BlobAnswer::Bytes { size, bytes }
    }
}
