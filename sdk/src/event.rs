//! Events: emitted by mutating calls, carried inside their delta.

use mero_abi::host::HostRequest;

use crate::host;

/// An `#[app::event]` enum. Implemented by the macro.
pub trait AppEvent {
    #[doc(hidden)]
    fn __kind(&self) -> &'static str;
    #[doc(hidden)]
    fn __handler(&self) -> Option<&'static str>;
    #[doc(hidden)]
    fn __data(&self) -> Vec<u8>;
    #[doc(hidden)]
    fn __abi_events() -> &'static str
    where
        Self: Sized;
}

/// Emits `event`. Prefer [`app::emit!`](crate::emit).
pub fn emit<E: AppEvent>(event: &E) {
    let data = event.__data();
    host::call(HostRequest::Emit {
        kind: event.__kind(),
        data: &data,
        handler: event.__handler(),
    });
}
