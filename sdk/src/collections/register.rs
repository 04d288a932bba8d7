use mero_abi::host::{HostRequest, HostResponse, SlotIn, SlotOut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{SlotAt, StateField, StoreValue, from_json, to_json};
use crate::host::{self, expect_response};

/// One value; concurrent writes resolve to the last writer.
///
/// A register read from state — a state field, or a value read from a
/// collection (`map.get(k)`, `vector.get(i)`, `tree.get(node)`) — remembers
/// where it came from, and [`set`](Self::set) writes there: the field, the
/// map key, the vector index (the index it was read at, even if the vector
/// changed since), the tree node. A register made with
/// [`new`](Self::new) is detached until it is stored; `set` on it changes
/// only the value in hand.
///
/// A clone is detached: setting it writes nothing. Equality compares the
/// values only.
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::collections::{LwwRegister, UnorderedMap};
///
/// #[app::state]
/// pub struct Profiles {
///     motto: LwwRegister<String>,
///     names: UnorderedMap<u32, LwwRegister<String>>,
/// }
///
/// #[app::logic]
/// impl Profiles {
///     #[app::init]
///     pub fn init() -> Self {
///         Self { motto: LwwRegister::new("hi".into()), names: UnorderedMap::new() }
///     }
///     pub fn add(&mut self, id: u32, name: String) {
///         self.names.insert(id, LwwRegister::new(name));
///     }
///     pub fn rename(&mut self, id: u32, name: String) -> app::Result<()> {
///         let Some(mut reg) = self.names.get(&id) else { app::bail!("no {id}") };
///         let mut copy = reg.clone();
///         copy.set("ignored".into()); // a clone is detached
///         reg.set(name); // writes the map entry: no insert needed
///         Ok(())
///     }
///     pub fn name(&self, id: u32) -> Option<String> {
///         self.names.get(&id).map(LwwRegister::into_inner)
///     }
/// }
///
/// # fn main() {
/// let mut r = mero_sdk::testing::Replica::<Profiles>::new(0);
/// r.init(serde_json::json!({})).unwrap();
/// r.execute("add", serde_json::json!({"id": 1, "name": "ann"})).unwrap();
/// r.execute("rename", serde_json::json!({"id": 1, "name": "anna"})).unwrap();
/// assert_eq!(r.execute("name", serde_json::json!({"id": 1})).unwrap(), "anna");
/// # }
/// ```
pub struct LwwRegister<T> {
    value: T,
    at: Option<Place>,
}

/// Where a register's value is stored.
enum Place {
    Field(&'static str),
    Slot(SlotAt),
}

impl<T: Serialize + DeserializeOwned> LwwRegister<T> {
    /// A detached register holding `value`.
    pub fn new(value: T) -> Self {
        Self { value, at: None }
    }

    /// The value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// Replaces the value, in state too if the register was read from state.
    pub fn set(&mut self, value: T) {
        if let Some(at) = &self.at {
            let json = to_json(&value);
            write(at, &json);
        }
        self.value = value;
    }

    /// The value, by value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

fn write(at: &Place, json: &[u8]) {
    let value = SlotIn::Value(json);
    match at {
        Place::Field(name) => host::call(HostRequest::RootValueSet { name, value: json }),
        Place::Slot(SlotAt::Map(map, key)) => host::call(HostRequest::MapInsert {
            map: *map,
            key,
            value,
        }),
        Place::Slot(SlotAt::List(list, index)) => host::call(HostRequest::ListSet {
            list: *list,
            index: *index,
            value,
        }),
    };
}

impl<T> std::ops::Deref for LwwRegister<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Clone> Clone for LwwRegister<T> {
    /// A detached copy of the value.
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            at: None,
        }
    }
}

impl<T: PartialEq> PartialEq for LwwRegister<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for LwwRegister<T> {}

impl<T: std::fmt::Debug> std::fmt::Debug for LwwRegister<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LwwRegister").field(&self.value).finish()
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
    fn __from_slot_at(slot: SlotOut, at: SlotAt) -> Self {
        Self {
            value: T::__from_slot(slot),
            at: Some(Place::Slot(at)),
        }
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
            at: Some(Place::Field(name)),
        }
    }

    fn __store_init(self, name: &'static str) {
        let json = to_json(&self.value);
        host::call(HostRequest::RootValueSet { name, value: &json });
    }
}
