//! A context's event stream as the WebSocket (`/ws`) and SSE (`/events`)
//! deliver it, and the WebSocket's subscription requests.
//!
//! Items borrow their text where they can: the node builds one on every
//! commit, inside the context's lock. Deserialized items own their text.
//!
//! ```
//! use std::borrow::Cow;
//! use mero_api::{EventItem, EventTag, StreamItem};
//! let data = serde_json::value::RawValue::from_string(r#"{"key":"a"}"#.into()).unwrap();
//! let item = EventItem {
//!     id: 12, context: Cow::Borrowed("ctx"), r#type: EventTag::Event, delta: Cow::Borrowed("d"),
//!     author: Cow::Borrowed("m"), local: true, kind: Cow::Borrowed("Inserted"), data: Cow::Borrowed(&data),
//! };
//! let json = serde_json::to_string(&item).unwrap();
//! assert_eq!(json, r#"{"id":12,"context":"ctx","type":"event","delta":"d","author":"m","local":true,"kind":"Inserted","data":{"key":"a"}}"#);
//! let back: StreamItem = serde_json::from_str(&json).unwrap();
//! assert!(matches!(back, StreamItem::Event(e) if e.id == 12 && e.kind == "Inserted"));
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ids::Id;

/// The `type` of an event item: always `"event"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum EventTag {
    /// An app event.
    #[default]
    #[serde(rename = "event")]
    Event,
}

/// The `type` of a state item: always `"state"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StateTag {
    /// The context's heads changed.
    #[default]
    #[serde(rename = "state")]
    State,
}

/// An app event from a delta applied on this node (`method: "event"` on the
/// WebSocket, `event: event` over SSE).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EventItem<'a> {
    /// Position in the context's stream (1, 2, ...; shared with state items).
    pub id: u64,
    /// The context.
    #[schemars(with = "Id")]
    pub context: Cow<'a, str>,
    /// `"event"`.
    pub r#type: EventTag,
    /// The delta that carried it.
    #[schemars(with = "Id")]
    pub delta: Cow<'a, str>,
    /// The member whose call emitted it.
    #[schemars(with = "Id")]
    pub author: Cow<'a, str>,
    /// Whether the call ran on this node.
    pub local: bool,
    /// The event variant's name.
    pub kind: Cow<'a, str>,
    /// The variant's fields, as the app encoded them.
    #[schemars(with = "serde_json::Value")]
    pub data: Cow<'a, RawValue>,
}

/// A commit changed the context's heads (`method: "state"` on the
/// WebSocket, `event: state` over SSE). It follows the events of the
/// commit, which may hold several calls' deltas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StateItem<'a> {
    /// Position in the context's stream.
    pub id: u64,
    /// The context.
    #[schemars(with = "Id")]
    pub context: Cow<'a, str>,
    /// `"state"`.
    pub r#type: StateTag,
    /// The DAG heads after the commit.
    pub heads: Vec<Id>,
    /// Deltas applied in the context.
    pub deltas: u64,
    /// When this node committed the change (ms since the epoch): log
    /// positions below `deltas` and not below the previous state item's
    /// arrived by then. Absent in items stored by older nodes.
    #[serde(default, rename = "atMs", skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

/// One item of a context's stream.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum StreamItem<'a> {
    /// An app event.
    Event(EventItem<'a>),
    /// A heads change.
    State(StateItem<'a>),
}

/// From JSON text only (`serde_json::from_str`/`from_slice`): an event's
/// data stays raw.
impl<'de> Deserialize<'de> for StreamItem<'static> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(rename = "type", borrow)]
            tag: Cow<'a, str>,
        }
        // Untagged enums buffer their input, which a raw value cannot come
        // from: read the item as text, then as the type its `type` names.
        let raw = Box::<RawValue>::deserialize(d)?;
        let Tag { tag } = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
        match &*tag {
            "event" => serde_json::from_str(raw.get()).map(StreamItem::Event),
            "state" => serde_json::from_str(raw.get()).map(StreamItem::State),
            other => {
                return Err(D::Error::custom(format!(
                    "unknown stream item type `{other}` (expected event or state)"
                )));
            }
        }
        .map_err(D::Error::custom)
    }
}

impl StreamItem<'_> {
    /// The item's position in its context's stream.
    pub fn id(&self) -> u64 {
        match self {
            StreamItem::Event(e) => e.id,
            StreamItem::State(s) => s.id,
        }
    }
}

/// Items asked for were pruned by retention: the replay starts later
/// (`method: "gap"` on the WebSocket, `event: gap` over SSE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gap {
    /// The context (absent over SSE, which streams one context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Id>,
    /// The first id asked for.
    pub requested: u64,
    /// The first id that follows.
    pub replay_from: u64,
}

/// WebSocket `subscribe` and `unsubscribe` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeParams {
    /// The contexts.
    pub contexts: Vec<Id>,
    /// `subscribe` only: per context, the last item id the client has;
    /// every persisted item after it is sent first, in order, then live
    /// items, none twice. Without it, only items after the subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<BTreeMap<String, u64>>,
}

/// The answer to `subscribe` and `unsubscribe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubscribeResult {
    /// Every context the socket is subscribed to now.
    pub subscribed: Vec<Id>,
    /// `subscribe` only: per context subscribed by this request, the id of
    /// its newest persisted item when the subscription started; items after
    /// it follow (for a context given in `after`, the replay comes first).
    /// Resume from it if the socket drops before any item arrives.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last: BTreeMap<String, u64>,
}
