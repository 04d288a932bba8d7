//! Membership: who may write to a context, and the invitations that admit
//! new members.
//!
//! A context id commits to its creator: `sha256("mero-context" || creator ||
//! salt)`. The creator may invite; so may members whose invitation said
//! `can_invite`. A joiner's first delta is an [`Op::Join`](crate::Op::Join)
//! carrying its invitation, so every node decides membership from the deltas
//! alone, in causal order, and all nodes decide the same.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::crypto::{self, ContextKey, MemberSecret};
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey, sha256};

const INVITATION_DOMAIN: &[u8] = b"mero-invitation-v1";
const TOKEN_PREFIX: &str = "mero-inv-";

/// The id of a context created by `creator` with `salt`.
pub fn context_id(creator: &MemberKey, salt: &[u8; 32]) -> ContextId {
    let mut b = b"mero-context".to_vec();
    b.extend_from_slice(&creator.0);
    b.extend_from_slice(salt);
    ContextId(sha256(&b))
}

/// The signed fields of an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationBody {
    /// The context.
    pub context: ContextId,
    /// Its creator and salt, from which the context id is derived.
    pub creator: MemberKey,
    /// See [`context_id`].
    pub salt: [u8; 32],
    /// The app the context runs when the invitation is made.
    pub app: AppHash,
    /// The member who invites.
    pub inviter: MemberKey,
    /// Whether the joiner may invite others in turn.
    pub can_invite: bool,
    /// Expiry, ms since the Unix epoch.
    pub expires_at_ms: u64,
    /// [`ContextKey::commitment`] of the context key the token carries.
    pub key_commitment: [u8; 32],
    /// The inviter's DAG heads: the joiner's first delta comes after them,
    /// so the inviter's own membership is in its causal past.
    pub heads: Vec<DeltaId>,
    /// Addresses of members to contact (libp2p multiaddrs).
    pub addrs: Vec<String>,
    /// Random bytes so two invitations never look alike.
    pub nonce: [u8; 16],
}

/// An invitation signed by the inviter. It carries no secret: it travels in
/// the joiner's [`Op::Join`](crate::Op::Join).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The signed fields.
    pub body: InvitationBody,
    /// The inviter's signature.
    pub signature: Vec<u8>,
}

impl Invitation {
    /// Signs `body` as `inviter` (whose public key must be `body.inviter`).
    pub fn sign(inviter: &MemberSecret, body: InvitationBody) -> Self {
        let bytes = postcard::to_allocvec(&body).expect("invitations serialize");
        let signature = inviter.sign(INVITATION_DOMAIN, &bytes);
        Self { body, signature }
    }

    /// Whether the inviter's signature holds and the context id matches its creator.
    pub fn verify(&self) -> bool {
        let bytes = postcard::to_allocvec(&self.body).expect("invitations serialize");
        self.body.context == context_id(&self.body.creator, &self.body.salt)
            && crypto::verify(
                &self.body.inviter,
                INVITATION_DOMAIN,
                &bytes,
                &self.signature,
            )
    }
}

/// What a joiner is given: the invitation plus the context key. Shown as
/// `mero-inv-<base58>`; treat it like a password until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationToken {
    /// The signed invitation.
    pub invitation: Invitation,
    /// The context key.
    pub key: [u8; 32],
}

/// Why an invitation token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `mero-inv-<base58>` of a token.
    #[error("not an invitation token (expected `mero-inv-…`): {0}")]
    Malformed(String),
    /// Signature, context id or key commitment do not hold.
    #[error("the invitation's signature or key does not check out")]
    Invalid,
    /// Past its expiry.
    #[error("the invitation expired; ask a member for a new one")]
    Expired,
}

impl InvitationToken {
    /// Checks signature and key commitment, and expiry against `now_ms`.
    pub fn check(&self, now_ms: u64) -> Result<(), TokenError> {
        if !self.invitation.verify()
            || ContextKey(self.key).commitment() != self.invitation.body.key_commitment
        {
            return Err(TokenError::Invalid);
        }
        if now_ms > self.invitation.body.expires_at_ms {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

impl fmt::Display for InvitationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = postcard::to_allocvec(self).expect("tokens serialize");
        write!(f, "{TOKEN_PREFIX}{}", bs58::encode(bytes).into_string())
    }
}

impl FromStr for InvitationToken {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, TokenError> {
        let rest = s
            .trim()
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| TokenError::Malformed("missing the `mero-inv-` prefix".into()))?;
        let bytes = bs58::decode(rest)
            .into_vec()
            .map_err(|e| TokenError::Malformed(e.to_string()))?;
        postcard::from_bytes(&bytes).map_err(|e| TokenError::Malformed(e.to_string()))
    }
}

/// One member, as every node derives it from the deltas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Who invited it (`None` for the creator).
    pub invited_by: Option<MemberKey>,
    /// Whether it may invite.
    pub can_invite: bool,
    /// Seq of its [`Op::Leave`](crate::Op::Leave), if it left.
    pub left_at: Option<u64>,
}

/// Why a delta's author is not allowed to make it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberReject {
    /// The author is not a member (or has left).
    #[error("the author is not a member of the context")]
    NotMember,
    /// A join whose invitation does not hold.
    #[error("invalid join: {0}")]
    BadJoin(&'static str),
}

/// A context's member set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    members: BTreeMap<MemberKey, Member>,
}

impl Members {
    /// A context's initial member set: its creator alone.
    pub fn new(creator: MemberKey) -> Self {
        let mut members = BTreeMap::new();
        members.insert(
            creator,
            Member {
                invited_by: None,
                can_invite: true,
                left_at: None,
            },
        );
        Self { members }
    }

    /// Whether `key` may author a delta with this `seq`.
    pub fn can_write(&self, key: &MemberKey, seq: u64) -> bool {
        self.members
            .get(key)
            .is_some_and(|m| m.left_at.is_none_or(|l| seq <= l))
    }

    /// Every member.
    pub fn iter(&self) -> impl Iterator<Item = (&MemberKey, &Member)> {
        self.members.iter()
    }

    /// One member.
    pub fn get(&self, key: &MemberKey) -> Option<&Member> {
        self.members.get(key)
    }

    /// Checks a join by `author` in `context` whose key has `commitment`, and
    /// admits the author.
    pub fn join(
        &mut self,
        context: &ContextId,
        commitment: &[u8; 32],
        author: MemberKey,
        seq: u64,
        invitation: &Invitation,
        joined_at_ms: u64,
    ) -> Result<(), MemberReject> {
        let b = &invitation.body;
        if self.members.contains_key(&author) || seq != 1 {
            return Err(MemberReject::BadJoin(
                "a join must be the author's first delta",
            ));
        }
        if &b.context != context || &b.key_commitment != commitment || !invitation.verify() {
            return Err(MemberReject::BadJoin("invitation signature or context"));
        }
        if joined_at_ms > b.expires_at_ms {
            return Err(MemberReject::BadJoin("invitation expired"));
        }
        match self.members.get(&b.inviter) {
            Some(m) if m.can_invite && m.left_at.is_none() => {}
            _ => return Err(MemberReject::BadJoin("the inviter may not invite")),
        }
        self.members.insert(
            author,
            Member {
                invited_by: Some(b.inviter),
                can_invite: b.can_invite,
                left_at: None,
            },
        );
        Ok(())
    }

    /// Records that `author` left with its delta `seq`.
    pub fn leave(&mut self, author: &MemberKey, seq: u64) {
        if let Some(m) = self.members.get_mut(author) {
            m.left_at = Some(seq);
        }
    }
}
