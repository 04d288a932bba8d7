//! Snapshot joins: a joiner of a context with a long history gets the
//! replica's [`Checkpoint`], the control deltas in full, signed headers of
//! the frontier and the state, instead of every delta; then it continues
//! with deltas like any member.
//!
//! ```text
//! joiner -> member  Snapshot { min_len }        member answers Offer { manifest } (or none)
//! joiner -> member  SnapshotPart { id, index }  member answers Part { bytes }, for each part
//! joiner            install(): checks, then the replica and state to store
//! ```
//!
//! What [`install`] checks, each failure a [`SnapshotError`] (the joiner
//! drops the offer and replays instead):
//!
//! 1. bounds: total bytes, part count, every part's hash, decoded counts;
//! 2. the manifest: the joiner's context and the heads the checkpoint
//!    lists, signed by `sender`, who must be an active member in the access
//!    the control deltas imply;
//! 3. every control delta, as [`Replica::from_checkpoint`] does: signed,
//!    listed, opening under its epoch's key, allowed on the view it was
//!    made on, the views rebuilt from them alone;
//! 4. the frontier: every head and every author's newest delta has a
//!    header its author signed, whose id, seq and clock are the entry's;
//!    each head's parents are entries and its height is one more than
//!    theirs; the invitation's heads are entries;
//! 5. the state: it loads, is not shallow, and holds exactly the ops the
//!    frontier's signed clocks count for each author (none missing, none
//!    extra, no unknown writer; equivocators excepted).
//!
//! What stays trusted in the sender: the *content* of call ops (the state
//! beyond which ops it holds), and the ids, heights and views of call
//! deltas below the frontier. So a lying member can hand a joiner a wrong
//! state, or wrong access views for old parents, under its own signature:
//! the manifest is kept as evidence. `docs/security.md` says what follows.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::crypto::{self, ContextKey, MemberSecret};
use crate::dag::Dag;
use crate::delta::{SignedDelta, SignedHeader};
use crate::ids::{ContextId, DeltaId, MemberKey, sha256};
use crate::replica::{Engine, Limits, Replica};

/// Bytes of one snapshot part (the last may be shorter): well under the
/// transport's largest response.
pub const PART_BYTES: usize = 8 << 20;
/// Default most bytes of a snapshot a joiner accepts.
pub const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 1 << 30;
/// Most control deltas a snapshot may carry.
pub const MAX_CONTROL: usize = 65_536;

const MANIFEST_DOMAIN: &[u8] = b"mero/snapshot-manifest/v1";

/// What a joiner installs: the replica's checkpoint, the control deltas
/// (`control[i]` at position `checkpoint.control[i]`), the signed headers
/// of the frontier, and the state (a Loro snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The DAG and views.
    pub checkpoint: Checkpoint,
    /// Every control delta, in control order.
    pub control: Vec<SignedDelta>,
    /// The heads and each author's newest delta, as their authors signed them.
    pub frontier: Vec<SignedHeader>,
    /// The state at the heads.
    #[serde(with = "crate::ids::bytes")]
    pub state: Vec<u8>,
}

/// A snapshot's description, signed by the member that offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The context.
    pub context: ContextId,
    /// The heads the snapshot is at.
    pub heads: Vec<DeltaId>,
    /// Deltas it covers.
    pub len: u64,
    /// Bytes of the encoded snapshot.
    pub bytes: u64,
    /// SHA-256 of each part, in order.
    pub parts: Vec<[u8; 32]>,
    /// The member offering it.
    pub sender: MemberKey,
    /// `sender`'s signature over the other fields.
    pub signature: Vec<u8>,
}

impl Manifest {
    fn signed_bytes(&self) -> Vec<u8> {
        let fields = (
            &self.context,
            &self.heads,
            self.len,
            self.bytes,
            &self.parts,
            &self.sender,
        );
        postcard::to_allocvec(&fields).expect("manifest fields serialize")
    }

    /// The manifest's id: what part requests name.
    pub fn id(&self) -> [u8; 32] {
        sha256(&self.signed_bytes())
    }

    /// Whether `sender` signed it.
    pub fn verify(&self) -> bool {
        crypto::verify(&self.sender, MANIFEST_DOMAIN, &self.id(), &self.signature)
    }
}

/// Why a snapshot was not installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Over the joiner's bounds.
    #[error("snapshot too large: {0}")]
    TooLarge(String),
    /// A part is missing or its hash is not the manifest's.
    #[error("snapshot part {0} is missing or does not match the manifest")]
    BadPart(usize),
    /// The manifest is not signed by its sender, or names another context
    /// or other heads than the snapshot.
    #[error("the manifest is forged or does not describe the snapshot: {0}")]
    BadManifest(&'static str),
    /// The sender is not an active member where the snapshot stands.
    #[error("the snapshot's sender is not an active member")]
    NotMember,
    /// The bytes do not decode.
    #[error("the snapshot does not decode: {0}")]
    Decode(String),
    /// The checkpoint or a control delta fails.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A frontier header is missing, forged, or disagrees with its entry.
    #[error("bad frontier: {0}")]
    BadFrontier(String),
    /// The state does not load or holds other ops than the frontier counts.
    #[error("bad state: {0}")]
    BadState(String),
    /// The invitation's heads are not in the snapshot.
    #[error("the snapshot does not reach the invitation's heads")]
    Short,
}

/// What a joiner knows before it asks, from its invitation.
#[derive(Debug, Clone)]
pub struct Target {
    /// The context.
    pub context: ContextId,
    /// Its creator (bound to the context id by the invitation's check).
    pub creator: MemberKey,
    /// The heads the inviter had: a snapshot must include them.
    pub heads: Vec<DeltaId>,
}

/// Bounds a joiner puts on a snapshot.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotLimits {
    /// Most bytes.
    pub max_bytes: u64,
    /// The replica's receive limits.
    pub replica: Limits,
}

/// A checked snapshot: the replica and what to store with it.
#[derive(Debug)]
pub struct Installed {
    /// The replica, equal to the sender's.
    pub replica: Replica,
    /// Epoch keys learned from control deltas (to persist).
    pub keys: Vec<(DeltaId, ContextKey)>,
    /// The snapshot (its control deltas and state are stored as they are).
    pub snapshot: Snapshot,
}

/// The ids whose signed headers a snapshot carries: the heads and each
/// author's newest delta.
pub fn frontier_ids(dag: &Dag) -> Vec<DeltaId> {
    let mut ids = dag.heads();
    for author in dag.vector().keys() {
        if let Some(id) = dag.by_seq(author, dag.seq_of(author)) {
            ids.push(id);
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

/// Encodes `snapshot`, cuts it into parts and signs their manifest.
pub fn build(snapshot: &Snapshot, sender: &MemberSecret) -> (Manifest, Vec<Vec<u8>>) {
    let bytes = postcard::to_allocvec(snapshot).expect("snapshots serialize");
    let parts: Vec<Vec<u8>> = bytes.chunks(PART_BYTES).map(<[u8]>::to_vec).collect();
    let mut m = Manifest {
        context: snapshot.checkpoint.context,
        heads: snapshot.checkpoint.heads.clone(),
        len: snapshot.checkpoint.entries.len() as u64,
        bytes: bytes.len() as u64,
        parts: parts.iter().map(|p| sha256(p)).collect(),
        sender: sender.public(),
        signature: Vec::new(),
    };
    m.signature = sender.sign(MANIFEST_DOMAIN, &m.id());
    (m, parts)
}

/// Checks a manifest before any part is fetched: its signature, context
/// and size. `Ok(parts)` is how many parts to fetch.
pub fn check_manifest(
    t: &Target,
    m: &Manifest,
    lim: &SnapshotLimits,
) -> Result<usize, SnapshotError> {
    if m.context != t.context {
        return Err(SnapshotError::BadManifest("another context"));
    }
    if !m.verify() {
        return Err(SnapshotError::BadManifest("bad signature"));
    }
    if m.bytes > lim.max_bytes {
        return Err(SnapshotError::TooLarge(format!(
            "{} bytes; at most {} accepted",
            m.bytes, lim.max_bytes
        )));
    }
    let parts = (m.bytes as usize).div_ceil(PART_BYTES);
    if m.parts.len() != parts {
        return Err(SnapshotError::BadManifest(
            "part count does not match the size",
        ));
    }
    Ok(parts)
}

/// Checks a fetched snapshot against the invitation and installs it into
/// a replica and `engine` (see the module docs for every check): [`open`],
/// [`check`], [`load_state`] and [`check_state`] in turn. A caller with
/// threads may run [`check`] and [`load_state`] at once.
pub fn install(
    t: &Target,
    m: &Manifest,
    parts: &[Vec<u8>],
    keys: impl IntoIterator<Item = (DeltaId, ContextKey)>,
    openers: Vec<MemberSecret>,
    lim: &SnapshotLimits,
    engine: &mut impl Engine,
) -> Result<Installed, SnapshotError> {
    let s = open(t, m, parts, lim)?;
    let (replica, keys) = check(t, m, &s, keys, openers, lim)?;
    load_state(&s, engine)?;
    check_state(&replica, engine)?;
    Ok(Installed {
        replica,
        keys,
        snapshot: s,
    })
}

/// Checks 1 and 2 of the module docs: the bounds, every part against the
/// manifest, and the decoded snapshot against the manifest's heads.
pub fn open(
    t: &Target,
    m: &Manifest,
    parts: &[Vec<u8>],
    lim: &SnapshotLimits,
) -> Result<Snapshot, SnapshotError> {
    let n = check_manifest(t, m, lim)?;
    if parts.len() != n {
        return Err(SnapshotError::BadPart(parts.len().min(n)));
    }
    let mut bytes = Vec::with_capacity(m.bytes as usize);
    for (i, (p, h)) in parts.iter().zip(&m.parts).enumerate() {
        if sha256(p) != *h {
            return Err(SnapshotError::BadPart(i));
        }
        bytes.extend_from_slice(p);
    }
    if bytes.len() as u64 != m.bytes {
        return Err(SnapshotError::BadManifest("size does not match the parts"));
    }
    let s: Snapshot =
        postcard::from_bytes(&bytes).map_err(|e| SnapshotError::Decode(e.to_string()))?;
    let cp = &s.checkpoint;
    if cp.heads != m.heads || cp.entries.len() as u64 != m.len {
        return Err(SnapshotError::BadManifest(
            "heads or length differ from the snapshot's",
        ));
    }
    if s.control.len() > MAX_CONTROL || s.frontier.len() > 2 * cp.authors.len() + cp.heads.len() {
        return Err(SnapshotError::TooLarge(
            "too many control deltas or frontier headers".into(),
        ));
    }
    if cp.context != t.context {
        return Err(CheckpointError::WrongContext.into());
    }
    Ok(s)
}

/// Checks 3 and 4 of the module docs: the replica the checkpoint and
/// control deltas make, its sender's standing, the frontier and the
/// invitation's heads. Returns the replica and the keys it learned.
pub fn check(
    t: &Target,
    m: &Manifest,
    s: &Snapshot,
    keys: impl IntoIterator<Item = (DeltaId, ContextKey)>,
    openers: Vec<MemberSecret>,
    lim: &SnapshotLimits,
) -> Result<(Replica, Vec<(DeltaId, ContextKey)>), SnapshotError> {
    let (replica, learned) = Replica::from_checkpoint(
        &s.checkpoint,
        &s.control,
        t.creator,
        keys,
        openers,
        lim.replica,
    )?;
    if replica.access().role(&m.sender).is_none()
        || replica.access().flagged().contains_key(&m.sender)
    {
        return Err(SnapshotError::NotMember);
    }
    check_frontier(&replica, &s.frontier)?;
    if t.heads.iter().any(|h| !replica.dag().contains(h)) {
        return Err(SnapshotError::Short);
    }
    Ok((replica, learned))
}

/// Loads the snapshot's state into `engine` (the first half of check 5).
pub fn load_state(s: &Snapshot, engine: &mut impl Engine) -> Result<(), SnapshotError> {
    engine.load(&s.state).map_err(SnapshotError::BadState)
}

fn check_frontier(r: &Replica, frontier: &[SignedHeader]) -> Result<(), SnapshotError> {
    let bad = |why: String| SnapshotError::BadFrontier(why);
    let dag = r.dag();
    let by_id: std::collections::HashMap<DeltaId, &SignedHeader> =
        frontier.iter().map(|h| (h.id(), h)).collect();
    let items: Vec<_> = frontier
        .iter()
        .map(|h| (h.header.author, h.id(), h.signature.as_slice()))
        .collect();
    let refs: Vec<_> = items.iter().map(|(a, id, s)| (a, &id.0[..], *s)).collect();
    if crypto::verify_batch(crate::delta::SIGNING_DOMAIN, &refs).contains(&false) {
        return Err(bad("a header its author did not sign".into()));
    }
    for id in frontier_ids(dag) {
        let h = by_id
            .get(&id)
            .ok_or_else(|| bad(format!("no signed header for {id}")))?;
        let (author, seq) = dag.author_seq(&id).expect("frontier ids are entries");
        let notes = dag.notes(&id).expect("entries have notes");
        if h.header.author != author || h.header.seq != seq || h.header.clock != notes.clock {
            return Err(bad(format!("the header of {id} disagrees with its entry")));
        }
        if h.header.context != r.context() {
            return Err(bad(format!("the header of {id} is of another context")));
        }
    }
    for head in dag.heads() {
        let h = &by_id[&head].header;
        let mut height = 0;
        for p in &h.parents {
            let ph = dag
                .height(p)
                .ok_or_else(|| bad(format!("head {head} names a parent that is not an entry")))?;
            height = height.max(ph + 1);
        }
        if dag.height(&head) != Some(height) {
            return Err(bad(format!("head {head} has the wrong height")));
        }
    }
    Ok(())
}

/// The second half of check 5: the state `engine` loaded holds exactly the
/// ops the replica's signed frontier counts for each author.
pub fn check_state(r: &Replica, engine: &impl Engine) -> Result<(), SnapshotError> {
    let dag = r.dag();
    let mut want = std::collections::BTreeMap::new();
    let mut forked = std::collections::BTreeSet::new();
    for author in dag.vector().keys() {
        let peer = engine.peer_of(author);
        if r.forked().contains(author) {
            forked.insert(peer);
            continue;
        }
        let clock = r.clock_of(author);
        if clock > 0 {
            want.insert(peer, clock);
        }
    }
    let mut have = engine.version();
    have.retain(|p, c| *c > 0 && !forked.contains(p));
    if have != want {
        return Err(SnapshotError::BadState(format!(
            "the state holds ops {have:?}; the signed frontier counts {want:?}"
        )));
    }
    Ok(())
}
