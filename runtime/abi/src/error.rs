//! The error a failed method call reports to its caller.

use serde::{Deserialize, Serialize};

/// What kind of failure a call ended in. Every kind leaves no trace in state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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

impl CallError {
    /// A failure the app chose: kind [`CallErrorKind::App`], `message` for
    /// people, and `error` (the variant, its code and fields) for programs.
    ///
    /// ```
    /// use mero_abi::error::{AppErrorData, CallError};
    /// let e = CallError::app("no such key: a", AppErrorData::typed("NotFound", 1001, serde_json::json!({"key": "a"})));
    /// assert_eq!(e.app_error().unwrap().code, 1001);
    /// ```
    pub fn app(message: impl Into<String>, error: AppErrorData) -> Self {
        Self {
            kind: CallErrorKind::App,
            message: message.into(),
            data: serde_json::to_value(error).ok(),
        }
    }

    /// The app's error, for an [`App`](CallErrorKind::App) failure: what
    /// clients get as the JSON-RPC error's `data`. `data` that is not an
    /// [`AppErrorData`] (a module built without the SDK) becomes the payload of
    /// an untyped one, so clients always see the same shape.
    pub fn app_error(&self) -> Option<AppErrorData> {
        if self.kind != CallErrorKind::App {
            return None;
        }
        let data = self.data.as_ref().unwrap_or(&serde_json::Value::Null);
        Some(
            AppErrorData::deserialize(data)
                .unwrap_or_else(|_| AppErrorData::untyped(Some(data.clone()))),
        )
    }
}

/// The error an app method returned on purpose, as its caller sees it: the
/// `data` of the JSON-RPC error, and what [`CallError::app_error`] reads.
///
/// For an `#[app::error]` enum, `kind` is the variant's name, `code` its
/// stable number and `data` its fields. An untyped `app::Error` (`app::bail!`)
/// has kind [`AppErrorData::UNTYPED`] and code 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppErrorData {
    /// The variant name (e.g. `NotFound`), or `app` for an untyped error.
    pub kind: String,
    /// The variant's code: `#[code(n)]` if it has one, else
    /// [`derived_code`] of its name; 0 for an untyped error.
    pub code: u32,
    /// The variant's fields: an object for a struct variant, the value for
    /// a one-field tuple variant, an array for a longer one, `null` for a
    /// unit variant; an untyped error's `with_data` payload, or `null`.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl AppErrorData {
    /// The `kind` of an untyped `app::Error`.
    pub const UNTYPED: &'static str = "app";

    /// A variant of an `#[app::error]` enum.
    pub fn typed(kind: impl Into<String>, code: u32, data: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            code,
            data,
        }
    }

    /// An untyped `app::Error`, with its payload if it has one.
    pub fn untyped(data: Option<serde_json::Value>) -> Self {
        Self {
            kind: Self::UNTYPED.to_owned(),
            code: 0,
            data: data.unwrap_or_default(),
        }
    }
}

/// The code of an `#[app::error]` variant without `#[code(n)]`: FNV-1a
/// (32 bit) of the variant's name, mapped into `1..=2^31 - 1` (never 0,
/// which untyped errors use; never above what a signed 32-bit int holds).
/// It depends on the name only, so reordering or adding variants, or
/// renaming the enum, keeps every code; renaming a variant changes its
/// code along with its `kind`.
///
/// ```
/// use mero_abi::error::derived_code;
/// assert_eq!(derived_code("NotFound"), derived_code("NotFound"));
/// assert_ne!(derived_code("NotFound"), derived_code("Forbidden"));
/// assert!((1..=i32::MAX as u32).contains(&derived_code("")));
/// ```
pub const fn derived_code(variant: &str) -> u32 {
    let bytes = variant.as_bytes();
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash % 0x7fff_ffff + 1
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for CallError {}
