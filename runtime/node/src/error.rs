//! Node errors, each mapping to an HTTP status and a stable code.

use mero_abi::CallError;

use crate::ids::{AppHash, ContextId};

/// What went wrong in a node operation.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The uploaded bytes are not an installable app.
    #[error("invalid app: {0}")]
    InvalidApp(String),
    /// No app with this hash is installed.
    #[error("no app {0} is installed; install it first (POST /admin/apps)")]
    UnknownApp(AppHash),
    /// No context with this id exists on this node.
    #[error("no context {0} on this node; list contexts with GET /admin/contexts")]
    UnknownContext(ContextId),
    /// The context is still catching up before this node's join completes.
    #[error("this node is still joining context {0}: it is catching up from peers; retry shortly")]
    Joining(ContextId),
    /// An invitation was refused.
    #[error("invitation: {0}")]
    Invitation(#[from] mero_sync::invitation::TokenError),
    /// The node's member key may not do this in the context.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The context's replica refused a change made here (see
    /// [`mero_sync::Reject`]); nothing changed.
    #[error("refused: {0}")]
    Refused(#[from] mero_sync::Reject),
    /// The request conflicts with the node's state (e.g. removing an app in use).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The method call failed; state is unchanged.
    #[error("{0}")]
    Call(CallError),
    /// Storage failed; the operation did not happen.
    #[error("storage: {0}")]
    Store(#[from] rocksdb::Error),
    /// The call ran, but persisting the group it was committed with failed;
    /// nothing it did is kept.
    #[error("persisting the call failed, nothing changed: {0}")]
    Unpersisted(String),
    /// The WASM engine failed outside any call.
    #[error("wasm engine: {0}")]
    Wasm(String),
    /// Stored data could not be decoded.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The state engine failed.
    #[error("state engine: {0}")]
    Engine(#[from] mero_engine::EngineError),
    /// The context's replica failed and was set aside: its calls and deltas
    /// are refused until the node restarts and reloads it from the store.
    /// Every other context keeps working.
    #[error(
        "context {0} is quarantined: {1}; other contexts are unaffected, restart the node to reload it from its store"
    )]
    Quarantined(ContextId, String),
}

impl NodeError {
    /// The code metrics count a failed call under: the call error's kind
    /// for failures inside the app, [`NodeError::code`] otherwise.
    pub fn call_code(&self) -> &'static str {
        match self {
            NodeError::Call(c) => c.kind.label(),
            other => other.code(),
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::InvalidApp(_) => "invalid_app",
            NodeError::UnknownApp(_) => "unknown_app",
            NodeError::UnknownContext(_) => "unknown_context",
            NodeError::BadRequest(_) => "bad_request",
            NodeError::Conflict(_) => "conflict",
            NodeError::Joining(_) => "joining",
            NodeError::Invitation(_) => "invalid_invitation",
            NodeError::Forbidden(_) => "forbidden",
            NodeError::Refused(_) => "refused",
            NodeError::Call(_) => "call_failed",
            NodeError::Store(_) | NodeError::Unpersisted(_) => "storage",
            NodeError::Wasm(_) => "wasm_engine",
            NodeError::Corrupt(_) => "corrupt_store",
            NodeError::Engine(_) => "state_engine",
            NodeError::Quarantined(..) => "quarantined",
        }
    }
}
