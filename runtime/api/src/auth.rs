//! Client tokens (`POST /admin/tokens`, `POST /auth/refresh`) and the REST
//! error body.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::Id;

/// `POST /admin/tokens`: a client token pair for one context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IssueTokenRequest {
    /// The context the tokens are scoped to.
    pub context: Id,
    /// The member calls run as; it must be the one this node acts as in
    /// the context (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Id>,
    /// Methods the token may call (absent: all a client may call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// The access token's life in seconds (default one hour, at most 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2_592_000))]
    pub ttl_secs: Option<u64>,
}

/// `POST /auth/refresh`: spends a refresh token for a new pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The refresh token of the current pair. It works once.
    pub refresh_token: String,
    /// The new access token's life in seconds (default one hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2_592_000))]
    pub ttl_secs: Option<u64>,
}

/// A client token pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// Send as `Authorization: Bearer <accessToken>` (or `?token=`).
    pub access_token: String,
    /// Exchange at `POST /auth/refresh` for a new pair, once.
    pub refresh_token: String,
    /// The grant's id: `DELETE /admin/tokens/{tokenId}` revokes every pair of it.
    pub token_id: String,
    /// When the access token expires, Unix seconds.
    pub expires_at: u64,
    /// When the refresh token expires, Unix seconds.
    pub refresh_expires_at: u64,
}

/// `DELETE /admin/tokens/{tokenId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenRevoked {
    /// The grant revoked.
    pub revoked: String,
}

/// The body of every REST error: `{"error": {"code", "message", "data"?}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

impl ErrorBody {
    /// An error with a stable `code` and a message saying what to do.
    ///
    /// ```
    /// let e = mero_api::ErrorBody::new("forbidden", "client tokens cannot use this endpoint");
    /// assert_eq!(serde_json::to_value(&e).unwrap(), serde_json::json!(
    ///     {"error": {"code": "forbidden", "message": "client tokens cannot use this endpoint"}}));
    /// ```
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                data: None,
            },
        }
    }
}

/// A REST error, or the last `error` message of an SSE stream whose token
/// ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`unauthorized`, `token_expired`,
    /// `forbidden`, `not_found`, ...; see docs/api.md).
    pub code: String,
    /// What happened and what to do.
    pub message: String,
    /// For a failed call (422): the `CallFailure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}
