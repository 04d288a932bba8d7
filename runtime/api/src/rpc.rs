//! JSON-RPC 2.0 (`POST /jsonrpc` and the WebSocket): requests, answers,
//! error data, and the table of error codes clients map failures with.
//!
//! Parsing what clients send is `mero-rpc`'s (it must stay free of this
//! crate's dependencies for fuzzing); [`CallParams`] describes the same
//! shape, and this crate's tests check that `mero-rpc` accepts it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::Id;

/// The `jsonrpc` member: always `"2.0"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum JsonRpc {
    /// JSON-RPC 2.0.
    #[default]
    #[serde(rename = "2.0")]
    V2,
}

/// The RPC methods that run an app method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RpcMethod {
    /// Any method a client may call; a mutating one produces a delta.
    Execute,
    /// Views only.
    Query,
}

/// The params of `execute` and `query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallParams {
    /// The context.
    pub context: Id,
    /// The app method.
    pub method: String,
    /// Arguments keyed by parameter name (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Map<String, Value>>,
}

/// One JSON-RPC request: `execute` or `query`. A batch is an array of 1
/// to 1000 of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RpcRequest {
    /// `"2.0"`.
    pub jsonrpc: JsonRpc,
    /// Echoed in the answer.
    #[serde(default)]
    pub id: Value,
    /// `execute` or `query`.
    pub method: RpcMethod,
    /// What to call.
    pub params: CallParams,
}

impl RpcRequest {
    /// A request to run `name` of `context` with `args`.
    ///
    /// ```
    /// use mero_api::{RpcMethod, RpcRequest};
    /// let args = serde_json::json!({"key": "a"}).as_object().cloned().unwrap();
    /// let req = RpcRequest::call(1.into(), RpcMethod::Query, "ctx", "get", args);
    /// assert_eq!(serde_json::to_value(&req).unwrap(), serde_json::json!({"jsonrpc": "2.0", "id": 1,
    ///     "method": "query", "params": {"context": "ctx", "method": "get", "args": {"key": "a"}}}));
    /// ```
    pub fn call(
        id: Value,
        method: RpcMethod,
        context: &str,
        name: &str,
        args: Map<String, Value>,
    ) -> Self {
        Self {
            jsonrpc: JsonRpc::V2,
            id,
            method,
            params: CallParams {
                context: context.into(),
                method: name.to_owned(),
                args: Some(args),
            },
        }
    }
}

/// A successful call's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CallResult {
    /// The method's return value.
    pub output: Value,
    /// The delta the call produced, if it changed state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Id>,
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RpcError {
    /// The code (see `RPC_ERRORS`).
    pub code: i64,
    /// What happened and what to do.
    pub message: String,
    /// For -32003 (the app's error): `AppErrorData`. For other failures
    /// of a call: `CallFailure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// A JSON-RPC response: `result` or `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RpcResponse {
    /// `"2.0"`.
    pub jsonrpc: JsonRpc,
    /// The request's id (`null` if it had none or could not be read).
    #[serde(default)]
    pub id: Value,
    /// The call's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<CallResult>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl RpcResponse {
    /// A success.
    pub fn ok(id: Value, result: CallResult) -> Self {
        Self {
            jsonrpc: JsonRpc::V2,
            id,
            result: Some(result),
            error: None,
        }
    }

    /// A failure.
    pub fn err(id: Value, error: RpcError) -> Self {
        Self {
            jsonrpc: JsonRpc::V2,
            id,
            result: None,
            error: Some(error),
        }
    }
}

/// The `data` of a -32003 error: the error an app method returned on
/// purpose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppErrorData {
    /// The `#[app::error]` variant's name, or `app` for an untyped error.
    pub kind: String,
    /// The variant's code; 0 for an untyped error.
    pub code: u32,
    /// The variant's fields (an object for a struct variant, the value for
    /// a one-field tuple variant, an array for a longer one, `null` for a
    /// unit variant), or an untyped error's payload.
    #[serde(default)]
    pub data: Value,
}

/// What kind of failure a call ended in: `mero-abi`'s type, which the
/// engine reports, carried as it is.
pub use mero_abi::error::CallErrorKind;

/// The `data` of a failed call's error that is not the app's own (and of
/// a 422 REST error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CallFailure {
    /// The failure class.
    pub kind: CallErrorKind,
    /// What happened.
    pub message: String,
    /// More, when there is any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// A JSON-RPC error code the node answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcErrorCode {
    /// The code.
    pub code: i64,
    /// Its name in `mero_rpc::code` (`APP_ERROR`, ...).
    pub name: &'static str,
    /// The `kind` a client reports when the error carries none in `data`.
    pub kind: &'static str,
    /// What it means.
    pub meaning: &'static str,
}

macro_rules! codes {
    ($($name:ident, $kind:literal, $meaning:literal;)*) => {
        /// Every JSON-RPC error code of the node, from `mero_rpc::code`.
        pub const RPC_ERRORS: &[RpcErrorCode] = &[$(RpcErrorCode {
            code: mero_rpc::code::$name,
            name: stringify!($name),
            kind: $kind,
            meaning: $meaning,
        }),*];
    };
}

codes! {
    PARSE_ERROR, "parse_error", "the body is not JSON";
    INVALID_REQUEST, "invalid_request", "not a JSON-RPC 2.0 request, a batch of the wrong size, or too large";
    METHOD_NOT_FOUND, "method_not_found", "an unknown RPC method";
    INVALID_PARAMS, "invalid_params", "bad params, or arguments that do not match the app method";
    NODE_FAILURE, "node_failure", "a node failure (storage), or too many requests in flight";
    UNKNOWN_CONTEXT, "unknown_context", "the node does not have the context";
    UNKNOWN_METHOD, "unknown_method", "the app has no such method, or no client may call it";
    APP_ERROR, "app", "the app returned an error; data is {kind, code, data}";
    CALL_FAILED, "call_failed", "the call failed: panic, trap, timeout, out of memory, a limit";
    MUTABILITY, "mutability", "a view tried to write, or a mutating method was queried";
    FORBIDDEN, "forbidden", "the token does not allow this context or method";
    JOINING, "joining", "the node is still joining the context; retry shortly";
    REFUSED, "refused", "this node's member may not do this in the context";
    QUARANTINED, "quarantined", "the context is quarantined until the node restarts";
}
