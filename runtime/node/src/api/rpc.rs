//! JSON-RPC 2.0: `execute` and `query`, single or batched, over HTTP
//! (`POST /jsonrpc`) and the WebSocket. Parsing (the envelope, the params,
//! batches) and the error codes live in `mero-rpc`; see [`mero_rpc::code`]
//! for what each code means. This module checks scopes and runs the calls;
//! answers are `mero-api`'s [`RpcResponse`](mero_api::RpcResponse).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mero_abi::{CallError, CallErrorKind};
use mero_api::{RpcError, RpcResponse};
use mero_rpc::{Body, Method, code};
use serde_json::Value;

use super::auth::Principal;
use super::{blocking, wire};
use crate::calls::CallRequest;
use crate::error::NodeError;
use crate::ids::ContextId;
use crate::node::{CallKind, CallOutput, Node};

pub use mero_rpc::code::FORBIDDEN;
pub use mero_rpc::envelope;

/// A JSON-RPC error response.
pub fn rpc_error(id: Value, code: i64, message: impl Into<String>, data: Option<Value>) -> Value {
    mero_rpc::error(id, code, message, data)
}

/// A well-formed `execute` or `query` request.
pub struct Call {
    id: Value,
    kind: CallKind,
    context: ContextId,
    method: String,
    args: Vec<u8>,
}

impl Call {
    fn new(kind: CallKind, call: mero_rpc::Call<ContextId>) -> Self {
        let mero_rpc::Call {
            id,
            context,
            method,
            args,
        } = call;
        Self {
            id,
            kind,
            context,
            method,
            args,
        }
    }

    fn from_http((method, call): (Method, mero_rpc::Call<ContextId>)) -> Self {
        let kind = match method {
            Method::Execute => CallKind::Execute,
            Method::Query => CallKind::Query,
        };
        Self::new(kind, call)
    }
}

/// Parses the params of `execute`/`query`.
pub fn parse_call(id: Value, kind: CallKind, params: Option<Value>) -> Result<Call, Value> {
    mero_rpc::parse_call(id, params).map(|c| Call::new(kind, c))
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
    let response = match result {
        Ok(out) => RpcResponse::ok(id, wire::call_result(out)),
        // The app's own failure: its message, and `{kind, code, data}`.
        Err(NodeError::Call(c)) if c.kind == CallErrorKind::App => {
            let data = c.app_error().map(|d| wire::json(&wire::app_error(d)));
            RpcResponse::err(
                id,
                RpcError {
                    code: code::APP_ERROR,
                    message: c.message,
                    data,
                },
            )
        }
        Err(e) => {
            let (rpc_code, data) = match &e {
                NodeError::UnknownContext(_) => (code::UNKNOWN_CONTEXT, None),
                NodeError::Joining(_) => (code::JOINING, None),
                NodeError::BadRequest(_) => (code::INVALID_PARAMS, None),
                NodeError::Forbidden(_) | NodeError::Refused(_) => (code::REFUSED, None),
                NodeError::Quarantined(..) => (code::QUARANTINED, None),
                NodeError::Call(c) => (call_code(c), Some(wire::json(&wire::call_failure(c)))),
                _ => (code::NODE_FAILURE, None),
            };
            RpcResponse::err(
                id,
                RpcError {
                    code: rpc_code,
                    message: e.to_string(),
                    data,
                },
            )
        }
    };
    wire::json(&response)
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
                axum::Json(rpc_error(Value::Null, code::INVALID_REQUEST, msg, None)),
            )
                .into_response();
        }
    };
    let (status, v) = handle(node, &who, &body).await;
    (status, axum::Json(v)).into_response()
}

async fn handle(node: Arc<Node>, who: &Principal, body: &[u8]) -> (StatusCode, Value) {
    match mero_rpc::parse_body::<ContextId>(body) {
        Err(e) | Ok(Body::Single(Err(e))) => (StatusCode::OK, e),
        // A batch runs in order; each call succeeds or fails on its own,
        // except that a token out of scope for any of them runs none.
        Ok(Body::Batch(batch)) => {
            let calls: Vec<Call> = batch.calls.into_iter().map(Call::from_http).collect();
            for c in &calls {
                if let Err(e) = check_scope(&node, who, c) {
                    return (StatusCode::FORBIDDEN, e);
                }
            }
            let answers = execute_all(node, calls).await;
            (StatusCode::OK, batch.answers.join(answers))
        }
        Ok(Body::Single(Ok(c))) => {
            let c = Call::from_http(c);
            match check_scope(&node, who, &c) {
                Err(e) => (StatusCode::FORBIDDEN, e),
                Ok(()) => (StatusCode::OK, execute(node, c).await),
            }
        }
    }
}

fn call_code(e: &CallError) -> i64 {
    match e.kind {
        CallErrorKind::InvalidArgs => code::INVALID_PARAMS,
        CallErrorKind::UnknownMethod => code::UNKNOWN_METHOD,
        CallErrorKind::App => code::APP_ERROR,
        CallErrorKind::Mutability => code::MUTABILITY,
        CallErrorKind::Panic
        | CallErrorKind::Trap
        | CallErrorKind::Timeout
        | CallErrorKind::OutOfMemory
        | CallErrorKind::Limit
        | CallErrorKind::Host => code::CALL_FAILED,
    }
}
