//! Who may ask a node about a context, and where its gossip flows.
//!
//! A node answers a catch-up request (digest, page, deltas by id, app)
//! only from a peer that proves, in the request, that it holds a key of
//! the context: a current member's key, or a joiner's open invitation. The
//! [`Proof`] is a signature over the context and the requester's transport
//! identity (its libp2p peer id, which the encrypted connection
//! authenticates), so it cannot be replayed by another peer. It is checked
//! against the answering node's current [`Access`]: a removed, departed or
//! flagged member, or a revoked, used-up or expired invitation, gets
//! nothing — and the same answer as for a context the node does not have,
//! so a non-member cannot even tell whether it is there.
//!
//! Gossip goes on a topic named after the current epoch key ([`Topic`]),
//! and every message on it is sealed with a key derived from the epoch key:
//! gossipsub announces subscriptions to every connected peer, so a topic
//! name is no secret, but a peer without the key reads nothing of what
//! flows there, headers included.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::access::Access;
use crate::crypto::{ContextKey, MemberSecret, verify};
use crate::ids::{ContextId, DeltaId, MemberKey, sha256};

const PROOF_DOMAIN: &[u8] = b"mero/request-proof/v1";
const TOPIC_DOMAIN: &[u8] = b"mero/topic/v1";
const GOSSIP_KEY_DOMAIN: &[u8] = b"mero/gossip-key/v1";

/// How long after its expiry an invitation still admits its joiner's
/// catch-up requests.
pub const JOIN_GRACE_MS: u64 = 60 * 60 * 1000;

/// A context's gossip topic in one key epoch: its name and the key its
/// messages are sealed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The gossipsub topic ([`topic_name`]).
    pub name: String,
    /// Seals every message on it ([`Topic::seal`]).
    pub key: ContextKey,
    context: ContextId,
}

impl Topic {
    /// The topic of `context` in the epoch whose key is `epoch_key`.
    ///
    /// ```
    /// use mero_sync::gate::Topic;
    /// use mero_sync::ContextKey;
    /// use mero_sync::ids::ContextId;
    /// let (ctx, key) = (ContextId([1; 32]), ContextKey::generate());
    /// let t = Topic::of(&ctx, &key);
    /// let sealed = t.seal(b"deltas");
    /// assert_eq!(t.open(&sealed).unwrap(), b"deltas");
    /// assert!(Topic::of(&ctx, &ContextKey::generate()).open(&sealed).is_none());
    /// ```
    pub fn of(context: &ContextId, epoch_key: &ContextKey) -> Self {
        let mut m = GOSSIP_KEY_DOMAIN.to_vec();
        m.extend_from_slice(&context.0);
        m.extend_from_slice(&epoch_key.0);
        Self {
            name: topic_name(context, epoch_key),
            key: ContextKey(sha256(&m)),
            context: *context,
        }
    }

    /// Seals a gossip message for this topic.
    pub fn seal(&self, message: &[u8]) -> Vec<u8> {
        self.key.seal(message, &self.context.0)
    }

    /// Opens a message sealed for this topic; `None` if it was not.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        self.key.open(sealed, &self.context.0)
    }
}

/// A requester's proof that it belongs to a context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proof {
    /// Signed by a member key.
    Member {
        /// The member.
        key: MemberKey,
        /// Its signature over the context and the requester's peer id.
        signature: Vec<u8>,
    },
    /// Signed by an invitation's one-time key: a joiner catching up before
    /// its join is in.
    Invite {
        /// The [`Op::Invite`](crate::Op::Invite) delta.
        invite: DeltaId,
        /// The invitation key's signature over the context and the
        /// requester's peer id.
        signature: Vec<u8>,
    },
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The key is not an active, unflagged member's.
    #[error("not a member")]
    NotMember,
    /// The invitation is unknown, revoked, used up or expired.
    #[error("the invitation is not open")]
    InviteClosed,
    /// The signature does not verify for this context and peer.
    #[error("bad proof signature")]
    BadSignature,
}

fn message(context: &ContextId, peer: &[u8]) -> Vec<u8> {
    let mut m = context.0.to_vec();
    m.extend_from_slice(peer);
    m
}

impl Proof {
    /// A member's proof for requests from the peer `peer` (its transport id).
    ///
    /// ```
    /// use mero_sync::gate::{Proof, admit};
    /// use mero_sync::{Access, MemberSecret};
    /// use mero_sync::ids::ContextId;
    /// let me = MemberSecret::generate();
    /// let ctx = ContextId([1; 32]);
    /// let access = Access::genesis(ctx, me.public());
    /// let proof = Proof::member(&me, &ctx, b"peer-a");
    /// assert!(admit(&access, &ctx, &proof, b"peer-a", 0).is_ok());
    /// // Bound to the peer: another peer cannot reuse it.
    /// assert!(admit(&access, &ctx, &proof, b"peer-b", 0).is_err());
    /// ```
    pub fn member(secret: &MemberSecret, context: &ContextId, peer: &[u8]) -> Self {
        Proof::Member {
            key: secret.public(),
            signature: secret.sign(PROOF_DOMAIN, &message(context, peer)),
        }
    }

    /// A joiner's proof, signed with the invitation's secret key.
    pub fn invite(
        secret: &MemberSecret,
        invite: DeltaId,
        context: &ContextId,
        peer: &[u8],
    ) -> Self {
        Proof::Invite {
            invite,
            signature: secret.sign(PROOF_DOMAIN, &message(context, peer)),
        }
    }
}

/// Whether `proof` admits a request about `context` from the peer `peer`,
/// judged by the answering node's current `access` at time `now_ms`.
pub fn admit(
    access: &Access,
    context: &ContextId,
    proof: &Proof,
    peer: &[u8],
    now_ms: u64,
) -> Result<(), Refusal> {
    let member = |key: &MemberKey| {
        access
            .member(key)
            .is_some_and(|m| m.active() && !access.flagged().contains_key(key))
    };
    let invite = |id: &DeltaId| {
        access
            .invites()
            .get(id)
            .map(|state| GateInvite::of(access, state))
    };
    admit_by(member, invite, context, proof, peer, now_ms)
}

/// [`admit`] judged by a [`Gate`] of the access instead of the access
/// itself: the same decision for every proof, peer and time.
///
/// ```
/// use mero_sync::gate::{Gate, Proof, admit_gate};
/// use mero_sync::{Access, MemberSecret};
/// use mero_sync::ids::ContextId;
/// let me = MemberSecret::generate();
/// let ctx = ContextId([1; 32]);
/// let gate = Gate::of(&Access::genesis(ctx, me.public()));
/// let proof = Proof::member(&me, &ctx, b"peer-a");
/// assert!(admit_gate(&gate, &ctx, &proof, b"peer-a", 0).is_ok());
/// assert!(admit_gate(&gate, &ctx, &proof, b"peer-b", 0).is_err());
/// ```
pub fn admit_gate(
    gate: &Gate,
    context: &ContextId,
    proof: &Proof,
    peer: &[u8],
    now_ms: u64,
) -> Result<(), Refusal> {
    let member = |key: &MemberKey| gate.members.contains(key);
    let invite = |id: &DeltaId| gate.invites.get(id).cloned();
    admit_by(member, invite, context, proof, peer, now_ms)
}

/// The one admission rule, over how the caller looks up members and
/// invitations.
fn admit_by(
    admitted_member: impl Fn(&MemberKey) -> bool,
    invite: impl Fn(&DeltaId) -> Option<GateInvite>,
    context: &ContextId,
    proof: &Proof,
    peer: &[u8],
    now_ms: u64,
) -> Result<(), Refusal> {
    let (key, signature) = match proof {
        Proof::Member { key, signature } => {
            if !admitted_member(key) {
                return Err(Refusal::NotMember);
            }
            (*key, signature)
        }
        Proof::Invite {
            invite: id,
            signature,
        } => {
            let state = invite(id).ok_or(Refusal::InviteClosed)?;
            // A joiner may still be catching up when its token expires (its
            // join is dated at most at the expiry): a grace period.
            let expired = state.expires_at_ms.saturating_add(JOIN_GRACE_MS) <= now_ms;
            if !state.open || expired || !state.by_admin {
                return Err(Refusal::InviteClosed);
            }
            (state.key, signature)
        }
    };
    if verify(&key, PROOF_DOMAIN, &message(context, peer), signature) {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

/// What [`admit`] reads of an [`Access`]: the members it admits and the
/// invitations. A node keeps it for a context whose replica is not loaded,
/// to answer requests without loading it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    /// Active, unflagged members.
    members: BTreeSet<MemberKey>,
    /// Every invitation, by its delta.
    invites: BTreeMap<DeltaId, GateInvite>,
}

/// One invitation, as [`Gate`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct GateInvite {
    /// The key its joiner signs with.
    key: MemberKey,
    expires_at_ms: u64,
    /// Neither revoked nor used up.
    open: bool,
    /// Made by a member who is an admin now.
    by_admin: bool,
}

impl GateInvite {
    fn of(access: &Access, state: &crate::access::InviteState) -> Self {
        Self {
            key: state.invite.key,
            expires_at_ms: state.invite.expires_at_ms,
            open: state.open(),
            by_admin: access.role(&state.by) == Some(crate::Role::Admin),
        }
    }
}

impl Gate {
    /// The gate of `access` as it is now.
    pub fn of(access: &Access) -> Self {
        let members = access
            .members()
            .filter(|(k, m)| m.active() && !access.flagged().contains_key(*k))
            .map(|(k, _)| *k)
            .collect();
        let invites = access
            .invites()
            .iter()
            .map(|(id, state)| (*id, GateInvite::of(access, state)))
            .collect();
        Self { members, invites }
    }
}

/// The gossip topic of a context in a key epoch: derived from the epoch
/// key, so only its holders can subscribe; it changes when the key rotates.
///
/// ```
/// use mero_sync::gate::topic_name;
/// use mero_sync::ContextKey;
/// use mero_sync::ids::ContextId;
/// let (a, b) = (ContextKey::generate(), ContextKey::generate());
/// let ctx = ContextId([1; 32]);
/// assert_ne!(topic_name(&ctx, &a), topic_name(&ctx, &b));
/// assert!(!topic_name(&ctx, &a).contains(&ctx.to_string()));
/// ```
pub fn topic_name(context: &ContextId, key: &ContextKey) -> String {
    let mut m = TOPIC_DOMAIN.to_vec();
    m.extend_from_slice(&context.0);
    m.extend_from_slice(&key.0);
    format!("mero/ctx/{}", bs58::encode(&sha256(&m)[..20]).into_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Invite;
    use crate::delta::{Draft, GENESIS_EPOCH};
    use crate::{Op, Role, SignedDelta};

    /// [`admit`], checked against [`admit_gate`] of the same access.
    fn judge(
        access: &Access,
        ctx: &ContextId,
        proof: &Proof,
        peer: &[u8],
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let by_access = admit(access, ctx, proof, peer, now_ms);
        let by_gate = admit_gate(&Gate::of(access), ctx, proof, peer, now_ms);
        assert_eq!(by_access, by_gate, "a gate decides as its access does");
        by_access
    }

    #[test]
    fn a_used_up_invitation_admits_nobody() {
        let (access, ctx, one_time, invite) = invited(0, u64::MAX);
        let p = Proof::invite(&one_time, invite, &ctx, b"joiner");
        assert_eq!(
            judge(&access, &ctx, &p, b"joiner", 0),
            Err(Refusal::InviteClosed)
        );
    }

    fn invited(uses: u32, expires_at_ms: u64) -> (Access, ContextId, MemberSecret, DeltaId) {
        let admin = MemberSecret::generate();
        let ctx = ContextId([3; 32]);
        let mut access = Access::genesis(ctx, admin.public());
        let one_time = MemberSecret::generate();
        let op = Op::Invite(Invite {
            key: one_time.public(),
            role: Role::Writer,
            uses,
            expires_at_ms,
        });
        let draft = Draft {
            context: ctx,
            seq: 1,
            parents: vec![],
            app: crate::ids::AppHash([0; 32]),
            epoch: GENESIS_EPOCH,
            clock: 0,
        };
        let d = SignedDelta::create(&admin, &ContextKey::generate(), draft, &op);
        access.apply(d.id(), d.header(), &op);
        (access, ctx, one_time, d.id())
    }

    #[test]
    fn strangers_and_forgeries_are_refused() {
        let me = MemberSecret::generate();
        let ctx = ContextId([1; 32]);
        let access = Access::genesis(ctx, me.public());
        let stranger = MemberSecret::generate();
        let p = Proof::member(&stranger, &ctx, b"p");
        assert_eq!(judge(&access, &ctx, &p, b"p", 0), Err(Refusal::NotMember));
        // A member's key with someone else's signature.
        let Proof::Member { signature, .. } = p else {
            unreachable!()
        };
        let forged = Proof::Member {
            key: me.public(),
            signature,
        };
        assert_eq!(
            judge(&access, &ctx, &forged, b"p", 0),
            Err(Refusal::BadSignature)
        );
        // Signed for another context.
        let other = Proof::member(&me, &ContextId([2; 32]), b"p");
        assert_eq!(
            judge(&access, &ctx, &other, b"p", 0),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn an_open_invitation_admits_until_it_expires() {
        let (access, ctx, one_time, invite) = invited(1, 1_000);
        let p = Proof::invite(&one_time, invite, &ctx, b"joiner");
        assert_eq!(judge(&access, &ctx, &p, b"joiner", 999), Ok(()));
        // A joiner still catching up at the expiry gets a grace period.
        assert_eq!(
            judge(&access, &ctx, &p, b"joiner", 1_000 + JOIN_GRACE_MS - 1),
            Ok(())
        );
        assert_eq!(
            judge(&access, &ctx, &p, b"joiner", 1_000 + JOIN_GRACE_MS),
            Err(Refusal::InviteClosed)
        );
        let wrong = Proof::invite(&MemberSecret::generate(), invite, &ctx, b"joiner");
        assert_eq!(
            judge(&access, &ctx, &wrong, b"joiner", 0),
            Err(Refusal::BadSignature)
        );
        let unknown = Proof::invite(&one_time, DeltaId([9; 32]), &ctx, b"joiner");
        assert_eq!(
            judge(&access, &ctx, &unknown, b"joiner", 0),
            Err(Refusal::InviteClosed)
        );
    }
}
