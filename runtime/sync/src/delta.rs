//! Deltas: one signed, encrypted change to a context by one member.
//!
//! ```text
//! DeltaHeader { context, author, seq, parents, app, epoch, kind, clock }
//! payload   = seal(epoch key, Op, associated data = postcard(header))
//! DeltaId   = sha256("mero-delta-v2" || postcard(header) || sha256(payload))
//! signature = ed25519(author, "mero-delta-v2" || DeltaId)
//! ```
//!
//! The header is cleartext so that any node can check the signature and
//! order deltas causally before it decrypts anything, and it is the
//! payload's associated data: a payload moved under another header (another
//! author, seq, kind, app, epoch...) does not open. What a delta *does* is
//! decided only from the signed header and the opened payload, never from
//! bytes outside both.

use mero_engine::DeltaPayload;
use serde::{Deserialize, Serialize};

use crate::access::{Invite, Join, Role};
use crate::crypto::{self, ContextKey, MemberSecret, SealedKeys};
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey, sha256};

pub(crate) const SIGNING_DOMAIN: &[u8] = b"mero-delta-v2";

/// The id of the key epoch a context starts in; later epochs are named by
/// the delta that started them.
pub const GENESIS_EPOCH: DeltaId = DeltaId([0; 32]);

/// What a delta does, in its signed header, so that a payload cannot be
/// opened as another kind of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OpKind {
    /// [`Op::Call`].
    Call,
    /// [`Op::Join`].
    Join,
    /// [`Op::Invite`].
    Invite,
    /// [`Op::Revoke`].
    Revoke,
    /// [`Op::Remove`].
    Remove,
    /// [`Op::SetRole`].
    SetRole,
    /// [`Op::Upgrade`].
    Upgrade,
    /// [`Op::Rotate`].
    Rotate,
    /// [`Op::Leave`].
    Leave,
    /// [`Op::Evidence`].
    Evidence,
}

impl OpKind {
    /// Whether deltas of this kind change who may do what (membership,
    /// roles, keys, the app): every node folds them into its access view.
    pub fn is_control(self) -> bool {
        self != OpKind::Call
    }
}

/// What a delta does, once decrypted.
// Decoded once per delta and never stored in bulk: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A successful mutating call: its Loro update and events.
    Call(DeltaPayload),
    /// The author joins with an invitation (its first delta).
    Join(Join),
    /// An admin opens an invitation (see [`crate::access`]).
    Invite(Invite),
    /// An admin revokes an unused invitation.
    Revoke {
        /// The [`Op::Invite`] delta.
        invite: DeltaId,
    },
    /// An admin removes a member and starts a new key epoch without it.
    Remove {
        /// Who is removed.
        member: MemberKey,
        /// The new epoch key, sealed to everyone who stays.
        keys: SealedKeys,
    },
    /// An admin changes a member's role.
    SetRole {
        /// Whose role.
        member: MemberKey,
        /// The new role.
        role: Role,
    },
    /// An admin switches the context to another app version.
    Upgrade {
        /// The new app's content hash; equal to the header's `app`.
        app: AppHash,
    },
    /// An admin starts a new key epoch (after a leave, a revocation, or a
    /// join its current epoch did not cover).
    Rotate {
        /// The new epoch key, sealed to its readers.
        keys: SealedKeys,
    },
    /// The author leaves: its later deltas are refused.
    Leave,
    /// A member shows that another member signed two deltas with one seq.
    Evidence(Box<Evidence>),
    /// An admin switches the context to another app version and migrates
    /// the state in the same delta: `update` holds the ops the new app's
    /// `#[app::migrate]` made on the author's node (its own ops, continuing
    /// its counter, like a call's). Every node imports the same ops, so the
    /// migration runs exactly once and every replica ends in the same state.
    /// Of kind [`OpKind::Upgrade`].
    Migrate {
        /// The new app's content hash; equal to the header's `app`.
        app: AppHash,
        /// The migration's Loro update.
        update: Vec<u8>,
    },
}

impl Op {
    /// The state update it carries: a call's, or a migration's.
    pub fn update(&self) -> Option<&[u8]> {
        match self {
            Op::Call(p) => Some(&p.update),
            Op::Migrate { update, .. } => Some(update),
            _ => None,
        }
    }

    /// The app an upgrade (with or without a migration) switches to.
    pub fn upgrades_to(&self) -> Option<AppHash> {
        match self {
            Op::Upgrade { app } | Op::Migrate { app, .. } => Some(*app),
            _ => None,
        }
    }

    /// The kind the header must name.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Call(_) => OpKind::Call,
            Op::Join(_) => OpKind::Join,
            Op::Invite(_) => OpKind::Invite,
            Op::Revoke { .. } => OpKind::Revoke,
            Op::Remove { .. } => OpKind::Remove,
            Op::SetRole { .. } => OpKind::SetRole,
            Op::Upgrade { .. } | Op::Migrate { .. } => OpKind::Upgrade,
            Op::Rotate { .. } => OpKind::Rotate,
            Op::Leave => OpKind::Leave,
            Op::Evidence(_) => OpKind::Evidence,
        }
    }
}

/// The signed, cleartext fields of a delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaHeader {
    /// The context it changes.
    pub context: ContextId,
    /// The author's member key.
    pub author: MemberKey,
    /// The author's sequence number in this context: 1, 2, 3, ... Each
    /// delta but the first has its author's previous one among `parents`.
    pub seq: u64,
    /// The DAG heads the author had applied (plus its own previous delta).
    pub parents: Vec<DeltaId>,
    /// The app version the author ran (for [`Op::Upgrade`]: the new one).
    pub app: AppHash,
    /// The key epoch whose key seals the payload: the current epoch of the
    /// author's causal past.
    pub epoch: DeltaId,
    /// What the payload is.
    pub kind: OpKind,
    /// The author's state-engine op counter after this delta: its update
    /// holds exactly the author's ops from its previous delta's `clock` up
    /// to this one.
    pub clock: u32,
}

/// A delta: header and sealed payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaBody {
    /// The signed cleartext fields.
    pub header: DeltaHeader,
    /// The [`Op`], sealed with the epoch key, the header as associated data.
    pub payload: Vec<u8>,
}

/// A delta with its author's signature: what travels and what is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDelta {
    /// The signed fields.
    pub body: DeltaBody,
    /// ed25519 signature of the author over the delta id.
    pub signature: Vec<u8>,
}

/// Why a delta's payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Decryption failed: wrong key, the bytes were changed, or the payload
    /// was made for another header.
    #[error(
        "the payload does not open under this header (tampered, moved from another delta, or another key)"
    )]
    Decrypt,
    /// The plaintext is not an [`Op`], or not of the header's kind.
    #[error("the payload is not a valid operation: {0}")]
    Decode(String),
}

/// The fields of a delta its author fills in besides the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The context.
    pub context: ContextId,
    /// The author's next seq.
    pub seq: u64,
    /// Parents: the heads, plus the author's previous delta.
    pub parents: Vec<DeltaId>,
    /// The app version.
    pub app: AppHash,
    /// The current key epoch.
    pub epoch: DeltaId,
    /// The author's op counter after this delta.
    pub clock: u32,
}

impl DeltaHeader {
    /// The associated data the payload is sealed with.
    pub fn aad(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("delta headers serialize")
    }

    /// The id of a delta with this header and a payload hashing to `payload_hash`.
    pub fn id_with(&self, payload_hash: &[u8; 32]) -> DeltaId {
        id_of(&self.aad(), payload_hash)
    }
}

/// The id of a delta from its encoded header and its payload's hash.
fn id_of(aad: &[u8], payload_hash: &[u8; 32]) -> DeltaId {
    let mut b = Vec::with_capacity(SIGNING_DOMAIN.len() + aad.len() + 32);
    b.extend_from_slice(SIGNING_DOMAIN);
    b.extend_from_slice(aad);
    b.extend_from_slice(payload_hash);
    DeltaId(sha256(&b))
}

impl DeltaBody {
    /// The delta id: hash of the header and the payload's hash.
    pub fn id(&self) -> DeltaId {
        self.header.id_with(&sha256(&self.payload))
    }
}

impl SignedDelta {
    /// Seals `op` with `key` under the header and signs the delta.
    ///
    /// ```
    /// use mero_sync::{ContextKey, MemberSecret, Op, SignedDelta};
    /// use mero_sync::delta::{Draft, GENESIS_EPOCH};
    /// use mero_sync::ids::{AppHash, ContextId};
    /// let (key, me) = (ContextKey::generate(), MemberSecret::generate());
    /// let draft = Draft { context: ContextId([1; 32]), seq: 1, parents: vec![],
    ///     app: AppHash([2; 32]), epoch: GENESIS_EPOCH, clock: 0 };
    /// let d = SignedDelta::create(&me, &key, draft, &Op::Leave);
    /// assert!(d.verify());
    /// assert_eq!(d.open(&key).unwrap(), Op::Leave);
    /// // The same payload under another header does not open.
    /// let mut moved = d.clone();
    /// moved.body.header.seq = 2;
    /// assert!(moved.open(&key).is_err());
    /// ```
    pub fn create(author: &MemberSecret, key: &ContextKey, draft: Draft, op: &Op) -> Self {
        Self::create_with_id(author, key, draft, op).1
    }

    /// [`create`](Self::create), also returning the id (computed once).
    pub fn create_with_id(
        author: &MemberSecret,
        key: &ContextKey,
        draft: Draft,
        op: &Op,
    ) -> (DeltaId, Self) {
        let header = DeltaHeader {
            context: draft.context,
            author: author.public(),
            seq: draft.seq,
            parents: draft.parents,
            app: draft.app,
            epoch: draft.epoch,
            kind: op.kind(),
            clock: draft.clock,
        };
        let plain = postcard::to_allocvec(op).expect("operations serialize");
        let aad = header.aad();
        let payload = key.seal(&plain, &aad);
        let id = id_of(&aad, &sha256(&payload));
        let signature = author.sign(SIGNING_DOMAIN, &id.0);
        let body = DeltaBody { header, payload };
        (id, Self { body, signature })
    }

    /// The header.
    pub fn header(&self) -> &DeltaHeader {
        &self.body.header
    }

    /// The delta id.
    pub fn id(&self) -> DeltaId {
        self.body.id()
    }

    /// Whether the signature is the author's, over exactly these fields.
    pub fn verify(&self) -> bool {
        self.verify_id(&self.id())
    }

    /// [`verify`](Self::verify) with the id already computed.
    pub fn verify_id(&self, id: &DeltaId) -> bool {
        crypto::verify(
            &self.body.header.author,
            SIGNING_DOMAIN,
            &id.0,
            &self.signature,
        )
    }

    /// [`verify_id`](Self::verify_id) for many deltas in one batch check;
    /// says which are valid.
    ///
    /// ```
    /// use mero_sync::{ContextKey, MemberSecret, Op, SignedDelta};
    /// use mero_sync::delta::{Draft, GENESIS_EPOCH};
    /// use mero_sync::ids::{AppHash, ContextId};
    /// let (key, me) = (ContextKey::generate(), MemberSecret::generate());
    /// let make = |seq| SignedDelta::create(&me, &key, Draft { context: ContextId([1; 32]), seq,
    ///     parents: vec![], app: AppHash([2; 32]), epoch: GENESIS_EPOCH, clock: 0 }, &Op::Leave);
    /// let (a, mut b) = (make(1), make(2));
    /// b.signature[0] ^= 1;
    /// let ids = [a.id(), b.id()];
    /// assert_eq!(SignedDelta::verify_many(&[(&a, &ids[0]), (&b, &ids[1])]), [true, false]);
    /// ```
    pub fn verify_many(deltas: &[(&SignedDelta, &DeltaId)]) -> Vec<bool> {
        let items: Vec<_> = deltas
            .iter()
            .map(|(d, id)| (&d.body.header.author, &id.0[..], &d.signature[..]))
            .collect();
        crypto::verify_batch(SIGNING_DOMAIN, &items)
    }

    /// Decrypts and decodes the operation, which must be of the header's kind.
    pub fn open(&self, key: &ContextKey) -> Result<Op, OpenError> {
        let h = &self.body.header;
        let plain = key
            .open(&self.body.payload, &h.aad())
            .ok_or(OpenError::Decrypt)?;
        let op: Op = postcard::from_bytes(&plain).map_err(|e| OpenError::Decode(e.to_string()))?;
        if op.kind() != h.kind {
            return Err(OpenError::Decode(format!(
                "the header says {:?}, the payload holds {:?}",
                h.kind,
                op.kind()
            )));
        }
        Ok(op)
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("deltas serialize")
    }

    /// Parses the wire form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// A delta reduced to what proves its author signed it: header, payload
/// hash and signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHeader {
    /// The header.
    pub header: DeltaHeader,
    /// SHA-256 of the sealed payload.
    pub payload_hash: [u8; 32],
    /// The author's signature over the id.
    pub signature: Vec<u8>,
}

impl SignedHeader {
    /// The proof part of `d`.
    pub fn of(d: &SignedDelta) -> Self {
        Self {
            header: d.body.header.clone(),
            payload_hash: sha256(&d.body.payload),
            signature: d.signature.clone(),
        }
    }

    /// The id of the delta it stands for.
    pub fn id(&self) -> DeltaId {
        self.header.id_with(&self.payload_hash)
    }

    /// Whether the author signed it.
    pub fn verify(&self) -> bool {
        crypto::verify(
            &self.header.author,
            SIGNING_DOMAIN,
            &self.id().0,
            &self.signature,
        )
    }
}

/// Two different deltas signed by one author with one seq: proof that the
/// author equivocated. Anyone can check it without any key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// One delta.
    pub a: SignedHeader,
    /// The other.
    pub b: SignedHeader,
}

impl Evidence {
    /// The equivocating author, if this proves equivocation in `context`.
    ///
    /// ```
    /// use mero_sync::{ContextKey, MemberSecret, Op, SignedDelta};
    /// use mero_sync::delta::{Draft, Evidence, GENESIS_EPOCH, SignedHeader};
    /// use mero_sync::ids::{AppHash, ContextId};
    /// let (key, me, ctx) = (ContextKey::generate(), MemberSecret::generate(), ContextId([1; 32]));
    /// let make = |app| SignedDelta::create(&me, &key, Draft { context: ctx, seq: 1,
    ///     parents: vec![], app: AppHash([app; 32]), epoch: GENESIS_EPOCH, clock: 0 }, &Op::Leave);
    /// let e = Evidence { a: SignedHeader::of(&make(1)), b: SignedHeader::of(&make(2)) };
    /// assert_eq!(e.forker(&ctx), Some(me.public()));
    /// let same = Evidence { a: e.a.clone(), b: e.a.clone() };
    /// assert_eq!(same.forker(&ctx), None);
    /// ```
    pub fn forker(&self, context: &ContextId) -> Option<MemberKey> {
        let (a, b) = (&self.a.header, &self.b.header);
        (a.context == *context
            && b.context == *context
            && a.author == b.author
            && a.seq == b.seq
            && self.a.id() != self.b.id()
            && self.a.verify()
            && self.b.verify())
        .then_some(a.author)
    }
}
