//! JSON-RPC 2.0 as mero nodes speak it, without IO: the envelope, the
//! params of `execute` and `query`, the error codes, and how a body becomes
//! one call or a batch of calls whose answers are joined again in order.
//!
//! This is what the node's `POST /jsonrpc` handler and its WebSocket run on
//! every request body a client sends, and what `fuzz/fuzz_targets/jsonrpc.rs`
//! runs on arbitrary bytes, so both exercise the same code. It exists as its
//! own crate so that it can be built instrumented without the node's heavy
//! dependencies.
//!
//! It must not do IO, authenticate, or run calls: it turns bytes into
//! [`Call`]s and error responses, nothing else. It must not panic on any
//! input, and it depends only on serde and serde_json. The context id type
//! is a parameter ([`parse_call`]), so this crate does not depend on
//! `mero-sync`.
//!
//! ```
//! use mero_rpc::{Body, Method};
//! let body = br#"{"jsonrpc": "2.0", "id": 1, "method": "query",
//!     "params": {"context": "ctx-1", "method": "get", "args": {"key": "a"}}}"#;
//! let Ok(Body::Single(Ok((method, call)))) = mero_rpc::parse_body::<String>(body) else {
//!     panic!("a valid call");
//! };
//! assert_eq!((method, call.context.as_str(), call.method.as_str()), (Method::Query, "ctx-1", "get"));
//! assert_eq!(call.args, br#"{"key":"a"}"#);
//! ```

#![warn(missing_docs)]

use std::fmt::Display;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::{Value, json};

/// The JSON-RPC error codes a node answers with.
///
/// | code | meaning |
/// |---|---|
/// | -32700 | body is not JSON |
/// | -32600 | not a JSON-RPC 2.0 request (or too large) |
/// | -32601 | unknown RPC method |
/// | -32602 | bad params, or arguments that do not match the app method |
/// | -32001 | unknown context |
/// | -32002 | unknown app method, or one no client may call (init, private, handler) |
/// | -32003 | the app returned an error (`data`: `{kind, code, data}`) |
/// | -32004 | the call failed: panic, trap, timeout, out of memory, limit |
/// | -32005 | a view tried to write, or a mutating method was queried |
/// | -32006 | the token does not allow this context or method (HTTP 403) |
/// | -32007 | the node is still joining the context; retry shortly |
/// | -32008 | this node's member may not do this in the context (a reader writing, a removed member) |
/// | -32009 | the context is quarantined: its replica failed; other contexts work, a restart reloads it |
/// | -32000 | node failure (storage) |
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a JSON-RPC 2.0 request, a batch of the wrong size, or too large.
    pub const INVALID_REQUEST: i64 = -32600;
    /// An unknown RPC method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad params, or arguments that do not match the app method.
    pub const INVALID_PARAMS: i64 = -32602;
    /// A node failure (storage), or more requests in flight than allowed.
    pub const NODE_FAILURE: i64 = -32000;
    /// The node does not know the context.
    pub const UNKNOWN_CONTEXT: i64 = -32001;
    /// The app has no such method.
    pub const UNKNOWN_METHOD: i64 = -32002;
    /// The app returned an error; `data` is `{kind, code, data}`.
    pub const APP_ERROR: i64 = -32003;
    /// The call failed: panic, trap, timeout, out of memory, limit.
    pub const CALL_FAILED: i64 = -32004;
    /// A view tried to write, or a mutating method was queried.
    pub const MUTABILITY: i64 = -32005;
    /// The token does not allow this context or method (HTTP 403).
    pub const FORBIDDEN: i64 = -32006;
    /// The node is still joining the context.
    pub const JOINING: i64 = -32007;
    /// This node's member may not do this in the context.
    pub const REFUSED: i64 = -32008;
    /// The context is quarantined (its replica failed) until the node restarts.
    pub const QUARANTINED: i64 = -32009;
}

/// Most requests in one JSON-RPC batch.
pub const MAX_BATCH: usize = 1000;

/// A JSON-RPC error response.
///
/// ```
/// let e = mero_rpc::error(serde_json::json!(7), mero_rpc::code::INVALID_PARAMS, "bad", None);
/// assert_eq!(e, serde_json::json!({"jsonrpc": "2.0", "id": 7,
///     "error": {"code": -32602, "message": "bad"}}));
/// ```
pub fn error(id: Value, code: i64, message: impl Into<String>, data: Option<Value>) -> Value {
    let mut err = json!({"code": code, "message": message.into()});
    if let Some(d) = data {
        err["data"] = d;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": err})
}

/// The parts of a JSON-RPC request: its id (`null` when absent), its
/// method, and its params if any.
pub type Envelope = (Value, String, Option<Value>);

/// Checks the JSON-RPC envelope of one request: an object with `jsonrpc`
/// `"2.0"` and a string `method`. `Err` holds the error response.
pub fn envelope(req: Value) -> Result<Envelope, Value> {
    let Value::Object(mut obj) = req else {
        return Err(error(
            Value::Null,
            code::INVALID_REQUEST,
            "a JSON-RPC request must be an object",
            None,
        ));
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(error(
            id,
            code::INVALID_REQUEST,
            "`jsonrpc` must be \"2.0\"",
            None,
        ));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => {
            return Err(error(
                id,
                code::INVALID_REQUEST,
                "`method` must be a string",
                None,
            ));
        }
        None => return Err(error(id, code::INVALID_REQUEST, "missing `method`", None)),
    };
    Ok((id, method, obj.remove("params")))
}

/// The RPC methods that run an app method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `execute`: may change state.
    Execute,
    /// `query`: views only.
    Query,
}

impl Method {
    /// The method of an RPC method name, if it runs an app method.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "execute" => Some(Method::Execute),
            "query" => Some(Method::Query),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallParams {
    context: String,
    method: String,
    #[serde(default)]
    args: Option<Value>,
}

/// The well-formed params of an `execute` or `query` request.
#[derive(Debug, Clone, PartialEq)]
pub struct Call<C> {
    /// The request id, echoed in the answer.
    pub id: Value,
    /// The context, parsed from its string form.
    pub context: C,
    /// The app method to run.
    pub method: String,
    /// The arguments: a JSON object (`{}` when absent), serialized.
    pub args: Vec<u8>,
}

/// Parses the params of `execute`/`query`: `{"context", "method", "args"}`,
/// with `args` an object if present. The context string is parsed as a `C`,
/// whose error message becomes the -32602 message. `Err` holds the error
/// response.
pub fn parse_call<C>(id: Value, params: Option<Value>) -> Result<Call<C>, Value>
where
    C: FromStr,
    C::Err: Display,
{
    let params: CallParams = match params.map(serde_json::from_value) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return Err(error(
                id,
                code::INVALID_PARAMS,
                format!("invalid params: {e}; expected {{\"context\", \"method\", \"args\"}}"),
                None,
            ));
        }
        None => return Err(error(id, code::INVALID_PARAMS, "missing `params`", None)),
    };
    let context: C = match params.context.parse() {
        Ok(c) => c,
        Err(e) => return Err(error(id, code::INVALID_PARAMS, e.to_string(), None)),
    };
    let args = params.args.unwrap_or_else(|| json!({}));
    if !args.is_object() {
        return Err(error(
            id,
            code::INVALID_PARAMS,
            "`args` must be a JSON object keyed by parameter name",
            None,
        ));
    }
    Ok(Call {
        id,
        context,
        method: params.method,
        // A `Value` always serializes: its map keys are strings.
        args: args.to_string().into_bytes(),
    })
}

/// Parses one request of an HTTP body, where only `execute` and `query`
/// exist. `Err` holds the error response.
pub fn parse_one<C>(req: Value) -> Result<(Method, Call<C>), Value>
where
    C: FromStr,
    C::Err: Display,
{
    let (id, name, params) = envelope(req)?;
    let Some(method) = Method::from_name(&name) else {
        return Err(error(
            id,
            code::METHOD_NOT_FOUND,
            format!("unknown RPC method `{name}`; use `execute` or `query`"),
            None,
        ));
    };
    parse_call(id, params).map(|call| (method, call))
}

/// A parsed HTTP body.
#[derive(Debug)]
pub enum Body<C> {
    /// One request: the call, or its error response.
    Single(Result<(Method, Call<C>), Value>),
    /// A batch (1 to [`MAX_BATCH`] requests).
    Batch(Batch<C>),
}

/// A batch: the well-formed calls to run, in order, and the place of each
/// request's answer.
#[derive(Debug)]
pub struct Batch<C> {
    /// The well-formed calls, in request order.
    pub calls: Vec<(Method, Call<C>)>,
    /// Where the answers of `calls` go among the error responses.
    pub answers: Answers,
}

/// The answers of a batch: the error responses of malformed requests, and
/// slots for the answers of the calls. See [`Answers::join`].
#[derive(Debug)]
pub struct Answers {
    slots: Vec<Slot>,
}

#[derive(Debug)]
enum Slot {
    /// The error response of a malformed request.
    Error(Value),
    /// A call's answer goes here; the call's id.
    Call(Value),
}

impl Answers {
    /// The batch response: each request's answer in request order, the
    /// calls' answers taken in order from `answers` (one per call). A call
    /// left without an answer gets a -32000 error, so this never panics.
    ///
    /// ```
    /// use mero_rpc::Body;
    /// let body = br#"[{"jsonrpc": "2.0", "id": 1, "method": "nope"},
    ///     {"jsonrpc": "2.0", "id": 2, "method": "query", "params": {"context": "c", "method": "m"}}]"#;
    /// let Ok(Body::Batch(batch)) = mero_rpc::parse_body::<String>(body) else { panic!() };
    /// assert_eq!(batch.calls.len(), 1);
    /// let out = batch.answers.join([serde_json::json!("answer 2")]);
    /// assert_eq!(out[0]["error"]["code"], -32601);
    /// assert_eq!(out[1], "answer 2");
    /// ```
    pub fn join(self, answers: impl IntoIterator<Item = Value>) -> Value {
        let mut answers = answers.into_iter();
        let out = self
            .slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Error(e) => e,
                Slot::Call(id) => answers.next().unwrap_or_else(|| {
                    error(id, code::NODE_FAILURE, "the call got no answer", None)
                }),
            })
            .collect();
        Value::Array(out)
    }
}

/// Parses an HTTP JSON-RPC body: JSON (else -32700), then one request or a
/// batch of 1 to [`MAX_BATCH`] (else -32600). `Err` holds the error
/// response for the whole body; a malformed request inside a batch gets its
/// own error response in [`Batch::answers`].
pub fn parse_body<C>(body: &[u8]) -> Result<Body<C>, Value>
where
    C: FromStr,
    C::Err: Display,
{
    let req: Value = serde_json::from_slice(body).map_err(|e| {
        error(
            Value::Null,
            code::PARSE_ERROR,
            format!("parse error: {e}"),
            None,
        )
    })?;
    match req {
        Value::Array(reqs) if reqs.is_empty() || reqs.len() > MAX_BATCH => Err(error(
            Value::Null,
            code::INVALID_REQUEST,
            format!("a batch holds 1 to {MAX_BATCH} requests"),
            None,
        )),
        Value::Array(reqs) => {
            let mut calls = Vec::new();
            let mut slots = Vec::with_capacity(reqs.len());
            for req in reqs {
                match parse_one(req) {
                    Ok((method, call)) => {
                        slots.push(Slot::Call(call.id.clone()));
                        calls.push((method, call));
                    }
                    Err(e) => slots.push(Slot::Error(e)),
                }
            }
            Ok(Body::Batch(Batch {
                calls,
                answers: Answers { slots },
            }))
        }
        other => Ok(Body::Single(parse_one(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(body: &str) -> Result<(Method, Call<String>), Value> {
        match parse_body::<String>(body.as_bytes()) {
            Ok(Body::Single(r)) => r,
            Ok(Body::Batch(_)) => panic!("not a batch"),
            Err(e) => Err(e),
        }
    }

    fn code_of(v: &Value) -> i64 {
        v["error"]["code"].as_i64().expect("an error response")
    }

    #[test]
    fn codes_of_malformed_bodies() {
        let cases = [
            ("{\"jsonrpc\": ", code::PARSE_ERROR),
            ("[]", code::INVALID_REQUEST),
            ("7", code::INVALID_REQUEST),
            (
                r#"{"jsonrpc": "1.0", "method": "query"}"#,
                code::INVALID_REQUEST,
            ),
            (r#"{"jsonrpc": "2.0", "method": 1}"#, code::INVALID_REQUEST),
            (r#"{"jsonrpc": "2.0"}"#, code::INVALID_REQUEST),
            (
                r#"{"jsonrpc": "2.0", "method": "ping"}"#,
                code::METHOD_NOT_FOUND,
            ),
            (
                r#"{"jsonrpc": "2.0", "method": "query"}"#,
                code::INVALID_PARAMS,
            ),
            (
                r#"{"jsonrpc": "2.0", "method": "query", "params": {"context": "c"}}"#,
                code::INVALID_PARAMS,
            ),
            (
                r#"{"jsonrpc": "2.0", "method": "query", "params": {"context": "c", "method": "m", "args": []}}"#,
                code::INVALID_PARAMS,
            ),
            (
                r#"{"jsonrpc": "2.0", "method": "query", "params": {"context": "c", "method": "m", "x": 1}}"#,
                code::INVALID_PARAMS,
            ),
        ];
        for (body, want) in cases {
            let err = single(body).expect_err(body);
            assert_eq!(code_of(&err), want, "{body}: {err}");
        }
    }

    #[test]
    fn the_id_is_echoed_in_errors() {
        let err = single(r#"{"jsonrpc": "2.0", "id": "x", "method": "ping"}"#).unwrap_err();
        assert_eq!(err["id"], "x");
        assert_eq!(
            err["error"]["message"],
            "unknown RPC method `ping`; use `execute` or `query`"
        );
    }

    #[test]
    fn the_context_error_is_the_message() {
        #[derive(Debug)]
        struct Ctx;
        impl FromStr for Ctx {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Err(format!("`{s}` is not a context"))
            }
        }
        let body = br#"{"jsonrpc": "2.0", "method": "execute", "params": {"context": "q", "method": "m"}}"#;
        let Ok(Body::Single(Err(e))) = parse_body::<Ctx>(body) else {
            panic!("a params error");
        };
        assert_eq!(e["error"]["message"], "`q` is not a context");
    }

    #[test]
    fn args_default_to_an_empty_object() {
        let (method, call) = single(
            r#"{"jsonrpc": "2.0", "id": 3, "method": "execute", "params": {"context": "c", "method": "m"}}"#,
        )
        .unwrap();
        assert_eq!(method, Method::Execute);
        assert_eq!(call.id, json!(3));
        assert_eq!(call.args, b"{}");
    }

    #[test]
    fn batches_keep_request_order() {
        let ok = r#"{"jsonrpc": "2.0", "id": 1, "method": "query", "params": {"context": "c", "method": "m"}}"#;
        let bad = r#"{"jsonrpc": "2.0", "id": 2}"#;
        let body = format!("[{ok}, {bad}, {ok}]");
        let Ok(Body::Batch(batch)) = parse_body::<String>(body.as_bytes()) else {
            panic!("a batch");
        };
        assert_eq!(batch.calls.len(), 2);
        let out = batch.answers.join([json!("a"), json!("b")]);
        assert_eq!(out[0], "a");
        assert_eq!(code_of(&out[1]), code::INVALID_REQUEST);
        assert_eq!(out[2], "b");
    }

    #[test]
    fn a_call_without_an_answer_gets_an_error_not_a_panic() {
        let ok = r#"{"jsonrpc": "2.0", "id": 9, "method": "query", "params": {"context": "c", "method": "m"}}"#;
        let Ok(Body::Batch(batch)) = parse_body::<String>(format!("[{ok}]").as_bytes()) else {
            panic!("a batch");
        };
        let out = batch.answers.join([]);
        assert_eq!(out[0]["id"], 9);
        assert_eq!(code_of(&out[0]), code::NODE_FAILURE);
    }

    #[test]
    fn batch_size_is_bounded() {
        let one = r#"{"jsonrpc": "2.0", "id": 1, "method": "x"}"#;
        let max = format!("[{}]", vec![one; MAX_BATCH].join(","));
        assert!(matches!(
            parse_body::<String>(max.as_bytes()),
            Ok(Body::Batch(_))
        ));
        let over = format!("[{}]", vec![one; MAX_BATCH + 1].join(","));
        let err = parse_body::<String>(over.as_bytes()).unwrap_err();
        assert_eq!(code_of(&err), code::INVALID_REQUEST);
    }
}
