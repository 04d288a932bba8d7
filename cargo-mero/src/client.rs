//! The node API client `dev`, `deploy`, `call` and `blob` use: the
//! `mero-client` crate, re-exported so `cargo_mero::client::…` paths keep
//! working (the client lives in its own light crate so `mero-testnet` and
//! an app's tests can use it without cargo-mero's dependencies).

pub use mero_client::*;
