//! Reading the old state inside an `#[app::migrate]` function.
//!
//! An upgrade to an app whose state schema (the fields of its
//! `#[app::state]` struct, and its `version`) differs from the running
//! app's runs the new app's migration once, on the upgrading admin's node,
//! and ships the ops it makes inside the upgrade delta: every node applies
//! the same ops at the same point of history, so every replica ends in the
//! same state. The migration is a constructor of the new state, like
//! `#[app::init]`, which reads what the old app stored:
//!
//! - a collection field keeps its data when the new struct keeps the field
//!   with the same collection: `items: migration::field("items")`;
//! - [`field`] also reads an old collection under the *old* value type, to
//!   transform it (a map or list field rewritten under the same name
//!   replaces the entries the migration writes);
//! - [`value`] reads an old register field (`LwwRegister<T>` or a removed
//!   one).
//!
//! ```
//! use mero_sdk::app;
//! use mero_sdk::collections::{LwwRegister, UnorderedMap};
//! use mero_sdk::migration;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! pub struct Item { value: String, done: bool }
//!
//! // Version 2: items carry a flag, and the board has a title.
//! #[app::state(version = 2)]
//! pub struct Board {
//!     items: UnorderedMap<String, Item>,
//!     title: LwwRegister<String>,
//! }
//!
//! #[app::logic]
//! impl Board {
//!     #[app::init]
//!     pub fn init() -> Self {
//!         Self { items: UnorderedMap::new(), title: LwwRegister::new("untitled".into()) }
//!     }
//!
//!     #[app::migrate]
//!     pub fn migrate() -> Self {
//!         // Version 1 stored plain strings under the same field.
//!         let old: UnorderedMap<String, String> = migration::field("items");
//!         let mut items = migration::field::<UnorderedMap<String, Item>>("items");
//!         for (k, value) in old.entries() {
//!             items.insert(k, Item { value, done: false });
//!         }
//!         let title = migration::value::<String>("name").unwrap_or_else(|| "untitled".into());
//!         Self { items, title: LwwRegister::new(title) }
//!     }
//!
//!     pub fn title(&self) -> String {
//!         self.title.get().clone()
//!     }
//! }
//! # fn main() {}
//! ```

use mero_abi::host::{HostRequest, HostResponse};
use serde::de::DeserializeOwned;

use crate::collections::StateField;
use crate::host::{self, expect_response};

/// The root field `name` as it is stored, read as `T` (a collection type or
/// `LwwRegister`). Writing to it writes the field.
pub fn field<T: StateField>(name: &'static str) -> T {
    T::__load(name)
}

/// The stored value of the register field `name`, if it has one.
pub fn value<T: DeserializeOwned>(name: &str) -> Option<T> {
    let stored = expect_response!(
        host::call(HostRequest::RootValueGet { name }),
        HostResponse::OptBytes(b) => b
    )?;
    Some(crate::collections::from_json(&stored))
}
