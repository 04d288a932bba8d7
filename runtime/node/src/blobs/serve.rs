//! Answering a member's request for a blob's manifest or chunk. The
//! requester's membership is checked before this runs (`Node::answer`);
//! a blob this node does not hold is answered "none", like an unknown one.

use std::sync::atomic::{AtomicUsize, Ordering};

use mero_sync::blob::{BlobKeys, MAX_CHUNKS, Part, Sealed, reseal};
use mero_sync::protocol::{Request, Response};

use super::store::{self, MANIFEST};
use crate::ids::ContextId;
use crate::node::Node;

/// Blob answers being prepared at once, over all peers. Each reads a chunk
/// (up to 1 MiB) and may re-seal it: this bounds the disk reads, the
/// crypto and the chunks held that members' requests cause at once
/// (`[network] max_inflight` alone would allow 256). Beyond it a request is
/// answered "busy" and the fetcher asks again a little later.
pub(super) const MAX_SERVING: usize = 32;

/// A slot among [`MAX_SERVING`]; freed on drop.
struct Serving<'a>(&'a AtomicUsize);

impl<'a> Serving<'a> {
    fn take(count: &'a AtomicUsize) -> Option<Self> {
        if count.fetch_add(1, Ordering::AcqRel) >= MAX_SERVING {
            count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Serving(count))
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Node {
    /// The answer to a blob request about `ctx` from a member, with the
    /// node's `keys` for the context. A part is sent sealed in the epoch
    /// the requester asked for when this node holds its key, else in the
    /// epoch it is stored in.
    pub(crate) fn answer_blob(&self, ctx: &ContextId, keys: &BlobKeys, req: &Request) -> Response {
        let Some(_slot) = Serving::take(&self.blobs().serving) else {
            return Response::Error {
                message: "busy: too many blob requests in flight; retry later".into(),
            };
        };
        let part = match req {
            Request::BlobManifest { blob, epoch, .. } => self
                .stored_part(ctx, blob, MANIFEST)
                .map(|p| reseal_or_keep(keys, p, epoch, Part::Manifest(*blob))),
            Request::BlobChunk {
                blob, index, epoch, ..
            } if (*index as usize) < MAX_CHUNKS => {
                let part = self.stored_part(ctx, blob, &index.to_string());
                let part = match part {
                    Some(p) if p.epoch != *epoch => {
                        // Re-sealing needs the chunk's hash, from the manifest.
                        let hash = self
                            .stored_part(ctx, blob, MANIFEST)
                            .and_then(|m| keys.get(&m.epoch)?.open_manifest(blob, &m.bytes))
                            .and_then(|m| m.chunks.get(*index as usize).copied());
                        hash.map(|h| reseal_or_keep(keys, p, epoch, Part::Chunk(h)))
                    }
                    other => other,
                };
                if let Some(p) = &part {
                    self.blobs().metrics.served(ctx, p.bytes.len());
                }
                part
            }
            _ => None,
        };
        Response::Blob { part }
    }

    fn stored_part(
        &self,
        ctx: &ContextId,
        blob: &mero_sync::blob::BlobId,
        name: &str,
    ) -> Option<Sealed> {
        let (dir, _) = self.blobs().store.locate(ctx, blob)?;
        match store::read_part(&dir, name) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(context = %ctx, blob = %blob, part = name, "reading a blob part to serve: {e}");
                None
            }
        }
    }
}

fn reseal_or_keep(
    keys: &BlobKeys,
    stored: Sealed,
    epoch: &mero_sync::ids::DeltaId,
    part: Part,
) -> Sealed {
    // Without the requested epoch's key (this node is behind) the part
    // goes as stored: a requester holding that epoch opens it.
    reseal(keys, stored.clone(), epoch, part).unwrap_or(stored)
}
