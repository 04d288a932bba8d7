//! The HTTP API: JSON-RPC 2.0 for app calls, REST under `/admin`, a
//! WebSocket event stream at `/ws`, `/health`.
//!
//! A thin layer: it authenticates, parses, and hands the work to [`Node`] on a
//! blocking thread. JSON-RPC error codes:
//!
//! | code | meaning |
//! |---|---|
//! | -32700 | body is not JSON |
//! | -32600 | not a JSON-RPC 2.0 request (or too large) |
//! | -32601 | RPC method is not `execute` or `query` |
//! | -32602 | bad params, or arguments that do not match the app method |
//! | -32001 | unknown context |
//! | -32002 | unknown app method |
//! | -32003 | the app returned an error (`data` holds it) |
//! | -32004 | the call failed: panic, trap, timeout, out of memory, limit |
//! | -32005 | a view tried to write, or a mutating method was queried |
//! | -32000 | node failure (storage) |

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mero_abi::{CallError, CallErrorKind};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::error::NodeError;
use crate::ids::{AppHash, ContextId};
use crate::node::{CallKind, Node};

/// Builds the router for `node`.
pub fn router(node: Arc<Node>) -> Router {
    let limits = node.config().limits;
    let admin = Router::new()
        .route("/apps", post(install_app).get(list_apps))
        .route("/apps/{hash}", get(get_app))
        .route("/contexts", post(create_context).get(list_contexts))
        .route("/contexts/{id}", get(get_context))
        .route("/contexts/{id}/state", get(get_state))
        .route("/contexts/{id}/sync", get(get_sync))
        .route("/contexts/{id}/members", get(get_members))
        .route("/contexts/{id}/invitations", post(create_invitation))
        .route("/contexts/{id}/leave", post(leave_context))
        .route("/contexts/{id}/upgrade", post(upgrade_context))
        .route(
            "/contexts/{id}/deltas",
            post(import_deltas).get(export_deltas),
        )
        .route("/contexts/join", post(join_context))
        .route("/network", get(network_status))
        .route("/network/pause", post(network_pause))
        .route("/network/resume", post(network_resume))
        .route("/node", get(node_status))
        .layer(DefaultBodyLimit::max(limits.max_app_bytes));
    let protected = Router::new()
        .route(
            "/jsonrpc",
            post(jsonrpc).layer(DefaultBodyLimit::max(limits.max_request_bytes)),
        )
        .nest("/admin", admin)
        .route_layer(middleware::from_fn_with_state(node.clone(), require_token));
    Router::new()
        .route("/health", get(health))
        // Authenticates itself: browsers cannot send headers on a WebSocket.
        .route("/ws", get(crate::events::websocket))
        .merge(protected)
        .with_state(node)
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(node))
        .with_graceful_shutdown(shutdown)
        .await
}

pub(crate) struct ApiError(StatusCode, Value);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::InvalidApp(_) | NodeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            NodeError::UnknownApp(_) | NodeError::UnknownContext(_) => StatusCode::NOT_FOUND,
            NodeError::Invitation(_) => StatusCode::BAD_REQUEST,
            NodeError::Forbidden(_) => StatusCode::FORBIDDEN,
            NodeError::Joining(_) => StatusCode::CONFLICT,
            NodeError::Call(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut body = json!({"error": {"code": e.code(), "message": e.to_string()}});
        if let NodeError::Call(c) = &e {
            body["error"]["data"] = serde_json::to_value(c).unwrap_or_default();
        }
        ApiError(status, body)
    }
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    NodeError::BadRequest(msg.into()).into()
}

/// Rejects requests without the admin token; runs before any body is read.
async fn require_token(
    State(node): State<Arc<Node>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    authorize(&node, req.headers())?;
    Ok(next.run(req).await)
}

pub(crate) fn authorize(node: &Node, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let expected = node.config().auth.admin_token.as_bytes();
    let ok = presented.is_some_and(|p| {
        let p = p.as_bytes();
        // Constant-time comparison: do not leak how much of the token matched.
        p.len() == expected.len()
            && p.iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"code": "unauthorized", "message": "missing or wrong token: send `Authorization: Bearer <admin token>` (see auth.admin_token in the node's config.toml)"}}),
        ))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(NodeError::Wasm(format!("call thread failed: {e}"))))
}

async fn health() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        ApiError(
            r.status(),
            json!({"error": {"code": "bad_body", "message": format!("{}; limits are in [limits] of config.toml", r.body_text())}}),
        )
    })
}

async fn install_app(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = body_or_error(body)?;
    if body.is_empty() {
        return Err(bad_request("the request body must be the app's WASM bytes"));
    }
    let info = blocking(move || node.install_app(&body)).await?;
    Ok((StatusCode::CREATED, axum::Json(info)))
}

async fn node_status(State(node): State<Arc<Node>>) -> axum::Json<Value> {
    axum::Json(json!({
        "identity": node.identity(),
        "peerId": node.net().map(|n| n.peer_id().to_string()),
        "p2pAddrs": node.net().map(|n| n.addresses()).unwrap_or_default(),
        "version": env!("CARGO_PKG_VERSION"),
        "listen": node.config().server.listen,
        "apps": node.apps().len(),
        "contexts": node.contexts().len(),
    }))
}

async fn list_apps(State(node): State<Arc<Node>>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(node.apps()))
}

pub(crate) fn parse_id<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, ApiError> {
    s.parse().map_err(bad_request)
}

async fn get_app(
    State(node): State<Arc<Node>>,
    Path(hash): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let hash: AppHash = parse_id(&hash)?;
    Ok(axum::Json(node.app_abi(&hash)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateContext {
    app: String,
    #[serde(default)]
    args: Option<Value>,
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

async fn create_context(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let req: CreateContext = parse_json(&body_or_error(body)?)?;
    let app: AppHash = parse_id(&req.app)?;
    let args = serde_json::to_vec(&req.args.unwrap_or_else(|| json!({}))).expect("JSON serializes");
    let info = blocking(move || node.create_context(&app, &args)).await?;
    Ok((StatusCode::CREATED, axum::Json(info)))
}

async fn list_contexts(State(node): State<Arc<Node>>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(node.contexts()))
}

async fn get_context(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    Ok(axum::Json(node.context_info(&id)?))
}

async fn get_state(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    Ok(axum::Json(node.state_json(&id)?))
}

async fn get_sync(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    Ok(axum::Json(node.sync_status(&id)?))
}

async fn get_members(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    Ok(axum::Json(node.members(&id)?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateInvitation {
    /// Validity in seconds (default: one day).
    #[serde(default)]
    valid_for_secs: Option<u64>,
    /// Whether the invitee may invite others.
    #[serde(default)]
    can_invite: bool,
}

fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

async fn create_invitation(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let req: CreateInvitation = optional_json(&body_or_error(body)?)?;
    let valid = std::time::Duration::from_secs(req.valid_for_secs.unwrap_or(86_400));
    let token = blocking(move || node.invite(&id, valid, req.can_invite)).await?;
    let b = &token.invitation.body;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "invitation": token.to_string(),
            "context": b.context,
            "expiresAtMs": b.expires_at_ms,
            "addrs": b.addrs,
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinContext {
    invitation: String,
}

async fn join_context(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let req: JoinContext = parse_json(&body_or_error(body)?)?;
    let info = blocking(move || node.join(&req.invitation)).await?;
    Ok((StatusCode::CREATED, axum::Json(info)))
}

async fn leave_context(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    blocking(move || node.leave(&id)).await?;
    Ok(axum::Json(json!({"left": id})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeContext {
    app: String,
}

async fn upgrade_context(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let req: UpgradeContext = parse_json(&body_or_error(body)?)?;
    let app: AppHash = parse_id(&req.app)?;
    Ok(axum::Json(blocking(move || node.upgrade(&id, &app)).await?))
}

/// Feeds signed deltas (a JSON array of hex-encoded wire deltas) through
/// the same checks as deltas from peers. For operators moving deltas by
/// hand, and for tests.
async fn import_deltas(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let hexes: Vec<String> = parse_json(&body_or_error(body)?)?;
    let mut deltas = Vec::with_capacity(hexes.len());
    for h in hexes {
        let bytes = hex::decode(&h).map_err(|e| bad_request(format!("not hex: {e}")))?;
        deltas.push(
            mero_sync::SignedDelta::from_bytes(&bytes)
                .map_err(|e| bad_request(format!("not a signed delta: {e}")))?,
        );
    }
    Ok(axum::Json(
        blocking(move || node.receive(&id, deltas, None)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    #[serde(default)]
    from: u64,
    #[serde(default)]
    limit: Option<usize>,
}

/// Exports a page of a context's log as hex-encoded wire deltas.
async fn export_deltas(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ExportQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let limit = q.limit.unwrap_or(1000).min(10_000);
    let from = q.from;
    let deltas = blocking(move || node.export_deltas(&id, from, limit)).await?;
    let next = from + deltas.len() as u64;
    let hexes: Vec<String> = deltas.iter().map(|d| hex::encode(d.to_bytes())).collect();
    Ok(axum::Json(json!({"deltas": hexes, "next": next})))
}

fn network(node: &Node) -> Result<&crate::net::NetHandle, ApiError> {
    node.net()
        .ok_or_else(|| bad_request("networking is not running on this node"))
}

async fn network_status(State(node): State<Arc<Node>>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(network(&node)?.status().await))
}

async fn network_pause(State(node): State<Arc<Node>>) -> Result<impl IntoResponse, ApiError> {
    set_paused(&node, true)
}

async fn network_resume(State(node): State<Arc<Node>>) -> Result<impl IntoResponse, ApiError> {
    set_paused(&node, false)
}

fn set_paused(node: &Node, paused: bool) -> Result<axum::Json<Value>, ApiError> {
    network(node)?.pause(paused);
    Ok(axum::Json(json!({"paused": paused})))
}

fn rpc_error(id: Value, code: i64, message: impl Into<String>, data: Option<Value>) -> Value {
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

async fn jsonrpc(State(node): State<Arc<Node>>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => {
            return (
                r.status(),
                axum::Json(rpc_error(
                    Value::Null,
                    -32600,
                    format!("request rejected: {}", r.body_text()),
                    None,
                )),
            )
                .into_response();
        }
    };
    axum::Json(handle_rpc(node, &body).await).into_response()
}

/// Most requests in one JSON-RPC batch.
const MAX_BATCH: usize = 1000;

async fn handle_rpc(node: Arc<Node>, body: &[u8]) -> Value {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return rpc_error(Value::Null, -32700, format!("parse error: {e}"), None),
    };
    match req {
        // A batch runs in order; each call succeeds or fails on its own.
        Value::Array(reqs) if reqs.is_empty() || reqs.len() > MAX_BATCH => rpc_error(
            Value::Null,
            -32600,
            format!("a batch holds 1 to {MAX_BATCH} requests"),
            None,
        ),
        Value::Array(reqs) => {
            let mut out = Vec::with_capacity(reqs.len());
            for r in reqs {
                out.push(handle_one(node.clone(), r).await);
            }
            Value::Array(out)
        }
        other => handle_one(node, other).await,
    }
}

async fn handle_one(node: Arc<Node>, req: Value) -> Value {
    let Value::Object(obj) = req else {
        return rpc_error(
            Value::Null,
            -32600,
            "a JSON-RPC request must be an object",
            None,
        );
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        return rpc_error(id, -32600, "`jsonrpc` must be \"2.0\"", None);
    }
    let kind = match obj.get("method").and_then(Value::as_str) {
        Some("execute") => CallKind::Execute,
        Some("query") => CallKind::Query,
        Some(other) => {
            return rpc_error(
                id,
                -32601,
                format!("unknown RPC method `{other}`; use `execute` or `query`"),
                None,
            );
        }
        None => return rpc_error(id, -32600, "missing `method`", None),
    };
    let params: CallParams = match obj.get("params").cloned().map(serde_json::from_value) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return rpc_error(
                id,
                -32602,
                format!("invalid params: {e}; expected {{\"context\", \"method\", \"args\"}}"),
                None,
            );
        }
        None => return rpc_error(id, -32602, "missing `params`", None),
    };
    let ctx: ContextId = match params.context.parse() {
        Ok(c) => c,
        Err(e) => return rpc_error(id, -32602, e, None),
    };
    let args = params.args.unwrap_or_else(|| json!({}));
    if !args.is_object() {
        return rpc_error(
            id,
            -32602,
            "`args` must be a JSON object keyed by parameter name",
            None,
        );
    }
    let args = serde_json::to_vec(&args).expect("JSON serializes");
    let method = params.method;
    match blocking(move || node.call(&ctx, &method, &args, kind)).await {
        Ok(out) => json!({"jsonrpc": "2.0", "id": id, "result": out}),
        Err(e) => {
            let (code, data) = match &e {
                NodeError::UnknownContext(_) => (-32001, None),
                NodeError::BadRequest(_) => (-32602, None),
                NodeError::Call(c) => (call_code(c), serde_json::to_value(c).ok()),
                _ => (-32000, None),
            };
            rpc_error(id, code, e.to_string(), data)
        }
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
