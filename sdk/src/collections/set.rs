use std::borrow::Borrow;
use std::marker::PhantomData;

use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse, SlotIn};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Collection, container_impls, decode_key, encode_key, len_of};
use crate::host::{self, expect_response};

/// A set of serializable members. Concurrent adds of different members all survive.
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::collections::UnorderedSet;
///
/// #[app::state]
/// pub struct Tags { tags: UnorderedSet<String> }
///
/// #[app::logic]
/// impl Tags {
///     #[app::init]
///     pub fn init() -> Self { Self { tags: UnorderedSet::new() } }
///
///     /// `true` if the tag is new.
///     pub fn tag(&mut self, tag: String) -> bool { self.tags.insert(tag) }
///
///     pub fn tagged(&self, tag: &str) -> bool { self.tags.contains(tag) }
/// }
/// # fn main() {}
/// ```
pub struct UnorderedSet<T> {
    pub(crate) handle: Handle,
    _types: PhantomData<fn() -> T>,
}

impl<T> Collection for UnorderedSet<T> {
    const KIND: ContainerKind = ContainerKind::Map;
    fn from_handle(handle: Handle) -> Self {
        Self {
            handle,
            _types: PhantomData,
        }
    }
}

container_impls!(UnorderedSet<T> where T: Serialize + DeserializeOwned);

impl<T: Serialize + DeserializeOwned> UnorderedSet<T> {
    /// A new, empty set.
    pub fn new() -> Self {
        Self::new_detached()
    }

    /// Adds a member; returns whether it was new.
    pub fn insert(&mut self, member: T) -> bool {
        let key = encode_key(&member);
        let fresh = !self.contains_key(&key);
        host::call(HostRequest::MapInsert {
            map: self.handle,
            key: &key,
            value: SlotIn::Value(b"true"),
        });
        fresh
    }

    /// Whether `member` is in the set.
    pub fn contains<Q>(&self, member: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        self.contains_key(&encode_key(member))
    }

    fn contains_key(&self, key: &str) -> bool {
        expect_response!(
            host::call(HostRequest::MapContains { map: self.handle, key }),
            HostResponse::Bool(b) => b
        )
    }

    /// Removes `member`; returns whether it was present.
    pub fn remove<Q>(&mut self, member: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = encode_key(member);
        expect_response!(
            host::call(HostRequest::MapRemove { map: self.handle, key: &key }),
            HostResponse::Bool(b) => b
        )
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        len_of(self.handle)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All members, ordered by encoded form.
    pub fn to_vec(&self) -> Vec<T> {
        expect_response!(
            host::call(HostRequest::MapEntries { map: self.handle }),
            HostResponse::Entries(entries) => entries.into_iter().map(|(k, _)| decode_key(&k)).collect()
        )
    }

    /// Removes every member this replica sees.
    pub fn clear(&mut self) {
        host::call(HostRequest::MapClear { map: self.handle });
    }
}
