//! Support code for what the macros generate. Not a public API.

use mero_abi::host::{HostRequest, HostResponse};
use mero_abi::{CallError, CallErrorKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
}

/// Implemented by `#[app::logic]`.
pub trait AppLogic {
    /// Every exported method.
    fn __methods() -> &'static [MethodEntry];
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

/// Serializes an `app::Result` return value.
pub fn output_result<T: Serialize, E: Into<crate::app::Error>>(value: Result<T, E>) -> CallResult {
    match value {
        Ok(v) => output(v),
        Err(e) => Err(e.into().into_call_error()),
    }
}

/// Maps an `init` that returns `app::Result<Self>`.
pub fn init_result<S, E: Into<crate::app::Error>>(value: Result<S, E>) -> Result<S, CallError> {
    value.map_err(|e| e.into().into_call_error())
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
