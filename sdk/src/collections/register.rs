use mero_abi::host::{HostRequest, HostResponse, SlotIn, SlotOut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{StateField, StoreValue, from_json, to_json};
use crate::host::{self, expect_response};

/// One value; concurrent writes resolve to the last writer.
///
/// As a state field, [`set`](Self::set) writes through to state. As a
/// collection value it is a plain value: store it again to change it.
#[derive(Debug, Clone, PartialEq)]
pub struct LwwRegister<T> {
    value: T,
    field: Option<&'static str>,
}

impl<T: Serialize + DeserializeOwned> LwwRegister<T> {
    /// A register holding `value`.
    pub fn new(value: T) -> Self {
        Self { value, field: None }
    }

    /// The value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// Replaces the value.
    pub fn set(&mut self, value: T) {
        if let Some(name) = self.field {
            let json = to_json(&value);
            host::call(HostRequest::RootValueSet { name, value: &json });
        }
        self.value = value;
    }

    /// The value, by value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> std::ops::Deref for LwwRegister<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Serialize + DeserializeOwned + Default> Default for LwwRegister<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: Serialize + DeserializeOwned> StoreValue for LwwRegister<T> {
    fn __with_slot<R>(&self, f: impl FnOnce(SlotIn<'_>) -> R) -> R {
        self.value.__with_slot(f)
    }
    fn __from_slot(slot: SlotOut) -> Self {
        Self::new(T::__from_slot(slot))
    }
}

impl<T: Serialize + DeserializeOwned> StateField for LwwRegister<T> {
    fn __load(name: &'static str) -> Self {
        let stored = expect_response!(
            host::call(HostRequest::RootValueGet { name }),
            HostResponse::OptBytes(b) => b
        );
        let value = match stored {
            Some(json) => from_json(&json),
            // A field added by an upgrade has no stored value yet: `Option`
            // fields read as `None`; others must be written by the upgrade.
            None => serde_json::from_value(serde_json::Value::Null).unwrap_or_else(|_| {
                host::corrupt(format!(
                    "state field `{name}` has no stored value; declare it as LwwRegister<Option<_>> if it was added after the context was created"
                ))
            }),
        };
        Self {
            value,
            field: Some(name),
        }
    }

    fn __store_init(self, name: &'static str) {
        let json = to_json(&self.value);
        host::call(HostRequest::RootValueSet { name, value: &json });
    }
}
