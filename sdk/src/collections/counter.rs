use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse};

use super::{Collection, container_impls};
use crate::host::{self, expect_response};

/// A counter whose concurrent increments and decrements all add up.
pub struct Counter {
    pub(crate) handle: Handle,
}

impl Collection for Counter {
    const KIND: ContainerKind = ContainerKind::Counter;
    fn from_handle(handle: Handle) -> Self {
        Self { handle }
    }
}

container_impls!(Counter<> where);

impl Counter {
    /// A new counter at zero.
    pub fn new() -> Self {
        Self::new_detached()
    }

    /// Adds `by` (which may be negative).
    pub fn add(&mut self, by: i64) {
        host::call(HostRequest::CounterAdd {
            counter: self.handle,
            by,
        });
    }

    /// Adds one.
    pub fn increment(&mut self) {
        self.add(1);
    }

    /// Subtracts one.
    pub fn decrement(&mut self) {
        self.add(-1);
    }

    /// The current value.
    pub fn value(&self) -> i64 {
        expect_response!(
            host::call(HostRequest::CounterGet { counter: self.handle }),
            HostResponse::I64(v) => v
        )
    }
}
