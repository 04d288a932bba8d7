//! An upload: chunks written as they stream in, the blob's id known only
//! at the end, when its manifest is.

use std::path::PathBuf;
use std::sync::Arc;

use mero_sync::Role;
use mero_sync::blob::{BlobId, BlobKey, CHUNK_SIZE, Manifest, ManifestBuilder, Sealed};
use mero_sync::ids::DeltaId;

use super::store::{self, MANIFEST};
use super::{BlobError, Blobs, InUse, keys_of};
use crate::error::NodeError;
use crate::ids::ContextId;
use crate::node::Node;

/// An upload in progress. Feed it [`CHUNK_SIZE`] chunks with
/// [`Upload::write`] (the last may be shorter), then [`Upload::finish`].
/// Dropped unfinished, it leaves a directory the collector deletes after
/// the grace period; [`Upload::abort`] deletes it at once.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use mero_node::{Node, NodeConfig};
/// let home = std::path::Path::new("/var/lib/merod");
/// let node = Node::open(home, NodeConfig::load(home)?)?;
/// let ctx = node.contexts()[0].id;
/// let mut up = node.blob_upload(&ctx)?;
/// for chunk in std::fs::read("photo.jpg")?.chunks(mero_sync::blob::CHUNK_SIZE) {
///     up.write(chunk)?;
/// }
/// let (id, manifest) = up.finish()?;
/// println!("{id}: {} bytes; store the id in state", manifest.size);
/// # Ok(())
/// # }
/// ```
pub struct Upload {
    blobs: Arc<Blobs>,
    ctx: ContextId,
    dir: PathBuf,
    epoch: DeltaId,
    key: BlobKey,
    manifest: ManifestBuilder,
    /// A chunk shorter than [`CHUNK_SIZE`] was written: it must be the last.
    ended: bool,
    _held: InUse,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Upload({}, {} bytes)",
            self.dir.display(),
            self.manifest.size()
        )
    }
}

impl Node {
    /// Starts an upload to `ctx`. This node's member must be a writer
    /// there (it is the one to store the blob's id in state) and hold the
    /// current epoch key, which seals the chunks.
    pub fn blob_upload(&self, ctx: &ContextId) -> Result<Upload, BlobError> {
        let (epoch, key) = {
            let slot = self.context(ctx)?;
            let rt = slot.lock()?;
            if rt.meta.joining.is_some() {
                return Err(NodeError::Joining(*ctx).into());
            }
            if !rt
                .replica
                .access()
                .role(&rt.meta.member)
                .is_some_and(Role::writes)
            {
                return Err(NodeError::Forbidden(format!(
                    "this node's member is not a writer in context {ctx}, so it cannot add blobs"
                ))
                .into());
            }
            let keys = keys_of(&rt);
            let (epoch, key) = keys.current().ok_or_else(|| NodeError::Joining(*ctx))?;
            (epoch, key.clone())
        };
        let blobs = self.blobs().clone();
        let dir = blobs.store.upload_dir(ctx).map_err(BlobError::io)?;
        let held = blobs.hold(dir.clone());
        Ok(Upload {
            blobs,
            ctx: *ctx,
            dir,
            epoch,
            key,
            manifest: ManifestBuilder::default(),
            ended: false,
            _held: held,
        })
    }
}

impl Upload {
    /// Seals and stores the next chunk.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        if self.ended || chunk.len() > CHUNK_SIZE {
            return Err(BlobError::BadRequest(format!(
                "chunks are {CHUNK_SIZE} bytes, but the last; this is a bug in the uploader"
            )));
        }
        let max = self.blobs.config.max_blob_bytes;
        let size = self.manifest.size() + chunk.len() as u64;
        if size > max {
            return Err(BlobError::TooLarge { size, max });
        }
        let index = self.manifest.count();
        if index as usize >= mero_sync::blob::MAX_CHUNKS {
            return Err(BlobError::TooLarge { size, max });
        }
        self.ended = chunk.len() < CHUNK_SIZE;
        let hash = self.manifest.push(chunk);
        let part = Sealed {
            epoch: self.epoch,
            bytes: self.key.seal_chunk(&hash, chunk),
        };
        store::write_part(&self.dir, &index.to_string(), &part).map_err(BlobError::io)
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.manifest.size()
    }

    /// Writes the manifest and moves the blob into place; its id and
    /// manifest. The blob's grace period starts now: store its id in the
    /// context's state before it ends, or it is collected.
    pub fn finish(self) -> Result<(BlobId, Manifest), BlobError> {
        let manifest = self.manifest.clone().finish();
        let id = manifest.id();
        let part = Sealed {
            epoch: self.epoch,
            bytes: self.key.seal_manifest(&id, &manifest),
        };
        let done = store::write_part(&self.dir, MANIFEST, &part)
            .and_then(|()| self.blobs.store.complete(&self.ctx, &id, &self.dir));
        if let Err(e) = done {
            self.abort();
            return Err(BlobError::io(e));
        }
        self.blobs.metrics.uploaded(&self.ctx, manifest.size);
        tracing::info!(context = %self.ctx, blob = %id, bytes = manifest.size, "blob uploaded");
        Ok((id, manifest))
    }

    /// Deletes what was written.
    pub fn abort(self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), "removing an aborted upload: {e} (the collector retries)");
        }
    }
}
