//! The error a failed method call reports to its caller.

use serde::{Deserialize, Serialize};

/// What kind of failure a call ended in. Every kind leaves no trace in state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallErrorKind {
    /// The app returned `Err` (an `app::Result` error or `app::bail!`).
    App,
    /// The arguments were not a JSON object matching the method's parameters.
    InvalidArgs,
    /// The app has no exported method by that name.
    UnknownMethod,
    /// The app panicked.
    Panic,
    /// The WASM trapped (unreachable, out-of-bounds access, stack overflow, ...).
    Trap,
    /// The call ran longer than the node allows.
    Timeout,
    /// The call needed more memory than the node allows.
    OutOfMemory,
    /// A view method tried to change state, or a mutating method was queried.
    Mutability,
    /// The call exceeded a size limit (return value, logs, events).
    Limit,
    /// The host rejected a request from the app (a bug in the app or the SDK).
    Host,
}

impl CallErrorKind {
    /// The kind's name as serialized (`invalid_args`, `timeout`, ...).
    pub fn label(self) -> &'static str {
        match self {
            CallErrorKind::App => "app",
            CallErrorKind::InvalidArgs => "invalid_args",
            CallErrorKind::UnknownMethod => "unknown_method",
            CallErrorKind::Panic => "panic",
            CallErrorKind::Trap => "trap",
            CallErrorKind::Timeout => "timeout",
            CallErrorKind::OutOfMemory => "out_of_memory",
            CallErrorKind::Mutability => "mutability",
            CallErrorKind::Limit => "limit",
            CallErrorKind::Host => "host",
        }
    }
}

/// A structured call error, as sent back to the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallError {
    /// Machine-readable failure class.
    pub kind: CallErrorKind,
    /// Human-readable explanation, saying what to do where possible.
    pub message: String,
    /// Optional structured payload chosen by the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl CallError {
    /// Creates an error of `kind` with `message` and no data.
    pub fn new(kind: CallErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            data: None,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for CallError {}
