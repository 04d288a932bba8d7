//! `cargo mero`: the developer's front door to mero.
//!
//! The binary is a thin CLI over this library: [`build`] compiles an app to
//! WASM, optimizes it and embeds its ABI; `node` runs the embedded `merod`.
//! This crate orchestrates cargo, wasm-opt and the node; it must not
//! implement state or networking semantics itself.

#![warn(missing_docs)]

pub mod build;
