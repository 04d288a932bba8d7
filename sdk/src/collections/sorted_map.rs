use std::borrow::Borrow;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse, SlotOut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Collection, SlotAt, StoreValue, container_impls, len_of, ordkey};
use crate::host::{self, expect_response};

/// A map kept in key order: iterate it, a range of it, the keys with a
/// string prefix, or a page after a cursor key, like a `BTreeMap`.
///
/// The order is `K`'s own, the same on every replica: `Ord` as derived or
/// as the standard types define it (integers numerically with negatives
/// first, strings and bytes lexicographically by bytes, `None` first,
/// tuples, structs and `Vec`s element-wise, enums by variant order, floats
/// by `total_cmp`). Each key is last-writer-wins; a nested collection under
/// a key merges across replicas.
///
/// Keys are stored as text whose byte order is that order. A string key
/// (or a newtype of one) is stored as itself, so exported state reads
/// naturally. Other keys spell their parts in order: integers as
/// fixed-width decimals (`7u32` is `0000000007`; a negative is `-` and the
/// nines' complement of its magnitude minus one, so `-1i8` is `-999`),
/// `bool` as `0`/`1`, `Option` as `0`, or `1` then the value, an enum
/// variant as its index (digit count, then digits), a `Vec` as `1` before
/// each item and `0` after them, a string inside another key as itself
/// with `\0` escaped and a `\0` after it, bytes as hex, floats as hex of
/// their ordered bits. The encoding follows the key *type*: changing it
/// (`u32` to `u64`, a variant inserted before others) is a change of the
/// app's state types like any other.
///
/// Iteration fetches entries from the host a page at a time, so taking the
/// first few entries of a large map reads only those values. The first
/// ordered read of a map in a call costs the host a pass over its keys
/// (not its values); later pages in the same call are cheap.
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::collections::SortedMap;
///
/// #[app::state]
/// pub struct Scores { by_points: SortedMap<(i64, String), ()> }
///
/// #[app::logic]
/// impl Scores {
///     #[app::init]
///     pub fn init() -> Self { Self { by_points: SortedMap::new() } }
///     pub fn add(&mut self, player: String, points: i64) {
///         self.by_points.insert((points, player), ());
///     }
///     /// The `n` best players, best first.
///     pub fn top(&self, n: usize) -> Vec<String> {
///         self.by_points.iter().rev().take(n).map(|((_, p), ())| p).collect()
///     }
///     /// Players with at least `min` points, lowest first.
///     pub fn at_least(&self, min: i64) -> Vec<String> {
///         self.by_points.range((min, String::new())..).map(|((_, p), ())| p).collect()
///     }
/// }
///
/// # fn main() {
/// let mut r = mero_sdk::testing::Replica::<Scores>::new(0);
/// r.init(serde_json::json!({})).unwrap();
/// for (p, n) in [("ann", 7), ("bob", -3), ("cy", 12), ("dee", 7)] {
///     r.execute("add", serde_json::json!({"player": p, "points": n})).unwrap();
/// }
/// assert_eq!(r.execute("top", serde_json::json!({"n": 2})).unwrap(), serde_json::json!(["cy", "dee"]));
/// assert_eq!(r.execute("at_least", serde_json::json!({"min": 0})).unwrap(), serde_json::json!(["ann", "dee", "cy"]));
/// # }
/// ```
pub struct SortedMap<K, V> {
    pub(crate) handle: Handle,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Collection for SortedMap<K, V> {
    const KIND: ContainerKind = ContainerKind::Map;
    fn from_handle(handle: Handle) -> Self {
        Self {
            handle,
            _types: PhantomData,
        }
    }
}

container_impls!(SortedMap<K, V> where K: Serialize + DeserializeOwned, V: StoreValue);

impl<K: Serialize + DeserializeOwned, V: StoreValue> SortedMap<K, V> {
    /// A new, empty map. Store it in state (a field or a parent collection) to keep it.
    pub fn new() -> Self {
        Self::new_detached()
    }

    /// Inserts or replaces the value at `key`.
    pub fn insert(&mut self, key: K, value: V) {
        let key = ordkey::encode(&key);
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
        let key = ordkey::encode(key);
        expect_response!(
            host::call(HostRequest::MapGet { map: self.handle, key: &key }),
            HostResponse::OptSlot(slot) => slot.map(|s| V::__from_slot_at(s, SlotAt::Map(self.handle, key)))
        )
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let key = ordkey::encode(key);
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
        let key = ordkey::encode(key);
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

    /// Removes every entry this replica sees.
    pub fn clear(&mut self) {
        host::call(HostRequest::MapClear { map: self.handle });
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Option<(K, V)> {
        self.iter().next()
    }

    /// The entry with the largest key.
    pub fn last(&self) -> Option<(K, V)> {
        self.iter().next_back()
    }

    /// Every entry in key order (reversible: `.rev()`).
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter::new(Pager::new(
            self.handle,
            Bound::Unbounded,
            Bound::Unbounded,
            String::new(),
            true,
        ))
    }

    /// The entries whose keys are in `range`, in key order, like
    /// `BTreeMap::range` (but an empty or inverted range is just empty).
    /// `(Bound::Excluded(cursor), Bound::Unbounded)` continues after a cursor.
    pub fn range<Q, R>(&self, range: R) -> Iter<'_, K, V>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
        R: RangeBounds<Q>,
    {
        let (lo, hi) = encode_bounds(&range);
        Iter::new(Pager::new(self.handle, lo, hi, String::new(), true))
    }

    /// The keys in order (values are not read).
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = K> + '_ {
        Pager::new(
            self.handle,
            Bound::Unbounded,
            Bound::Unbounded,
            String::new(),
            false,
        )
        .map(|(k, _)| ordkey::decode(&k))
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Up to `limit` entries after the key `after` (from the start if
    /// `None`), in one host request: the page of an API that hands clients
    /// the last key as the cursor for the next page.
    pub fn page<Q>(&self, after: Option<&Q>, limit: usize) -> Vec<(K, V)>
    where
        K: Borrow<Q>,
        Q: Serialize + ?Sized,
    {
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(ordkey::encode(a)));
        let mut pager = Pager::new(self.handle, from, Bound::Unbounded, String::new(), true);
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        pager
            .fetch(false, limit)
            .into_iter()
            .map(|e| entry(self.handle, e))
            .collect()
    }

    /// All entries in key order, in one host request.
    pub fn entries(&self) -> Vec<(K, V)> {
        let mut pager = Pager::new(
            self.handle,
            Bound::Unbounded,
            Bound::Unbounded,
            String::new(),
            true,
        );
        pager
            .fetch(false, u32::MAX)
            .into_iter()
            .map(|e| entry(self.handle, e))
            .collect()
    }
}

impl<K, V> SortedMap<K, V>
where
    K: Serialize + DeserializeOwned + Borrow<str>,
    V: StoreValue,
{
    /// The entries whose (string) keys start with `prefix`, in key order.
    pub fn prefix(&self, prefix: &str) -> Iter<'_, K, V> {
        Iter::new(Pager::new(
            self.handle,
            Bound::Unbounded,
            Bound::Unbounded,
            prefix.to_owned(),
            true,
        ))
    }
}

impl<K, V> SortedMap<K, V>
where
    K: Serialize + DeserializeOwned,
    V: StoreValue + Collection,
{
    /// The nested collection at `key`, created empty if absent. Replicas that
    /// create it concurrently share one merged collection.
    pub fn ensure(&mut self, key: K) -> V {
        let key = ordkey::encode(&key);
        V::from_handle(expect_response!(
            host::call(HostRequest::MapEnsure { map: self.handle, key: &key, kind: V::KIND }),
            HostResponse::Handle(h) => h
        ))
    }
}

fn entry<K: DeserializeOwned, V: StoreValue>(
    map: Handle,
    (k, v): (String, Option<SlotOut>),
) -> (K, V) {
    let v = v.unwrap_or_else(|| host::corrupt("the host answered a key without its value".into()));
    (
        ordkey::decode(&k),
        V::__from_slot_at(v, SlotAt::Map(map, k)),
    )
}

pub(crate) fn encode_bounds<Q: Serialize + ?Sized>(
    range: &impl RangeBounds<Q>,
) -> (Bound<String>, Bound<String>) {
    let enc = |b: Bound<&Q>| b.map(|q| ordkey::encode(q));
    (enc(range.start_bound()), enc(range.end_bound()))
}

/// Iterator over (a range of) a [`SortedMap`] in key order; fetches
/// entries from the host a page at a time. Double-ended: `.rev()` walks
/// from the largest key.
pub struct Iter<'a, K, V> {
    pager: Pager,
    _map: PhantomData<Borrowed<'a, (K, V)>>,
}

/// Ties an iterator to a borrow of its collection, yielding `T`s.
pub(crate) type Borrowed<'a, T> = (&'a (), fn() -> T);

impl<K, V> Iter<'_, K, V> {
    fn new(pager: Pager) -> Self {
        Self {
            pager,
            _map: PhantomData,
        }
    }
}

impl<K: DeserializeOwned, V: StoreValue> Iterator for Iter<'_, K, V> {
    type Item = (K, V);
    fn next(&mut self) -> Option<(K, V)> {
        let handle = self.pager.handle;
        self.pager.next().map(|e| entry(handle, e))
    }
}

impl<K: DeserializeOwned, V: StoreValue> DoubleEndedIterator for Iter<'_, K, V> {
    fn next_back(&mut self) -> Option<(K, V)> {
        let handle = self.pager.handle;
        self.pager.next_back().map(|e| entry(handle, e))
    }
}

/// First page size of an iteration; pages then double up to [`MAX_PAGE`].
const FIRST_PAGE: u32 = 16;
/// Largest page an iteration fetches at once.
const MAX_PAGE: u32 = 512;

/// Pages through the keys (and values) of a map in `lo..hi` from both ends.
/// Every fetch asks for what lies strictly between the keys fetched so
/// far, so the two ends never overlap.
pub(crate) struct Pager {
    pub(crate) handle: Handle,
    lo: Bound<String>,
    hi: Bound<String>,
    prefix: String,
    values: bool,
    /// Fetched from the low end, ascending.
    front: VecDeque<(String, Option<SlotOut>)>,
    /// Fetched from the high end, descending.
    back: VecDeque<(String, Option<SlotOut>)>,
    /// Nothing is left between `lo` and `hi` on the host.
    drained: bool,
    page: u32,
}

impl Pager {
    pub(crate) fn new(
        handle: Handle,
        lo: Bound<String>,
        hi: Bound<String>,
        prefix: String,
        values: bool,
    ) -> Self {
        Self {
            handle,
            lo,
            hi,
            prefix,
            values,
            front: VecDeque::new(),
            back: VecDeque::new(),
            drained: false,
            page: FIRST_PAGE,
        }
    }

    /// One request for up to `limit` entries between `lo` and `hi`, from
    /// the high end if `reverse`.
    pub(crate) fn fetch(&mut self, reverse: bool, limit: u32) -> Vec<(String, Option<SlotOut>)> {
        let resp = host::call(HostRequest::MapRange {
            map: self.handle,
            from: self.lo.as_ref().map(String::as_str),
            to: self.hi.as_ref().map(String::as_str),
            prefix: &self.prefix,
            limit,
            reverse,
            values: self.values,
        });
        let got: Vec<(String, Option<SlotOut>)> = match resp {
            HostResponse::Entries(e) if self.values => {
                e.into_iter().map(|(k, v)| (k, Some(v))).collect()
            }
            HostResponse::Keys(k) if !self.values => k.into_iter().map(|k| (k, None)).collect(),
            other => host::corrupt(format!("unexpected host answer {other:?}")),
        };
        if got.len() < limit as usize {
            self.drained = true;
        }
        if let Some((last, _)) = got.last() {
            let edge = Bound::Excluded(last.clone());
            if reverse {
                self.hi = edge;
            } else {
                self.lo = edge;
            }
        }
        got
    }

    fn refill(&mut self, reverse: bool) {
        if self.drained {
            return;
        }
        let page = self.page;
        self.page = (page * 2).min(MAX_PAGE);
        let got = self.fetch(reverse, page);
        if reverse {
            self.back.extend(got);
        } else {
            self.front.extend(got);
        }
    }
}

impl Iterator for Pager {
    type Item = (String, Option<SlotOut>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.front.is_empty() {
            self.refill(false);
        }
        self.front.pop_front().or_else(|| self.back.pop_back())
    }
}

impl DoubleEndedIterator for Pager {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.back.is_empty() {
            self.refill(true);
        }
        self.back.pop_front().or_else(|| self.front.pop_back())
    }
}
