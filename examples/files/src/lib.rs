//! files: shared files on blobs, the mero example of large data in an app.
//!
//! A file's bytes are a blob: a client uploads them to any member's node
//! (`POST /contexts/{id}/blobs`, or `cargo mero blob put FILE`) and gets a
//! blob id; `add` stores the id under a name with the size the app reads
//! from the blob itself, a MIME type and the member who added it. Every
//! member's node fetches the bytes from the others when someone downloads
//! (`GET /contexts/{id}/blobs/{blob}`) or the app reads them. The state
//! holds only ids, so it stays small whatever the files weigh; a blob no
//! entry refers to any more is collected by the nodes after a grace period.
//!
//! Two versions show an upgrade with a state migration:
//!
//! - [`v1`]: one folder, name → file: `add`, `rename`, `remove`, `list`,
//!   `get`, and `head`, a view that reads a file's first bytes inside the
//!   app.
//! - [`v2`] (`--features v2`): paths in folders (in path order), a revision
//!   per file that `replace` bumps, `mkdir`; `#[app::state(version = 2)]`
//!   and an `#[app::migrate]` that files each v1 entry under the folder its
//!   name spells (`docs/a.txt` is `a.txt` in `docs`) at revision 1.
//!
//! Natively (`cargo test`) both versions are compiled, so tests upgrade a
//! replica from one to the other; a WASM build holds exactly one (the `v2`
//! feature picks which), since each exports the app's methods.
//!
//! What the app can check it does not take on trust: sizes come from the
//! blob, names and MIME types are validated, and every refusal is a typed
//! [`FilesError`] a client can tell apart. It must not read more of a blob
//! than a view needs ([`MAX_HEAD`]): a call's blob reads are limited.

use mero_sdk::app;
use mero_sdk::blob::{BlobError, BlobId};
use serde::{Deserialize, Serialize};

#[cfg(any(not(feature = "v2"), not(target_arch = "wasm32")))]
pub mod v1;
#[cfg(any(feature = "v2", not(target_arch = "wasm32")))]
pub mod v2;

/// Longest file name (or path), in bytes.
pub const MAX_NAME: usize = 255;

/// Most bytes [`v1::Files::head`] returns: a preview, well within the
/// node's per-call blob read limit.
pub const MAX_HEAD: u32 = 64 * 1024;

/// The MIME type of a file added without one.
pub const DEFAULT_MIME: &str = "application/octet-stream";

/// Why a call was refused. Clients get `{kind, code, data}`; the codes
/// follow HTTP's where one fits.
#[app::error]
#[derive(Debug, Clone, PartialEq)]
pub enum FilesError {
    /// No file by that name (or path).
    #[code(404)]
    NotFound { name: String },
    /// A file by that name exists already: rename or remove it first.
    #[code(409)]
    Exists { name: String },
    /// The name cannot be used, and why.
    #[code(400)]
    BadName { name: String, reason: String },
    /// Not a MIME type of the form `type/subtype`.
    #[code(415)]
    BadMime { mime: String },
    /// This node does not hold the file's blob yet and is fetching it from
    /// the other members: try again shortly. For `add`: upload the blob to
    /// this node first.
    #[code(503)]
    Unavailable { name: String, reason: String },
}

impl std::fmt::Display for FilesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilesError::NotFound { name } => write!(f, "no file named `{name}`"),
            FilesError::Exists { name } => {
                write!(f, "`{name}` exists already: rename or remove it first")
            }
            FilesError::BadName { name, reason } => write!(f, "bad name `{name}`: {reason}"),
            FilesError::BadMime { mime } => {
                write!(f, "`{mime}` is not a MIME type (type/subtype)")
            }
            FilesError::Unavailable { name, reason } => {
                write!(f, "the blob of `{name}` is not readable here yet: {reason}")
            }
        }
    }
}

/// The first bytes of a file, read by the app from its blob.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Head {
    /// The whole file's size.
    pub size: u64,
    /// Up to the asked number of bytes from the start.
    pub bytes: Vec<u8>,
    /// `bytes` as text, if they are UTF-8 (a character the cut split at
    /// the end is left out).
    pub text: Option<String>,
}

/// Checks a file name: 1 to [`MAX_NAME`] bytes of `/`-separated
/// segments, none empty, `.` or `..`, no control characters, no
/// surrounding spaces.
pub(crate) fn check_name(name: &str) -> Result<(), FilesError> {
    let bad = |reason: &str| {
        Err(FilesError::BadName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() {
        return bad("a name cannot be empty");
    }
    if name.len() > MAX_NAME {
        return bad("a name has at most 255 bytes");
    }
    if name.chars().any(char::is_control) {
        return bad("a name cannot hold control characters");
    }
    if name.trim() != name {
        return bad("a name cannot start or end with spaces");
    }
    if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("each `/`-separated part must be a name, not empty, `.` or `..`");
    }
    Ok(())
}

/// The MIME type to store: `mime` lowercased if it is `type/subtype`
/// (token characters only), [`DEFAULT_MIME`] if none was given.
pub(crate) fn check_mime(mime: Option<String>) -> Result<String, FilesError> {
    let Some(mime) = mime else {
        return Ok(DEFAULT_MIME.to_owned());
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match mime.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => Ok(mime.to_ascii_lowercase()),
        _ => Err(FilesError::BadMime { mime }),
    }
}

/// The executing member's key, as the node's API shows members.
pub(crate) fn me() -> String {
    bs58::encode(mero_sdk::env::executor_id()).into_string()
}

fn unavailable(name: &str, e: BlobError) -> FilesError {
    FilesError::Unavailable {
        name: name.to_owned(),
        reason: e.to_string(),
    }
}

/// The size of the blob a file `name` is being added with, read from the
/// blob (so it cannot be wrong).
pub(crate) fn blob_size(name: &str, blob: &BlobId) -> Result<u64, FilesError> {
    blob.size().map_err(|e| unavailable(name, e))
}

/// The first `len` bytes (at most [`MAX_HEAD`]) of file `name`'s blob.
pub(crate) fn read_head(name: &str, blob: &BlobId, len: u32) -> Result<Head, FilesError> {
    let size = blob_size(name, blob)?;
    let bytes = blob
        .read(0, len.min(MAX_HEAD))
        .map_err(|e| unavailable(name, e))?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(s) => Some(s.to_owned()),
        // Only the last character is cut: the rest is text.
        Err(e) if e.error_len().is_none() => {
            Some(String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned())
        }
        Err(_) => None,
    };
    Ok(Head { size, bytes, text })
}
