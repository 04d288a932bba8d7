//! Deltas: one signed, encrypted change to a context by one member.
//!
//! ```text
//! DeltaBody { context, author, seq, parents, app, payload = seal(context key, Op) }
//! DeltaId   = sha256(postcard(body))
//! signature = ed25519(author, "mero-delta-v1" || DeltaId)
//! ```
//!
//! Everything but the payload is cleartext so that any node can check the
//! signature and order deltas causally before it decrypts anything.

use mero_engine::DeltaPayload;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, ContextKey, MemberSecret};
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey, sha256};
use crate::members::Invitation;

const SIGNING_DOMAIN: &[u8] = b"mero-delta-v1";

/// What a delta does, once decrypted.
// Decoded once per delta and never stored in bulk: boxing the join would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A successful mutating call: its Loro update and events.
    Call(DeltaPayload),
    /// The author joins the context with an invitation.
    Join {
        /// The invitation, as the inviter signed it.
        invitation: Invitation,
        /// When the author says it joined (ms since the Unix epoch); must not
        /// be past the invitation's expiry.
        joined_at_ms: u64,
    },
    /// The context now runs the app named in the delta's `app` field.
    Upgrade,
    /// The author leaves: its later deltas are refused.
    Leave,
}

/// The signed fields of a delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaBody {
    /// The context it changes.
    pub context: ContextId,
    /// The author's member key.
    pub author: MemberKey,
    /// The author's sequence number in this context: 1, 2, 3, ...
    pub seq: u64,
    /// The DAG heads the author had applied when it made the delta.
    pub parents: Vec<DeltaId>,
    /// The app version the author ran (for [`Op::Upgrade`]: the new one).
    pub app: AppHash,
    /// The [`Op`], sealed with the context key.
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
    /// Decryption failed: wrong key, or the bytes were changed.
    #[error("the payload does not decrypt with the context key (tampered, or another context)")]
    Decrypt,
    /// The plaintext is not an [`Op`].
    #[error("the payload is not a valid operation: {0}")]
    Decode(String),
}

impl DeltaBody {
    /// The delta id: hash of the signed fields.
    pub fn id(&self) -> DeltaId {
        DeltaId(sha256(
            &postcard::to_allocvec(self).expect("delta bodies serialize"),
        ))
    }
}

impl SignedDelta {
    /// Seals `op` and signs the delta.
    ///
    /// ```
    /// use mero_sync::{ContextKey, MemberSecret, Op, SignedDelta};
    /// use mero_sync::ids::{AppHash, ContextId};
    /// let (key, me) = (ContextKey::generate(), MemberSecret::generate());
    /// let d = SignedDelta::create(&me, &key, ContextId([1; 32]), 1, vec![], AppHash([2; 32]), &Op::Leave);
    /// assert!(d.verify());
    /// assert_eq!(d.open(&key).unwrap(), Op::Leave);
    /// ```
    pub fn create(
        author: &MemberSecret,
        key: &ContextKey,
        context: ContextId,
        seq: u64,
        parents: Vec<DeltaId>,
        app: AppHash,
        op: &Op,
    ) -> Self {
        let plain = postcard::to_allocvec(op).expect("operations serialize");
        let body = DeltaBody {
            context,
            author: author.public(),
            seq,
            parents,
            app,
            payload: key.seal(&plain),
        };
        let signature = author.sign(SIGNING_DOMAIN, &body.id().0);
        Self { body, signature }
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
        crypto::verify(&self.body.author, SIGNING_DOMAIN, &id.0, &self.signature)
    }

    /// [`verify_id`](Self::verify_id) for many deltas in one batch check;
    /// says which are valid.
    ///
    /// ```
    /// use mero_sync::{ContextKey, MemberSecret, Op, SignedDelta};
    /// use mero_sync::ids::{AppHash, ContextId};
    /// let (key, me) = (ContextKey::generate(), MemberSecret::generate());
    /// let make = |seq| SignedDelta::create(&me, &key, ContextId([1; 32]), seq, vec![], AppHash([2; 32]), &Op::Leave);
    /// let (a, mut b) = (make(1), make(2));
    /// b.signature[0] ^= 1;
    /// let ids = [a.id(), b.id()];
    /// assert_eq!(SignedDelta::verify_many(&[(&a, &ids[0]), (&b, &ids[1])]), [true, false]);
    /// ```
    pub fn verify_many(deltas: &[(&SignedDelta, &DeltaId)]) -> Vec<bool> {
        let items: Vec<_> = deltas
            .iter()
            .map(|(d, id)| (&d.body.author, &id.0[..], &d.signature[..]))
            .collect();
        crypto::verify_batch(SIGNING_DOMAIN, &items)
    }

    /// Decrypts and decodes the operation.
    pub fn open(&self, key: &ContextKey) -> Result<Op, OpenError> {
        let plain = key.open(&self.body.payload).ok_or(OpenError::Decrypt)?;
        postcard::from_bytes(&plain).map_err(|e| OpenError::Decode(e.to_string()))
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
