//! Invitation tokens: what an admin hands a joiner, out of band.
//!
//! The invitation itself is a delta ([`Op::Invite`](crate::Op::Invite)),
//! so every member can count its uses and see it revoked. The token adds
//! what only the joiner may hold: the secret half of the invitation's
//! one-time key (which signs the joiner's member key in its
//! [`Join`](crate::access::Join)) and the key of the epoch the invitation
//! was made in. Later epoch keys are sealed to the invitation key until it
//! is used, so the joiner can read what was written meanwhile.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::access::context_id;
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey};

const TOKEN_PREFIX: &str = "mero-inv-";

/// What a joiner is given. Shown as `mero-inv-<base58>`; treat it like a
/// password until it is used or expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationToken {
    /// The context.
    pub context: ContextId,
    /// Its creator and salt, from which the context id is derived.
    pub creator: MemberKey,
    /// See [`context_id`].
    pub salt: [u8; 32],
    /// The app the context ran when the invitation was made.
    pub app: AppHash,
    /// The [`Op::Invite`](crate::Op::Invite) delta.
    pub invite: DeltaId,
    /// Secret half of the invitation key.
    pub secret: [u8; 32],
    /// The key epoch the invitation was made in, and its key.
    pub epoch: DeltaId,
    /// That epoch's key.
    pub key: [u8; 32],
    /// The inviter's heads after the invitation: the joiner catches up to
    /// them before it joins.
    pub heads: Vec<DeltaId>,
    /// Expiry, ms since the Unix epoch.
    pub expires_at_ms: u64,
    /// Addresses of members to contact (libp2p multiaddrs).
    pub addrs: Vec<String>,
}

/// Why an invitation token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `mero-inv-<base58>` of a token.
    #[error("not an invitation token (expected `mero-inv-…`): {0}")]
    Malformed(String),
    /// The context id does not match its creator and salt.
    #[error("the invitation's context id does not check out")]
    Invalid,
    /// Past its expiry.
    #[error("the invitation expired; ask an admin for a new one")]
    Expired,
}

impl InvitationToken {
    /// Checks the context id, and expiry against `now_ms`. Whether the
    /// invitation is real, open and unrevoked only the DAG can tell: the
    /// join is refused by every node otherwise.
    pub fn check(&self, now_ms: u64) -> Result<(), TokenError> {
        if self.context != context_id(&self.creator, &self.salt) {
            return Err(TokenError::Invalid);
        }
        if now_ms > self.expires_at_ms {
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
