//! Support code for what the macros generate. Not a public API.

use mero_abi::host::{HostRequest, HostResponse};
use mero_abi::{CallError, CallErrorKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::cell::Cell;

use crate::AppError;
use crate::host::{self, expect_response};

pub use mero_abi;
pub use serde;
pub use serde_json;

pub use crate::collections::StateField;
pub use crate::event::AppEvent;

/// What a generated method wrapper returns: JSON output or a structured error.
pub type CallResult = Result<Vec<u8>, CallError>;

/// A generated method wrapper.
pub type MethodFn = fn() -> CallResult;

/// One exported method, as the native test host sees it.
#[derive(Debug, Clone, Copy)]
pub struct MethodEntry {
    /// Export name.
    pub name: &'static str,
    /// Whether it takes `&mut self` (or is `init`).
    pub mutating: bool,
    /// Whether it is the `#[app::init]` constructor.
    pub init: bool,
    /// The wrapper.
    pub call: MethodFn,
}

/// Implemented by `#[app::state]`.
pub trait AppState: Sized {
    /// Binds every field to its root collection.
    fn __load() -> Self;
    /// Stores a freshly built state (the result of `init`).
    fn __store(self);
    /// The ABI fragment of the state struct (JSON), for the native test
    /// host: it compares schemas on upgrades as the node does.
    fn __abi_state() -> &'static str;
    /// The ABI fragment of the events of `emits = E` (JSON), if declared.
    fn __abi_events() -> &'static str {
        ""
    }
}

/// Implemented by `#[app::logic]`.
pub trait AppLogic {
    /// Every exported method.
    fn __methods() -> &'static [MethodEntry];
    /// The ABI fragment of the methods (JSON), for the native test host.
    fn __abi_methods() -> &'static str;
    /// The `#[app::migrate]` function's wrapper, if the app has one.
    fn __migration() -> Option<MethodFn> {
        None
    }
}

/// Reads and parses the call's JSON arguments.
pub fn args<T: DeserializeOwned>(method: &str) -> Result<T, CallError> {
    let input = expect_response!(host::call(HostRequest::Input), HostResponse::Bytes(b) => b);
    let input: &[u8] = if input.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &input
    };
    serde_json::from_slice(input).map_err(|e| {
        CallError::new(
            CallErrorKind::InvalidArgs,
            format!(
                "invalid arguments for `{method}`: {e}; pass a JSON object keyed by parameter name"
            ),
        )
    })
}

/// Serializes a plain return value.
pub fn output<T: Serialize>(value: T) -> CallResult {
    serde_json::to_vec(&value).map_err(|e| {
        CallError::new(
            CallErrorKind::App,
            format!("return value does not serialize: {e}"),
        )
    })
}

/// Serializes a fallible method's return value (its error already
/// converted, see [`ErrorTag`]).
pub fn output_result<T: Serialize>(value: Result<T, CallError>) -> CallResult {
    value.and_then(output)
}

/// A method's error on its way to a [`CallError`]. The generated wrapper
/// calls `(&ErrorTag::new(e)).__call_error()` on the concrete error type:
/// method resolution picks [`TypedError`] for an `#[app::error]` enum
/// (found without auto-ref) and [`UntypedError`] for anything that
/// converts into `app::Error` (found with it). A blanket `From` could not
/// tell the two apart: an `#[app::error]` enum may implement
/// `std::error::Error` too.
pub struct ErrorTag<E>(Cell<Option<E>>);

impl<E> ErrorTag<E> {
    /// Wraps a method's error.
    pub fn new(e: E) -> Self {
        Self(Cell::new(Some(e)))
    }

    fn take(&self) -> E {
        self.0
            .take()
            .expect("a method's error converts once, by the wrapper that made the tag")
    }
}

/// The conversion of `#[app::error]` enums; see [`ErrorTag`].
pub trait TypedError {
    /// The call error.
    fn __call_error(&self) -> CallError;
}

impl<E: AppError> TypedError for ErrorTag<E> {
    fn __call_error(&self) -> CallError {
        self.take().to_call_error()
    }
}

/// The conversion of untyped errors; see [`ErrorTag`].
pub trait UntypedError {
    /// The call error.
    fn __call_error(&self) -> CallError;
}

impl<E: Into<crate::app::Error>> UntypedError for &ErrorTag<E> {
    fn __call_error(&self) -> CallError {
        self.take().into().into_call_error()
    }
}

/// An `#[app::error]` value, for its message: its `Display` if it has one
/// ([`DisplayMessage`], found without auto-ref), else the variant's name
/// ([`NameMessage`]).
pub struct Message<'a, T>(pub &'a T);

/// The message of an error that implements `Display`.
pub trait DisplayMessage {
    /// `Display` of the error.
    fn __message(&self, variant: &str) -> String;
}

impl<T: std::fmt::Display> DisplayMessage for Message<'_, T> {
    fn __message(&self, _variant: &str) -> String {
        self.0.to_string()
    }
}

/// The message of an error without `Display`.
pub trait NameMessage {
    /// The variant's name.
    fn __message(&self, variant: &str) -> String;
}

impl<T> NameMessage for &Message<'_, T> {
    fn __message(&self, variant: &str) -> String {
        variant.to_owned()
    }
}

/// The fields of an `#[app::error]` variant as JSON: the `data` of its
/// adjacently tagged form (absent, so `null`, for a unit variant).
pub fn error_data<E: Serialize>(e: &E) -> serde_json::Value {
    match serde_json::to_value(e) {
        Ok(mut v) => v.get_mut("data").map(std::mem::take).unwrap_or_default(),
        // A field type whose serialization fails (a map with non-string
        // keys): the caller still learns the kind and code, and why.
        Err(e) => serde_json::Value::String(format!("the error's fields do not serialize: {e}")),
    }
}

/// Runs a generated wrapper as the body of a WASM export.
pub fn run(f: MethodFn) {
    #[cfg(target_arch = "wasm32")]
    install_panic_hook();
    let (ok, data) = match f() {
        Ok(bytes) => (true, bytes),
        Err(e) => (false, serde_json::to_vec(&e).unwrap_or_default()),
    };
    host::call(HostRequest::Return { ok, data: &data });
}

#[cfg(target_arch = "wasm32")]
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let msg = info.to_string();
            let _ = crate::host::call(HostRequest::Panic { msg: &msg });
        }))
    });
}
