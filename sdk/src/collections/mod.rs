//! State collections. Each is a handle to a CRDT container owned by the host;
//! every operation is a host call, so nothing is lost when the call returns
//! and concurrent edits on other replicas merge.
//!
//! | type | CRDT behaviour |
//! |---|---|
//! | [`UnorderedMap`] | per-key last-writer-wins; nested collections merge |
//! | [`UnorderedSet`] | a map of members |
//! | [`SortedMap`] | a map iterated in key order, by range, prefix or page; per-key last-writer-wins |
//! | [`SortedSet`] | a set iterated in member order, by range, prefix or page |
//! | [`Vector`] | positional list: insert, remove, set and move by index |
//! | [`Tree`] | movable tree of nodes with ordered children; concurrent moves never make a cycle |
//! | [`Counter`] | concurrent increments add up, exactly over all of `i64` |
//! | [`LwwRegister`] | one value, last writer wins; `set` writes state wherever it lives |
//! | [`Text`] | collaborative text: concurrent edits interleave |
//! | [`OwnedMap`] | one entry per member, changed only by that member (checked by every receiver) |
//!
//! Collections nest as values of [`UnorderedMap`], [`SortedMap`], [`Vector`]
//! and [`Tree`] nodes. Storing a
//! collection under a map key merges it into that key's child: two replicas
//! that create the same nested collection concurrently keep both sides' writes.

use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse, SlotIn, SlotOut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::host::{self, expect_response};

mod counter;
mod map;
mod ordkey;
mod owned;
mod register;
mod set;
mod sorted_map;
mod sorted_set;
mod text;
mod tree;
mod vector;

pub use counter::{Counter, CounterOverflow};
pub use map::UnorderedMap;
pub use owned::OwnedMap;
pub use register::LwwRegister;
pub use set::UnorderedSet;
pub use sorted_map::{Iter as SortedIter, SortedMap};
pub use sorted_set::{Members, SortedSet};
pub use text::Text;
pub use tree::{NodeId, ParseNodeIdError, Tree};
pub use vector::Vector;

/// A value that can live inside a collection: any serde value, or a collection.
///
/// Implemented for every `T: Serialize + DeserializeOwned` (stored as a
/// structured value) and for the collections themselves (stored as nested,
/// mergeable containers).
pub trait StoreValue: Sized {
    #[doc(hidden)]
    fn __with_slot<R>(&self, f: impl FnOnce(SlotIn<'_>) -> R) -> R;
    #[doc(hidden)]
    fn __from_slot(slot: SlotOut) -> Self;
    /// Like `__from_slot`, knowing where the slot is (registers write back there).
    #[doc(hidden)]
    fn __from_slot_at(slot: SlotOut, at: SlotAt) -> Self {
        let _ = at;
        Self::__from_slot(slot)
    }
}

/// Where a value was read from, so a register read there writes back there.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotAt {
    /// A map entry (encoded key).
    Map(Handle, String),
    /// A vector item.
    List(Handle, u32),
}

impl<T: Serialize + DeserializeOwned> StoreValue for T {
    fn __with_slot<R>(&self, f: impl FnOnce(SlotIn<'_>) -> R) -> R {
        let json = to_json(self);
        f(SlotIn::Value(&json))
    }
    fn __from_slot(slot: SlotOut) -> Self {
        match slot {
            SlotOut::Value(json) => from_json(&json),
            SlotOut::Container(_, kind) => host::corrupt(format!(
                "state holds a {kind:?} collection where a `{}` value was expected (did the app's state types change?)",
                std::any::type_name::<T>()
            )),
        }
    }
}

/// A field of an `#[app::state]` struct: a root collection or register.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of an #[app::state] struct",
    note = "state fields must be mero collections (UnorderedMap, UnorderedSet, SortedMap, SortedSet, Vector, Tree, Counter, Text) or LwwRegister<T> for a plain value"
)]
pub trait StateField: Sized {
    #[doc(hidden)]
    fn __load(name: &'static str) -> Self;
    #[doc(hidden)]
    fn __store_init(self, name: &'static str);
}

/// A collection backed by a host container (every collection but
/// [`LwwRegister`]). Implemented by this crate only.
pub trait Collection: Sized {
    #[doc(hidden)]
    const KIND: ContainerKind;
    #[doc(hidden)]
    fn from_handle(h: Handle) -> Self;
    #[doc(hidden)]
    fn new_detached() -> Self {
        Self::from_handle(expect_response!(
            host::call(HostRequest::New { kind: Self::KIND }),
            HostResponse::Handle(h) => h
        ))
    }
}

macro_rules! container_impls {
    ($ty:ident < $($g:ident),* > where $($bounds:tt)*) => {
        impl<$($g),*> $crate::collections::StoreValue for $ty<$($g),*> where $($bounds)* {
            fn __with_slot<R>(&self, f: impl FnOnce(mero_abi::host::SlotIn<'_>) -> R) -> R {
                f(mero_abi::host::SlotIn::Container(self.handle))
            }
            fn __from_slot(slot: mero_abi::host::SlotOut) -> Self {
                match slot {
                    mero_abi::host::SlotOut::Container(h, kind) if kind == <Self as $crate::collections::Collection>::KIND => {
                        <Self as $crate::collections::Collection>::from_handle(h)
                    }
                    other => $crate::host::corrupt(format!(
                        "state holds {other:?} where a {} was expected (did the app's state types change?)",
                        stringify!($ty)
                    )),
                }
            }
        }
        impl<$($g),*> $crate::collections::StateField for $ty<$($g),*> where $($bounds)* {
            fn __load(name: &'static str) -> Self {
                let kind = <Self as $crate::collections::Collection>::KIND;
                <Self as $crate::collections::Collection>::from_handle($crate::host::expect_response!(
                    $crate::host::call(mero_abi::host::HostRequest::Root { name, kind }),
                    mero_abi::host::HostResponse::Handle(h) => h
                ))
            }
            fn __store_init(self, name: &'static str) {
                $crate::host::call(mero_abi::host::HostRequest::BindRoot { name, src: self.handle });
            }
        }
        impl<$($g),*> Default for $ty<$($g),*> where $($bounds)* {
            fn default() -> Self {
                Self::new()
            }
        }
        impl<$($g),*> std::fmt::Debug for $ty<$($g),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}(#{})", stringify!($ty), self.handle)
            }
        }
    };
}
pub(crate) use container_impls;

pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|e| {
        host::corrupt(format!(
            "cannot store a `{}`: {e}",
            std::any::type_name::<T>()
        ))
    })
}

pub(crate) fn from_json<T: DeserializeOwned>(json: &[u8]) -> T {
    serde_json::from_slice(json).unwrap_or_else(|e| {
        host::corrupt(format!(
            "stored value is not a `{}`: {e} (did the app's state types change?)",
            std::any::type_name::<T>()
        ))
    })
}

/// Encodes a map key: strings as themselves (so exported state reads
/// naturally), anything else as its JSON text.
pub(crate) fn encode_key<Q: Serialize + ?Sized>(key: &Q) -> String {
    match serde_json::to_value(key) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(e) => host::corrupt(format!("cannot encode a map key: {e}")),
    }
}

pub(crate) fn decode_key<K: DeserializeOwned>(raw: &str) -> K {
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .or_else(|_| serde_json::from_str(raw))
        .unwrap_or_else(|e| {
            host::corrupt(format!(
                "stored key `{raw}` is not a `{}`: {e}",
                std::any::type_name::<K>()
            ))
        })
}

pub(crate) fn len_of(handle: Handle) -> usize {
    expect_response!(host::call(HostRequest::Len { handle }), HostResponse::U64(n) => n as usize)
}
