//! Cross-context calls: a method calls a method of another context its
//! node is a member of, and gets the callee's typed result.
//!
//! - [`view`] runs a callee view at once and changes nothing.
//! - [`call`] runs a callee method that may change state. The callee's
//!   change becomes a delta of the callee's context, and it commits with
//!   the caller's: if the caller fails after the call (or the caller's
//!   write fails), the callee's change is undone too. Both or neither.
//! - The callee must offer the method: `#[app::xcall]` on it. Its node
//!   calls it as the node's own member in the callee context, with that
//!   member's role (a reader cannot change state there).
//! - A callee that fails returns [`XCallError::Failed`] and keeps nothing
//!   of what it did; the caller decides (propagating it with `?` fails the
//!   caller too). A call the node refuses (an unknown context, a cycle,
//!   too deep, too many, busy) fails the caller at once.
//! - Limits: a chain of calls is at most 4 contexts deep, a call makes at
//!   most 64 cross-context calls, a context never calls itself or one of
//!   its callers, and a callee busy for longer than the node's
//!   `xcall_busy_ms` is refused. Only a client's call on this node (and
//!   its callees) may make cross-context calls: handlers, which peers'
//!   deltas start, and migrations cannot.
//!
//! ```
//! use mero_sdk::app;
//! use mero_sdk::collections::Counter;
//! use mero_sdk::xcall::{self, ContextId};
//!
//! #[app::state]
//! pub struct Ledger { total: Counter }
//!
//! #[app::logic]
//! impl Ledger {
//!     #[app::init]
//!     pub fn init() -> Self { Self { total: Counter::new() } }
//!
//!     /// Offered to other contexts.
//!     #[app::xcall]
//!     pub fn add(&mut self, by: i64) -> i64 {
//!         self.total.add(by);
//!         self.total.value()
//!     }
//!
//!     /// Adds to this ledger and to another one: both or neither.
//!     pub fn add_both(&mut self, other: ContextId, by: i64) -> app::Result<i64> {
//!         self.total.add(by);
//!         let theirs: i64 = xcall::call(&other, "add", &serde_json::json!({ "by": by }))?;
//!         if theirs < 0 {
//!             // Failing here undoes the callee's change as well.
//!             app::bail!("the other ledger went negative");
//!         }
//!         Ok(theirs)
//!     }
//! }
//! # fn main() {}
//! ```

use mero_abi::host::{HostRequest, HostResponse};
use mero_abi::{CallError, CallErrorKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::host::{self, expect_response};

/// A context's id, written in base58 as the node shows it (`cargo mero`,
/// the admin API). Store it in state or take it as a method argument.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContextId(pub [u8; 32]);

impl ContextId {
    /// The context this call runs in.
    pub fn current() -> Self {
        Self(crate::env::context_id())
    }
}

impl std::fmt::Display for ContextId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl std::fmt::Debug for ContextId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContextId({self})")
    }
}

impl std::str::FromStr for ContextId {
    type Err = String;

    /// Parses a base58 context id.
    ///
    /// ```
    /// use mero_sdk::xcall::ContextId;
    /// let id: ContextId = "11111111111111111111111111111112".parse().unwrap();
    /// assert_eq!(id.0[31], 1);
    /// assert!("not an id".parse::<ContextId>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, String> {
        let bytes = bs58::decode(s)
            .into_vec()
            .map_err(|_| format!("`{s}` is not a context id (expected base58)"))?;
        let id: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("`{s}` is not a context id (expected 32 bytes)"))?;
        Ok(Self(id))
    }
}

crate::error::serde_as_string!(ContextId);

/// Why a cross-context call returned no result.
#[derive(Debug, Clone, PartialEq)]
pub enum XCallError {
    /// The callee failed; nothing it did is kept.
    Failed(CallError),
    /// The callee's result is not a `R` (the caller and the callee's app
    /// disagree on the method's return type).
    BadResult(String),
}

impl XCallError {
    /// The callee's `#[app::error]` variant, if it failed with one of `E`.
    pub fn app_error<E: DeserializeOwned>(&self) -> Option<E> {
        let XCallError::Failed(err) = self else {
            return None;
        };
        let data = err.app_error()?;
        crate::error::decode_tagged(&data.kind, Some(data.data)).ok()
    }
}

impl std::fmt::Display for XCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XCallError::Failed(e) => write!(f, "the called context failed: {}", e.message),
            XCallError::BadResult(why) => write!(f, "the called context's result: {why}"),
        }
    }
}

impl std::error::Error for XCallError {}

/// Runs view `method` of context `context` with `args` (a struct or a
/// `serde_json::json!` object, keyed by parameter name).
pub fn view<R: DeserializeOwned>(
    context: &ContextId,
    method: &str,
    args: &impl Serialize,
) -> Result<R, XCallError> {
    run(context, method, args, false)
}

/// Runs `method` of context `context` with `args`; its change commits with
/// this call's, or not at all. Only from a method that may change state.
pub fn call<R: DeserializeOwned>(
    context: &ContextId,
    method: &str,
    args: &impl Serialize,
) -> Result<R, XCallError> {
    run(context, method, args, true)
}

fn run<R: DeserializeOwned>(
    context: &ContextId,
    method: &str,
    args: &impl Serialize,
    mutate: bool,
) -> Result<R, XCallError> {
    let args = serde_json::to_vec(args).map_err(|e| {
        XCallError::Failed(CallError::new(
            CallErrorKind::InvalidArgs,
            format!("the arguments do not serialize: {e}"),
        ))
    })?;
    let req = HostRequest::XCall {
        context: context.0,
        method,
        args: &args,
        mutate,
    };
    match expect_response!(host::call(req), HostResponse::Reply(r) => r) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| XCallError::BadResult(e.to_string()))
        }
        Err(bytes) => Err(XCallError::Failed(
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                CallError::new(CallErrorKind::Host, String::from_utf8_lossy(&bytes))
            }),
        )),
    }
}
