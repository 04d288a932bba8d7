//! A replica's DAG and access views without the deltas' payloads: what a
//! node stores to load a context without reading its whole log, and what a
//! snapshot join ([`crate::snapshot`]) sends a joiner instead of every delta.
//!
//! A [`Checkpoint`] lists every applied delta in log order with what the
//! replica recorded about it (author, seq, height, access view, op clock),
//! the heads, and how each access view was made ([`Recipe`]). Rebuilding
//! from it ([`Replica::from_checkpoint`]) needs the control deltas in full:
//! every view is made again from them, and each control delta is judged
//! again against the view it was made on, so the access a rebuilt replica
//! decides with is the one those signed deltas imply. What the control
//! deltas cannot show (the ids, heights and views of call deltas) comes
//! from whoever made the checkpoint: this node itself after a restart, or
//! the snapshot's sender (see [`crate::snapshot`] for what a joiner checks).
//!
//! The result equals the replica that made the checkpoint in every decision
//! it takes about new deltas: same entries, heads, vector, views, forks.
//! One thing is checked beyond the control deltas themselves: the heads'
//! access views together fold every control delta (every applied delta is
//! in some head's causal past), so a checkpoint cannot hide a removal from
//! the access that judges new deltas.

use serde::{Deserialize, Serialize};

use crate::crypto::{ContextKey, MemberSecret};
use crate::dag::Notes;
use crate::delta::SignedDelta;
use crate::ids::{ContextId, DeltaId, MemberKey};
use crate::replica::{Limits, Replica};
pub use crate::views::Recipe;

/// One applied delta, as a checkpoint lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its id.
    pub id: DeltaId,
    /// Its author, as an index into [`Checkpoint::authors`].
    pub author: u32,
    /// The author's seq.
    pub seq: u64,
    /// Its DAG height.
    pub height: u64,
    /// The access view after it (an index into the views).
    pub view: u32,
    /// The author's op clock after it.
    pub clock: u32,
}

/// A replica's DAG and views without payloads (see the module docs).
///
/// On the wire the entries go column by column, the ids as one byte
/// string: a million entries encode and decode at memory speed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Columns")]
pub struct Checkpoint {
    /// The context.
    pub context: ContextId,
    /// Every author, once; entries name them by index.
    pub authors: Vec<MemberKey>,
    /// Every applied delta, in log order.
    pub entries: Vec<Entry>,
    /// The heads.
    pub heads: Vec<DeltaId>,
    /// How each view after genesis was made, in view order.
    pub recipes: Vec<Recipe>,
    /// The log position of each control delta, in the order they were
    /// folded (control index order).
    pub control: Vec<u64>,
}

/// [`Checkpoint`] as it is encoded (the field order is the wire's).
#[derive(Deserialize)]
struct Columns {
    context: ContextId,
    authors: Vec<MemberKey>,
    #[serde(with = "crate::ids::bytes")]
    ids: Vec<u8>,
    author: Vec<u32>,
    seq: Vec<u64>,
    height: Vec<u64>,
    view: Vec<u32>,
    clock: Vec<u32>,
    heads: Vec<DeltaId>,
    recipes: Vec<Recipe>,
    control: Vec<u64>,
}

impl TryFrom<Columns> for Checkpoint {
    type Error = &'static str;

    fn try_from(c: Columns) -> Result<Self, Self::Error> {
        let n = c.author.len();
        if c.ids.len() != 32 * n
            || [c.seq.len(), c.height.len(), c.view.len(), c.clock.len()] != [n; 4]
        {
            return Err("checkpoint columns of different lengths");
        }
        let entries = c
            .ids
            .chunks_exact(32)
            .enumerate()
            .map(|(i, id)| Entry {
                id: DeltaId(id.try_into().expect("32 bytes")),
                author: c.author[i],
                seq: c.seq[i],
                height: c.height[i],
                view: c.view[i],
                clock: c.clock[i],
            })
            .collect();
        Ok(Checkpoint {
            context: c.context,
            authors: c.authors,
            entries,
            heads: c.heads,
            recipes: c.recipes,
            control: c.control,
        })
    }
}

impl Serialize for Checkpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let e = &self.entries;
        let ids: Vec<u8> = e.iter().flat_map(|e| e.id.0).collect();
        let mut st = s.serialize_struct("Columns", 11)?;
        st.serialize_field("context", &self.context)?;
        st.serialize_field("authors", &self.authors)?;
        st.serialize_field("ids", &crate::ids::Bytes(&ids))?;
        st.serialize_field("author", &Column(e, |e| e.author))?;
        st.serialize_field("seq", &Column(e, |e| e.seq))?;
        st.serialize_field("height", &Column(e, |e| e.height))?;
        st.serialize_field("view", &Column(e, |e| e.view))?;
        st.serialize_field("clock", &Column(e, |e| e.clock))?;
        st.serialize_field("heads", &self.heads)?;
        st.serialize_field("recipes", &self.recipes)?;
        st.serialize_field("control", &self.control)?;
        st.end()
    }
}

/// One field of every entry, serialized as a sequence.
struct Column<'a, T, F: Fn(&Entry) -> T>(&'a [Entry], F);

impl<T: Serialize, F: Fn(&Entry) -> T> Serialize for Column<'_, T, F> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(&self.1))
    }
}

/// Why a checkpoint does not rebuild a replica. A checkpoint from a peer
/// that fails is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// It names another context.
    #[error("the checkpoint is of another context")]
    WrongContext,
    /// Its counts or indices are out of range or inconsistent.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// A control delta is missing, is not the listed one, or fails its
    /// signature or kind.
    #[error("control delta at position {0} is missing, forged or not a control delta")]
    BadControl(u64),
    /// A control delta's key epoch key is not held, or it does not open.
    #[error("control delta at position {0} does not open: {1}")]
    Unreadable(u64, String),
    /// A control delta is not allowed on the view it was made on.
    #[error("control delta at position {0} is not allowed where it was made: {1}")]
    Refused(u64, String),
}

impl Replica {
    /// The checkpoint of this replica's DAG and views.
    pub fn checkpoint(&self) -> Checkpoint {
        let dag = &self.dag;
        let mut authors: Vec<MemberKey> = Vec::new();
        let mut index = std::collections::HashMap::new();
        let mut control = Vec::new();
        let mut entries = Vec::with_capacity(dag.len());
        for (pos, (id, author, seq, height, notes)) in dag.entries().enumerate() {
            let a = *index.entry(*author).or_insert_with(|| {
                authors.push(*author);
                authors.len() as u32 - 1
            });
            if self.views.is_after(notes.view, id) {
                control.push(pos as u64);
            }
            entries.push(Entry {
                id: *id,
                author: a,
                seq,
                height,
                view: notes.view,
                clock: notes.clock,
            });
        }
        Checkpoint {
            context: self.context,
            authors,
            entries,
            heads: dag.heads(),
            recipes: self.views.recipes().to_vec(),
            control,
        }
    }

    /// Rebuilds a replica from `cp` and its control deltas (`controls[i]`
    /// stored at log position `cp.control[i]`), holding `keys` and able to
    /// open keys sealed to `openers`; see the module docs for what is
    /// checked. Keys learned from control deltas (rotations sealed to an
    /// opener) are returned with the replica, to persist.
    pub fn from_checkpoint(
        cp: &Checkpoint,
        controls: &[SignedDelta],
        creator: MemberKey,
        keys: impl IntoIterator<Item = (DeltaId, ContextKey)>,
        openers: Vec<MemberSecret>,
        limits: Limits,
    ) -> Result<(Replica, Vec<(DeltaId, ContextKey)>), CheckpointError> {
        use CheckpointError::Malformed;
        let mut r = Replica::new(cp.context, creator).with_limits(limits);
        for (e, k) in keys {
            r.add_key(e, k);
        }
        for o in openers {
            r.add_opener(o);
        }
        let n = cp.entries.len() as u64;
        if controls.len() != cp.control.len() {
            return Err(Malformed(
                "control deltas do not match the positions listed",
            ));
        }
        if cp.recipes.len() > 2 * cp.control.len() + 1 {
            return Err(Malformed("more views than control deltas can make"));
        }
        if cp.control.windows(2).any(|w| w[0] >= w[1]) || cp.control.last().is_some_and(|p| *p >= n)
        {
            return Err(Malformed("control positions out of order or range"));
        }
        if cp.authors.len() > cp.entries.len() {
            return Err(Malformed("more authors than entries"));
        }
        // The control deltas' signatures, in one batch.
        let ids: Vec<DeltaId> = controls.iter().map(SignedDelta::id).collect();
        let pairs: Vec<_> = controls.iter().zip(&ids).collect();
        let signed = SignedDelta::verify_many(&pairs);
        let mut learned = Vec::new();
        let mut next_control = 0usize;
        for recipe in &cp.recipes {
            let expected = r.views.len() as u32;
            let made = match recipe {
                Recipe::After { before, control } => {
                    if *control as usize != next_control
                        || *before >= expected
                        || next_control >= cp.control.len()
                    {
                        return Err(Malformed("a view recipe out of order"));
                    }
                    let i = next_control;
                    next_control += 1;
                    let pos = cp.control[i];
                    let entry = &cp.entries[pos as usize];
                    let d = &controls[i];
                    let h = d.header();
                    if ids[i] != entry.id
                        || !signed[i]
                        || !h.kind.is_control()
                        || h.context != cp.context
                        || cp.authors.get(entry.author as usize) != Some(&h.author)
                        || h.seq != entry.seq
                        || h.clock != entry.clock
                    {
                        return Err(CheckpointError::BadControl(pos));
                    }
                    let access = r.views.access(*before);
                    if h.epoch != access.epoch() {
                        return Err(CheckpointError::Refused(pos, "wrong key epoch".into()));
                    }
                    let key = r.key(&h.epoch).ok_or_else(|| {
                        CheckpointError::Unreadable(pos, "this node lacks the epoch's key".into())
                    })?;
                    let op = d
                        .open(key)
                        .map_err(|e| CheckpointError::Unreadable(pos, e.to_string()))?;
                    access
                        .check(h, &op)
                        .map_err(|e| CheckpointError::Refused(pos, e.to_string()))?;
                    let notes = r.note(entry.id, entry.height, *before, d, &op, &mut learned);
                    if notes.view != entry.view {
                        return Err(Malformed("a control entry's view is not the one it makes"));
                    }
                    notes.view
                }
                Recipe::Union { ops } => {
                    if ops.windows(2).any(|w| w[0] >= w[1])
                        || ops.last().is_some_and(|o| *o as usize >= next_control)
                    {
                        return Err(Malformed("a union of unknown control deltas"));
                    }
                    r.views.union(ops.clone())
                }
            };
            if made != expected {
                return Err(Malformed("a view recipe that makes no new view"));
            }
        }
        if next_control != cp.control.len() {
            return Err(Malformed("control deltas no view folds"));
        }
        let views = r.views.len() as u32;
        r.dag.reserve(cp.entries.len());
        for e in &cp.entries {
            let author = *cp
                .authors
                .get(e.author as usize)
                .ok_or(Malformed("an entry names an unknown author"))?;
            if e.view >= views {
                return Err(Malformed("an entry names an unknown view"));
            }
            let notes = Notes {
                view: e.view,
                clock: e.clock,
            };
            r.dag
                .restore_entry(e.id, author, e.seq, e.height, notes)
                .map_err(Malformed)?;
        }
        r.dag.set_heads(&cp.heads).map_err(Malformed)?;
        for (a, _) in r.dag.forks().to_vec() {
            if let Some((author, _)) = r.dag.author_seq(&a) {
                r.forked.insert(author);
            }
        }
        r.refresh_current();
        // Every applied delta is in the causal past of some head, so the
        // heads' views together fold every control delta: a checkpoint
        // whose heads leave one out (a removal hidden from the access new
        // deltas are judged by) is refused.
        if !r.views.folds_all(r.current) {
            return Err(Malformed("the heads' access leaves out a control delta"));
        }
        Ok((r, learned))
    }
}
