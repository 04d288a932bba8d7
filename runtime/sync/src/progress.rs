//! Where this replica stands against a peer's, as catch-up shows it.
//!
//! Catch-up already exchanges everything needed to tell whether a peer is
//! ahead, behind, diverged or forked: a [`Response::Digest`] carries the
//! peer's vector and heads when they differ, a [`Request::Page`] carries
//! the requester's vector. This module classifies those, with the same
//! arithmetic [`crate::protocol::after_digest`] uses to decide what to ask
//! for, so a status never disagrees with what catch-up does next.
//!
//! It is status only: nothing about a delta is decided from it, and a
//! hostile member can misreport only its own position.

use crate::dag::{Dag, SeqVector};
use crate::protocol::{Request, Response};

/// Where this replica stands against a peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerView {
    /// Same applied set.
    InSync,
    /// The peer has `lacking` deltas this replica lacks, and none the
    /// other way round.
    Behind {
        /// Deltas the peer has and this replica lacks.
        lacking: u64,
    },
    /// This replica has `extra` deltas the peer lacks, and none the other
    /// way round.
    Ahead {
        /// Deltas this replica has and the peer lacks.
        extra: u64,
    },
    /// Each side has deltas the other lacks (concurrent writes).
    Diverged {
        /// Deltas the peer has and this replica lacks.
        lacking: u64,
        /// Deltas this replica has and the peer lacks.
        extra: u64,
    },
    /// Equal vectors but the peer has heads this replica lacks: an
    /// equivocation, which only the heads reveal.
    Forked {
        /// Heads of the peer this replica lacks.
        heads: u32,
    },
}

/// `(lacking, extra)`: Σ max(0, theirs[a] − mine[a]) and
/// Σ max(0, mine[a] − theirs[a]) over all authors, saturating at `u64::MAX`.
pub fn lag(mine: &SeqVector, theirs: &SeqVector) -> (u64, u64) {
    let mut lacking = 0u64;
    let mut extra = 0u64;
    for (a, t) in theirs {
        let m = mine.get(a).copied().unwrap_or(0);
        lacking = lacking.saturating_add(t.saturating_sub(m));
    }
    for (a, m) in mine {
        let t = theirs.get(a).copied().unwrap_or(0);
        extra = extra.saturating_add(m.saturating_sub(t));
    }
    (lacking, extra)
}

/// The view that two vectors give (no heads known).
pub fn view_of_vectors(mine: &SeqVector, theirs: &SeqVector) -> PeerView {
    match lag(mine, theirs) {
        (0, 0) => PeerView::InSync,
        (lacking, 0) => PeerView::Behind { lacking },
        (0, extra) => PeerView::Ahead { extra },
        (lacking, extra) => PeerView::Diverged { lacking, extra },
    }
}

/// The view a [`Response::Digest`] gives; `None` for other responses.
///
/// Agrees with [`crate::protocol::after_digest`]: it asks for a page
/// exactly when the view is `Behind` or `Diverged`, for heads by id exactly
/// when it is `Forked`, and nothing when it is `InSync` or `Ahead` (equal
/// vectors and no unknown heads with `in_sync == false` mean this replica
/// caught up between asking and the answer: `InSync`).
pub fn view_of_digest(dag: &Dag, resp: &Response) -> Option<PeerView> {
    let Response::Digest {
        in_sync,
        vector,
        heads,
    } = resp
    else {
        return None;
    };
    if *in_sync {
        return Some(PeerView::InSync);
    }
    // A differing digest always carries a vector; without one there is
    // nothing to classify.
    let theirs = vector.as_ref()?;
    let view = view_of_vectors(&dag.vector(), theirs);
    if matches!(view, PeerView::Behind { .. } | PeerView::Diverged { .. }) {
        return Some(view);
    }
    let unknown = heads.iter().filter(|h| !dag.contains(h)).count();
    if unknown > 0 {
        return Some(PeerView::Forked {
            heads: u32::try_from(unknown).unwrap_or(u32::MAX),
        });
    }
    Some(view)
}

/// The view a peer's request gives: a [`Request::Digest`] says `InSync`
/// iff the digests are equal (else `None`: the answer carries our vector,
/// not theirs), a [`Request::Page`] gives the requester's vector. `None`
/// for other requests.
pub fn view_of_request(dag: &Dag, req: &Request) -> Option<PeerView> {
    match req {
        Request::Digest { digest, .. } => (*digest == dag.digest()).then_some(PeerView::InSync),
        Request::Page { since, .. } => Some(view_of_vectors(&dag.vector(), since)),
        _ => None,
    }
}
