//! The catch-up protocol: request-response messages between two nodes, and
//! how a node answers them from its DAG.
//!
//! ```text
//! A -> B  Digest { heads digest }         B answers Digest { in_sync, vector }
//! A -> B  Page { since: A's vector }      B answers Page { deltas A lacks, parents first, more }
//!         ... until `more` is false
//! A -> B  ById { ids }                    B answers ById { the deltas it has }
//! A -> B  App { hash }                    B answers App { wasm }
//! A -> B  BlobManifest { blob, epoch }     B answers Blob { sealed manifest }
//! A -> B  BlobChunk { blob, index, epoch } B answers Blob { sealed chunk }
//! A -> B  Snapshot { min_len }             B answers Offer { signed manifest, or none }
//! A -> B  SnapshotPart { manifest, index } B answers Part { bytes }
//! ```
//!
//! A joiner asks for a snapshot ([`crate::snapshot`]) before it pages a
//! long history; a node that declines, or a joiner of a short one, pages.
//!
//! A synced pair exchanges one digest each way. Both sides run the same
//! exchange (B answers a differing digest and also starts its own round
//! towards A), so deltas flow in both directions.

use serde::{Deserialize, Serialize};

use crate::blob::{BlobId, Sealed};
use crate::dag::{Dag, SeqVector};
use crate::delta::SignedDelta;
use crate::gate::Proof;
use crate::ids::{AppHash, ContextId, DeltaId};

/// Most deltas in one catch-up page.
pub const PAGE_LIMIT: usize = 500;
/// Most payload bytes in one answer with deltas (a page, or deltas by id);
/// an answer holds at least one delta, whatever its size, so any delta
/// pages. Well under the transport's largest response (64 MiB).
pub const PAGE_BYTES: usize = 4 << 20;
/// Most deltas asked for by id at once.
pub const BY_ID_LIMIT: usize = 256;
/// Most heads a digest answer carries.
pub const HEADS_LIMIT: usize = 64;

/// A request from one node to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// "Here is the digest of my heads."
    Digest {
        /// The context.
        context: ContextId,
        /// [`Dag::digest`] of the sender.
        digest: [u8; 32],
    },
    /// "Send me what I lack, given my vector."
    Page {
        /// The context.
        context: ContextId,
        /// The sender's [`Dag::vector`].
        since: SeqVector,
        /// Most deltas wanted.
        limit: u32,
    },
    /// "Send me these deltas."
    ById {
        /// The context.
        context: ContextId,
        /// Wanted ids.
        ids: Vec<DeltaId>,
    },
    /// "Send me this app's WASM" (an app the context runs).
    App {
        /// The context that runs it.
        context: ContextId,
        /// Its content hash.
        hash: AppHash,
    },
    /// "Send me the manifest of this blob of the context" (see
    /// [`crate::blob`]), sealed in `epoch` if the responder holds its key.
    BlobManifest {
        /// The context the blob belongs to.
        context: ContextId,
        /// The blob.
        blob: BlobId,
        /// The requester's current key epoch.
        epoch: DeltaId,
    },
    /// "Send me chunk `index` of this blob", sealed in `epoch` if the
    /// responder holds its key.
    BlobChunk {
        /// The context the blob belongs to.
        context: ContextId,
        /// The blob.
        blob: BlobId,
        /// The chunk's position, from 0.
        index: u32,
        /// The requester's current key epoch.
        epoch: DeltaId,
    },
    /// "Offer me a snapshot of the context if its history holds at least
    /// `min_len` deltas" (a joiner, see [`crate::snapshot`]).
    Snapshot {
        /// The context.
        context: ContextId,
        /// Fewer deltas than this: the requester would rather page.
        min_len: u64,
    },
    /// "Send me part `index` of the snapshot whose manifest has this id."
    SnapshotPart {
        /// The context.
        context: ContextId,
        /// [`crate::snapshot::Manifest::id`].
        manifest: [u8; 32],
        /// The part, from 0.
        index: u32,
    },
}

/// A request as it goes on the wire: with the requester's proof that it
/// belongs to the request's context ([`crate::gate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// What is asked.
    pub request: Request,
    /// Who asks.
    pub proof: Proof,
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::Digest`].
    Digest {
        /// Whether the digests were equal.
        in_sync: bool,
        /// The responder's vector when they differ.
        vector: Option<SeqVector>,
        /// The responder's heads when they differ (at most
        /// [`HEADS_LIMIT`]): equal vectors with different heads mean an
        /// equivocation, which only the heads reveal.
        heads: Vec<DeltaId>,
    },
    /// Answer to [`Request::Page`] and [`Request::ById`].
    Deltas {
        /// The deltas, parents first.
        deltas: Vec<SignedDelta>,
        /// Whether another page would bring more.
        more: bool,
    },
    /// Answer to [`Request::App`]: the bytes, if the responder has them.
    App {
        /// The WASM module.
        wasm: Option<Vec<u8>>,
    },
    /// Answer to [`Request::BlobManifest`] and [`Request::BlobChunk`]:
    /// the sealed part, if the responder holds it.
    Blob {
        /// The manifest or chunk, sealed with a blob key
        /// ([`crate::blob::BlobKey`]).
        part: Option<Sealed>,
    },
    /// Answer to [`Request::Snapshot`]: a signed manifest, or `None` when
    /// the responder declines (a short history, or busy).
    Offer {
        /// What the snapshot holds and how it is cut.
        manifest: Option<crate::snapshot::Manifest>,
    },
    /// Answer to [`Request::SnapshotPart`]: the part, if the responder
    /// still holds that snapshot.
    Part {
        /// The part's bytes.
        bytes: Option<Vec<u8>>,
    },
    /// The responder does not know the context, or failed.
    Error {
        /// What went wrong.
        message: String,
    },
}

impl Request {
    /// The context a request is about.
    pub fn context(&self) -> ContextId {
        match self {
            Request::Digest { context, .. }
            | Request::Page { context, .. }
            | Request::ById { context, .. }
            | Request::App { context, .. }
            | Request::BlobManifest { context, .. }
            | Request::BlobChunk { context, .. }
            | Request::Snapshot { context, .. }
            | Request::SnapshotPart { context, .. } => *context,
        }
    }
}

/// Where answering nodes read stored deltas from.
pub trait DeltaSource {
    /// The delta with this id, if stored.
    fn delta(&self, id: &DeltaId) -> Option<SignedDelta>;
}

impl<F: Fn(&DeltaId) -> Option<SignedDelta>> DeltaSource for F {
    fn delta(&self, id: &DeltaId) -> Option<SignedDelta> {
        self(id)
    }
}

/// The answer to a digest request when the requester's digest `theirs`
/// equals `ours`; `None` when they differ (then [`answer`] needs the DAG).
///
/// ```
/// use mero_sync::protocol::{Response, answer_in_sync};
/// assert!(matches!(answer_in_sync(&[1; 32], &[1; 32]), Some(Response::Digest { in_sync: true, .. })));
/// assert!(answer_in_sync(&[1; 32], &[2; 32]).is_none());
/// ```
pub fn answer_in_sync(ours: &[u8; 32], theirs: &[u8; 32]) -> Option<Response> {
    (ours == theirs).then(|| Response::Digest {
        in_sync: true,
        vector: None,
        heads: Vec::new(),
    })
}

/// Answers a context request from `dag` and `source`. Returns also whether
/// the requester's digest differed, in which case the answering node should
/// start its own round towards the requester.
pub fn answer(dag: &Dag, source: &impl DeltaSource, req: &Request) -> (Response, bool) {
    match req {
        Request::Digest { digest, .. } => match answer_in_sync(&dag.digest(), digest) {
            Some(resp) => (resp, false),
            None => {
                let resp = Response::Digest {
                    in_sync: false,
                    vector: Some(dag.vector()),
                    heads: dag.heads().into_iter().take(HEADS_LIMIT).collect(),
                };
                (resp, true)
            }
        },
        Request::Page { since, limit, .. } => {
            let limit = (*limit as usize).clamp(1, PAGE_LIMIT);
            let (ids, more) = dag.missing_for(since, limit);
            let (deltas, cut) = within_budget(ids.iter(), source);
            let more = more || cut;
            (Response::Deltas { deltas, more }, false)
        }
        Request::ById { ids, .. } => {
            let known = ids.iter().take(BY_ID_LIMIT).filter(|id| dag.contains(id));
            // What did not fit is asked for again by the next round.
            let (deltas, _) = within_budget(known, source);
            (
                Response::Deltas {
                    deltas,
                    more: false,
                },
                false,
            )
        }
        Request::App { .. }
        | Request::BlobManifest { .. }
        | Request::BlobChunk { .. }
        | Request::Snapshot { .. }
        | Request::SnapshotPart { .. } => (
            Response::Error {
                message: "app, blob and snapshot requests are answered by the node".into(),
            },
            false,
        ),
    }
}

/// The stored deltas of `ids`, in order, up to [`PAGE_BYTES`] of payload
/// (at least one); and whether some were left out.
fn within_budget<'a>(
    ids: impl Iterator<Item = &'a DeltaId>,
    source: &impl DeltaSource,
) -> (Vec<SignedDelta>, bool) {
    let mut out = Vec::new();
    let mut bytes = 0;
    for id in ids {
        let Some(d) = source.delta(id) else {
            continue;
        };
        bytes += d.body.payload.len();
        if bytes > PAGE_BYTES && !out.is_empty() {
            return (out, true);
        }
        out.push(d);
    }
    (out, false)
}

/// What a node does after a [`Response::Digest`]: ask for a page if the
/// peer's vector has anything its own lacks; else, if the peer has heads
/// it lacks (an equivocation the vectors cannot show), ask for those.
pub fn after_digest(dag: &Dag, context: ContextId, response: &Response) -> Option<Request> {
    let Response::Digest {
        in_sync: false,
        vector: Some(theirs),
        heads,
    } = response
    else {
        return None;
    };
    let mine = dag.vector();
    let behind = theirs
        .iter()
        .any(|(a, n)| *n > mine.get(a).copied().unwrap_or(0));
    if behind {
        return Some(Request::Page {
            context,
            since: mine,
            limit: PAGE_LIMIT as u32,
        });
    }
    let ids: Vec<DeltaId> = heads
        .iter()
        .filter(|h| !dag.contains(h))
        .take(BY_ID_LIMIT)
        .copied()
        .collect();
    (!ids.is_empty()).then_some(Request::ById { context, ids })
}

/// The next page request after a [`Response::Deltas`] with `more`.
pub fn next_page(dag: &Dag, context: ContextId, more: bool) -> Option<Request> {
    more.then(|| Request::Page {
        context,
        since: dag.vector(),
        limit: PAGE_LIMIT as u32,
    })
}

/// Most deltas in one gossip message.
pub const GOSSIP_BATCH_LIMIT: usize = 256;
/// Soft limit on the encoded deltas of one gossip message, well under the
/// transport's largest message: a batch closes once it reaches this size.
pub const GOSSIP_BATCH_BYTES: usize = 1 << 20;

/// The gossip wire form: one message carries one or more deltas of a context,
/// in the order they were committed. A node publishes what it committed
/// since its last message together, so under load one message (one
/// encryption, one frame, one write per peer) carries many deltas, and when
/// idle each delta still leaves at once, alone.
///
/// ```
/// use mero_sync::protocol::{decode_gossip, encode_gossip};
/// use mero_sync::{ContextKey, MemberSecret, Op, SignedDelta};
/// use mero_sync::delta::{Draft, GENESIS_EPOCH};
/// use mero_sync::ids::{AppHash, ContextId};
/// let (key, me) = (ContextKey::generate(), MemberSecret::generate());
/// let draft = Draft { context: ContextId([1; 32]), seq: 1, parents: vec![],
///     app: AppHash([2; 32]), epoch: GENESIS_EPOCH, clock: 0 };
/// let d = SignedDelta::create(&me, &key, draft, &Op::Leave);
/// let bytes = encode_gossip(std::slice::from_ref(&d));
/// assert_eq!(decode_gossip(&bytes).unwrap(), vec![d]);
/// ```
pub fn encode_gossip(deltas: &[SignedDelta]) -> Vec<u8> {
    postcard::to_allocvec(deltas).expect("deltas serialize")
}

/// Parses a gossip message; see [`encode_gossip`].
pub fn decode_gossip(bytes: &[u8]) -> Result<Vec<SignedDelta>, postcard::Error> {
    postcard::from_bytes(bytes)
}
