//! Ids, roles, and the ABI's place in the API.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A 32-byte id in base58: a context id, an app hash, a member key or a
/// delta id. Kept as text: parse it with `mero-sync`'s id types where the
/// bytes matter.
///
/// ```
/// let id = mero_api::Id::from("3fa9");
/// assert_eq!(serde_json::to_string(&id).unwrap(), r#""3fa9""#);
/// assert_eq!(id.as_str(), "3fa9");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(pub String);

impl Id {
    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl PartialEq<str> for Id {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl JsonSchema for Id {
    fn schema_name() -> Cow<'static, str> {
        "Id".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[1-9A-HJ-NP-Za-km-z]{43,44}$",
            "description": "A 32-byte id in base58: context id, app hash, member key or delta id."
        })
    }
}

/// What a member may do in a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Invite, revoke, remove, change roles, upgrade; and write.
    Admin,
    /// Change the state (method calls).
    Writer,
    /// Receive and read; may not write.
    Reader,
}

/// The schema of an app's ABI (`GET /admin/apps/{hash}`), which `mero-abi`
/// defines (`mero_abi::AppAbi`; Rust clients deserialize into that). Only
/// its outline is described here, so this crate does not depend on the
/// ABI's every type.
pub struct AbiDocument;

impl JsonSchema for AbiDocument {
    fn schema_name() -> Cow<'static, str> {
        "AppAbi".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "The app's ABI: state, methods, events, errors (see mero-abi).",
            "required": ["methods"],
            "properties": {
                "methods": {"type": "array", "items": {"type": "object"}}
            }
        })
    }
}
