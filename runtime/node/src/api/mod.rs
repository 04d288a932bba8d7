//! The HTTP API: JSON-RPC 2.0 at `/jsonrpc`, a WebSocket at `/ws`,
//! Server-Sent Events at `/events`, REST under `/admin`, Prometheus metrics
//! at `/metrics`, the OpenAPI document at `/openapi.json`, `/health`.
//!
//! Blobs stream in and out at `/contexts/{id}/blobs` ([`blobs`]).
//!
//! A thin layer: it authenticates ([`auth`]), parses, checks scope and hands
//! the work to [`Node`] on a blocking thread. It must not hold replication
//! or state logic. The reference is `docs/api.md` plus `runtime/node/openapi.json`.
//!
//! Request bodies and answers are `mero-api`'s types ([`wire`] turns the
//! node's values into them), the same that clients deserialize and that
//! the OpenAPI document's schemas are generated from.

pub mod admin;
pub mod auth;
pub mod blobs;
pub mod dev;
pub mod rpc;
pub mod sse;
pub mod wire;
pub mod ws;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use mero_api::ErrorBody;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::NodeError;
use crate::node::Node;

/// The OpenAPI document of the REST part, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Builds the router for `node`.
pub fn router(node: Arc<Node>) -> Router {
    let limits = node.config().limits;
    let admin = Router::new()
        .route("/apps", post(admin::install_app).get(admin::list_apps))
        .route(
            "/apps/{hash}",
            get(admin::get_app).delete(admin::remove_app),
        )
        .route(
            "/contexts",
            post(admin::create_context).get(admin::list_contexts),
        )
        .route("/contexts/join", post(admin::join_context))
        .route(
            "/contexts/{id}",
            get(admin::get_context).delete(admin::delete_context),
        )
        .route("/contexts/{id}/state", get(admin::get_state))
        .route("/contexts/{id}/sync", get(admin::get_sync))
        .route("/contexts/{id}/dag", get(admin::get_dag))
        .route("/contexts/{id}/members", get(admin::get_members))
        .route("/contexts/{id}/invitations", post(admin::create_invitation))
        .route(
            "/contexts/{id}/invitations/{invite}",
            delete(admin::revoke_invitation),
        )
        .route(
            "/contexts/{id}/members/{member}",
            delete(admin::remove_member),
        )
        .route("/contexts/{id}/members/{member}/role", put(admin::set_role))
        .route("/contexts/{id}/leave", post(admin::leave_context))
        .route("/contexts/{id}/upgrade", post(admin::upgrade_context))
        .route(
            "/contexts/{id}/deltas",
            post(admin::import_deltas).get(admin::export_deltas),
        )
        .route("/tokens", post(auth::issue_token))
        .route("/tokens/{id}", delete(auth::revoke_token))
        .route("/node", get(admin::node_status))
        .route("/node/peers", get(admin::node_peers))
        .route("/node/config", get(admin::node_config))
        .route("/network", get(admin::network_status))
        // Dev mode only (403 `dev_mode_off` otherwise); a small body.
        .route(
            "/dev/faults",
            get(dev::get_faults)
                .put(dev::set_faults)
                .delete(dev::heal)
                .layer(DefaultBodyLimit::max(dev::MAX_BODY)),
        )
        .layer(DefaultBodyLimit::max(limits.max_app_bytes))
        .route_layer(middleware::from_fn(auth::admin_only));
    let mut clients = Router::new()
        .route(
            "/jsonrpc",
            post(rpc::jsonrpc).layer(DefaultBodyLimit::max(limits.max_request_bytes)),
        )
        .route("/ws", get(ws::websocket))
        .route("/events", get(sse::events))
        // Streamed both ways, bounded by `[blobs] max_blob_bytes`.
        .route(
            "/contexts/{id}/blobs",
            post(blobs::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/contexts/{id}/blobs/{blob}", get(blobs::download))
        .route("/contexts/{id}/sync", get(admin::client_sync))
        .nest("/admin", admin);
    let mut public = Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .route(
            "/auth/refresh",
            post(auth::refresh_token).layer(DefaultBodyLimit::max(limits.max_request_bytes)),
        );
    if node.config().metrics.public {
        public = public.route("/metrics", get(metrics));
    } else {
        clients = clients.route(
            "/metrics",
            get(metrics).route_layer(middleware::from_fn(auth::admin_only)),
        );
    }
    let clients = clients.route_layer(middleware::from_fn_with_state(
        node.clone(),
        auth::authenticate,
    ));
    let mut app = public.merge(clients);
    if let Some(dir) = &node.config().server.static_dir {
        app = app.nest_service("/app", tower_http::services::ServeDir::new(dir));
    }
    let cors = cors(&node.config().server.cors_origins);
    let app = app.with_state(node);
    match cors {
        Some(c) => app.layer(c),
        None => app,
    }
}

/// CORS for the configured origins; `None` (no CORS headers, so browsers
/// refuse cross-origin calls) when there are none.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("last-event-id"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Answers and notifications are small writes, often several in a row
    // on one WebSocket; with Nagle's algorithm on, each second write waits
    // for the client's delayed ACK (up to 40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a client connection: {e}");
        }
    });
    axum::serve(listener, router(node))
        .with_graceful_shutdown(shutdown)
        .await
}

/// An error response: a status and `{"error": {"code", "message", ...}}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub ErrorBody);

impl ApiError {
    /// An error with a stable `code` and a message saying what to do.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self(status, ErrorBody::new(code, message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.0, axum::Json(self.1)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::InvalidApp(_) | NodeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            NodeError::UnknownApp(_) | NodeError::UnknownContext(_) => StatusCode::NOT_FOUND,
            NodeError::Invitation(_) => StatusCode::BAD_REQUEST,
            NodeError::Forbidden(_) | NodeError::Refused(_) => StatusCode::FORBIDDEN,
            NodeError::Joining(_) | NodeError::Conflict(_) => StatusCode::CONFLICT,
            NodeError::Call(_) => StatusCode::UNPROCESSABLE_ENTITY,
            NodeError::Quarantined(..) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut body = ErrorBody::new(e.code(), e.to_string());
        if let NodeError::Call(c) = &e {
            body.error.data = Some(wire::json(&wire::call_failure(c)));
        }
        ApiError(status, body)
    }
}

pub(crate) fn bad_request(msg: impl Into<String>) -> ApiError {
    NodeError::BadRequest(msg.into()).into()
}

/// Runs node work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(NodeError::Wasm(format!("call thread failed: {e}"))))
}

async fn health() -> axum::Json<mero_api::Health> {
    axum::Json(mero_api::Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let connected: std::collections::HashSet<String> = match node.net() {
        Some(n) => n
            .status()
            .await
            .map(|s| s.peers.into_iter().map(|p| p.peer_id).collect())
            .unwrap_or_default(),
        None => Default::default(),
    };
    let peers = connected.len();
    let (buffered, quarantined, records) = {
        let node = node.clone();
        tokio::task::spawn_blocking(move || {
            node.metrics().set_resident(node.resident());
            (node.buffered(), node.quarantined(), node.peer_records())
        })
        .await
        .unwrap_or_default()
    };
    let cfg = node.config();
    node.metrics().set_sync(
        &records,
        &connected,
        cfg.metrics.per_peer || cfg.dev,
        cfg.dev,
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        node.metrics().encode(&buffered, peers, quarantined),
    )
        .into_response()
}

pub(crate) fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        ApiError::new(
            r.status(),
            "bad_body",
            format!("{}; limits are in [limits] of config.toml", r.body_text()),
        )
    })
}

pub(crate) fn parse_id<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, ApiError> {
    s.parse().map_err(bad_request)
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

/// Parses a body that may be empty (all defaults).
pub(crate) fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}
