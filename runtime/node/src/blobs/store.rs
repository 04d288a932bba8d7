//! Blobs on disk, outside RocksDB and the delta log.
//!
//! ```text
//! <home>/blobs/<context hex>/<blob hex>/manifest     a complete blob
//! <home>/blobs/<context hex>/<blob hex>/<i>          its chunk i (decimal)
//! <home>/blobs/<context hex>/.partial/<blob hex>/…    a fetch in progress
//! <home>/blobs/<context hex>/.upload/<random>/…       an upload in progress
//! ```
//!
//! Every file is a [`Sealed`] part in its file form (the epoch, then the
//! sealed bytes). A part is written to a temporary name and renamed into
//! place, and a blob's directory is renamed from `.upload` or `.partial`
//! only once every chunk is in: a crash leaves at worst a temporary file,
//! which is never read. Every read opens the part and checks its hash, and
//! a resumed fetch re-checks the chunks it finds, so a part torn by a power
//! loss is fetched again, never believed.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use mero_sync::blob::{BlobId, Sealed};

use crate::ids::ContextId;

/// The file of a blob's manifest, in its directory.
pub(crate) const MANIFEST: &str = "manifest";
const PARTIAL: &str = ".partial";
const UPLOAD: &str = ".upload";
/// Largest file the store reads: a sealed chunk, or a manifest of the
/// most chunks a blob may have, with room to spare.
const MAX_PART_FILE: u64 = 4 << 20;

/// Where a blob directory is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Every chunk is in.
    Complete,
    /// Being fetched from peers (or a fetch that stopped).
    Partial,
    /// Being uploaded (no id yet).
    Upload,
}

/// The blob directories of one node.
#[derive(Debug, Clone)]
pub(crate) struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// The store under `root` (created when first written).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn context_dir(&self, ctx: &ContextId) -> PathBuf {
        self.root.join(hex::encode(ctx.0))
    }

    /// The directory of blob `id` at `stage` (not for uploads).
    pub fn dir(&self, ctx: &ContextId, id: &BlobId, stage: Stage) -> PathBuf {
        let name = hex::encode(id.0);
        match stage {
            Stage::Complete => self.context_dir(ctx).join(name),
            Stage::Partial | Stage::Upload => self.context_dir(ctx).join(PARTIAL).join(name),
        }
    }

    /// A fresh directory for an upload.
    pub fn upload_dir(&self, ctx: &ContextId) -> io::Result<PathBuf> {
        let dir = self
            .context_dir(ctx)
            .join(UPLOAD)
            .join(hex::encode(crate::ids::random32()));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Where blob `id`'s parts are: its complete directory if there is
    /// one, else its partial one if that holds a manifest.
    pub fn locate(&self, ctx: &ContextId, id: &BlobId) -> Option<(PathBuf, Stage)> {
        for stage in [Stage::Complete, Stage::Partial] {
            let dir = self.dir(ctx, id, stage);
            if dir.join(MANIFEST).is_file() {
                return Some((dir, stage));
            }
        }
        None
    }

    /// Every context directory, by context.
    pub fn contexts(&self) -> Vec<(Option<ContextId>, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|e| {
                let id = parse32(&e.file_name().to_string_lossy()).map(ContextId);
                (id, e.path())
            })
            .collect()
    }

    /// Every blob directory of a context, with its stage and (but for
    /// uploads) its blob id.
    pub fn entries(&self, ctx: &ContextId) -> Vec<(Stage, Option<BlobId>, PathBuf)> {
        let base = self.context_dir(ctx);
        let mut out = Vec::new();
        let list = |dir: &Path| -> Vec<(String, PathBuf)> {
            std::fs::read_dir(dir)
                .map(|it| {
                    it.filter_map(Result::ok)
                        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                        .collect()
                })
                .unwrap_or_default()
        };
        for (name, path) in list(&base) {
            match name.as_str() {
                PARTIAL => {
                    for (n, p) in list(&path) {
                        out.push((Stage::Partial, parse32(&n).map(BlobId), p));
                    }
                }
                UPLOAD => {
                    for (_, p) in list(&path) {
                        out.push((Stage::Upload, None, p));
                    }
                }
                _ => out.push((Stage::Complete, parse32(&name).map(BlobId), path)),
            }
        }
        out
    }

    /// Moves a finished upload or fetch into place as blob `id`. If the
    /// blob is already there (the same bytes uploaded twice), `from` is
    /// dropped and the blob's grace period starts over.
    pub fn complete(&self, ctx: &ContextId, id: &BlobId, from: &Path) -> io::Result<()> {
        let to = self.dir(ctx, id, Stage::Complete);
        if to.join(MANIFEST).is_file() {
            std::fs::remove_dir_all(from)?;
            return touch(&to.join(MANIFEST));
        }
        if to.exists() {
            // A directory without a manifest is no blob (an interrupted
            // deletion): replace it.
            std::fs::remove_dir_all(&to)?;
        }
        std::fs::rename(from, &to)?;
        touch(&to.join(MANIFEST))
    }
}

/// Reads a part; `None` if the file is not there.
pub(crate) fn read_part(dir: &Path, name: &str) -> io::Result<Option<Sealed>> {
    use std::io::Read;
    let file = match std::fs::File::open(dir.join(name)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(MAX_PART_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PART_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than any blob part", dir.join(name).display()),
        ));
    }
    Sealed::from_file(bytes).map(Some).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a blob part", dir.join(name).display()),
        )
    })
}

/// Writes a part under a temporary name, then renames it into place.
pub(crate) fn write_part(dir: &Path, name: &str, part: &Sealed) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{name}-{}",
        hex::encode(&crate::ids::random32()[..8])
    ));
    let written =
        std::fs::write(&tmp, part.to_file()).and_then(|()| std::fs::rename(&tmp, dir.join(name)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Whether chunk `index` has a file in `dir`.
pub(crate) fn has_chunk(dir: &Path, index: u32) -> bool {
    dir.join(index.to_string()).is_file()
}

/// Deletes a part (a chunk found corrupt).
pub(crate) fn remove_part(dir: &Path, name: &str) {
    if let Err(e) = std::fs::remove_file(dir.join(name))
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), name, "removing a corrupt blob part: {e}");
    }
}

/// Resets a file's modification time to now: the start of a blob's grace
/// period.
pub(crate) fn touch(path: &Path) -> io::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now())
}

/// How long ago a blob directory's grace period started: its manifest's
/// modification time, or the directory's if it has none yet.
pub(crate) fn age(dir: &Path) -> Option<Duration> {
    let meta = std::fs::metadata(dir.join(MANIFEST))
        .or_else(|_| std::fs::metadata(dir))
        .ok()?;
    Some(meta.modified().ok()?.elapsed().unwrap_or_default())
}

fn parse32(name: &str) -> Option<[u8; 32]> {
    hex::decode(name).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mero_sync::ids::DeltaId;

    #[test]
    fn parts_round_trip_and_uploads_complete_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::new(tmp.path().join("blobs"));
        let ctx = ContextId([1; 32]);
        let id = BlobId([2; 32]);
        let part = Sealed {
            epoch: DeltaId([3; 32]),
            bytes: vec![4; 100],
        };
        let up = store.upload_dir(&ctx).unwrap();
        write_part(&up, "0", &part).unwrap();
        write_part(&up, MANIFEST, &part).unwrap();
        assert_eq!(read_part(&up, "0").unwrap(), Some(part.clone()));
        assert_eq!(read_part(&up, "1").unwrap(), None);
        assert!(store.locate(&ctx, &id).is_none());
        store.complete(&ctx, &id, &up).unwrap();
        let (dir, stage) = store.locate(&ctx, &id).unwrap();
        assert_eq!(stage, Stage::Complete);
        assert!(has_chunk(&dir, 0) && !has_chunk(&dir, 1));
        // The same blob again: the second copy is dropped.
        let again = store.upload_dir(&ctx).unwrap();
        write_part(&again, MANIFEST, &part).unwrap();
        store.complete(&ctx, &id, &again).unwrap();
        assert!(!again.exists());
        let kinds: Vec<Stage> = store.entries(&ctx).iter().map(|e| e.0).collect();
        assert_eq!(kinds, vec![Stage::Complete]);
        assert!(age(&dir).unwrap() < Duration::from_secs(60));
        // A file that is not a part is an error, not a part.
        std::fs::write(dir.join("5"), b"short").unwrap();
        assert!(read_part(&dir, "5").is_err());
    }
}
