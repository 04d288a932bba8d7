//! `cargo mero`: the developer's front door to mero.
//!
//! The binary is a thin CLI over this library:
//! - [`new`] renders an embedded template into a new app project;
//! - [`build`] compiles an app to WASM, optimizes it and embeds its ABI,
//!   writes its TypeScript [`bindings`] and builds its front end (`web/`);
//! - [`dev`] runs a local multi-node network and reloads the app on save;
//!   [`net`] sends it commands (partition, heal, kill, ...) and [`status`]
//!   shows where each node's replica stands;
//! - [`deploy`] and [`call`] talk to running nodes through [`client`];
//! - [`blob`] uploads and downloads blobs through the node's HTTP API;
//! - `node` (in the binary) runs the embedded `merod`.
//!
//! This crate orchestrates cargo, wasm-opt and nodes over their public API;
//! it must not implement state or networking semantics itself.

#![warn(missing_docs)]

pub mod bindings;
pub mod blob;
pub mod build;
pub mod call;
pub mod client;
pub mod deploy;
pub mod dev;
pub mod net;
pub mod network;
pub mod new;
pub mod status;
