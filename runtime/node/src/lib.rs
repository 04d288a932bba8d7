//! The mero node: runs apps' WASM against replicated context state, persists
//! every change in RocksDB, and serves the HTTP API. The binary is `merod`.
//!
//! - [`host`]: wasmtime engine, module cache, per-call instances and limits.
//! - [`node`]: installed apps and contexts.
//! - [`calls`]: method calls; group commit of concurrent `execute`s.
//! - [`store`]: RocksDB column families and atomic write batches.
//! - [`context`]: one context's replica: authoring and receiving deltas.
//! - [`membership`]: invitations, joins, leaving, app upgrades.
//! - [`sync`]: applying peers' deltas and answering catch-up requests.
//! - [`net`]: libp2p: gossipsub per context, request-response, discovery.
//! - [`api`]: the HTTP API: JSON-RPC, WebSocket, SSE, admin REST, metrics.
//! - [`blobs`]: large files of a context, on disk, fetched from members.
//! - [`events`]: the per-context event stream and its persisted log.
//! - [`tokens`]: client tokens (JWT): issue, verify, refresh, revoke.
//! - [`metrics`]: Prometheus counters and gauges.
//! - [`config`]: the home directory's `config.toml`; [`identity`]: the node key.
//!
//! State semantics (collections, commit and rollback) are not implemented
//! here: they belong to `mero-engine`, which this crate drives. This crate
//! must not reimplement them.

#![warn(missing_docs)]

pub mod api;
pub mod apps;
pub mod blobs;
pub mod calls;
pub mod cli;
pub mod cold;
pub mod config;
pub mod context;
pub mod error;
pub mod events;
pub mod host;
pub mod identity;
pub mod membership;
pub mod metrics;
pub mod net;
pub mod node;
pub mod peer_sync;
pub mod slot;
pub(crate) mod snapshots;
pub mod store;
pub mod sync;
pub mod tokens;
pub mod upgrade;
pub mod xcall;

pub use mero_sync::ids;

pub use calls::CallRequest;
pub use config::NodeConfig;
pub use error::NodeError;
pub use node::{CallKind, CallOutput, Node};
