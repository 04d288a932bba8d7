//! JSON-RPC 2.0: `execute` and `query`, single or batched, over HTTP
//! (`POST /jsonrpc`) and the WebSocket. Error codes:
//!
//! | code | meaning |
//! |---|---|
//! | -32700 | body is not JSON |
//! | -32600 | not a JSON-RPC 2.0 request (or too large) |
//! | -32601 | unknown RPC method |
//! | -32602 | bad params, or arguments that do not match the app method |
//! | -32001 | unknown context |
//! | -32002 | unknown app method |
//! | -32003 | the app returned an error (`data` holds it) |
//! | -32004 | the call failed: panic, trap, timeout, out of memory, limit |
//! | -32005 | a view tried to write, or a mutating method was queried |
//! | -32006 | the token does not allow this context or method (HTTP 403) |
//! | -32007 | the node is still joining the context; retry shortly |
//! | -32008 | this node's member may not do this in the context (a reader writing, a removed member) |
//! | -32000 | node failure (storage) |

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mero_abi::{CallError, CallErrorKind};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Principal;
use super::blocking;
use crate::calls::CallRequest;
use crate::error::NodeError;
use crate::ids::ContextId;
use crate::node::{CallKind, CallOutput, Node};

/// Most requests in one JSON-RPC batch.
pub const MAX_BATCH: usize = 1000;

/// JSON-RPC code for a token that does not allow the call.
pub const FORBIDDEN: i64 = -32006;

/// A JSON-RPC error response.
pub fn rpc_error(id: Value, code: i64, message: impl Into<String>, data: Option<Value>) -> Value {
    let mut err = json!({"code": code, "message": message.into()});
    if let Some(d) = data {
        err["data"] = d;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": err})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallParams {
    context: String,
    method: String,
    #[serde(default)]
    args: Option<Value>,
}

/// A well-formed `execute` or `query` request.
pub struct Call {
    id: Value,
    kind: CallKind,
    context: ContextId,
    method: String,
    args: Vec<u8>,
}

/// The JSON-RPC envelope: (id, method, params), or the error response.
pub fn envelope(req: Value) -> Result<(Value, String, Option<Value>), Value> {
    let Value::Object(mut obj) = req else {
        return Err(rpc_error(
            Value::Null,
            -32600,
            "a JSON-RPC request must be an object",
            None,
        ));
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(rpc_error(id, -32600, "`jsonrpc` must be \"2.0\"", None));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => return Err(rpc_error(id, -32600, "`method` must be a string", None)),
        None => return Err(rpc_error(id, -32600, "missing `method`", None)),
    };
    Ok((id, method, obj.remove("params")))
}

/// Parses the params of `execute`/`query`.
pub fn parse_call(id: Value, kind: CallKind, params: Option<Value>) -> Result<Call, Value> {
    let params: CallParams = match params.map(serde_json::from_value) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return Err(rpc_error(
                id,
                -32602,
                format!("invalid params: {e}; expected {{\"context\", \"method\", \"args\"}}"),
                None,
            ));
        }
        None => return Err(rpc_error(id, -32602, "missing `params`", None)),
    };
    let context: ContextId = match params.context.parse() {
        Ok(c) => c,
        Err(e) => return Err(rpc_error(id, -32602, e, None)),
    };
    let args = params.args.unwrap_or_else(|| json!({}));
    if !args.is_object() {
        return Err(rpc_error(
            id,
            -32602,
            "`args` must be a JSON object keyed by parameter name",
            None,
        ));
    }
    Ok(Call {
        id,
        kind,
        context,
        method: params.method,
        args: serde_json::to_vec(&args).expect("JSON serializes"),
    })
}

/// Parses one HTTP JSON-RPC request (only `execute` and `query` exist there).
fn parse_one(req: Value) -> Result<Call, Value> {
    let (id, method, params) = envelope(req)?;
    let kind = match method.as_str() {
        "execute" => CallKind::Execute,
        "query" => CallKind::Query,
        other => {
            return Err(rpc_error(
                id,
                -32601,
                format!("unknown RPC method `{other}`; use `execute` or `query`"),
                None,
            ));
        }
    };
    parse_call(id, kind, params)
}

/// Checks the caller's scope for a call: `Err` holds the -32006 response.
pub fn check_scope(node: &Node, who: &Principal, call: &Call) -> Result<(), Value> {
    who.check_call(&call.context, &call.method, || {
        node.member(&call.context).ok()
    })
    .map_err(|d| rpc_error(call.id.clone(), FORBIDDEN, d.0, None))
}

/// Runs a parsed call.
pub async fn execute(node: Arc<Node>, call: Call) -> Value {
    let Call {
        id,
        kind,
        context,
        method,
        args,
    } = call;
    let result = match kind {
        CallKind::Execute => node.execute(&context, method, args).await,
        CallKind::Query | CallKind::Handler => {
            blocking(move || node.call(&context, &method, &args, kind)).await
        }
    };
    answer(id, result)
}

/// Runs a batch's calls in order, on one blocking thread, so that
/// consecutive `execute`s are committed as one group.
async fn execute_all(node: Arc<Node>, calls: Vec<Call>) -> Vec<Value> {
    let (ids, reqs): (Vec<_>, Vec<_>) = calls
        .into_iter()
        .map(|c| {
            let req = CallRequest {
                context: c.context,
                method: c.method,
                args: c.args,
                kind: c.kind,
            };
            (c.id, req)
        })
        .unzip();
    let n = reqs.len();
    let answers = blocking(move || Ok(node.call_many(reqs)))
        .await
        .unwrap_or_else(|e| {
            let msg = e.to_string();
            (0..n)
                .map(|_| Err(NodeError::Unpersisted(msg.clone())))
                .collect()
        });
    ids.into_iter()
        .zip(answers)
        .map(|(id, a)| answer(id, a))
        .collect()
}

/// The JSON-RPC response for a call's outcome.
fn answer(id: Value, result: Result<CallOutput, NodeError>) -> Value {
    match result {
        Ok(out) => json!({"jsonrpc": "2.0", "id": id, "result": out}),
        Err(e) => {
            let (code, data) = match &e {
                NodeError::UnknownContext(_) => (-32001, None),
                NodeError::Joining(_) => (-32007, None),
                NodeError::BadRequest(_) => (-32602, None),
                NodeError::Forbidden(_) | NodeError::Refused(_) => (-32008, None),
                NodeError::Call(c) => (call_code(c), serde_json::to_value(c).ok()),
                _ => (-32000, None),
            };
            rpc_error(id, code, e.to_string(), data)
        }
    }
}

/// `POST /jsonrpc`.
pub(crate) async fn jsonrpc(
    State(node): State<Arc<Node>>,
    Extension(who): Extension<Principal>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => {
            let msg = format!(
                "request rejected: {}; the limit is limits.max_request_bytes",
                r.body_text()
            );
            return (
                r.status(),
                axum::Json(rpc_error(Value::Null, -32600, msg, None)),
            )
                .into_response();
        }
    };
    let (status, v) = handle(node, &who, &body).await;
    (status, axum::Json(v)).into_response()
}

async fn handle(node: Arc<Node>, who: &Principal, body: &[u8]) -> (StatusCode, Value) {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::OK,
                rpc_error(Value::Null, -32700, format!("parse error: {e}"), None),
            );
        }
    };
    match req {
        Value::Array(reqs) if reqs.is_empty() || reqs.len() > MAX_BATCH => (
            StatusCode::OK,
            rpc_error(
                Value::Null,
                -32600,
                format!("a batch holds 1 to {MAX_BATCH} requests"),
                None,
            ),
        ),
        // A batch runs in order; each call succeeds or fails on its own,
        // except that a token out of scope for any of them runs none.
        Value::Array(reqs) => {
            let calls: Vec<_> = reqs.into_iter().map(parse_one).collect();
            for c in calls.iter().flatten() {
                if let Err(e) = check_scope(&node, who, c) {
                    return (StatusCode::FORBIDDEN, e);
                }
            }
            let mut out: Vec<Option<Value>> = Vec::with_capacity(calls.len());
            let mut valid = Vec::new();
            for c in calls {
                match c {
                    Ok(c) => {
                        valid.push(c);
                        out.push(None);
                    }
                    Err(e) => out.push(Some(e)),
                }
            }
            let mut answers = execute_all(node, valid).await.into_iter();
            let out: Vec<Value> = out
                .into_iter()
                .map(|o| o.unwrap_or_else(|| answers.next().expect("one answer per call")))
                .collect();
            (StatusCode::OK, Value::Array(out))
        }
        other => match parse_one(other) {
            Err(e) => (StatusCode::OK, e),
            Ok(c) => match check_scope(&node, who, &c) {
                Err(e) => (StatusCode::FORBIDDEN, e),
                Ok(()) => (StatusCode::OK, execute(node, c).await),
            },
        },
    }
}

fn call_code(e: &CallError) -> i64 {
    match e.kind {
        CallErrorKind::InvalidArgs => -32602,
        CallErrorKind::UnknownMethod => -32002,
        CallErrorKind::App => -32003,
        CallErrorKind::Mutability => -32005,
        CallErrorKind::Panic
        | CallErrorKind::Trap
        | CallErrorKind::Timeout
        | CallErrorKind::OutOfMemory
        | CallErrorKind::Limit
        | CallErrorKind::Host => -32004,
    }
}
