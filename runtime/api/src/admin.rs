//! The REST admin API (`/admin/...`), `/health`, blobs and the client's
//! sync status: request bodies and answers.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{Id, Role};
use crate::sync::{PeerSync, SyncSummary};

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The node's version.
    pub version: String,
}

/// An installed app (`GET /admin/apps`, `POST /admin/apps`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    /// Content hash of the WASM module.
    pub hash: Id,
    /// WASM size in bytes.
    pub size: u64,
    /// The state struct's name.
    pub name: String,
    /// The methods a client may name (not `init`).
    pub methods: Vec<String>,
}

/// `POST /admin/contexts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContextRequest {
    /// The installed app's hash.
    pub app: Id,
    /// Arguments of the app's `init`, keyed by parameter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub args: Option<Value>,
}

/// A context on this node (`/admin/contexts`, and what joins, upgrades
/// and membership changes answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextInfo {
    /// The context id.
    pub id: Id,
    /// The app it runs here.
    pub app: Id,
    /// This node's member key in it.
    pub member: Id,
    /// This member's delta count.
    pub seq: u64,
    /// Deltas applied in the context, from every member.
    pub deltas: u64,
    /// Current DAG heads.
    pub heads: Vec<Id>,
    /// Number of active members.
    pub members: u64,
    /// Whether this node is still catching up before its join.
    pub joining: bool,
    /// The app the context upgraded to, while this node lacks it and keeps
    /// serving `app`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_app: Option<Id>,
    /// Why the context is quarantined, if it is: its replica failed; its
    /// calls and deltas are refused until the node restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<String>,
}

/// A context's replication state (`GET /admin/contexts/{id}/sync`, and
/// `GET /contexts/{id}/sync` for its client tokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// The context.
    pub context: Id,
    /// Deltas applied.
    pub deltas: u64,
    /// Current DAG heads.
    pub heads: Vec<Id>,
    /// Digest of the heads (hex): equal digests, equal state.
    pub digest: String,
    /// Applied deltas per author (member key).
    pub vector: BTreeMap<String, u64>,
    /// Deltas waiting for missing parents.
    pub pending: u64,
    /// Refused deltas by reason since the node started.
    pub rejected: BTreeMap<String, u64>,
    /// Whether this node is still catching up before its join.
    pub joining: bool,
    /// Equivocations applied (see the members list for who).
    pub forks: u64,
    /// When the heads last changed here (ms since the epoch; 0: not since
    /// the node started).
    pub heads_changed_at_ms: u64,
    /// How this node stands against the context's peers.
    pub summary: SyncSummary,
    /// Per peer: on the admin route only (a client token never sees peer
    /// ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<Vec<PeerSync>>,
}

/// One member (`GET /admin/contexts/{id}/members`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Member key.
    pub key: Id,
    /// Its role.
    pub role: Role,
    /// Who invited it (`null`: the creator).
    pub invited_by: Option<Id>,
    /// Whether it left.
    pub left: bool,
    /// Whether an admin removed it.
    pub removed: bool,
    /// If it signed two deltas with one seq: those two delta ids.
    pub flagged: Option<(Id, Id)>,
    /// Deltas it authored that this node applied.
    pub deltas: u64,
    /// Whether it is this node.
    pub me: bool,
}

/// `POST /admin/contexts/{id}/invitations` (the body may be empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateInvitationRequest {
    /// Validity in seconds (default: one day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for_secs: Option<u64>,
    /// The joiner's role (default writer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Role>")]
    pub role: Option<String>,
    /// How many joins it admits (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub uses: Option<u32>,
}

/// An invitation and its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    /// The token to hand the joiner (`mero-inv-…`).
    pub invitation: String,
    /// The invitation's delta; revoke it by this id.
    pub id: Id,
    /// The context.
    pub context: Id,
    /// The role a joiner gets.
    pub role: Role,
    /// How many joins it admits.
    pub uses: u32,
    /// Expiry, ms since the Unix epoch.
    pub expires_at_ms: u64,
    /// Addresses of the inviting node.
    pub addrs: Vec<String>,
}

/// `POST /admin/contexts/join`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The invitation token.
    pub invitation: String,
}

/// `POST /admin/contexts/{id}/upgrade`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequest {
    /// The installed app to switch to.
    pub app: Id,
}

/// `PUT /admin/contexts/{id}/members/{member}/role`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    /// The new role.
    #[schemars(with = "Role")]
    pub role: String,
}

/// What importing deltas did (`POST /admin/contexts/{id}/deltas`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiveReport {
    /// Deltas applied.
    pub applied: u64,
    /// Deltas refused.
    pub rejected: u64,
    /// Deltas buffered for missing parents.
    pub buffered: u64,
}

/// A page of a context's log (`GET /admin/contexts/{id}/deltas`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeltaPage {
    /// Hex-encoded signed deltas.
    pub deltas: Vec<String>,
    /// The position to ask for next (`?from=`).
    pub next: u64,
}

/// One delta of a context's log without its payload
/// (`GET /admin/contexts/{id}/dag`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DagEntry {
    /// Its position in this node's log (apply order, parents first).
    pub pos: u64,
    /// The delta id.
    pub id: Id,
    /// The author's member key.
    pub author: Id,
    /// The author's sequence number (1, 2, 3, ...).
    pub seq: u64,
    /// The deltas it builds on.
    pub parents: Vec<Id>,
    /// What it does: `call`, `join`, `invite`, `revoke`, `remove`,
    /// `set_role`, `upgrade`, `rotate`, `leave` or `evidence`.
    pub kind: String,
    /// The app version its author ran.
    pub app: Id,
}

/// A page of a context's DAG (`GET /admin/contexts/{id}/dag`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DagPage {
    /// The entries, by position.
    pub entries: Vec<DagEntry>,
    /// The position to ask for next (`?from=`).
    pub next: u64,
    /// The log's length on this node.
    pub len: u64,
}

/// `DELETE /admin/apps/{hash}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Removed {
    /// The app removed.
    pub removed: Id,
}

/// `DELETE /admin/contexts/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    /// The context whose replica was deleted.
    pub deleted: Id,
}

/// `POST /admin/contexts/{id}/leave`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Left {
    /// The context left.
    pub left: Id,
}

/// `GET /admin/node`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// The node's identity key.
    pub identity: Id,
    /// Its libp2p peer id (`null` without networking).
    pub peer_id: Option<String>,
    /// Where it listens for peers.
    pub p2p_addrs: Vec<String>,
    /// The node's version.
    pub version: String,
    /// The HTTP address.
    pub listen: String,
    /// Installed apps.
    pub apps: u64,
    /// Contexts held.
    pub contexts: u64,
    /// Whether the node runs in dev mode (`merod run --dev`: fault
    /// injection at `/admin/dev/faults`).
    pub dev_mode: bool,
    /// When the node started (ms since the epoch).
    pub started_at_ms: u64,
    /// The node process's resident memory in bytes (`null` where the
    /// platform does not tell).
    pub rss_bytes: Option<u64>,
}

/// `POST /contexts/{id}/blobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlobUploaded {
    /// `blob:` and 64 hex digits: the hash of the blob's manifest.
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// 1 MiB chunks.
    pub chunks: u64,
}
