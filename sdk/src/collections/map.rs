use std::borrow::Borrow;
use std::marker::PhantomData;

use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Collection, SlotAt, StoreValue, container_impls, decode_key, encode_key, len_of};
use crate::host::{self, expect_response};

/// A map from keys of any serializable type to values or nested collections.
///
/// Each key is last-writer-wins; a nested collection under a key merges
/// across replicas.
///
/// ```no_run
/// use mero_sdk::collections::{UnorderedMap, UnorderedSet};
/// let mut tags: UnorderedMap<String, UnorderedSet<String>> = UnorderedMap::new();
/// tags.ensure("doc-1".to_owned()).insert("draft".to_owned());
/// assert!(tags.get("doc-1").unwrap().contains("draft"));
/// ```
pub struct UnorderedMap<K, V> {
    pub(crate) handle: Handle,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Collection for UnorderedMap<K, V> {
    const KIND: ContainerKind = ContainerKind::Map;
    fn from_handle(handle: Handle) -> Self {
        Self {
            handle,
            _types: PhantomData,
        }
    }
}

container_impls!(UnorderedMap<K, V> where K: Serialize + DeserializeOwned, V: StoreValue);

impl<K: Serialize + DeserializeOwned, V: StoreValue> UnorderedMap<K, V> {
    /// A new, empty map. Store it in state (a field or a parent collection) to keep it.
    pub fn new() -> Self {
        Self::new_detached()
    }

    /// Inserts or replaces the value at `key`.
    pub fn insert(&mut self, key: K, value: V) {
        let key = encode_key(&key);
        value.__with_slot(|value| {
            host::call(HostRequest::MapInsert {
                map: self.handle,
                key: &key,
                value,
            })
        });
    }

    /// The value at `key`. For nested collections, a handle to the stored child.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = encode_key(key);
        expect_response!(
            host::call(HostRequest::MapGet { map: self.handle, key: &key }),
            HostResponse::OptSlot(slot) => slot.map(|s| V::__from_slot_at(s, SlotAt::Map(self.handle, key)))
        )
    }

    /// Whether `key` is present.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = encode_key(key);
        expect_response!(
            host::call(HostRequest::MapContains { map: self.handle, key: &key }),
            HostResponse::Bool(b) => b
        )
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove<Q>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = encode_key(key);
        expect_response!(
            host::call(HostRequest::MapRemove { map: self.handle, key: &key }),
            HostResponse::Bool(b) => b
        )
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        len_of(self.handle)
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All entries, ordered by encoded key.
    pub fn entries(&self) -> Vec<(K, V)> {
        expect_response!(
            host::call(HostRequest::MapEntries { map: self.handle }),
            HostResponse::Entries(entries) => entries
                .into_iter()
                .map(|(k, v)| (decode_key(&k), V::__from_slot_at(v, SlotAt::Map(self.handle, k))))
                .collect()
        )
    }

    /// All keys, ordered by encoded key.
    pub fn keys(&self) -> Vec<K> {
        self.entries().into_iter().map(|(k, _)| k).collect()
    }

    /// Removes every entry this replica sees.
    pub fn clear(&mut self) {
        host::call(HostRequest::MapClear { map: self.handle });
    }
}

impl<K, V> UnorderedMap<K, V>
where
    K: Serialize + DeserializeOwned,
    V: StoreValue + Collection,
{
    /// The nested collection at `key`, created empty if absent. Replicas that
    /// create it concurrently share one merged collection.
    pub fn ensure(&mut self, key: K) -> V {
        let key = encode_key(&key);
        V::from_handle(expect_response!(
            host::call(HostRequest::MapEnsure { map: self.handle, key: &key, kind: V::KIND }),
            HostResponse::Handle(h) => h
        ))
    }
}
