//! Invitation tokens: what an admin hands a joiner, out of band.
//!
//! The invitation itself is a delta ([`Op::Invite`](crate::Op::Invite)),
//! so every member can count its uses and see it revoked. The token adds
//! what only the joiner may hold: the secret half of the invitation's
//! one-time key (which signs the joiner's member key in its
//! [`Join`](crate::access::Join)), the key of the epoch the invitation
//! was made in, and every earlier epoch key the inviter holds, so the
//! joiner can open the history from before the last rotation too. Later
//! epoch keys are sealed to the invitation key until it is used, so the
//! joiner can read what was written meanwhile.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::access::context_id;
use crate::crypto::ContextKey;
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey};

const TOKEN_PREFIX: &str = "mero-inv-";

/// At most this many earlier epoch keys in a token (64 KiB of keys: a
/// context that rotates once a day for almost three years). An inviter
/// holding more cannot invite; see [`InvitationToken::new_past`].
pub const MAX_PAST_EPOCHS: usize = 1024;

/// Longer pasted text is refused before it is decoded.
const MAX_TOKEN_CHARS: usize = 128 * 1024;

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
    /// Addresses to dial (libp2p multiaddrs): the inviter's, then its meet
    /// servers', where the joiner looks the other members up.
    pub addrs: Vec<String>,
    /// Every earlier epoch and its key, oldest first: the deltas made
    /// before the last rotation are sealed with them. At most
    /// [`MAX_PAST_EPOCHS`].
    pub past: Vec<(DeltaId, [u8; 32])>,
}

/// The token before it carried earlier epoch keys: still read, so a token
/// handed out before an upgrade keeps working (with no past keys).
#[derive(Deserialize)]
struct TokenV1 {
    context: ContextId,
    creator: MemberKey,
    salt: [u8; 32],
    app: AppHash,
    invite: DeltaId,
    secret: [u8; 32],
    epoch: DeltaId,
    key: [u8; 32],
    heads: Vec<DeltaId>,
    expires_at_ms: u64,
    addrs: Vec<String>,
}

impl From<TokenV1> for InvitationToken {
    fn from(t: TokenV1) -> Self {
        Self {
            context: t.context,
            creator: t.creator,
            salt: t.salt,
            app: t.app,
            invite: t.invite,
            secret: t.secret,
            epoch: t.epoch,
            key: t.key,
            heads: t.heads,
            expires_at_ms: t.expires_at_ms,
            addrs: t.addrs,
            past: Vec::new(),
        }
    }
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
    /// More earlier epochs than a token may carry.
    #[error(
        "the context has {0} earlier key epochs; an invitation carries at most {MAX_PAST_EPOCHS}"
    )]
    TooManyEpochs(usize),
}

impl InvitationToken {
    /// Checks the context id, and expiry against `now_ms`. Whether the
    /// invitation is real, open and unrevoked only the DAG can tell: the
    /// join is refused by every node otherwise.
    pub fn check(&self, now_ms: u64) -> Result<(), TokenError> {
        if self.context != context_id(&self.creator, &self.salt) {
            return Err(TokenError::Invalid);
        }
        bound_past(self.past.len())?;
        if now_ms > self.expires_at_ms {
            return Err(TokenError::Expired);
        }
        Ok(())
    }

    /// The epochs other than `current` among `keys` (every epoch key an
    /// inviter holds), for [`InvitationToken::past`]; refused past
    /// [`MAX_PAST_EPOCHS`].
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use mero_sync::ids::DeltaId;
    /// use mero_sync::{ContextKey, InvitationToken};
    /// let (old, now) = (DeltaId([1; 32]), DeltaId([2; 32]));
    /// let keys = BTreeMap::from([(old, ContextKey([7; 32])), (now, ContextKey([8; 32]))]);
    /// let past = InvitationToken::new_past(&keys, &now).unwrap();
    /// assert_eq!(past, vec![(old, [7; 32])]);
    /// ```
    pub fn new_past(
        keys: &BTreeMap<DeltaId, ContextKey>,
        current: &DeltaId,
    ) -> Result<Vec<(DeltaId, [u8; 32])>, TokenError> {
        let past: Vec<_> = keys
            .iter()
            .filter(|(e, _)| *e != current)
            .map(|(e, k)| (*e, k.0))
            .collect();
        bound_past(past.len())?;
        Ok(past)
    }

    /// Every epoch key the token carries, the current one last: what a
    /// joining replica starts with.
    pub fn epoch_keys(&self) -> Vec<(DeltaId, ContextKey)> {
        self.past
            .iter()
            .map(|(e, k)| (*e, ContextKey(*k)))
            .chain([(self.epoch, ContextKey(self.key))])
            .collect()
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
        if rest.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::Malformed(format!(
                "{} characters; a token has at most {MAX_TOKEN_CHARS}",
                rest.len()
            )));
        }
        let bytes = bs58::decode(rest)
            .into_vec()
            .map_err(|e| TokenError::Malformed(e.to_string()))?;
        let token: Self = match postcard::from_bytes(&bytes) {
            Ok(t) => t,
            Err(e) => postcard::from_bytes::<TokenV1>(&bytes)
                .map(Self::from)
                .map_err(|_| TokenError::Malformed(e.to_string()))?,
        };
        bound_past(token.past.len())?;
        Ok(token)
    }
}

/// The one bound on [`InvitationToken::past`], wherever a token is made,
/// read or checked.
fn bound_past(len: usize) -> Result<(), TokenError> {
    if len > MAX_PAST_EPOCHS {
        return Err(TokenError::TooManyEpochs(len));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(past: usize) -> InvitationToken {
        let creator = MemberKey([3; 32]);
        InvitationToken {
            context: context_id(&creator, &[4; 32]),
            creator,
            salt: [4; 32],
            app: AppHash([5; 32]),
            invite: DeltaId([6; 32]),
            secret: [7; 32],
            epoch: DeltaId([8; 32]),
            key: [9; 32],
            heads: vec![DeltaId([6; 32])],
            expires_at_ms: 10,
            addrs: vec!["/ip4/127.0.0.1/tcp/1".into()],
            past: (0..past)
                .map(|i| (DeltaId([i as u8; 32]), [1; 32]))
                .collect(),
        }
    }

    #[test]
    fn round_trips_and_reads_tokens_without_past_keys() {
        let t = token(3);
        assert_eq!(t.to_string().parse::<InvitationToken>().unwrap(), t);
        assert_eq!(t.epoch_keys().len(), 4);
        // A token printed before tokens carried earlier keys.
        let t = token(0);
        let mut bytes = postcard::to_allocvec(&t).unwrap();
        assert_eq!(bytes.pop(), Some(0), "the empty `past` is one byte");
        let old = format!("{TOKEN_PREFIX}{}", bs58::encode(bytes).into_string());
        assert_eq!(old.parse::<InvitationToken>().unwrap(), t);
    }

    #[test]
    fn refuses_more_past_keys_than_a_token_carries() {
        let t = token(MAX_PAST_EPOCHS + 1);
        assert_eq!(
            t.to_string().parse::<InvitationToken>(),
            Err(TokenError::TooManyEpochs(MAX_PAST_EPOCHS + 1))
        );
        assert_eq!(
            t.check(0),
            Err(TokenError::TooManyEpochs(MAX_PAST_EPOCHS + 1))
        );
        let long = format!("{TOKEN_PREFIX}{}", "1".repeat(MAX_TOKEN_CHARS + 1));
        assert!(matches!(
            long.parse::<InvitationToken>(),
            Err(TokenError::Malformed(_))
        ));
        let keys = (0..=MAX_PAST_EPOCHS + 1)
            .map(|i| {
                let mut id = [0; 32];
                id[..8].copy_from_slice(&(i as u64).to_le_bytes());
                (DeltaId(id), ContextKey([0; 32]))
            })
            .collect();
        assert_eq!(
            InvitationToken::new_past(&keys, &DeltaId([0; 32])),
            Err(TokenError::TooManyEpochs(MAX_PAST_EPOCHS + 1))
        );
    }
}
