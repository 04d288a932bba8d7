//! The mero node: runs apps' WASM against replicated context state, persists
//! every change in RocksDB, and serves the HTTP API. The binary is `merod`.
//!
//! - [`host`]: wasmtime engine, module cache, per-call instances and limits.
//! - [`node`]: installed apps, contexts and their one-writer executors.
//! - [`store`]: RocksDB column families and atomic write batches.
//! - [`delta`]: the durable record of one successful mutating call.
//! - [`server`]: JSON-RPC, admin REST, health.
//! - [`config`]: the home directory's `config.toml`; [`identity`]: the node key.
//!
//! State semantics (collections, commit and rollback) are not implemented
//! here: they belong to `mero-engine`, which this crate drives. This crate
//! must not reimplement them.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod delta;
pub mod error;
pub mod host;
pub mod identity;
pub mod ids;
pub mod node;
pub mod server;
pub mod store;

pub use config::NodeConfig;
pub use error::NodeError;
pub use node::{CallKind, CallOutput, Node};
