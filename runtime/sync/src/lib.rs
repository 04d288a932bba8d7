//! mero's replication protocol, without IO.
//!
//! Everything a node decides about deltas lives here, as plain data and
//! pure functions, so the same code runs inside `merod` and inside the
//! seeded simulation in `tests/sim.rs`:
//!
//! - [`ids`]: 32-byte identifiers (apps, contexts, members, deltas).
//! - [`crypto`]: epoch keys (payload encryption bound to the header),
//!   member keys (signatures), sealing new epoch keys to members.
//! - [`delta`]: signed, encrypted deltas and the operations they carry.
//! - [`dag`]: the causal DAG of applied deltas, heads, seq vectors and the
//!   buffer of deltas waiting for their parents.
//! - [`access`]: members, roles, invitations, key epochs: who may do what,
//!   folded from the DAG.
//! - [`replica`]: the rules that accept, buffer, refuse or flag a received
//!   delta, over a DAG and the access view of every delta (`views`).
//! - [`gate`]: who may ask a node about a context (a signed proof of
//!   membership in every request), and the secret gossip topic.
//! - [`invitation`]: the token a joiner is given.
//! - [`meet`]: where members find each other at well-known nodes (opaque
//!   tags and sealed records) without telling those nodes the context.
//! - [`protocol`]: the request-response messages of catch-up and how a node
//!   answers them.
//! - [`progress`]: where this replica stands against a peer (behind, ahead,
//!   diverged, forked), from what catch-up exchanges; status only.
//! - [`checkpoint`]: a replica's DAG and views without payloads, to load
//!   a context without its log and to hand a joiner.
//! - [`snapshot`]: a snapshot join: what a member sends a joiner of a long
//!   history (checkpoint, control deltas, signed frontier, state) and
//!   everything the joiner checks before it installs one.
//! - [`blob`]: blob manifests and ids, and the sealing and checking of
//!   the chunks nodes exchange.
//!
//! This crate must not do IO: no sockets, no files, no clocks, no threads.
//! The node (`mero-node`) persists what it decides and moves the bytes.

#![warn(missing_docs)]

pub mod access;
pub mod blob;
pub mod checkpoint;
pub mod crypto;
pub mod dag;
pub mod delta;
pub mod gate;
pub mod ids;
pub mod invitation;
pub mod meet;
pub mod progress;
pub mod protocol;
pub mod replica;
pub mod snapshot;
mod views;

pub use access::{Access, Role};
pub use crypto::{ContextKey, MemberSecret};
pub use dag::{Dag, Reject};
pub use delta::{DeltaBody, DeltaHeader, Op, OpKind, SignedDelta};
pub use invitation::InvitationToken;
pub use replica::{Engine, Replica};
