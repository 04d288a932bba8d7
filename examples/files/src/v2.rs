//! Version 2: files in folders, each with a revision.
//!
//! A file's key is its path, `folder/name` (a top-level file has no
//! folder), kept in path order so a folder lists with one prefix read.
//! Folders are those files were added to and those made with `mkdir`; they
//! stay when their files go. The upgrade from version 1 runs
//! [`Files::migrate`] once, on the upgrading node, inside the upgrade
//! delta: every node ends with the same migrated state.

use mero_sdk::blob::BlobId;
use mero_sdk::collections::{SortedMap, SortedSet, UnorderedMap};
use mero_sdk::{app, migration};
use serde::{Deserialize, Serialize};

use crate::{FilesError, Head, blob_size, check_mime, check_name, me, read_head};

/// A file: its blob, where it is, and its revision.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct File {
    /// The bytes.
    pub blob: BlobId,
    /// Their size, read from the blob when this revision was written.
    pub size: u64,
    /// Its MIME type, lowercase.
    pub mime: String,
    /// The member who wrote this revision (base58 member key).
    pub uploaded_by: String,
    /// Its folder: the path without its last part (`""` at the top).
    pub folder: String,
    /// 1 when added, one more at each [`Files::replace`].
    pub revision: u32,
}

/// A file as version 1 stored it: what the migration reads.
#[derive(Serialize, Deserialize)]
struct V1File {
    blob: BlobId,
    size: u64,
    mime: String,
    uploaded_by: String,
}

/// The replicated state.
#[app::state(version = 2)]
pub struct Files {
    /// Path → file, in path order.
    files: SortedMap<String, File>,
    /// Every folder, in order.
    folders: SortedSet<String>,
}

/// The folder of `path`: everything before its last `/`.
fn folder_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(folder, _)| folder)
}

/// Adds `folder` and every folder above it.
fn add_folders(folders: &mut SortedSet<String>, folder: &str) {
    if folder.is_empty() {
        return;
    }
    for (i, _) in folder.match_indices('/') {
        folders.insert(folder[..i].to_owned());
    }
    folders.insert(folder.to_owned());
}

#[app::logic]
impl Files {
    /// No files.
    #[app::init]
    pub fn init() -> Self {
        Self {
            files: SortedMap::new(),
            folders: SortedSet::new(),
        }
    }

    /// From version 1: each file keeps its blob, size, type and author,
    /// goes into the folder its name spells (`docs/a.txt` into `docs`),
    /// and starts at revision 1.
    #[app::migrate]
    pub fn migrate() -> Self {
        let old: UnorderedMap<String, V1File> = migration::field("files");
        // The same root map, rewritten entry by entry in the new shape.
        let mut files: SortedMap<String, File> = migration::field("files");
        let mut folders = SortedSet::new();
        for (path, f) in old.entries() {
            let folder = folder_of(&path).to_owned();
            add_folders(&mut folders, &folder);
            let file = File {
                blob: f.blob,
                size: f.size,
                mime: f.mime,
                uploaded_by: f.uploaded_by,
                folder,
                revision: 1,
            };
            files.insert(path, file);
        }
        Self { files, folders }
    }

    /// Adds the uploaded blob `blob` at `path` (its folders are made as
    /// needed). This node must hold the blob: upload it here first.
    pub fn add(
        &mut self,
        path: String,
        blob: BlobId,
        mime: Option<String>,
    ) -> Result<File, FilesError> {
        self.check_free(&path)?;
        let mime = check_mime(mime)?;
        let file = File {
            size: blob_size(&path, &blob)?,
            blob,
            mime,
            uploaded_by: me(),
            folder: folder_of(&path).to_owned(),
            revision: 1,
        };
        add_folders(&mut self.folders, &file.folder);
        self.files.insert(path, file.clone());
        Ok(file)
    }

    /// Writes a new revision of `path` with another blob (and MIME type,
    /// else the old one).
    pub fn replace(
        &mut self,
        path: String,
        blob: BlobId,
        mime: Option<String>,
    ) -> Result<File, FilesError> {
        let Some(old) = self.files.get(&path) else {
            return Err(FilesError::NotFound { name: path });
        };
        let mime = match mime {
            Some(m) => check_mime(Some(m))?,
            None => old.mime,
        };
        let file = File {
            size: blob_size(&path, &blob)?,
            blob,
            mime,
            uploaded_by: me(),
            folder: old.folder,
            revision: old.revision + 1,
        };
        self.files.insert(path, file.clone());
        Ok(file)
    }

    /// Moves `from` to `to` (another name, another folder, or both).
    pub fn rename(&mut self, from: String, to: String) -> Result<(), FilesError> {
        let Some(mut file) = self.files.get(&from) else {
            return Err(FilesError::NotFound { name: from });
        };
        if from == to {
            return Ok(());
        }
        self.check_free(&to)?;
        file.folder = folder_of(&to).to_owned();
        add_folders(&mut self.folders, &file.folder);
        self.files.remove(&from);
        self.files.insert(to, file);
        Ok(())
    }

    /// Removes `path` and returns what it was; its folder stays.
    pub fn remove(&mut self, path: String) -> Result<File, FilesError> {
        let Some(file) = self.files.get(&path) else {
            return Err(FilesError::NotFound { name: path });
        };
        self.files.remove(&path);
        Ok(file)
    }

    /// Makes `folder` (and those above it); `false` if it was there.
    pub fn mkdir(&mut self, folder: String) -> Result<bool, FilesError> {
        check_name(&folder)?;
        if self.files.contains_key(&folder) {
            return Err(FilesError::Exists { name: folder });
        }
        let new = !self.folders.contains(&folder);
        add_folders(&mut self.folders, &folder);
        Ok(new)
    }

    /// The file at `path`, if there is one.
    #[app::view]
    pub fn get(&self, path: String) -> Option<File> {
        self.files.get(&path)
    }

    /// The files directly in `folder` (`""`: the top), by path.
    #[app::view]
    pub fn list(&self, folder: String) -> Vec<(String, File)> {
        let prefix = if folder.is_empty() {
            String::new()
        } else {
            format!("{folder}/")
        };
        self.files
            .prefix(&prefix)
            .filter(|(_, f)| f.folder == folder)
            .collect()
    }

    /// Every folder, in order.
    #[app::view]
    pub fn folders(&self) -> Vec<String> {
        self.folders.to_vec()
    }

    /// The first `len` bytes of `path` (at most 64 KiB), read by the app
    /// from the blob: on a node that does not hold it yet, `Unavailable`
    /// while it is fetched.
    #[app::view]
    pub fn head(&self, path: String, len: u32) -> Result<Head, FilesError> {
        let Some(file) = self.files.get(&path) else {
            return Err(FilesError::NotFound { name: path });
        };
        read_head(&path, &file.blob, len)
    }

    /// Refuses a path that is not a valid name, is taken by a file, or is
    /// a folder.
    fn check_free(&self, path: &str) -> Result<(), FilesError> {
        check_name(path)?;
        if self.files.contains_key(path) || self.folders.contains(path) {
            return Err(FilesError::Exists {
                name: path.to_owned(),
            });
        }
        Ok(())
    }
}
