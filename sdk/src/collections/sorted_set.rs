use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse, SlotIn};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::sorted_map::{Borrowed, Pager, encode_bounds};
use super::{Collection, container_impls, len_of, ordkey};
use crate::host::{self, expect_response};

/// A set kept in member order: iterate it, a range of it, the members with
/// a string prefix, or a page after a cursor, like a `BTreeSet`.
/// Concurrent adds of different members all survive.
///
/// Members are ordered and stored as the keys of a
/// [`SortedMap`](super::SortedMap) are.
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::collections::SortedSet;
///
/// #[app::state]
/// pub struct Tags { tags: SortedSet<String> }
///
/// #[app::logic]
/// impl Tags {
///     #[app::init]
///     pub fn init() -> Self { Self { tags: SortedSet::new() } }
///     pub fn tag(&mut self, tag: String) -> bool { self.tags.insert(tag) }
///     pub fn starting(&self, with: String) -> Vec<String> { self.tags.prefix(&with).collect() }
///     pub fn after(&self, cursor: Option<String>) -> Vec<String> {
///         self.tags.page(cursor.as_deref(), 2)
///     }
/// }
///
/// # fn main() {
/// let mut r = mero_sdk::testing::Replica::<Tags>::new(0);
/// r.init(serde_json::json!({})).unwrap();
/// for t in ["rust", "crdt", "rss", "local-first"] {
///     r.execute("tag", serde_json::json!({"tag": t})).unwrap();
/// }
/// assert_eq!(r.execute("starting", serde_json::json!({"with": "r"})).unwrap(), serde_json::json!(["rss", "rust"]));
/// assert_eq!(r.execute("after", serde_json::json!({"cursor": null})).unwrap(), serde_json::json!(["crdt", "local-first"]));
/// assert_eq!(r.execute("after", serde_json::json!({"cursor": "local-first"})).unwrap(), serde_json::json!(["rss", "rust"]));
/// # }
/// ```
pub struct SortedSet<T> {
    pub(crate) handle: Handle,
    _types: PhantomData<fn() -> T>,
}

impl<T> Collection for SortedSet<T> {
    const KIND: ContainerKind = ContainerKind::Map;
    fn from_handle(handle: Handle) -> Self {
        Self {
            handle,
            _types: PhantomData,
        }
    }
}

container_impls!(SortedSet<T> where T: Serialize + DeserializeOwned);

impl<T: Serialize + DeserializeOwned> SortedSet<T> {
    /// A new, empty set.
    pub fn new() -> Self {
        Self::new_detached()
    }

    /// Adds a member; returns whether it was new.
    pub fn insert(&mut self, member: T) -> bool {
        let key = ordkey::encode(&member);
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
        self.contains_key(&ordkey::encode(member))
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
        let key = ordkey::encode(member);
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

    /// Removes every member this replica sees.
    pub fn clear(&mut self) {
        host::call(HostRequest::MapClear { map: self.handle });
    }

    /// The smallest member.
    pub fn first(&self) -> Option<T> {
        self.iter().next()
    }

    /// The largest member.
    pub fn last(&self) -> Option<T> {
        self.iter().next_back()
    }

    /// Every member in order (reversible: `.rev()`).
    pub fn iter(&self) -> Members<'_, T> {
        Members::new(Pager::new(
            self.handle,
            Bound::Unbounded,
            Bound::Unbounded,
            String::new(),
            false,
        ))
    }

    /// The members in `range`, in order (an empty or inverted range is empty).
    pub fn range<Q, R>(&self, range: R) -> Members<'_, T>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
        R: RangeBounds<Q>,
    {
        let (lo, hi) = encode_bounds(&range);
        Members::new(Pager::new(self.handle, lo, hi, String::new(), false))
    }

    /// Up to `limit` members after `after` (from the start if `None`), in
    /// one host request.
    pub fn page<Q>(&self, after: Option<&Q>, limit: usize) -> Vec<T>
    where
        T: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(ordkey::encode(a)));
        let mut pager = Pager::new(self.handle, from, Bound::Unbounded, String::new(), false);
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        pager
            .fetch(false, limit)
            .into_iter()
            .map(|(k, _)| ordkey::decode(&k))
            .collect()
    }

    /// All members in order, in one host request.
    pub fn to_vec(&self) -> Vec<T> {
        let mut pager = Pager::new(
            self.handle,
            Bound::Unbounded,
            Bound::Unbounded,
            String::new(),
            false,
        );
        pager
            .fetch(false, u32::MAX)
            .into_iter()
            .map(|(k, _)| ordkey::decode(&k))
            .collect()
    }
}

impl<T: Serialize + DeserializeOwned + Borrow<str>> SortedSet<T> {
    /// The (string) members starting with `prefix`, in order.
    pub fn prefix(&self, prefix: &str) -> Members<'_, T> {
        Members::new(Pager::new(
            self.handle,
            Bound::Unbounded,
            Bound::Unbounded,
            prefix.to_owned(),
            false,
        ))
    }
}

/// Iterator over (a range of) a [`SortedSet`] in order, fetching members
/// from the host a page at a time. Double-ended.
pub struct Members<'a, T> {
    pager: Pager,
    _set: PhantomData<Borrowed<'a, T>>,
}

impl<T> Members<'_, T> {
    fn new(pager: Pager) -> Self {
        Self {
            pager,
            _set: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Iterator for Members<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.pager.next().map(|(k, _)| ordkey::decode(&k))
    }
}

impl<T: DeserializeOwned> DoubleEndedIterator for Members<'_, T> {
    fn next_back(&mut self) -> Option<T> {
        self.pager.next_back().map(|(k, _)| ordkey::decode(&k))
    }
}
