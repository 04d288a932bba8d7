//! mero's replication protocol, without IO.
//!
//! Everything a node needs to decide about deltas lives here, as plain data
//! and pure functions, so the same code runs inside `merod` and inside the
//! seeded simulation in `tests/sim.rs`:
//!
//! - [`ids`]: 32-byte identifiers (apps, contexts, members, deltas).
//! - [`crypto`]: the context key (payload encryption) and member keys (signatures).
//! - [`delta`]: signed, encrypted deltas and the operations they carry.
//! - [`dag`]: the causal DAG of applied deltas, heads, seq vectors and the
//!   buffer of deltas waiting for their parents.
//! - [`members`]: invitations and the member set of a context.
//! - [`protocol`]: the request-response messages of catch-up and how a node
//!   answers them.
//!
//! This crate must not do IO: no sockets, no files, no clocks, no threads.
//! The node (`mero-node`) persists what it decides and moves the bytes.

#![warn(missing_docs)]

pub mod crypto;
pub mod dag;
pub mod delta;
pub mod ids;
pub mod members;
pub mod protocol;

pub use crypto::{ContextKey, MemberSecret};
pub use dag::{Dag, Reject};
pub use delta::{DeltaBody, Op, SignedDelta};
pub use members::{Invitation, InvitationToken, Members};
