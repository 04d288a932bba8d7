//! A context's event stream: what local subscribers (WebSocket, SSE) see.
//!
//! Every commit of a context appends to its stream: one `event` item per app
//! event the committed deltas carried (emitted here or on a peer), then one
//! `state` item with the new heads. Items get consecutive ids per context
//! and are written to the event log in the same RocksDB batch as the deltas,
//! so the log never disagrees with the state. The log keeps the last
//! `[events] retention` items of each context; SSE clients replay from it.
//!
//! This module defines the items; transports live in `api`.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::ids::{ContextId, DeltaId, MemberKey};

/// An app event carried by a delta, before the commit numbers it.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// The delta that carried it.
    pub delta: DeltaId,
    /// The member whose call emitted it.
    pub author: MemberKey,
    /// Whether the call ran on this node.
    pub local: bool,
    /// The event variant.
    pub kind: String,
    /// Its payload.
    pub data: Value,
}

/// What an item reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ItemType {
    /// An app event.
    Event,
    /// The context's heads changed.
    State,
}

impl ItemType {
    /// The name used on the wire (SSE `event:` field, WebSocket method).
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Event => "event",
            ItemType::State => "state",
        }
    }
}

/// One numbered item of a context's stream, already encoded as JSON.
#[derive(Debug, Clone)]
pub struct StreamItem {
    /// Position in the context's stream (1, 2, ...).
    pub id: u64,
    /// The context.
    pub context: ContextId,
    /// What it reports.
    pub kind: ItemType,
    /// The JSON object sent to clients (also what the log stores).
    pub json: Arc<str>,
}

impl StreamItem {
    /// Numbers an app event.
    pub fn event(id: u64, context: ContextId, e: PendingEvent) -> Self {
        let v = json!({
            "id": id,
            "context": context,
            "type": "event",
            "delta": e.delta,
            "author": e.author,
            "local": e.local,
            "kind": e.kind,
            "data": e.data,
        });
        Self::encoded(id, context, ItemType::Event, &v)
    }

    /// Numbers a heads change.
    pub fn state(id: u64, context: ContextId, heads: &[DeltaId], deltas: u64) -> Self {
        let v = json!({
            "id": id,
            "context": context,
            "type": "state",
            "heads": heads,
            "deltas": deltas,
        });
        Self::encoded(id, context, ItemType::State, &v)
    }

    fn encoded(id: u64, context: ContextId, kind: ItemType, v: &Value) -> Self {
        Self {
            id,
            context,
            kind,
            json: v.to_string().into(),
        }
    }

    /// Rebuilds an item read back from the log.
    pub fn from_log(context: ContextId, id: u64, json: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(json).ok()?;
        let kind = match v["type"].as_str()? {
            "event" => ItemType::Event,
            "state" => ItemType::State,
            _ => return None,
        };
        Some(Self {
            id,
            context,
            kind,
            json: String::from_utf8(json.to_vec()).ok()?.into(),
        })
    }
}
