//! Who is calling: the admin token (everything) or a client token (one
//! context, one member, maybe some methods). Also the token endpoints.
//!
//! | failure | status | code |
//! |---|---|---|
//! | no token | 401 | `unauthorized` |
//! | wrong admin token, forged or altered JWT | 401 | `invalid_token` |
//! | expired JWT | 401 | `token_expired` |
//! | revoked JWT (or spent refresh token) | 401 | `token_revoked` |
//! | client token on `/admin` or `/metrics` | 403 | `forbidden` |
//! | client token for another context or method | 403 | `forbidden` |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mero_api as api;

use super::{ApiError, bad_request, blocking, body_or_error, parse_id, parse_json, wire};
use crate::ids::{ContextId, MemberKey};
use crate::node::Node;
use crate::tokens::{Claims, DEFAULT_ACCESS_SECS, MAX_ACCESS_SECS, Scope, TokenError, TokenUse};

/// The authenticated caller, put in the request's extensions.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The node operator (admin token).
    Admin,
    /// A client token's holder.
    Client(Arc<Claims>),
}

impl Principal {
    /// Whether the token this principal came with still holds (the admin
    /// token always does): streams call it while they stay open.
    pub fn still_valid(
        &self,
        tokens: &crate::tokens::Tokens,
    ) -> Result<(), crate::tokens::TokenError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Client(c) => tokens.check_live(c),
        }
    }
}

/// How often long-lived streams re-check their token's expiry and revocation.
pub(crate) const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a token may not do something: HTTP 403, JSON-RPC -32006.
#[derive(Debug)]
pub struct Denied(pub String);

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        forbidden(d.0)
    }
}

impl Principal {
    /// Checks that the caller may use `ctx`.
    pub fn check_context(&self, ctx: &ContextId) -> Result<(), Denied> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Client(c) if c.ctx == *ctx => Ok(()),
            Principal::Client(c) => Err(Denied(format!(
                "this token is scoped to context {}, not {ctx}",
                c.ctx
            ))),
        }
    }

    /// Checks that the caller may call `method` on `ctx`, as the member the
    /// node acts as there (`member`).
    pub fn check_call(
        &self,
        ctx: &ContextId,
        method: &str,
        member: impl FnOnce() -> Option<MemberKey>,
    ) -> Result<(), Denied> {
        self.check_context(ctx)?;
        let Principal::Client(c) = self else {
            return Ok(());
        };
        if !c.allows(method) {
            return Err(Denied(format!(
                "this token may not call `{method}`; it allows: {}",
                c.methods.as_deref().unwrap_or_default().join(", ")
            )));
        }
        if member() != Some(c.sub) {
            return Err(Denied(format!(
                "this token acts as member {}, which this node does not hold in context {ctx}",
                c.sub
            )));
        }
        Ok(())
    }
}

pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

fn unauthorized(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

/// The stable code of a token failure.
pub(crate) fn token_code(e: &TokenError) -> &'static str {
    match e {
        TokenError::Expired => "token_expired",
        TokenError::Revoked => "token_revoked",
        TokenError::Invalid(_) | TokenError::WrongUse(_) => "invalid_token",
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        unauthorized(token_code(&e), e.to_string())
    }
}

/// The token a request presents: `Authorization: Bearer`, or `?token=` for
/// browsers' `EventSource` and `WebSocket`, which cannot set headers.
fn presented(req: &Request) -> Option<String> {
    if let Some(h) = req.headers().get(header::AUTHORIZATION) {
        return h
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
    }
    let query = req.uri().query()?;
    url_token(query)
}

fn url_token(query: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token").then(|| v.to_owned())
    })
}

/// Constant-time comparison: do not leak how much of a token matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Resolves the caller before any body is read; 401 when there is none.
pub(crate) async fn authenticate(
    State(node): State<Arc<Node>>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = presented(&req) else {
        return Err(unauthorized(
            "unauthorized",
            "no token: send `Authorization: Bearer <token>` (the admin token from config.toml, or a client token from POST /admin/tokens)",
        ));
    };
    let principal = if same(token.as_bytes(), node.config().auth.admin_token.as_bytes()) {
        Principal::Admin
    } else if token.matches('.').count() == 2 {
        Principal::Client(Arc::new(node.tokens().verify(&token, TokenUse::Access)?))
    } else {
        return Err(unauthorized(
            "invalid_token",
            "wrong token: it is neither the admin token (auth.admin_token in config.toml) nor a client token",
        ));
    };
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

/// Lets only the admin through (after [`authenticate`]).
pub(crate) async fn admin_only(req: Request, next: Next) -> Result<Response, ApiError> {
    match req.extensions().get::<Principal>() {
        Some(Principal::Admin) => Ok(next.run(req).await),
        _ => Err(forbidden(
            "client tokens cannot use this endpoint; it needs the admin token",
        )),
    }
}

fn ttl(requested: Option<u64>) -> Result<u64, ApiError> {
    match requested.unwrap_or(DEFAULT_ACCESS_SECS) {
        0 => Err(bad_request("ttlSecs must be at least 1")),
        t if t > MAX_ACCESS_SECS => Err(bad_request(format!(
            "ttlSecs may be at most {MAX_ACCESS_SECS} (30 days)"
        ))),
        t => Ok(t),
    }
}

/// `POST /admin/tokens`: issues a client token pair.
pub(crate) async fn issue_token(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let req: api::IssueTokenRequest = parse_json(&body_or_error(body)?)?;
    let ctx: ContextId = parse_id(req.context.as_str())?;
    let ttl = ttl(req.ttl_secs)?;
    let n = node.clone();
    let info = blocking(move || n.context_info(&ctx)).await?;
    let member = match req
        .member
        .as_ref()
        .map(|m| parse_id::<MemberKey>(m.as_str()))
        .transpose()?
    {
        Some(m) if m != info.member => {
            return Err(bad_request(format!(
                "this node holds no key for member {m} in context {ctx}; it acts as {}",
                info.member
            )));
        }
        _ => info.member,
    };
    if let Some(methods) = &req.methods {
        let n = node.clone();
        let abi = blocking(move || n.app_abi(&info.app)).await?;
        for m in methods {
            // Only what a client may call: not `init`, private methods or
            // handlers (the call policy says why not).
            if let Err(why) =
                mero_engine::policy::decide(&abi, m, mero_engine::policy::CallKind::Execute)
            {
                return Err(bad_request(format!(
                    "a client token cannot be scoped to `{m}`: {why}"
                )));
            }
        }
    }
    let scope = Scope {
        context: ctx,
        member,
        methods: req.methods,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(wire::tokens(node.tokens().issue(&scope, ttl))),
    ))
}

/// `POST /auth/refresh`: spends a refresh token for a new pair.
pub(crate) async fn refresh_token(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let req: api::RefreshRequest = parse_json(&body_or_error(body)?)?;
    let ttl = ttl(req.ttl_secs)?;
    // Spending a refresh token writes to the store.
    let issued = blocking(move || Ok(node.tokens().refresh(&req.refresh_token, ttl))).await??;
    Ok(axum::Json(wire::tokens(issued)))
}

/// `DELETE /admin/tokens/{id}`: revokes every token of a grant.
pub(crate) async fn revoke_token(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_request(
            "a token id is the 32 hex digits `tokenId` returned when it was issued",
        ));
    }
    let revoked = id.clone();
    blocking(move || node.tokens().revoke(&revoked)).await?;
    Ok(axum::Json(api::TokenRevoked { revoked: id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_query() {
        assert_eq!(url_token("context=abc&token=x.y.z"), Some("x.y.z".into()));
        assert_eq!(url_token("context=abc"), None);
    }

    #[test]
    fn comparison_needs_equal_bytes() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
