//! The node API's request and response types, defined once.
//!
//! `merod` serializes these types on every HTTP, WebSocket and SSE answer;
//! `cargo mero`'s client deserializes into them, so a renamed field is a
//! compile error on one side and a clear "missing field" error on the
//! other, never a silently empty value. The OpenAPI document's
//! `components.schemas` ([`schema::components`]) and the TypeScript
//! declarations of `@mero/client` (`clients/js/src/api.ts`,
//! [`typescript::declarations`]) are generated from the same types; a test
//! (`tests/generated.rs`) fails when either checked-in file is stale.
//!
//! It must not do IO, talk to a node or decide anything: it holds data
//! shapes only, and depends on serde, serde_json, schemars (whose derive
//! describes the shapes) and `mero-rpc` (for the JSON-RPC error codes).
//! Ids are their text form ([`Id`]): the typed ids live in `mero-sync`,
//! which pulls in the state engine, and every client sees ids as strings
//! anyway.
//!
//! ```
//! use mero_api::{ContextInfo, Id};
//! let json = r#"{"id": "ctx", "app": "app", "member": "me", "seq": 1, "deltas": 2,
//!     "heads": ["h"], "members": 1, "joining": false}"#;
//! let info: ContextInfo = serde_json::from_str(json).unwrap();
//! assert_eq!(info.app, Id::from("app"));
//! assert!(info.pending_app.is_none());
//!
//! // A field the node no longer sends is an error that names it.
//! let err = serde_json::from_str::<ContextInfo>(r#"{"app": "app"}"#).unwrap_err();
//! assert!(err.to_string().contains("missing field `id`"), "{err}");
//! ```

#![warn(missing_docs)]

mod admin;
mod auth;
mod dev;
mod ids;
mod network;
mod rpc;
pub mod schema;
mod stream;
mod sync;
pub mod typescript;

pub use admin::*;
pub use auth::*;
pub use dev::*;
pub use ids::{AbiDocument, Id, Role};
pub use network::*;
pub use rpc::*;
pub use stream::*;
pub use sync::*;
