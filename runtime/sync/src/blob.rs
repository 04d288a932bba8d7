//! Blobs: large, immutable, content-addressed byte strings that belong to a
//! context and live outside its delta log.
//!
//! A blob is cut into fixed [`CHUNK_SIZE`] chunks of its plaintext (the last
//! one shorter). Its [`Manifest`] lists its size and the sha256 of each
//! chunk; its [`BlobId`] is the sha256 of the manifest ([`Manifest::id`]).
//! So the id names the plaintext, and a node that knows the id checks the
//! manifest it is sent against it, then every chunk against the manifest,
//! before keeping anything.
//!
//! Chunks and manifests are sealed (XChaCha20-Poly1305) with a [`BlobKey`]
//! derived from a key epoch's key, at rest and on the wire; each sealed part
//! records its epoch ([`Sealed`]), so later epochs still open old blobs,
//! while a member removed before an epoch cannot open what is sealed in it.
//! A chunk is sealed with its own hash as associated data, a manifest with
//! its blob id: a sealed part cannot be passed off as another.
//!
//! What a node does with a part a peer sent is decided here
//! ([`open_chunk`], [`open_manifest`]): the node only moves bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::ContextKey;
use crate::ids::{ContextId, DeltaId, sha256};

/// Bytes of plaintext in every chunk but a blob's last.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Most chunks a manifest may list (64 GiB): bounds what a decoded manifest
/// can make a node allocate. Nodes set their own, smaller, blob size limit.
pub const MAX_CHUNKS: usize = 1 << 16;
/// Bytes sealing adds to a part (nonce and tag).
pub const SEAL_OVERHEAD: usize = 24 + 16;

const ID_DOMAIN: &[u8] = b"mero/blob/v1";
const KEY_DOMAIN: &[u8] = b"mero/blob-key/v1";
const CHUNK_AAD: &[u8] = b"mero/blob-chunk/v1";
const MANIFEST_AAD: &[u8] = b"mero/blob-manifest/v1";

/// A blob's id: the sha256 of its [`Manifest`]. Its text form is
/// `blob:` and 64 hex digits ([`mero_abi::blob`]).
///
/// ```
/// use mero_sync::blob::BlobId;
/// let id: BlobId = "blob:0101010101010101010101010101010101010101010101010101010101010101"
///     .parse().unwrap();
/// assert_eq!(id, BlobId([1; 32]));
/// assert_eq!(id.to_string().parse::<BlobId>().unwrap(), id);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlobId(pub [u8; 32]);

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
    fn from_str(s: &str) -> Result<Self, String> {
        mero_abi::blob::parse(s)
            .map(BlobId)
            .ok_or_else(|| format!("`{s}` is not a blob id (expected `blob:` and 64 hex digits)"))
    }
}

/// What a blob is made of: its size and the sha256 of each chunk's
/// plaintext, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Bytes in the blob.
    pub size: u64,
    /// sha256 of each chunk.
    pub chunks: Vec<[u8; 32]>,
}

/// Why a manifest is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The chunk count does not follow from the size.
    #[error("a blob of {size} bytes has {expected} chunks, not {got}")]
    ChunkCount {
        /// The claimed size.
        size: u64,
        /// Chunks that size takes.
        expected: u64,
        /// Chunks listed.
        got: usize,
    },
    /// More chunks than [`MAX_CHUNKS`].
    #[error("a blob has at most {MAX_CHUNKS} chunks")]
    TooLarge,
}

impl Manifest {
    /// The blob id: sha256 over a domain tag, the size (little endian) and
    /// the chunk hashes.
    ///
    /// ```
    /// use mero_sync::blob::{Manifest, ManifestBuilder};
    /// let mut b = ManifestBuilder::default();
    /// b.push(b"hello");
    /// let m = b.finish();
    /// assert_eq!(m.size, 5);
    /// assert_eq!(m.id(), Manifest { size: 5, chunks: m.chunks.clone() }.id());
    /// assert_ne!(m.id(), Manifest { size: 6, chunks: m.chunks.clone() }.id());
    /// ```
    pub fn id(&self) -> BlobId {
        let mut b = Vec::with_capacity(ID_DOMAIN.len() + 8 + 32 * self.chunks.len());
        b.extend_from_slice(ID_DOMAIN);
        b.extend_from_slice(&self.size.to_le_bytes());
        for c in &self.chunks {
            b.extend_from_slice(c);
        }
        BlobId(sha256(&b))
    }

    /// Checks the chunk count against the size.
    pub fn check(&self) -> Result<(), ManifestError> {
        if self.chunks.len() > MAX_CHUNKS {
            return Err(ManifestError::TooLarge);
        }
        let expected = self.size.div_ceil(CHUNK_SIZE as u64);
        if expected != self.chunks.len() as u64 {
            return Err(ManifestError::ChunkCount {
                size: self.size,
                expected,
                got: self.chunks.len(),
            });
        }
        Ok(())
    }

    /// How many chunks.
    pub fn count(&self) -> u32 {
        self.chunks.len() as u32
    }

    /// Plaintext bytes of chunk `index`; `None` past the last.
    pub fn chunk_len(&self, index: u32) -> Option<usize> {
        let i = index as usize;
        if i >= self.chunks.len() {
            return None;
        }
        let start = i as u64 * CHUNK_SIZE as u64;
        Some((self.size - start).min(CHUNK_SIZE as u64) as usize)
    }
}

/// Builds a manifest from a blob's chunks as they come.
#[derive(Debug, Default, Clone)]
pub struct ManifestBuilder {
    size: u64,
    chunks: Vec<[u8; 32]>,
}

impl ManifestBuilder {
    /// Adds the next chunk (every chunk but the last must be exactly
    /// [`CHUNK_SIZE`] bytes; the caller cuts them). Returns its hash.
    pub fn push(&mut self, chunk: &[u8]) -> [u8; 32] {
        let h = sha256(chunk);
        self.size += chunk.len() as u64;
        self.chunks.push(h);
        h
    }

    /// Bytes so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Chunks so far.
    pub fn count(&self) -> u32 {
        self.chunks.len() as u32
    }

    /// The manifest.
    pub fn finish(self) -> Manifest {
        Manifest {
            size: self.size,
            chunks: self.chunks,
        }
    }
}

/// The id of `bytes` as one blob (for tests and small inputs: nodes hash
/// chunk by chunk as bytes stream in).
///
/// ```
/// use mero_sync::blob::{CHUNK_SIZE, id_of};
/// let big = vec![7u8; CHUNK_SIZE + 1];
/// assert_ne!(id_of(&big), id_of(&big[..CHUNK_SIZE]));
/// ```
pub fn id_of(bytes: &[u8]) -> BlobId {
    let mut b = ManifestBuilder::default();
    for c in bytes.chunks(CHUNK_SIZE) {
        b.push(c);
    }
    b.finish().id()
}

/// A sealed chunk or manifest, and the key epoch it is sealed in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The epoch whose key sealed it.
    pub epoch: DeltaId,
    /// Nonce and ciphertext.
    #[serde(with = "as_bytes")]
    pub bytes: Vec<u8>,
}

/// A byte vector as serde bytes rather than a sequence of `u8`: the same
/// postcard encoding (a length, then the bytes), without a call per byte.
mod as_bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                // Bounded by what the decoder holds, not by a claimed length.
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({:?}, {} bytes)", self.epoch, self.bytes.len())
    }
}

impl Sealed {
    /// The file form: the epoch's 32 bytes, then the sealed bytes.
    pub fn to_file(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.bytes.len());
        out.extend_from_slice(&self.epoch.0);
        out.extend_from_slice(&self.bytes);
        out
    }

    /// Parses [`Sealed::to_file`]'s form; `None` if too short.
    pub fn from_file(mut bytes: Vec<u8>) -> Option<Self> {
        if bytes.len() < 32 + SEAL_OVERHEAD {
            return None;
        }
        let rest = bytes.split_off(32);
        let epoch = DeltaId(bytes.try_into().ok()?);
        Some(Self { epoch, bytes: rest })
    }
}

/// The key blobs of one context are sealed with in one key epoch.
#[derive(Clone)]
pub struct BlobKey(ContextKey);

impl BlobKey {
    /// The blob key of `context` for the epoch whose key is `epoch_key`.
    ///
    /// ```
    /// use mero_sync::blob::{BlobKey, id_of};
    /// use mero_sync::ContextKey;
    /// use mero_sync::ids::ContextId;
    /// let key = BlobKey::of(&ContextId([1; 32]), &ContextKey::generate());
    /// let hash = mero_sync::ids::sha256(b"chunk");
    /// let sealed = key.seal_chunk(&hash, b"chunk");
    /// assert_eq!(key.open_chunk(&hash, &sealed).unwrap(), b"chunk");
    /// // Bound to its hash: it cannot stand for another chunk.
    /// assert!(key.open_chunk(&[0; 32], &sealed).is_none());
    /// ```
    pub fn of(context: &ContextId, epoch_key: &ContextKey) -> Self {
        let mut m = KEY_DOMAIN.to_vec();
        m.extend_from_slice(&context.0);
        m.extend_from_slice(&epoch_key.0);
        Self(ContextKey(sha256(&m)))
    }

    /// Seals a chunk whose plaintext hashes to `hash`.
    pub fn seal_chunk(&self, hash: &[u8; 32], plain: &[u8]) -> Vec<u8> {
        self.0.seal(plain, &aad(CHUNK_AAD, hash))
    }

    /// Opens a chunk and checks that its plaintext hashes to `hash`.
    pub fn open_chunk(&self, hash: &[u8; 32], sealed: &[u8]) -> Option<Vec<u8>> {
        let plain = self.0.open(sealed, &aad(CHUNK_AAD, hash))?;
        (sha256(&plain) == *hash).then_some(plain)
    }

    /// Seals the manifest of blob `id`.
    pub fn seal_manifest(&self, id: &BlobId, manifest: &Manifest) -> Vec<u8> {
        let plain = postcard::to_allocvec(manifest).expect("manifests serialize");
        self.0.seal(&plain, &aad(MANIFEST_AAD, &id.0))
    }

    /// Opens the manifest of blob `id` and checks it is well formed and
    /// hashes to `id`.
    pub fn open_manifest(&self, id: &BlobId, sealed: &[u8]) -> Option<Manifest> {
        let plain = self.0.open(sealed, &aad(MANIFEST_AAD, &id.0))?;
        let m: Manifest = postcard::from_bytes(&plain).ok()?;
        (m.check().is_ok() && m.id() == *id).then_some(m)
    }
}

fn aad(domain: &[u8], id: &[u8; 32]) -> Vec<u8> {
    let mut a = domain.to_vec();
    a.extend_from_slice(id);
    a
}

/// Why a sealed part from a peer was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PartFault {
    /// Sealed in an epoch whose key this node does not hold (yet): not the
    /// sender's fault, another peer or a later try may do.
    #[error("sealed in a key epoch this node does not hold")]
    UnknownEpoch,
    /// It does not open, or is not what was asked for: only a broken or
    /// lying sender sends this.
    #[error("the part does not open or does not match its hash")]
    Garbage,
}

/// The epoch keys a node holds for a context, as blob keys.
#[derive(Clone, Default)]
pub struct BlobKeys {
    context: Option<ContextId>,
    keys: BTreeMap<DeltaId, BlobKey>,
    current: Option<DeltaId>,
}

impl BlobKeys {
    /// The blob keys of `context` from its epoch keys; `current` is the
    /// epoch new parts are sealed in.
    pub fn new(
        context: &ContextId,
        epoch_keys: &BTreeMap<DeltaId, ContextKey>,
        current: DeltaId,
    ) -> Self {
        Self {
            context: Some(*context),
            keys: epoch_keys
                .iter()
                .map(|(e, k)| (*e, BlobKey::of(context, k)))
                .collect(),
            current: epoch_keys.contains_key(&current).then_some(current),
        }
    }

    /// The epoch new parts are sealed in and its key, if held.
    pub fn current(&self) -> Option<(DeltaId, &BlobKey)> {
        let e = self.current?;
        Some((e, self.keys.get(&e)?))
    }

    /// The key of `epoch`, if held.
    pub fn get(&self, epoch: &DeltaId) -> Option<&BlobKey> {
        self.keys.get(epoch)
    }

    /// The context.
    pub fn context(&self) -> Option<ContextId> {
        self.context
    }
}

/// Opens chunk `index` of `manifest` as a peer sent it, checking it against
/// the manifest: the plaintext, or why it is refused.
pub fn open_chunk(
    keys: &BlobKeys,
    manifest: &Manifest,
    index: u32,
    part: &Sealed,
) -> Result<Vec<u8>, PartFault> {
    let hash = manifest
        .chunks
        .get(index as usize)
        .ok_or(PartFault::Garbage)?;
    let key = keys.get(&part.epoch).ok_or(PartFault::UnknownEpoch)?;
    let plain = key
        .open_chunk(hash, &part.bytes)
        .ok_or(PartFault::Garbage)?;
    if Some(plain.len()) != manifest.chunk_len(index) {
        return Err(PartFault::Garbage);
    }
    Ok(plain)
}

/// Opens the manifest of blob `id` as a peer sent it.
pub fn open_manifest(keys: &BlobKeys, id: &BlobId, part: &Sealed) -> Result<Manifest, PartFault> {
    let key = keys.get(&part.epoch).ok_or(PartFault::UnknownEpoch)?;
    key.open_manifest(id, &part.bytes).ok_or(PartFault::Garbage)
}

/// A stored part re-sealed for a requester that asked for `epoch`: as
/// stored if it is already sealed in that epoch, else opened with its own
/// epoch's key and sealed again with `epoch`'s (a member that joined after
/// the part was sealed holds only later keys). `None` if a key is missing
/// or the stored part does not open. `aad_id` is the chunk hash (chunks)
/// or the blob id (manifests), as [`Part`] says.
pub fn reseal(keys: &BlobKeys, stored: Sealed, epoch: &DeltaId, part: Part) -> Option<Sealed> {
    if stored.epoch == *epoch {
        return Some(stored);
    }
    let (from, to) = (keys.get(&stored.epoch)?, keys.get(epoch)?);
    let (domain, id) = match part {
        Part::Chunk(h) => (CHUNK_AAD, h),
        Part::Manifest(id) => (MANIFEST_AAD, id.0),
    };
    let plain = from.0.open(&stored.bytes, &aad(domain, &id))?;
    Some(Sealed {
        epoch: *epoch,
        bytes: to.0.seal(&plain, &aad(domain, &id)),
    })
}

/// Which part [`reseal`] handles.
#[derive(Debug, Clone, Copy)]
pub enum Part {
    /// A chunk with this plaintext hash.
    Chunk([u8; 32]),
    /// The manifest of this blob.
    Manifest(BlobId),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(epochs: &[(DeltaId, ContextKey)], current: DeltaId) -> BlobKeys {
        let map = epochs.iter().cloned().collect();
        BlobKeys::new(&ContextId([5; 32]), &map, current)
    }

    #[test]
    fn ids_are_those_of_the_chunks() {
        let bytes: Vec<u8> = (0..(2 * CHUNK_SIZE + 10)).map(|i| i as u8).collect();
        let mut b = ManifestBuilder::default();
        for c in bytes.chunks(CHUNK_SIZE) {
            b.push(c);
        }
        let m = b.finish();
        m.check().unwrap();
        assert_eq!(m.count(), 3);
        assert_eq!(m.chunk_len(2), Some(10));
        assert_eq!(m.chunk_len(3), None);
        assert_eq!(m.id(), id_of(&bytes));
        // Known answers, computed independently (Python's hashlib, from the
        // definition in docs/blobs.md); the SDK's native test store checks
        // the same ones.
        let pattern: Vec<u8> = (0..CHUNK_SIZE + 1).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            id_of(&pattern).to_string(),
            "blob:5d4bb04a7b42b6823959365511196ffa7a2c7ea16de086638b772ccdc0df9c41"
        );
        let empty = Manifest {
            size: 0,
            chunks: vec![],
        };
        empty.check().unwrap();
        assert_eq!(
            empty.id().to_string(),
            "blob:".to_owned() + &hex(&sha256(b"mero/blob/v1\0\0\0\0\0\0\0\0"))
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn malformed_manifests_are_refused() {
        let m = Manifest {
            size: CHUNK_SIZE as u64 + 1,
            chunks: vec![[0; 32]],
        };
        assert!(matches!(m.check(), Err(ManifestError::ChunkCount { .. })));
        let huge = Manifest {
            size: u64::MAX,
            chunks: vec![[0; 32]; MAX_CHUNKS + 1],
        };
        assert_eq!(huge.check(), Err(ManifestError::TooLarge));
    }

    #[test]
    fn peers_parts_are_checked() {
        let (e1, e2) = (DeltaId([1; 32]), DeltaId([2; 32]));
        let (k1, k2) = (ContextKey::generate(), ContextKey::generate());
        let sender = keys(&[(e1, k1.clone()), (e2, k2.clone())], e2);
        let chunk = vec![9u8; 100];
        let mut b = ManifestBuilder::default();
        let h = b.push(&chunk);
        let m = b.finish();
        let id = m.id();
        let (epoch, key) = sender.current().unwrap();
        let part = Sealed {
            epoch,
            bytes: key.seal_chunk(&h, &chunk),
        };
        assert_eq!(open_chunk(&sender, &m, 0, &part).unwrap(), chunk);
        assert_eq!(open_chunk(&sender, &m, 1, &part), Err(PartFault::Garbage));
        // A receiver that lacks the epoch: not garbage.
        let old = keys(&[(e1, k1.clone())], e1);
        assert_eq!(open_chunk(&old, &m, 0, &part), Err(PartFault::UnknownEpoch));
        // Re-sealed for the old epoch, it opens there.
        let back = reseal(&sender, part.clone(), &e1, Part::Chunk(h)).unwrap();
        assert_eq!(open_chunk(&old, &m, 0, &back).unwrap(), chunk);
        // Tampered: garbage.
        let mut bad = part.clone();
        let last = bad.bytes.len() - 1;
        bad.bytes[last] ^= 1;
        assert_eq!(open_chunk(&sender, &m, 0, &bad), Err(PartFault::Garbage));
        // A manifest sealed for another id does not open as this one.
        let sealed = Sealed {
            epoch,
            bytes: key.seal_manifest(&id, &m),
        };
        assert_eq!(open_manifest(&sender, &id, &sealed).unwrap(), m);
        assert_eq!(
            open_manifest(&sender, &BlobId([0; 32]), &sealed),
            Err(PartFault::Garbage)
        );
        // A different, well-formed manifest sealed under the right id.
        let liar = Manifest {
            size: 1,
            chunks: vec![[3; 32]],
        };
        let lie = Sealed {
            epoch,
            bytes: key.seal_manifest(&id, &liar),
        };
        assert_eq!(open_manifest(&sender, &id, &lie), Err(PartFault::Garbage));
        // The wire form is postcard's for a byte vector, and round-trips.
        let wire = postcard::to_allocvec(&part).unwrap();
        let plain: (DeltaId, Vec<u8>) = postcard::from_bytes(&wire).unwrap();
        assert_eq!((plain.0, &plain.1), (part.epoch, &part.bytes));
        assert_eq!(postcard::from_bytes::<Sealed>(&wire).unwrap(), part);
        // The file form round-trips.
        assert_eq!(Sealed::from_file(part.to_file()), Some(part));
        assert_eq!(Sealed::from_file(vec![0; 40]), None);
    }
}
