//! The mero SDK: write a local-first, replicated app as a Rust crate.
//!
//! ```
//! use mero_sdk::app;
//! use mero_sdk::collections::{LwwRegister, UnorderedMap};
//!
//! #[app::state(emits = Event)]
//! pub struct KvStore {
//!     items: UnorderedMap<String, LwwRegister<String>>,
//! }
//!
//! #[app::event]
//! pub enum Event {
//!     Inserted { key: String },
//! }
//!
//! #[app::logic]
//! impl KvStore {
//!     #[app::init]
//!     pub fn init() -> Self {
//!         Self { items: UnorderedMap::new() }
//!     }
//!
//!     pub fn set(&mut self, key: String, value: String) -> app::Result<()> {
//!         self.items.insert(key.clone(), LwwRegister::new(value));
//!         app::emit!(Event::Inserted { key });
//!         Ok(())
//!     }
//!
//!     pub fn get(&self, key: &str) -> Option<String> {
//!         self.items.get(key).map(|v| v.get().clone())
//!     }
//! }
//!
//! # fn main() {
//! // Run it natively, as the app's own tests would:
//! let mut node = mero_sdk::testing::Replica::<KvStore>::new(0);
//! node.init(serde_json::json!({})).unwrap();
//! node.execute("set", serde_json::json!({"key": "a", "value": "1"})).unwrap();
//! assert_eq!(node.execute("get", serde_json::json!({"key": "a"})).unwrap(), "1");
//! # }
//! ```
//!
//! - Public methods of the `#[app::logic]` impl become WASM exports. Arguments
//!   arrive as one JSON object keyed by parameter name; return values go back
//!   as JSON; `app::Result` errors reach the caller as structured errors.
//! - `&self` methods are views: any attempt to change state fails the call.
//! - State lives in the host, in [`collections`]. A call that fails (error,
//!   panic, trap, timeout) leaves no trace.
//! - [`testing`] runs the same logic natively, against the same state engine
//!   the node uses, on one replica or several.
//!
//! This crate must stay small and free of IO: it is compiled into every app.

#![warn(missing_docs)]

#[doc(hidden)]
#[path = "export.rs"]
pub mod __private;
pub mod collections;
pub mod env;
mod error;
mod event;
mod host;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use event::{AppEvent, emit};

/// The app-authoring vocabulary: attribute macros, `Result`, `Error` and the
/// `emit!`, `log!`, `bail!` macros.
pub mod app {
    pub use crate::error::Error;
    pub use crate::{bail, emit, log};
    pub use mero_sdk_macros::{event, init, logic, state};

    /// The result type of fallible app methods.
    pub type Result<T, E = Error> = core::result::Result<T, E>;
}

/// Emits an event from a mutating method: `app::emit!(Event::Inserted { key })`.
#[macro_export]
macro_rules! emit {
    ($event:expr) => {
        $crate::emit(&$event)
    };
}

/// Logs a formatted line to the executing node's log: `app::log!("x = {}", x)`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::env::log(&::std::format!($($arg)*))
    };
}

/// Returns early with an `app::Error`: `app::bail!("no such key: {key}")`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::app::Error::msg(::std::format!($($arg)*)).into())
    };
}
