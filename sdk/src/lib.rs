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
//!   `#[app::private]` methods are for the node and event handlers only;
//!   `#[app::error]` enums give clients errors they can tell apart (see
//!   [`app`]).
//! - State lives in the host, in [`collections`]. A call that fails (error,
//!   panic, trap, timeout) leaves no trace.
//! - [`blob`]: large files of the context, stored in state by [`blob::BlobId`].
//! - [`xcall`]: call a method of another context on the same node and get
//!   its typed result; a mutating call commits with the caller or not at
//!   all. The callee offers the method with `#[app::xcall]`.
//! - [`migration`]: `#[app::migrate]` transforms the state once when an
//!   upgrade changes its schema.
//! - [`testing`] runs the same logic natively, against the same state engine
//!   the node uses, on one replica or several.
//!
//! This crate must stay small and free of IO: it is compiled into every app.

#![warn(missing_docs)]

#[doc(hidden)]
#[path = "export.rs"]
pub mod __private;
pub mod blob;
pub mod collections;
pub mod env;
mod error;
mod event;
mod host;
pub mod migration;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod xcall;

pub use error::AppError;
pub use event::{AppEvent, emit};

/// The app-authoring vocabulary: attribute macros, `Result`, `Error` and the
/// `emit!`, `log!`, `bail!` macros.
///
/// # Typed errors, private methods and views
///
/// `#[app::error]` makes an enum (unit, tuple and struct variants) the
/// errors of the methods returning `Result<T, E>` / `app::Result<T, E>` with
/// it. A client gets a JSON-RPC error (`-32003`) whose message is the enum's
/// `Display` (else the variant's name) and whose `data` is `{"kind":
/// variant, "code": n, "data": fields}`. A code is `#[code(n)]` or derived
/// from the variant's name ([`mero_abi::error::derived_code`]: stable under
/// reordering and additions); the ABI lists every variant with its code and
/// field types. `app::Error` (`app::bail!`) stays: kind `app`, code 0.
///
/// `#[app::private]` marks a method only the node and event handlers call:
/// exported and listed in the ABI, refused to every client (`-32002`). An
/// event's handler may be private. `#[app::view]` marks a view explicitly;
/// every `&self` method is one (writes fail the call). `#[app::xcall]`
/// offers a method to other contexts on a member's node ([`crate::xcall`]);
/// without it they are refused.
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::collections::{Counter, UnorderedMap};
///
/// #[app::state(emits = Event)]
/// pub struct Stock {
///     items: UnorderedMap<String, Counter>,
///     audits: Counter,
/// }
///
/// #[app::event]
/// pub enum Event {
///     #[handler(on_sold)]
///     Sold { item: String },
/// }
///
/// #[app::error]
/// #[derive(Debug)]
/// pub enum StockError {
///     #[code(404)]
///     Unknown { item: String },
///     OutOfStock(String),
/// }
///
/// #[app::logic]
/// impl Stock {
///     #[app::init]
///     pub fn init() -> Self {
///         Self { items: UnorderedMap::new(), audits: Counter::new() }
///     }
///
///     pub fn restock(&mut self, item: String, n: i64) {
///         self.items.ensure(item).add(n);
///     }
///
///     pub fn sell(&mut self, item: String) -> app::Result<i64, StockError> {
///         let Some(mut n) = self.items.get(&item) else {
///             return Err(StockError::Unknown { item });
///         };
///         if n.value() == 0 {
///             return Err(StockError::OutOfStock(item));
///         }
///         n.decrement();
///         app::emit!(Event::Sold { item });
///         Ok(n.value())
///     }
///
///     #[app::view]
///     pub fn left(&self, item: String) -> i64 {
///         self.items.get(&item).map_or(0, |n| n.value())
///     }
///
///     pub fn audits(&self) -> i64 {
///         self.audits.value()
///     }
///
///     /// Runs on the nodes that receive a sale; no client can call it.
///     #[app::private]
///     pub fn on_sold(&mut self, item: String) {
///         let _ = item;
///         self.audits.increment();
///     }
/// }
///
/// # fn main() {
/// use mero_sdk::testing::Network;
/// use serde_json::json;
/// let mut net = Network::<Stock>::new(2);
/// let shop = net.replica(0);
/// shop.execute("restock", json!({"item": "pen", "n": 1})).unwrap();
/// assert_eq!(shop.execute("sell", json!({"item": "pen"})).unwrap(), 0);
/// let err = shop.execute("sell", json!({"item": "ink"})).unwrap_err();
/// let data = err.app_error().unwrap();
/// assert_eq!((data.kind.as_str(), data.code), ("Unknown", 404));
/// assert_eq!(data.data, json!({"item": "ink"}));
/// // Clients cannot call the private handler; the receiving replica runs it.
/// assert!(shop.execute("on_sold", json!({"item": "pen"})).is_err());
/// // The author did not run it; the receiver did, once, and its write
/// // came back to the author.
/// assert_eq!(shop.query("audits", json!({})).unwrap(), 0);
/// net.deliver_shuffled(1);
/// assert_eq!(net.replica(1).query("audits", json!({})).unwrap(), 1);
/// assert_eq!(net.replica(0).query("audits", json!({})).unwrap(), 1);
/// # }
/// ```
///
/// A `&mut self` method cannot be a view:
///
/// ```compile_fail
/// use mero_sdk::app;
/// use mero_sdk::collections::Counter;
///
/// #[app::state]
/// pub struct Votes { yes: Counter }
///
/// #[app::logic]
/// impl Votes {
///     #[app::init]
///     pub fn init() -> Self { Self { yes: Counter::new() } }
///
///     #[app::view] // error: #[app::view] marks a read-only method, which takes &self
///     pub fn vote(&mut self) { self.yes.increment() }
/// }
/// # fn main() {}
/// ```
pub mod app {
    pub use crate::error::Error;
    pub use crate::{bail, emit, log};
    pub use mero_sdk_macros::{error, migrate, private, view, xcall};
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
