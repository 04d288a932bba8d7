//! The causal DAG of one context: which deltas are applied, in what order,
//! the current heads, the per-author seq vector, and the bounded buffer of
//! deltas that wait for missing parents.
//!
//! A delta is applied only after all of its parents, so the local apply order
//! (the *log*) is a topological order, and each author's applied deltas are
//! always the prefix `1..=n` of its sequence. The seq vector therefore names
//! the applied set exactly, which makes catch-up a comparison of vectors.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::delta::{DeltaHeader, SignedDelta};
use crate::ids::{ContextId, DeltaId, MemberKey, sha256};

/// Deltas a context buffers by default while their parents are missing.
pub const DEFAULT_MAX_PENDING: usize = 10_000;
/// Bytes of buffered deltas (payloads and parent lists) a context holds by
/// default while their parents are missing.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 64 << 20;
/// Most parents a delta may name. Honest deltas name the heads the author
/// had (one per concurrent branch) and its own previous delta.
pub const MAX_PARENTS: usize = 256;
/// Default most deltas of one author waiting for parents.
pub const DEFAULT_MAX_PENDING_PER_AUTHOR: usize = 2_500;
/// Default largest payload of one delta (a call's sealed update and events).
pub const DEFAULT_MAX_PAYLOAD: usize = 16 << 20;
/// Most missing ids [`Dag::wanted`] returns at once.
pub const WANTED_LIMIT: usize = 256;

/// Applied deltas per author: `seq -> id`, as a count per member.
pub type SeqVector = BTreeMap<MemberKey, u64>;

/// Why a delta was refused. Every variant is counted by the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The delta names another context.
    #[error("the delta belongs to another context")]
    WrongContext,
    /// Its signature is not its author's over its fields (forged or tampered).
    #[error("bad signature: forged or tampered")]
    BadSignature,
    /// Already applied or already buffered.
    #[error("duplicate (or replayed) delta")]
    Duplicate,
    /// The author's previous delta is not among its parents.
    #[error("out of order: the author's previous delta is not among the parents")]
    SeqGap,
    /// The author is not (or no longer) a member, or its join is invalid.
    #[error("not a member: {0}")]
    NotMember(String),
    /// The author's role does not allow what the delta does.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The author was shown to have equivocated in the delta's causal past.
    #[error("the author is flagged for equivocation")]
    Flagged,
    /// The operation is malformed for the state it applies to.
    #[error("invalid operation: {0}")]
    Invalid(&'static str),
    /// The payload is sealed with another key epoch than its causal past's.
    #[error("sealed with a key epoch that is not the current one of its causal past")]
    WrongEpoch,
    /// This node does not hold the key of the delta's epoch.
    #[error("this node lacks the key of the delta's epoch")]
    NoKey,
    /// The payload does not decrypt or decode.
    #[error("unreadable payload: {0}")]
    BadPayload(String),
    /// The state update is not the author's own (ops under another peer,
    /// or not continuing the author's counters) or too big.
    #[error("bad state update: {0}")]
    BadUpdate(String),
    /// The update changes an owned entry of another member than its
    /// author (`mero_engine::owned`).
    #[error("touches state its author does not own: {0}")]
    NotOwner(String),
    /// The buffer of deltas waiting for parents is full; catch-up fetches it later.
    #[error("the buffer of deltas waiting for parents is full")]
    BufferFull,
    /// A parent was itself rejected, so this delta can never apply.
    #[error("a parent was rejected")]
    Orphaned,
    /// Applying it failed on this node (storage or engine error).
    #[error("applying failed: {0}")]
    Apply(String),
}

impl Reject {
    /// Whether only a broken or lying sender could have sent it. Every
    /// reason here is judged on the delta alone or against its own causal
    /// past, so every node that sees the delta agrees, and an honest node
    /// never signs one (it checks its own deltas with the same rules):
    /// forged or malformed deltas, and deltas whose author was not a member
    /// allowed to do it, or used another key epoch, in the delta's own
    /// causal past. Refusals an honest sender can cause (a missing key here,
    /// a full buffer, a duplicate, a seq far ahead of this node, a flag it
    /// had not seen) are not garbage. Gossip with garbage is not forwarded
    /// and counts against the peer that sent it.
    pub fn is_garbage(&self) -> bool {
        matches!(
            self,
            Reject::WrongContext
                | Reject::BadSignature
                | Reject::Invalid(_)
                | Reject::BadPayload(_)
                | Reject::BadUpdate(_)
                | Reject::NotOwner(_)
                | Reject::NotMember(_)
                | Reject::Forbidden(_)
                | Reject::WrongEpoch
        )
    }

    /// A short stable name, for counters.
    pub fn label(&self) -> &'static str {
        match self {
            Reject::WrongContext => "wrong_context",
            Reject::BadSignature => "bad_signature",
            Reject::Duplicate => "duplicate",
            Reject::SeqGap => "seq_gap",
            Reject::NotMember(_) => "not_member",
            Reject::Forbidden(_) => "forbidden",
            Reject::Flagged => "flagged",
            Reject::Invalid(_) => "invalid",
            Reject::WrongEpoch => "wrong_epoch",
            Reject::NoKey => "no_key",
            Reject::BadPayload(_) => "bad_payload",
            Reject::BadUpdate(_) => "bad_update",
            Reject::NotOwner(_) => "not_owner",
            Reject::BufferFull => "buffer_full",
            Reject::Orphaned => "orphaned",
            Reject::Apply(_) => "apply_failed",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    author: MemberKey,
    seq: u64,
    height: u64,
    notes: Notes,
}

/// What the layer above the DAG records with each applied delta.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notes {
    /// The access view after the delta (an index the caller keeps).
    pub view: u32,
    /// The author's op counter after the delta.
    pub clock: u32,
}

/// What [`Dag::receive_checked`] tells `apply` about a causally ready delta.
#[derive(Debug, Clone)]
pub struct Ready {
    /// Its DAG height.
    pub height: u64,
    /// The notes of its parents.
    pub parents: Vec<Notes>,
    /// The notes of the author's previous delta, if it has one.
    pub prev: Option<Notes>,
    /// An applied delta of the same author and seq, if any: the two are
    /// an equivocation.
    pub sibling: Option<DeltaId>,
}

#[derive(Debug)]
struct Pending {
    delta: SignedDelta,
    missing: usize,
}

/// What [`Dag::receive`] did with a delta and the buffered deltas it released.
#[derive(Debug, Default)]
pub struct Received {
    /// Applied now, in order.
    pub applied: Vec<DeltaId>,
    /// Refused, with the reason.
    pub rejected: Vec<(DeltaId, Reject)>,
    /// Whether the delta went into the buffer to wait for parents.
    pub buffered: bool,
}

/// One context's DAG.
#[derive(Debug)]
pub struct Dag {
    context: ContextId,
    /// Log position of each applied delta.
    applied: HashMap<DeltaId, u64>,
    /// Applied deltas in log order (`log[i]` and `entries[i]` are one).
    log: Vec<DeltaId>,
    entries: Vec<Entry>,
    heads: BTreeSet<DeltaId>,
    /// Per author, the log position of each applied delta (index = seq - 1).
    authors: BTreeMap<MemberKey, Vec<u64>>,
    pending: HashMap<DeltaId, Pending>,
    waiting: HashMap<DeltaId, Vec<DeltaId>>,
    max_pending: usize,
    pending_bytes: usize,
    max_pending_bytes: usize,
    /// Buffered deltas per author, at most `max_pending_per_author` each.
    pending_authors: HashMap<MemberKey, usize>,
    max_pending_per_author: usize,
    max_payload: usize,
    /// Equivocations seen: (the delta first applied, the other).
    forks: Vec<(DeltaId, DeltaId)>,
}

impl Dag {
    /// An empty DAG for `context`.
    pub fn new(context: ContextId) -> Self {
        Self {
            context,
            applied: HashMap::new(),
            log: Vec::new(),
            entries: Vec::new(),
            heads: BTreeSet::new(),
            authors: BTreeMap::new(),
            pending: HashMap::new(),
            waiting: HashMap::new(),
            max_pending: DEFAULT_MAX_PENDING,
            pending_bytes: 0,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            pending_authors: HashMap::new(),
            max_pending_per_author: DEFAULT_MAX_PENDING_PER_AUTHOR,
            max_payload: DEFAULT_MAX_PAYLOAD,
            forks: Vec::new(),
        }
    }

    /// Sets how many deltas may wait for parents; beyond that new ones are
    /// refused with [`Reject::BufferFull`] and left to catch-up.
    pub fn with_max_pending(mut self, n: usize) -> Self {
        self.max_pending = n;
        self
    }

    /// Sets how many deltas of one author may wait for parents, so one
    /// member cannot fill the buffer for everyone.
    pub fn with_max_pending_per_author(mut self, n: usize) -> Self {
        self.max_pending_per_author = n;
        self
    }

    /// Sets the largest payload a delta may carry; larger ones are refused
    /// ([`Reject::Invalid`]) before anything else is done with them.
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Takes a delta out of the buffer.
    fn unbuffer(&mut self, id: &DeltaId) -> Option<Pending> {
        let p = self.pending.remove(id)?;
        self.pending_bytes -= buffered_size(&p.delta);
        let author = p.delta.body.header.author;
        if let Some(n) = self.pending_authors.get_mut(&author) {
            *n -= 1;
            if *n == 0 {
                self.pending_authors.remove(&author);
            }
        }
        Some(p)
    }

    /// Sets how many bytes of deltas may wait for parents; beyond that new
    /// ones are refused with [`Reject::BufferFull`] and left to catch-up.
    pub fn with_max_pending_bytes(mut self, n: usize) -> Self {
        self.max_pending_bytes = n;
        self
    }

    /// The context.
    pub fn context(&self) -> ContextId {
        self.context
    }

    /// Current heads, sorted.
    pub fn heads(&self) -> Vec<DeltaId> {
        self.heads.iter().copied().collect()
    }

    /// A digest of the heads: equal digests mean equal applied sets.
    pub fn digest(&self) -> [u8; 32] {
        let mut b = Vec::with_capacity(32 * self.heads.len());
        for h in &self.heads {
            b.extend_from_slice(&h.0);
        }
        sha256(&b)
    }

    /// Applied deltas per author.
    pub fn vector(&self) -> SeqVector {
        self.authors
            .iter()
            .map(|(a, v)| (*a, v.len() as u64))
            .collect()
    }

    /// Applied deltas of `author`.
    pub fn seq_of(&self, author: &MemberKey) -> u64 {
        self.authors.get(author).map_or(0, |v| v.len() as u64)
    }

    /// Number of applied deltas.
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// Whether nothing is applied.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// Number of buffered deltas.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Whether `id` is applied.
    pub fn contains(&self, id: &DeltaId) -> bool {
        self.applied.contains_key(id)
    }

    /// The applied delta at log position `pos`.
    pub fn at(&self, pos: u64) -> Option<DeltaId> {
        self.log.get(pos as usize).copied()
    }

    /// Log position of an applied delta.
    pub fn position(&self, id: &DeltaId) -> Option<u64> {
        self.applied.get(id).copied()
    }

    fn entry(&self, id: &DeltaId) -> Option<&Entry> {
        self.applied.get(id).map(|p| &self.entries[*p as usize])
    }

    /// The notes recorded with an applied delta.
    pub fn notes(&self, id: &DeltaId) -> Option<Notes> {
        self.entry(id).map(|e| e.notes)
    }

    /// Author and seq of an applied delta.
    pub fn author_seq(&self, id: &DeltaId) -> Option<(MemberKey, u64)> {
        self.entry(id).map(|e| (e.author, e.seq))
    }

    /// The applied delta of `author` with `seq` (the first applied, if it
    /// equivocated).
    pub fn by_seq(&self, author: &MemberKey, seq: u64) -> Option<DeltaId> {
        let pos = *self
            .authors
            .get(author)?
            .get(seq.checked_sub(1)? as usize)?;
        self.at(pos)
    }

    /// Equivocations applied so far: (the delta first applied, the other).
    pub fn forks(&self) -> &[(DeltaId, DeltaId)] {
        &self.forks
    }

    /// The applied log, in apply order.
    pub fn log(&self) -> &[DeltaId] {
        &self.log
    }

    /// Parents that buffered deltas wait for and nobody has sent yet: what
    /// to ask peers for (at most [`WANTED_LIMIT`], the smallest ids).
    pub fn wanted(&self) -> Vec<DeltaId> {
        let mut v: Vec<_> = self
            .waiting
            .keys()
            .filter(|id| !self.pending.contains_key(id) && !self.applied.contains_key(id))
            .copied()
            .collect();
        v.sort();
        v.truncate(WANTED_LIMIT);
        v
    }

    /// Records `id` as applied at the end of the log (the caller has made its
    /// effects durable) and returns buffered deltas that are now ready.
    /// A second delta of an author with a seq already applied is recorded
    /// too, as an equivocation (see [`forks`](Self::forks)).
    pub fn record(
        &mut self,
        id: DeltaId,
        header: &DeltaHeader,
        notes: Notes,
    ) -> Vec<(DeltaId, SignedDelta)> {
        let height = self.height_after(&header.parents);
        for p in &header.parents {
            self.heads.remove(p);
        }
        self.heads.insert(id);
        let pos = self.log.len() as u64;
        self.log.push(id);
        let chain = self.authors.entry(header.author).or_default();
        if header.seq as usize > chain.len() {
            chain.push(pos);
        } else if let Some(first) = self.by_seq(&header.author, header.seq) {
            self.forks.push((first, id));
        }
        self.applied.insert(id, pos);
        self.entries.push(Entry {
            author: header.author,
            seq: header.seq,
            height,
            notes,
        });
        let mut ready = Vec::new();
        for child in self.waiting.remove(&id).unwrap_or_default() {
            if let Some(p) = self.pending.get_mut(&child) {
                p.missing -= 1;
                if p.missing == 0 {
                    let p = self.unbuffer(&child).expect("present");
                    ready.push((child, p.delta));
                }
            }
        }
        ready
    }

    /// Re-records an applied delta from a checkpoint ([`crate::checkpoint`]):
    /// [`record`](Self::record)'s bookkeeping at the end of the log, with
    /// the height given instead of computed from parents a checkpoint does
    /// not hold. Heads are set afterwards ([`set_heads`](Self::set_heads)).
    /// Refused when the author's seq skips one or `id` is already recorded.
    pub(crate) fn restore_entry(
        &mut self,
        id: DeltaId,
        author: MemberKey,
        seq: u64,
        height: u64,
        notes: Notes,
    ) -> Result<(), &'static str> {
        let pos = self.log.len() as u64;
        match self.applied.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => return Err("a delta listed twice"),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(pos);
            }
        }
        let chain = self.authors.entry(author).or_default();
        if seq == 0 || seq as usize > chain.len() + 1 {
            self.applied.remove(&id);
            return Err("an author's seq skips one");
        }
        if seq as usize == chain.len() + 1 {
            chain.push(pos);
        } else if let Some(first) = self.by_seq(&author, seq) {
            self.forks.push((first, id));
        }
        self.log.push(id);
        self.entries.push(Entry {
            author,
            seq,
            height,
            notes,
        });
        Ok(())
    }

    /// Makes room for `n` more applied deltas (a checkpoint's).
    pub(crate) fn reserve(&mut self, n: usize) {
        self.applied.reserve(n);
        self.log.reserve(n);
        self.entries.reserve(n);
    }

    /// Every applied delta in log order: id, author, seq, height, notes.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&DeltaId, &MemberKey, u64, u64, Notes)> {
        self.log
            .iter()
            .zip(&self.entries)
            .map(|(id, e)| (id, &e.author, e.seq, e.height, e.notes))
    }

    /// Sets the heads of a DAG restored from a checkpoint; each must be applied.
    pub(crate) fn set_heads(&mut self, heads: &[DeltaId]) -> Result<(), &'static str> {
        if heads.iter().any(|h| !self.applied.contains_key(h)) {
            return Err("a head that is not an entry");
        }
        self.heads = heads.iter().copied().collect();
        Ok(())
    }

    /// The height a delta with these (applied) parents gets.
    pub fn height_after(&self, parents: &[DeltaId]) -> u64 {
        parents
            .iter()
            .filter_map(|p| self.entry(p))
            .map(|e| e.height + 1)
            .max()
            .unwrap_or(0)
    }

    /// Height of an applied delta: the length of its longest path to a root.
    pub fn height(&self, id: &DeltaId) -> Option<u64> {
        self.entry(id).map(|e| e.height)
    }

    /// Checks a delta's fields and either returns it ready to apply (all
    /// parents applied), or buffers it (`Ok(None)`).
    pub fn offer(&mut self, delta: SignedDelta) -> Result<Option<(DeltaId, SignedDelta)>, Reject> {
        let id = delta.id();
        self.offer_id(id, None, delta)
    }

    /// Ids of `deltas`, each with the result of checking its signature, for
    /// [`receive_checked`](Self::receive_checked). The deltas this DAG
    /// does not hold yet are checked in one batch ([`SignedDelta::verify_many`]);
    /// the others get `None` (they are duplicates). Results are by
    /// position: deltas that differ only in their signature share an id.
    pub fn check_signatures(&self, deltas: &[SignedDelta]) -> Vec<(DeltaId, Option<bool>)> {
        let ids: Vec<DeltaId> = deltas.iter().map(SignedDelta::id).collect();
        let fresh: Vec<usize> = (0..deltas.len())
            .filter(|&i| !self.applied.contains_key(&ids[i]) && !self.pending.contains_key(&ids[i]))
            .collect();
        let pairs: Vec<_> = fresh.iter().map(|&i| (&deltas[i], &ids[i])).collect();
        let mut signed = vec![None; deltas.len()];
        for (&i, ok) in fresh.iter().zip(SignedDelta::verify_many(&pairs)) {
            signed[i] = Some(ok);
        }
        ids.into_iter().zip(signed).collect()
    }

    /// `signed` is the result of an earlier signature check, if any.
    fn offer_id(
        &mut self,
        id: DeltaId,
        signed: Option<bool>,
        delta: SignedDelta,
    ) -> Result<Option<(DeltaId, SignedDelta)>, Reject> {
        if delta.body.header.context != self.context {
            return Err(Reject::WrongContext);
        }
        if self.applied.contains_key(&id) || self.pending.contains_key(&id) {
            return Err(Reject::Duplicate);
        }
        if delta.body.header.parents.len() > MAX_PARENTS {
            return Err(Reject::Invalid("more parents than a delta may name"));
        }
        if delta.body.payload.len() > self.max_payload {
            return Err(Reject::Invalid("a payload larger than a delta may carry"));
        }
        if !signed.unwrap_or_else(|| delta.verify_id(&id)) {
            return Err(Reject::BadSignature);
        }
        let b = &delta.body.header;
        if b.seq == 0 || b.seq > self.seq_of(&b.author) + 1 + self.max_pending as u64 {
            return Err(Reject::SeqGap);
        }
        let missing: Vec<DeltaId> = b
            .parents
            .iter()
            .filter(|p| !self.applied.contains_key(*p))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(Some((id, delta)));
        }
        let size = buffered_size(&delta);
        let by_author = self.pending_authors.get(&b.author).copied().unwrap_or(0);
        if self.pending.len() >= self.max_pending
            || self.pending_bytes + size > self.max_pending_bytes
            || by_author >= self.max_pending_per_author
        {
            return Err(Reject::BufferFull);
        }
        self.pending_bytes += size;
        *self.pending_authors.entry(b.author).or_default() += 1;
        for p in &missing {
            self.waiting.entry(*p).or_default().push(id);
        }
        self.pending.insert(
            id,
            Pending {
                delta,
                missing: missing.len(),
            },
        );
        Ok(None)
    }

    /// Bytes of buffered deltas.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Drops buffered deltas that descend from `id`, which was refused.
    fn discard(&mut self, id: DeltaId, out: &mut Vec<(DeltaId, Reject)>) {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            for child in self.waiting.remove(&id).unwrap_or_default() {
                if self.unbuffer(&child).is_some() {
                    out.push((child, Reject::Orphaned));
                    stack.push(child);
                }
            }
        }
    }

    /// Offers `delta` and applies it and every buffered delta it releases, in
    /// causal order. `apply` decrypts, checks membership and makes the delta
    /// durable, and returns the notes to record with it; when it refuses,
    /// the delta and its buffered descendants are dropped.
    pub fn receive(
        &mut self,
        delta: SignedDelta,
        apply: impl FnMut(&DeltaId, &SignedDelta, &Ready) -> Result<Notes, Reject>,
    ) -> Received {
        let id = delta.id();
        self.receive_checked(id, None, delta, apply)
    }

    /// [`receive`](Self::receive) for a delta whose id (`id` must be
    /// `delta.id()`) and, if `signed` is given, signature were already
    /// checked, e.g. a whole batch at once with [`Dag::check_signatures`].
    pub fn receive_checked(
        &mut self,
        id: DeltaId,
        signed: Option<bool>,
        delta: SignedDelta,
        mut apply: impl FnMut(&DeltaId, &SignedDelta, &Ready) -> Result<Notes, Reject>,
    ) -> Received {
        let mut out = Received::default();
        let ready = match self.offer_id(id, signed, delta) {
            Err(r) => {
                out.rejected.push((id, r));
                return out;
            }
            Ok(None) => {
                out.buffered = true;
                return out;
            }
            Ok(Some(x)) => x,
        };
        let mut queue = std::collections::VecDeque::from([ready]);
        while let Some((id, d)) = queue.pop_front() {
            let r = match self.ready(&d.body.header) {
                Some(ready) => apply(&id, &d, &ready),
                None => Err(Reject::SeqGap),
            };
            match r {
                Ok(notes) => {
                    queue.extend(self.record(id, &d.body.header, notes));
                    out.applied.push(id);
                }
                Err(r) => {
                    out.rejected.push((id, r));
                    self.discard(id, &mut out.rejected);
                }
            }
        }
        out
    }

    /// What `apply` learns about a delta whose parents are all applied;
    /// `None` if the author's previous delta is not among its parents (an
    /// author's chain never skips or branches silently).
    fn ready(&self, h: &DeltaHeader) -> Option<Ready> {
        let parents: Vec<Notes> = h.parents.iter().filter_map(|p| self.notes(p)).collect();
        let prev = if h.seq == 1 {
            None
        } else {
            let prev = h.parents.iter().find_map(|p| {
                self.entry(p)
                    .filter(|e| e.author == h.author && e.seq + 1 == h.seq)
            })?;
            Some(prev.notes)
        };
        Some(Ready {
            height: self.height_after(&h.parents),
            parents,
            prev,
            sibling: self.by_seq(&h.author, h.seq),
        })
    }

    /// Ids of applied deltas that a peer with vector `since` lacks, parents
    /// first, at most `limit`; and whether there are more.
    pub fn missing_for(&self, since: &SeqVector, limit: usize) -> (Vec<DeltaId>, bool) {
        let start = self
            .authors
            .iter()
            .filter_map(|(a, positions)| {
                let have = since.get(a).copied().unwrap_or(0) as usize;
                positions.get(have).copied()
            })
            .min();
        let Some(start) = start else {
            return (Vec::new(), false);
        };
        let mut out = Vec::new();
        let start = start as usize;
        for (id, e) in self.log[start..].iter().zip(&self.entries[start..]) {
            if e.seq > since.get(&e.author).copied().unwrap_or(0) {
                if out.len() == limit {
                    return (out, true);
                }
                out.push(*id);
            }
        }
        (out, false)
    }
}

/// What a buffered delta counts against [`DEFAULT_MAX_PENDING_BYTES`].
fn buffered_size(d: &SignedDelta) -> usize {
    d.body.payload.len() + 32 * d.body.header.parents.len() + 256
}
