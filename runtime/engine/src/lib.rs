//! The mero state engine.
//!
//! A context's state is one [`loro::LoroDoc`], owned by the host rather than by
//! WASM memory. App collections are handles to Loro containers and every
//! collection operation is a [`HostRequest`](mero_abi::host::HostRequest) that
//! [`Session::dispatch`] executes. This crate is the *only* implementation of
//! those semantics: the node calls it from its WASM imports and the SDK's
//! native test host calls it directly, so an app's `cargo test` exercises the
//! same code its nodes run.
//!
//! A call goes [`ContextState::begin`] → dispatches → [`ContextState::finish`].
//! `finish` commits the call's operations as one Loro change and returns them
//! as a [`DeltaPayload`]; a failed call (error, panic, trap) is rolled back and
//! leaves no trace.
//!
//! This crate must not do IO: no files, sockets, clocks or OS randomness. The
//! caller supplies time, randomness and private storage through [`CallEnv`].

#![warn(missing_docs)]

mod counter;
mod env;
mod error;
pub mod owned;
pub mod policy;
mod session;
mod sorted;
mod state;
mod tree;
pub mod value;

pub use env::{
    BlobSource, CallEnv, CallLimits, CallMode, CrossContext, EmittedEvent, NoBlobs, NoCrossContext,
    NoPrivateStorage, PrivateStorage, RandomSource,
};
pub use error::EngineError;
pub use session::Session;
pub use state::{CallMark, CallOutcome, ContextState, DeltaPayload, update_span};

pub use loro::VersionVector;

#[cfg(test)]
mod collection_tests;
#[cfg(test)]
mod tests;
