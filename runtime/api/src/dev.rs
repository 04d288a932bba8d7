//! Dev-mode fault injection (`/admin/dev/faults`), which exists only on a
//! node started with `merod run --dev`. The body is admin JSON; the node
//! bounds it (64 KiB, [`MAX_FAULT_PEERS`] entries, [`MAX_DELAY_MS`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most peer ids in `blocked`, and most `links`.
pub const MAX_FAULT_PEERS: usize = 1024;
/// Longest delay a link may have, in milliseconds.
pub const MAX_DELAY_MS: u32 = 10_000;

/// `PUT /admin/dev/faults`: replaces this node's faults as a whole
/// (idempotent; an empty body heals).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetFaults {
    /// Cut off from every peer (known, connected, and any new one).
    #[serde(default)]
    pub isolated: bool,
    /// Peers refused both ways (at most 1,024).
    #[serde(default)]
    pub blocked: Vec<String>,
    /// Delay and loss on messages from peers (at most 1,024).
    #[serde(default)]
    pub links: Vec<LinkFault>,
    /// Seed of the loss decisions, for reproducible tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// Delay and loss on what one peer (or every peer) sends this node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LinkFault {
    /// The peer; absent: every peer without a link of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Held this long before the node sees it (at most 10,000).
    #[serde(default)]
    pub delay_ms: u32,
    /// Gossip dropped with this probability, in percent (0 to 100);
    /// catch-up frames are delayed a retransmission instead.
    #[serde(default)]
    pub loss_percent: f64,
}

/// A link fault as the node applies it (answers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// The peer; absent: every peer without a link of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Milliseconds its messages are held.
    pub delay_ms: u32,
    /// Percent of its gossip dropped.
    pub loss_percent: f64,
}

/// This node's faults (`GET`, `PUT` and `DELETE /admin/dev/faults`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    /// Cut off from every peer.
    pub isolated: bool,
    /// Peers refused both ways.
    pub blocked: Vec<String>,
    /// Delay and loss per peer.
    pub links: Vec<Link>,
    /// When the faults last changed (ms since the epoch; 0: never).
    pub changed_at_ms: u64,
    /// Messages held for a delay now.
    pub held: u64,
    /// Their bytes.
    pub held_bytes: u64,
    /// Messages dropped since start: lost by a link, or over the held
    /// bounds (10,000 messages, 64 MiB).
    pub dropped: u64,
}
