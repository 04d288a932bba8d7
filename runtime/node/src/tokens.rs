//! Client tokens: JWTs (HS256) that let a browser or script use one context
//! as one member, optionally limited to some methods, until they expire.
//!
//! An issue makes a pair: a short-lived access token and a longer-lived
//! refresh token, sharing a family id (`fam`). Refreshing spends the refresh
//! token (its id is revoked) and issues a new pair in the same family;
//! revoking a family kills every token in it. Revocations are persisted, so
//! they survive restarts, and forgotten once the tokens would have expired.
//!
//! The signing key is derived from the node key: tokens stay valid across
//! restarts and are useless on any other node. This module decides whether a
//! token is valid; what a valid token may do is the API layer's business.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::ids::{ContextId, MemberKey, random32, sha256};
use crate::store::Store;

/// Longest validity of an access token: 30 days.
pub const MAX_ACCESS_SECS: u64 = 30 * 86_400;
/// Validity of an access token when the request names none: one hour.
pub const DEFAULT_ACCESS_SECS: u64 = 3_600;
/// Validity of a refresh token: 30 days.
pub const REFRESH_SECS: u64 = 30 * 86_400;

/// Which half of a pair a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenUse {
    /// Presented on API calls.
    Access,
    /// Only exchanged for a new pair.
    Refresh,
}

/// What a client token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Token id.
    pub jti: String,
    /// Family id, shared by every token issued from one grant.
    pub fam: String,
    /// Access or refresh.
    #[serde(rename = "use")]
    pub token_use: TokenUse,
    /// The context it is scoped to.
    pub ctx: ContextId,
    /// The member identity calls run as.
    pub sub: MemberKey,
    /// Methods it may call; `None`: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}

impl Claims {
    /// Whether the token may call `method`.
    pub fn allows(&self, method: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == method))
    }
}

/// What a grant is scoped to.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The context.
    pub context: ContextId,
    /// The member identity.
    pub member: MemberKey,
    /// Allowed methods (`None`: all).
    pub methods: Option<Vec<String>>,
}

/// A freshly issued pair.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    /// Send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// Exchange at `POST /auth/refresh` for a new pair.
    pub refresh_token: String,
    /// The family id: revoke with `DELETE /admin/tokens/{tokenId}`.
    pub token_id: String,
    /// When the access token expires, Unix seconds.
    pub expires_at: u64,
    /// When the refresh token expires, Unix seconds.
    pub refresh_expires_at: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this node issued, or altered.
    #[error("the token is not valid on this node: {0}")]
    Invalid(String),
    /// Past its expiry.
    #[error("the token has expired; refresh it at POST /auth/refresh or ask for a new one")]
    Expired,
    /// Revoked by an admin, or a refresh token already spent.
    #[error("the token has been revoked")]
    Revoked,
    /// A refresh token presented as an access token or the other way round.
    #[error("wrong kind of token: expected a {0:?} token")]
    WrongUse(TokenUse),
}

/// Issues, checks and revokes client tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Revoked token and family ids, with when they stop mattering.
    revoked: RwLock<HashMap<String, u64>>,
    db: Arc<Store>,
}

fn now_secs() -> u64 {
    crate::node::now_ms() / 1000
}

fn new_id() -> String {
    hex::encode(&random32()[..16])
}

impl Tokens {
    /// Loads the revocation list; `node_secret` seeds the signing key.
    pub fn open(db: Arc<Store>, node_secret: &[u8; 32]) -> Result<Self, NodeError> {
        let mut seed = b"mero client tokens v1".to_vec();
        seed.extend_from_slice(node_secret);
        let key = sha256(&seed);
        let now = now_secs();
        let mut revoked = HashMap::new();
        let mut stale = Vec::new();
        for (id, exp) in db.revoked()? {
            if exp < now {
                stale.push(id);
            } else {
                revoked.insert(id, exp);
            }
        }
        db.forget_revoked(&stale)?;
        Ok(Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            revoked: RwLock::new(revoked),
            db,
        })
    }

    /// Issues a new pair for `scope`; the access token lives `ttl_secs`.
    pub fn issue(&self, scope: &Scope, ttl_secs: u64) -> IssuedTokens {
        self.pair(scope, new_id(), ttl_secs)
    }

    fn pair(&self, scope: &Scope, fam: String, ttl_secs: u64) -> IssuedTokens {
        let now = now_secs();
        let claims = |token_use, exp| Claims {
            jti: new_id(),
            fam: fam.clone(),
            token_use,
            ctx: scope.context,
            sub: scope.member,
            methods: scope.methods.clone(),
            iat: now,
            exp,
        };
        let access = claims(TokenUse::Access, now + ttl_secs);
        let refresh = claims(TokenUse::Refresh, now + REFRESH_SECS);
        IssuedTokens {
            access_token: self.sign(&access),
            refresh_token: self.sign(&refresh),
            token_id: fam,
            expires_at: access.exp,
            refresh_expires_at: refresh.exp,
        }
    }

    fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of serializable claims cannot fail")
    }

    /// Checks a token's signature, expiry, revocation and use.
    pub fn verify(&self, token: &str, expected: TokenUse) -> Result<Claims, TokenError> {
        let c = self.decode(token, expected)?;
        self.check_live(&c)?;
        Ok(c)
    }

    /// Checks signature, expiry and use, not revocation.
    fn decode(&self, token: &str, expected: TokenUse) -> Result<Claims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &v).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid(e.to_string()),
                }
            })?;
        let c = data.claims;
        // `Validation` checks `exp` with a one-second granularity at best;
        // be exact so a token is never accepted after its expiry second.
        if c.exp <= now_secs() {
            return Err(TokenError::Expired);
        }
        if c.token_use != expected {
            return Err(TokenError::WrongUse(expected));
        }
        Ok(c)
    }

    /// Whether already verified claims still hold: not expired, not
    /// revoked. Long-lived streams (WebSocket, SSE) call it while open.
    pub fn check_live(&self, c: &Claims) -> Result<(), TokenError> {
        if c.exp <= now_secs() {
            return Err(TokenError::Expired);
        }
        let revoked = self.revoked.read().unwrap();
        if revoked.contains_key(&c.jti) || revoked.contains_key(&c.fam) {
            return Err(TokenError::Revoked);
        }
        Ok(())
    }

    /// Spends a refresh token for a new pair in the same family and scope.
    /// A refresh token used a second time means it was copied: the whole
    /// family is revoked, including the pair the first use made.
    pub fn refresh(&self, refresh_token: &str, ttl_secs: u64) -> Result<IssuedTokens, TokenError> {
        let c = self.decode(refresh_token, TokenUse::Refresh)?;
        let reused = {
            let mut revoked = self.revoked.write().unwrap();
            if revoked.contains_key(&c.fam) {
                return Err(TokenError::Revoked);
            }
            // Two concurrent refreshes with one token: only the first wins.
            revoked.insert(c.jti.clone(), c.exp).is_some()
        };
        if reused {
            tracing::warn!(
                family = c.fam,
                "a refresh token was used twice; revoking its family"
            );
            if let Err(e) = self.revoke(&c.fam) {
                tracing::error!("persisting a family revocation failed: {e}");
            }
            return Err(TokenError::Revoked);
        }
        if let Err(e) = self.db.put_revoked(&c.jti, c.exp) {
            tracing::error!("persisting a spent refresh token failed: {e}");
        }
        let scope = Scope {
            context: c.ctx,
            member: c.sub,
            methods: c.methods,
        };
        Ok(self.pair(&scope, c.fam, ttl_secs))
    }

    /// Revokes a family (every token from one grant) by its id.
    pub fn revoke(&self, token_id: &str) -> Result<(), NodeError> {
        let until = now_secs() + REFRESH_SECS + MAX_ACCESS_SECS;
        self.db.put_revoked(token_id, until)?;
        self.revoked
            .write()
            .unwrap()
            .insert(token_id.to_owned(), until);
        Ok(())
    }
}
