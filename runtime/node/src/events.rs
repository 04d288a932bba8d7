//! A context's event stream: what local subscribers (WebSocket, SSE) see.
//!
//! Every commit of a context appends to its stream: one `event` item per app
//! event the committed deltas carried (emitted here or on a peer), then one
//! `state` item with the new heads. Items get consecutive ids per context
//! and are written to the event log in the same RocksDB batch as the deltas,
//! so the log never disagrees with the state. The log keeps the last
//! `[events] retention` items of each context; SSE clients replay from it.
//!
//! This module numbers the items; their wire form is `mero-api`'s
//! [`EventItem`](mero_api::EventItem) and [`StateItem`](mero_api::StateItem),
//! and transports live in `api`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use mero_api::{EventItem, EventTag, StateItem, StateTag};

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

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
    /// Its payload, as the app encoded it (JSON).
    pub data: Box<RawValue>,
}

impl PendingEvent {
    /// The payload for an app's encoded event data: `null` if it is not JSON.
    pub fn data(json: String) -> Box<RawValue> {
        RawValue::from_string(json)
            .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
    }
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
    /// Numbers an app event. `names` gives the text of the context id and
    /// of the author (see [`Names`]).
    pub fn event(id: u64, context: ContextId, names: &mut Names, e: PendingEvent) -> Self {
        let Names {
            context: text,
            members,
        } = names;
        let author = members
            .entry(e.author)
            .or_insert_with(|| e.author.to_string());
        // Serialized straight from borrowed fields: items are built on
        // every commit, inside the context lock.
        let json = serde_json::to_string(&EventItem {
            id,
            context: Cow::Borrowed(text),
            r#type: EventTag::Event,
            delta: Cow::Owned(e.delta.to_string()),
            author: Cow::Borrowed(author),
            local: e.local,
            kind: Cow::Borrowed(&e.kind),
            data: Cow::Borrowed(&e.data),
        });
        Self::encoded(id, context, ItemType::Event, json)
    }

    /// Numbers a heads change.
    pub fn state(
        id: u64,
        context: ContextId,
        names: &Names,
        heads: &[DeltaId],
        deltas: u64,
    ) -> Self {
        let json = serde_json::to_string(&StateItem {
            id,
            context: Cow::Borrowed(&names.context),
            r#type: StateTag::State,
            heads: heads.iter().map(|h| mero_api::Id(h.to_string())).collect(),
            deltas,
            at_ms: Some(crate::node::now_ms()),
        });
        Self::encoded(id, context, ItemType::State, json)
    }

    fn encoded(
        id: u64,
        context: ContextId,
        kind: ItemType,
        json: serde_json::Result<String>,
    ) -> Self {
        Self {
            id,
            context,
            kind,
            json: json.expect("stream items serialize").into(),
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

/// The base58 text of a context's id and of its members' keys, kept so
/// that each stream item does not encode them again (base58 is quadratic in
/// the key length).
#[derive(Debug)]
pub struct Names {
    context: String,
    /// Only members' keys get here (deltas from anyone else are refused
    /// before they produce events), so this stays as small as the member list.
    members: HashMap<MemberKey, String>,
}

impl Names {
    /// Names for `context`.
    pub fn new(context: &ContextId) -> Self {
        Self {
            context: context.to_string(),
            members: HashMap::new(),
        }
    }
}
