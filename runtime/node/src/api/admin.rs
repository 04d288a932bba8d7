//! Admin REST handlers under `/admin`: apps, contexts, node. The admin token
//! is checked before any of these run (see [`super::auth`]). Also the one
//! context route a client token may read besides calls and blobs:
//! `GET /contexts/{id}/sync`.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use mero_api as api;
use serde::Deserialize;
use serde_json::json;

use super::auth::Principal;
use super::{
    ApiError, bad_request, blocking, body_or_error, optional_json, parse_id, parse_json, wire,
};
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey};
use crate::node::Node;
use mero_sync::Role;

pub(crate) async fn install_app(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = body_or_error(body)?;
    if body.is_empty() {
        return Err(bad_request("the request body must be the app's WASM bytes"));
    }
    let info = blocking(move || node.install_app(&body)).await?;
    Ok((StatusCode::CREATED, axum::Json(wire::app(&info))))
}

pub(crate) async fn node_status(
    State(node): State<Arc<Node>>,
) -> Result<impl IntoResponse, ApiError> {
    let status = blocking(move || {
        Ok(api::NodeStatus {
            identity: wire::id(&node.identity()),
            peer_id: node.net().map(|n| n.peer_id().to_string()),
            p2p_addrs: node.net().map(|n| n.addresses()).unwrap_or_default(),
            version: env!("CARGO_PKG_VERSION").into(),
            listen: node.config().server.listen.to_string(),
            apps: node.apps().len() as u64,
            contexts: node.contexts().len() as u64,
            dev_mode: node.config().dev,
            started_at_ms: node.started_ms(),
            rss_bytes: rss_bytes(),
        })
    })
    .await?;
    Ok(axum::Json(status))
}

/// This process's resident set size, from `/proc/self/status` (Linux;
/// `None` elsewhere).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

pub(crate) async fn list_apps(
    State(node): State<Arc<Node>>,
) -> Result<impl IntoResponse, ApiError> {
    let apps = blocking(move || Ok(node.apps())).await?;
    Ok(axum::Json(apps.iter().map(wire::app).collect::<Vec<_>>()))
}

pub(crate) async fn get_app(
    State(node): State<Arc<Node>>,
    Path(hash): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let hash: AppHash = parse_id(&hash)?;
    Ok(axum::Json(blocking(move || node.app_abi(&hash)).await?))
}

pub(crate) async fn create_context(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let req: api::CreateContextRequest = parse_json(&body_or_error(body)?)?;
    let app: AppHash = parse_id(req.app.as_str())?;
    let args = serde_json::to_vec(&req.args.unwrap_or_else(|| json!({}))).expect("JSON serializes");
    let info = blocking(move || node.create_context(&app, &args)).await?;
    Ok((StatusCode::CREATED, axum::Json(wire::context(&info))))
}

pub(crate) async fn list_contexts(
    State(node): State<Arc<Node>>,
) -> Result<impl IntoResponse, ApiError> {
    let contexts = blocking(move || Ok(node.contexts())).await?;
    Ok(axum::Json(
        contexts.iter().map(wire::context).collect::<Vec<_>>(),
    ))
}

pub(crate) async fn get_context(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let info = blocking(move || node.context_info(&id)).await?;
    Ok(axum::Json(wire::context(&info)))
}

pub(crate) async fn get_state(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    Ok(axum::Json(blocking(move || node.state_json(&id)).await?))
}

pub(crate) async fn get_sync(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    Ok(axum::Json(sync_answer(node, id, true).await?))
}

/// A context's sync status merged with the swarm's view of its peers.
async fn sync_answer(
    node: Arc<Node>,
    id: ContextId,
    with_peers: bool,
) -> Result<api::SyncStatus, ApiError> {
    let net = node.net().cloned();
    let status = blocking(move || node.sync_status(&id)).await?;
    let peering = match net {
        Some(n) => n.peering(id).await.unwrap_or_default(),
        None => Default::default(),
    };
    Ok(wire::sync_status(&status, &peering, with_peers))
}

/// `GET /contexts/{id}/sync`: the same answer, for the context's own client
/// tokens (a client sees whether its node has caught up). It reveals no
/// more than the context's event stream already does: heads, delta counts
/// per member key, refusals by reason.
pub(crate) async fn client_sync(
    State(node): State<Arc<Node>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    who.check_context(&id)?;
    // The summary only: no peer ids for client tokens.
    Ok(axum::Json(sync_answer(node, id, false).await?))
}

pub(crate) async fn get_members(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let members = blocking(move || node.members(&id)).await?;
    Ok(axum::Json(
        members.iter().map(wire::member).collect::<Vec<_>>(),
    ))
}

pub(crate) async fn create_invitation(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let req: api::CreateInvitationRequest = optional_json(&body_or_error(body)?)?;
    let valid = std::time::Duration::from_secs(req.valid_for_secs.unwrap_or(86_400));
    let role: Role = match &req.role {
        Some(r) => r.parse().map_err(bad_request)?,
        None => Role::Writer,
    };
    let uses = req.uses.unwrap_or(1);
    let inv = blocking(move || node.invite(&id, valid, role, uses)).await?;
    let t = &inv.token;
    Ok((
        StatusCode::CREATED,
        axum::Json(api::Invitation {
            invitation: t.to_string(),
            id: wire::id(&inv.id),
            context: wire::id(&t.context),
            role: wire::role(role),
            uses,
            expires_at_ms: t.expires_at_ms,
            addrs: t.addrs.clone(),
        }),
    ))
}

pub(crate) async fn revoke_invitation(
    State(node): State<Arc<Node>>,
    Path((id, invite)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let invite: DeltaId = parse_id(&invite)?;
    let info = blocking(move || node.revoke(&id, invite)).await?;
    Ok(axum::Json(wire::context(&info)))
}

pub(crate) async fn remove_member(
    State(node): State<Arc<Node>>,
    Path((id, member)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let member: MemberKey = parse_id(&member)?;
    let info = blocking(move || node.remove_member(&id, &member)).await?;
    Ok(axum::Json(wire::context(&info)))
}

pub(crate) async fn set_role(
    State(node): State<Arc<Node>>,
    Path((id, member)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let member: MemberKey = parse_id(&member)?;
    let req: api::SetRoleRequest = parse_json(&body_or_error(body)?)?;
    let role: Role = req.role.parse().map_err(bad_request)?;
    let info = blocking(move || node.set_role(&id, &member, role)).await?;
    Ok(axum::Json(wire::context(&info)))
}

pub(crate) async fn join_context(
    State(node): State<Arc<Node>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let req: api::JoinRequest = parse_json(&body_or_error(body)?)?;
    let info = blocking(move || node.join(&req.invitation)).await?;
    Ok((StatusCode::CREATED, axum::Json(wire::context(&info))))
}

pub(crate) async fn leave_context(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    blocking(move || node.leave(&id)).await?;
    Ok(axum::Json(api::Left {
        left: wire::id(&id),
    }))
}

pub(crate) async fn upgrade_context(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let req: api::UpgradeRequest = parse_json(&body_or_error(body)?)?;
    let app: AppHash = parse_id(req.app.as_str())?;
    let info = blocking(move || node.upgrade(&id, &app)).await?;
    Ok(axum::Json(wire::context(&info)))
}

/// Feeds signed deltas (a JSON array of hex-encoded wire deltas) through
/// the same checks as deltas from peers. For operators moving deltas by
/// hand, and for tests.
pub(crate) async fn import_deltas(
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
    let report = blocking(move || node.receive(&id, deltas, None)).await?;
    Ok(axum::Json(wire::receive_report(&report)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    #[serde(default)]
    from: u64,
    #[serde(default)]
    limit: Option<usize>,
}

/// Exports a page of a context's log as hex-encoded wire deltas.
pub(crate) async fn export_deltas(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let limit = q.limit.unwrap_or(1000).min(10_000);
    let from = q.from;
    let (deltas, next) = blocking(move || node.export_deltas(&id, from, limit)).await?;
    let hexes: Vec<String> = deltas.iter().map(|d| hex::encode(d.to_bytes())).collect();
    Ok(axum::Json(api::DeltaPage {
        deltas: hexes,
        next,
    }))
}

#[derive(serde::Deserialize)]
pub(crate) struct DagQuery {
    #[serde(default)]
    from: u64,
    #[serde(default)]
    last: Option<usize>,
    #[serde(default)]
    limit: Option<usize>,
}

/// Most DAG entries in one page.
const DAG_PAGE_LIMIT: usize = 500;

/// A page of a context's DAG: headers only, no payloads.
pub(crate) async fn get_dag(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
    Query(q): Query<DagQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    let limit = q.limit.unwrap_or(100).clamp(1, DAG_PAGE_LIMIT);
    let (from, last) = (q.from, q.last);
    let (entries, len) = blocking(move || node.dag_page(&id, from, last, limit)).await?;
    let next = entries.last().map_or(from.min(len), |(pos, ..)| pos + 1);
    Ok(axum::Json(api::DagPage {
        entries: entries
            .iter()
            .map(|(pos, id, h)| wire::dag_entry(*pos, id, h))
            .collect(),
        next,
        len,
    }))
}

pub(crate) fn network(node: &Node) -> Result<&crate::net::NetHandle, ApiError> {
    node.net()
        .ok_or_else(|| bad_request("networking is not running on this node"))
}

pub(crate) async fn network_status(
    State(node): State<Arc<Node>>,
) -> Result<impl IntoResponse, ApiError> {
    // `null` once the network task has stopped.
    let status = network(&node)?.status().await;
    Ok(axum::Json(status.as_ref().map(wire::net_status)))
}

pub(crate) async fn remove_app(
    State(node): State<Arc<Node>>,
    Path(hash): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let hash: AppHash = parse_id(&hash)?;
    blocking(move || node.remove_app(&hash)).await?;
    Ok(axum::Json(api::Removed {
        removed: wire::id(&hash),
    }))
}

pub(crate) async fn delete_context(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id: ContextId = parse_id(&id)?;
    blocking(move || node.delete_context(&id)).await?;
    Ok(axum::Json(api::Deleted {
        deleted: wire::id(&id),
    }))
}

pub(crate) async fn node_peers(
    State(node): State<Arc<Node>>,
) -> Result<impl IntoResponse, ApiError> {
    let status = network(&node)?
        .status()
        .await
        .ok_or_else(|| bad_request("the network task has stopped"))?;
    Ok(axum::Json(wire::peers(&status.peers)))
}

/// The effective configuration with secrets replaced by `"<redacted>"`.
pub(crate) async fn node_config(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let mut cfg = serde_json::to_value(node.config()).expect("configs serialize");
    cfg["auth"]["admin_token"] = json!("<redacted>");
    axum::Json(cfg)
}
