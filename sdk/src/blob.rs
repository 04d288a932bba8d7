//! Blobs: large files (photos, documents, media) that belong to the
//! context but live outside its state. A client uploads the bytes to a node
//! (`POST /contexts/{id}/blobs`, or `cargo mero blob put`) and gets a
//! [`BlobId`]; the app stores the id in state like any value; every member's
//! node fetches the bytes from the others when someone reads them.
//!
//! A node deletes a blob that no state refers to once its grace period is
//! over (an hour by default): store an uploaded blob's id promptly.
//!
//! ```
//! use mero_sdk::app;
//! use mero_sdk::blob::BlobId;
//! use mero_sdk::collections::{LwwRegister, UnorderedMap};
//!
//! #[app::state]
//! pub struct Album {
//!     photos: UnorderedMap<String, LwwRegister<BlobId>>,
//! }
//!
//! #[app::logic]
//! impl Album {
//!     #[app::init]
//!     pub fn init() -> Self {
//!         Self { photos: UnorderedMap::new() }
//!     }
//!
//!     pub fn add(&mut self, name: String, photo: BlobId) {
//!         self.photos.insert(name, LwwRegister::new(photo));
//!     }
//!
//!     /// The photo's first bytes: a view may read blobs too.
//!     pub fn header(&self, name: &str) -> app::Result<Vec<u8>> {
//!         let Some(photo) = self.photos.get(name) else {
//!             app::bail!("no photo {name}");
//!         };
//!         Ok(photo.get().read(0, 16)?)
//!     }
//! }
//!
//! # fn main() {
//! let photo = BlobId::for_tests(b"\x89PNG fake image bytes");
//! let mut node = mero_sdk::testing::Replica::<Album>::new(0);
//! node.init(serde_json::json!({})).unwrap();
//! node.execute("add", serde_json::json!({"name": "cat", "photo": photo})).unwrap();
//! let header = node.execute("header", serde_json::json!({"name": "cat"})).unwrap();
//! assert_eq!(header, serde_json::json!(b"\x89PNG fake image ".to_vec()));
//! # }
//! ```

use mero_abi::host::{BlobAnswer, HostRequest, HostResponse};

use crate::host::{self, expect_response};

/// Most bytes one [`BlobId::read`] asks the node for; reads of more are
/// split. A call may read at most 8 MiB of blobs in all (the node's limit).
pub const MAX_READ: u32 = 1 << 20;

/// The id of a blob of this context: the hash of its content (see
/// `docs/blobs.md`). In state and in JSON it is a string: `blob:` and 64
/// hex digits, so nodes can find every id the state refers to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId([u8; 32]);

/// Why a blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobError {
    /// The node does not hold the blob (yet): it is fetching it from the
    /// context's members, so a later call may succeed.
    Unavailable(String),
    /// [`BlobId::read_all`] found the blob larger than allowed.
    TooLarge {
        /// The blob's size.
        size: u64,
        /// The limit asked for.
        max: u64,
    },
}

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobError::Unavailable(m) => f.write_str(m),
            BlobError::TooLarge { size, max } => {
                write!(f, "the blob is {size} bytes, over the {max} asked for")
            }
        }
    }
}

impl std::error::Error for BlobError {}

impl BlobId {
    /// The id from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Up to `len` bytes from `offset` (fewer at the blob's end, none past
    /// it).
    pub fn read(&self, offset: u64, len: u32) -> Result<Vec<u8>, BlobError> {
        let mut out = Vec::new();
        let mut at = offset;
        let mut left = len;
        loop {
            let ask = left.min(MAX_READ);
            let (size, bytes) = self.raw_read(at, ask)?;
            let got = bytes.len() as u32;
            out.extend_from_slice(&bytes);
            left -= got;
            at += u64::from(got);
            if left == 0 || got < ask || at >= size {
                return Ok(out);
            }
        }
    }

    /// The blob's size in bytes.
    pub fn size(&self) -> Result<u64, BlobError> {
        Ok(self.raw_read(0, 0)?.0)
    }

    /// The whole blob, if it is at most `max` bytes.
    pub fn read_all(&self, max: u64) -> Result<Vec<u8>, BlobError> {
        let size = self.size()?;
        if size > max {
            return Err(BlobError::TooLarge { size, max });
        }
        let len = u32::try_from(size).map_err(|_| BlobError::TooLarge { size, max })?;
        self.read(0, len)
    }

    fn raw_read(&self, offset: u64, len: u32) -> Result<(u64, Vec<u8>), BlobError> {
        let req = HostRequest::BlobRead {
            id: self.0,
            offset,
            len,
        };
        match expect_response!(host::call(req), HostResponse::Blob(a) => a) {
            BlobAnswer::Bytes { size, bytes } => Ok((size, bytes)),
            BlobAnswer::Missing { message } => Err(BlobError::Unavailable(message)),
        }
    }
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&mero_abi::blob::format(&self.0))
    }
}

impl std::fmt::Debug for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobId({self})")
    }
}

impl std::str::FromStr for BlobId {
    type Err = String;

    /// Parses `blob:` and 64 hex digits (or the digits alone).
    ///
    /// ```
    /// use mero_sdk::blob::BlobId;
    /// let id: BlobId = "blob:0000000000000000000000000000000000000000000000000000000000000001"
    ///     .parse().unwrap();
    /// assert_eq!(id.as_bytes()[31], 1);
    /// assert!("photo.png".parse::<BlobId>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, String> {
        mero_abi::blob::parse(s)
            .map(Self)
            .ok_or_else(|| format!("`{s}` is not a blob id (expected `blob:` and 64 hex digits)"))
    }
}

crate::error::serde_as_string!(BlobId);

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::source;

/// Blobs for native tests: a store shared by every test replica of the
/// process, as if every node held every blob.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    use mero_abi::host::BlobAnswer;
    use sha2::{Digest, Sha256};

    use super::BlobId;

    /// Chunk size of blob ids (`mero_sync::blob::CHUNK_SIZE`).
    const CHUNK: usize = 1 << 20;

    type Store = Mutex<HashMap<[u8; 32], Arc<Vec<u8>>>>;

    fn store() -> &'static Store {
        static STORE: OnceLock<Store> = OnceLock::new();
        STORE.get_or_init(Mutex::default)
    }

    /// The id a node gives `bytes` (see `mero_sync::blob::Manifest::id`).
    pub(super) fn id_of(bytes: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"mero/blob/v1");
        h.update((bytes.len() as u64).to_le_bytes());
        for c in bytes.chunks(CHUNK) {
            h.update(Sha256::digest(c));
        }
        h.finalize().into()
    }

    impl BlobId {
        /// Stores `bytes` as a blob for native tests (`mero_sdk::testing`)
        /// and returns its id, the same a node would give them.
        pub fn for_tests(bytes: &[u8]) -> BlobId {
            let id = id_of(bytes);
            store()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id, Arc::new(bytes.to_vec()));
            BlobId(id)
        }
    }

    struct TestBlobs;

    impl mero_engine::BlobSource for TestBlobs {
        fn read(&self, id: &[u8; 32], offset: u64, len: u32) -> BlobAnswer {
            let found = store()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(id)
                .cloned();
            let Some(bytes) = found else {
                return BlobAnswer::Missing {
                    message: format!(
                        "{} is not stored: add it in tests with BlobId::for_tests",
                        BlobId(*id)
                    ),
                };
            };
            let size = bytes.len() as u64;
            let start = offset.min(size) as usize;
            let end = (start as u64).saturating_add(u64::from(len)).min(size) as usize;
            BlobAnswer::Bytes {
                size,
                bytes: bytes[start..end].to_vec(),
            }
        }
    }

    /// What native test calls read blobs through.
    pub(crate) fn source() -> Arc<dyn mero_engine::BlobSource> {
        Arc::new(TestBlobs)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ids_match_the_nodes() {
            // The empty blob's id, as mero-sync's known-answer test has it.
            let mut expect = Sha256::new();
            expect.update(b"mero/blob/v1\0\0\0\0\0\0\0\0");
            let expect: [u8; 32] = expect.finalize().into();
            assert_eq!(id_of(b""), expect);
            assert_ne!(id_of(&vec![0; CHUNK + 1]), id_of(&vec![0; CHUNK]));
            // The known answer mero-sync checks too (computed with Python's
            // hashlib from the definition).
            let pattern: Vec<u8> = (0..CHUNK + 1).map(|i| (i % 251) as u8).collect();
            assert_eq!(
                BlobId(id_of(&pattern)).to_string(),
                "blob:5d4bb04a7b42b6823959365511196ffa7a2c7ea16de086638b772ccdc0df9c41"
            );
        }
    }
}
