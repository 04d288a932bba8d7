//! Engine errors.

use mero_abi::CallErrorKind;
use mero_abi::host::HostError;

/// What went wrong inside the state engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The app asked for something invalid (bad handle, index out of range, bad value).
    #[error("{0}")]
    Invalid(String),
    /// A view (or a query) tried to change state.
    #[error("{0}")]
    ReadOnly(String),
    /// A per-call size limit was exceeded.
    #[error("{0}")]
    Limit(String),
    /// Operations touch an owned entry of another member ([`crate::owned`]).
    #[error("{0}")]
    NotOwner(String),
    /// Loro rejected an operation or an update.
    #[error("CRDT engine: {0}")]
    Loro(#[from] loro::LoroError),
    /// A Loro update or snapshot could not be encoded.
    #[error("CRDT encoding: {0}")]
    Encode(String),
    /// The host refused a cross-context call (see [`crate::CrossContext`]).
    #[error("{}", .0.message)]
    XCall(mero_abi::CallError),
}

impl EngineError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }
}

impl From<EngineError> for HostError {
    fn from(e: EngineError) -> Self {
        let kind = match &e {
            EngineError::XCall(refusal) => refusal.kind,
            EngineError::ReadOnly(_) => CallErrorKind::Mutability,
            EngineError::Limit(_) => CallErrorKind::Limit,
            _ => CallErrorKind::Host,
        };
        HostError {
            kind,
            message: e.to_string(),
        }
    }
}
