//! Version 1: one folder of files, name → file.
//!
//! Each name is last-writer-wins: two members adding the same name at once
//! end with one of the two files everywhere; a rename is a remove and an
//! add, so two concurrent renames of one file leave it under both new names.

use mero_sdk::app;
use mero_sdk::blob::BlobId;
use mero_sdk::collections::UnorderedMap;
use serde::{Deserialize, Serialize};

use crate::{FilesError, Head, blob_size, check_mime, check_name, me, read_head};

/// A file: its blob, and what the app knows of it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct File {
    /// The bytes.
    pub blob: BlobId,
    /// Their size, read from the blob when the file was added.
    pub size: u64,
    /// Its MIME type, lowercase.
    pub mime: String,
    /// The member who added it (base58 member key).
    pub uploaded_by: String,
}

/// The replicated state: file name → file.
#[app::state]
pub struct Files {
    files: UnorderedMap<String, File>,
}

#[app::logic]
impl Files {
    /// No files.
    #[app::init]
    pub fn init() -> Self {
        Self {
            files: UnorderedMap::new(),
        }
    }

    /// Adds the uploaded blob `blob` as `name` (MIME type `mime`, else
    /// `application/octet-stream`). This node must hold the blob: upload
    /// it here first.
    pub fn add(
        &mut self,
        name: String,
        blob: BlobId,
        mime: Option<String>,
    ) -> Result<File, FilesError> {
        check_name(&name)?;
        if self.files.contains(&name) {
            return Err(FilesError::Exists { name });
        }
        let mime = check_mime(mime)?;
        let file = File {
            size: blob_size(&name, &blob)?,
            blob,
            mime,
            uploaded_by: me(),
        };
        self.files.insert(name, file.clone());
        Ok(file)
    }

    /// Renames `from` to `to`, which must be free.
    pub fn rename(&mut self, from: String, to: String) -> Result<(), FilesError> {
        let Some(file) = self.files.get(&from) else {
            return Err(FilesError::NotFound { name: from });
        };
        check_name(&to)?;
        if from == to {
            return Ok(());
        }
        if self.files.contains(&to) {
            return Err(FilesError::Exists { name: to });
        }
        self.files.remove(&from);
        self.files.insert(to, file);
        Ok(())
    }

    /// Removes `name` and returns what it was. The blob stays readable
    /// until the nodes collect it (no entry refers to it any more).
    pub fn remove(&mut self, name: String) -> Result<File, FilesError> {
        let Some(file) = self.files.get(&name) else {
            return Err(FilesError::NotFound { name });
        };
        self.files.remove(&name);
        Ok(file)
    }

    /// The file `name`, if there is one.
    #[app::view]
    pub fn get(&self, name: String) -> Option<File> {
        self.files.get(&name)
    }

    /// Every file, by name.
    #[app::view]
    pub fn list(&self) -> Vec<(String, File)> {
        self.files.entries()
    }

    /// The first `len` bytes of `name` (at most 64 KiB), read by the app
    /// from the blob: on a node that does not hold it yet, `Unavailable`
    /// while it is fetched.
    #[app::view]
    pub fn head(&self, name: String, len: u32) -> Result<Head, FilesError> {
        let Some(file) = self.files.get(&name) else {
            return Err(FilesError::NotFound { name });
        };
        read_head(&name, &file.blob, len)
    }
}
