//! Where a context's replica stands against its peers: the summary every
//! `SyncStatus` carries and the per-peer rows only the admin route shows.
//!
//! Status is as of the last exchange with each peer (every
//! `sync_interval_ms` at most): a node cannot know how far an unreachable
//! peer is behind, so it says `unreachable` and keeps the last numbers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dev::Link;

/// How a replica stands against a peer, or against all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Same applied set.
    InSync,
    /// The peer has deltas this node lacks.
    Behind,
    /// This node has deltas the peer lacks.
    Ahead,
    /// Each side has deltas the other lacks.
    Diverged,
    /// Equal vectors, different heads: an equivocation.
    Forked,
    /// Known but not connected (the numbers are from the last exchange).
    Unreachable,
    /// No peer known for this context.
    Alone,
    /// Connected but no exchange classified yet.
    Unknown,
}

/// A context's replication in one line (every `SyncStatus`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncSummary {
    /// `forked` if any peer is; else `behind` if any peer has more; else
    /// `in_sync` when every reachable peer is; `ahead` if only ahead;
    /// `alone` without peers; `unreachable` when none is reachable.
    pub state: SyncState,
    /// Most deltas any peer has that this node lacks.
    pub behind: u64,
    /// Since when (ms since the epoch) this node has been behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behind_since_ms: Option<u64>,
    /// Most deltas this node has that a peer lacks.
    pub ahead: u64,
    /// Peers recorded for this context.
    pub peers: u32,
    /// Of those, connected now.
    pub reachable: u32,
    /// The latest exchange with any peer (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exchange_ms: Option<u64>,
}

/// Messages, deltas and bytes one way between this node and a peer, for
/// one context, since the connection or the context was first seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    /// Gossip messages and catch-up answers with deltas.
    pub messages: u64,
    /// Deltas in them.
    pub deltas: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Deltas that came by gossip.
    pub gossip_deltas: u64,
    /// Deltas that came by catch-up pages or by id.
    pub catch_up_deltas: u64,
}

/// One peer of a context (`GET /admin/contexts/{id}/sync` only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerSync {
    /// Its peer id.
    pub peer_id: String,
    /// How this node stands against it.
    pub state: SyncState,
    /// Deltas it has that this node lacks (at the last exchange).
    pub behind: u64,
    /// Deltas this node has that it lacks (at the last exchange).
    pub ahead: u64,
    /// Since when (ms since the epoch) the state has been what it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// The last exchange with it (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exchange_ms: Option<u64>,
    /// Whether it is connected now.
    pub connected: bool,
    /// Since when (ms since the epoch) it has not been connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_since_ms: Option<u64>,
    /// The dev-mode fault on the link to it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    /// What this node sent it.
    pub sent: Traffic,
    /// What this node received from it.
    pub received: Traffic,
}
