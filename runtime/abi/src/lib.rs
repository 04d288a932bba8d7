//! The contract between a mero app and its host.
//!
//! This crate is shared by the guest side (the SDK, compiled to WASM) and the
//! host side (the state engine and the node). It holds:
//!
//! - [`host`]: the messages an app sends through its single host import and
//!   the answers it gets back, encoded with `postcard`;
//! - [`abi`]: the app's ABI document (methods, events, state schema) that the
//!   SDK macros produce at build time and that travels inside the WASM as a
//!   custom section;
//! - [`schema`]: state schema changes between app versions, and which
//!   need a migration;
//! - [`blob`]: the text form of blob ids, as apps store them in state;
//! - [`CallError`]: the structured error a failed call reports to its caller.
//!
//! It must stay dependency-light and free of IO and of any CRDT engine: it is
//! compiled into every app.

#![warn(missing_docs)]

pub mod abi;
pub mod blob;
pub mod diff;
pub mod error;
pub mod host;
pub mod schema;
pub mod wasm;

pub use abi::{AppAbi, MethodAbi, Mutability};
pub use error::{AppErrorData, CallError, CallErrorKind};

/// Name of the WASM import module that holds the host functions.
pub const IMPORT_MODULE: &str = "mero";
/// Host import `mero_host(req_ptr, req_len, out_ptr, out_cap) -> i64`.
///
/// The guest passes a postcard-encoded [`host::HostRequest`]. The host encodes
/// the `Result<HostResponse, HostError>` answer; if it fits into `out_cap`
/// bytes it is written at `out_ptr`, otherwise the host keeps it and the guest
/// fetches it with [`IMPORT_TAKE`] into a buffer of the returned length.
pub const IMPORT_CALL: &str = "mero_host";
/// Host import `mero_take(ptr)`: copies the pending answer to `ptr`.
pub const IMPORT_TAKE: &str = "mero_take";
/// Custom section holding the assembled ABI document (JSON).
pub const ABI_SECTION: &str = "mero_abi";
/// Custom section the SDK macros write ABI fragments into; `cargo mero build`
/// assembles them into [`ABI_SECTION`]. Fragments are JSON objects, each
/// terminated by a newline, concatenated by the linker.
pub const ABI_FRAGMENT_SECTION: &str = "mero_abi_fragments";
/// Version of the host-call protocol; bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;
