//! Ordered reads of maps: the keys of a key range, in order, a page at a
//! time (`SortedMap`, `SortedSet`).
//!
//! Loro maps promise no key order, so the engine sorts: by the keys' bytes
//! (`str` order), the same on every replica and natively. The SDK encodes
//! keys so that this order is the order of the app's key type.
//!
//! Cost: the first range read of a map in a call collects and sorts its
//! keys (no values: a value is converted only when it is in a page), then
//! keeps them for the rest of the call, updated by the call's own writes,
//! so every further page is a binary search plus the page. Nothing else
//! changes a map during a call.

use std::collections::HashMap;
use std::ops::Bound;

use loro::{ContainerID, ContainerTrait, InternalString, LoroMap};
use mero_abi::host::{HostRequest, SlotIn};

/// One range read: keys in `from..to` that start with `prefix`, at most
/// `limit` of them, from the low end (or the high end if `reverse`).
pub(crate) struct RangeQuery<'a> {
    pub from: Bound<&'a str>,
    pub to: Bound<&'a str>,
    pub prefix: &'a str,
    pub limit: usize,
    pub reverse: bool,
}

/// The sorted keys of the attached maps read by range this call.
#[derive(Default)]
pub(crate) struct SortedKeys {
    maps: HashMap<ContainerID, Vec<InternalString>>,
}

impl SortedKeys {
    /// The keys `q` asks for, in the order asked.
    pub fn range(&mut self, m: &LoroMap, q: &RangeQuery<'_>) -> Vec<String> {
        if !m.is_attached() {
            // A detached map has no stable identity to cache it under; it
            // is only as big as what the call put in it.
            return select(&sorted_keys(m), q);
        }
        let keys = self.maps.entry(m.id()).or_insert_with(|| sorted_keys(m));
        if keys.len() != m.len() {
            // Only if the map went away with its parent (deleted with a
            // list item or a map entry): its handle now shows nothing.
            *keys = sorted_keys(m);
        }
        select(keys, q)
    }

    /// Called before every request: forgets every cached map unless `req`
    /// is known to change no map's keys, or to change them only as its own
    /// hook ([`Self::inserted`] ...) reports. So a request added later, or a
    /// collection copied into state, can never leave a stale cache.
    pub fn before(&mut self, req: &HostRequest<'_>) {
        use HostRequest as R;
        let tracked = matches!(
            req,
            R::MapInsert {
                value: SlotIn::Value(_),
                ..
            } | R::MapRemove { .. }
                | R::MapClear { .. }
                | R::MapEnsure { .. }
                | R::ListInsert {
                    value: SlotIn::Value(_),
                    ..
                }
                | R::ListSet {
                    value: SlotIn::Value(_),
                    ..
                }
                | R::ListDelete { .. }
                | R::ListMove { .. }
                | R::CounterAdd { .. }
                | R::TextInsert { .. }
                | R::TextDelete { .. }
                | R::TreeCreate { .. }
                | R::TreeMove { .. }
                | R::TreeDelete { .. }
                | R::RootValueSet { .. }
                | R::Emit { .. }
                | R::PrivateSet { .. }
        );
        if req.mutates_state() && !tracked && !self.maps.is_empty() {
            self.maps.clear();
        }
    }

    /// `key` is now present in `m`.
    pub fn inserted(&mut self, m: &LoroMap, key: &str) {
        if let Some(keys) = self.cached(m)
            && let Err(i) = keys.binary_search_by(|k| k.as_str().cmp(key))
        {
            keys.insert(i, InternalString::from(key));
        }
    }

    /// `key` is no longer present in `m`.
    pub fn removed(&mut self, m: &LoroMap, key: &str) {
        if let Some(keys) = self.cached(m)
            && let Ok(i) = keys.binary_search_by(|k| k.as_str().cmp(key))
        {
            keys.remove(i);
        }
    }

    /// `m` is now empty.
    pub fn cleared(&mut self, m: &LoroMap) {
        if let Some(keys) = self.cached(m) {
            keys.clear();
        }
    }

    fn cached(&mut self, m: &LoroMap) -> Option<&mut Vec<InternalString>> {
        if self.maps.is_empty() || !m.is_attached() {
            return None;
        }
        self.maps.get_mut(&m.id())
    }
}

fn sorted_keys(m: &LoroMap) -> Vec<InternalString> {
    let mut keys: Vec<InternalString> = m.keys().collect();
    // Usually already sorted (Loro keeps larger maps in a BTreeMap), which
    // the sort detects in linear time; nothing relies on it.
    keys.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    keys
}

fn select(keys: &[InternalString], q: &RangeQuery<'_>) -> Vec<String> {
    let (mut lo, mut hi) = (q.from, q.to);
    let prefix_end = (!q.prefix.is_empty())
        .then(|| successor(q.prefix))
        .flatten();
    if !q.prefix.is_empty() {
        lo = max_lower(lo, Bound::Included(q.prefix));
    }
    if let Some(end) = &prefix_end {
        hi = min_upper(hi, Bound::Excluded(end.as_str()));
    }
    let start = keys.partition_point(|k| match lo {
        Bound::Included(b) => k.as_str() < b,
        Bound::Excluded(b) => k.as_str() <= b,
        Bound::Unbounded => false,
    });
    let end = keys.partition_point(|k| match hi {
        Bound::Included(b) => k.as_str() <= b,
        Bound::Excluded(b) => k.as_str() < b,
        Bound::Unbounded => true,
    });
    if start >= end {
        return Vec::new();
    }
    let span = &keys[start..end];
    let n = q.limit.min(span.len());
    let picked: Vec<&InternalString> = if q.reverse {
        span.iter().rev().take(n).collect()
    } else {
        span.iter().take(n).collect()
    };
    // Without a successor (a prefix of only `char::MAX`s) the range is open
    // above, which is still exact: no key above such a prefix lacks it.
    picked.into_iter().map(|k| k.as_str().to_owned()).collect()
}

/// The smallest string greater than every string starting with `p`, if
/// there is one.
fn successor(p: &str) -> Option<String> {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn max_lower<'a>(a: Bound<&'a str>, b: Bound<&'a str>) -> Bound<&'a str> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x), Bound::Included(y)) => Bound::Included(x.max(y)),
        (Bound::Excluded(x), Bound::Excluded(y)) => Bound::Excluded(x.max(y)),
        (Bound::Included(i), Bound::Excluded(e)) | (Bound::Excluded(e), Bound::Included(i)) => {
            if i > e {
                Bound::Included(i)
            } else {
                Bound::Excluded(e)
            }
        }
    }
}

fn min_upper<'a>(a: Bound<&'a str>, b: Bound<&'a str>) -> Bound<&'a str> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x), Bound::Included(y)) => Bound::Included(x.min(y)),
        (Bound::Excluded(x), Bound::Excluded(y)) => Bound::Excluded(x.min(y)),
        (Bound::Included(i), Bound::Excluded(e)) | (Bound::Excluded(e), Bound::Included(i)) => {
            if i < e {
                Bound::Included(i)
            } else {
                Bound::Excluded(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ks: &[&str]) -> Vec<InternalString> {
        let mut v: Vec<InternalString> = ks.iter().map(|k| InternalString::from(*k)).collect();
        v.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        v
    }

    fn q<'a>(
        from: Bound<&'a str>,
        to: Bound<&'a str>,
        prefix: &'a str,
        limit: usize,
        reverse: bool,
    ) -> RangeQuery<'a> {
        RangeQuery {
            from,
            to,
            prefix,
            limit,
            reverse,
        }
    }

    #[test]
    fn ranges_prefixes_and_pages() {
        use Bound::*;
        let ks = keys(&[
            "b",
            "a",
            "ab",
            "abc",
            "b\u{0}",
            "c",
            "\u{10FFFF}",
            "\u{10FFFF}x",
        ]);
        assert_eq!(
            select(&ks, &q(Unbounded, Unbounded, "", 3, false)),
            ["a", "ab", "abc"]
        );
        assert_eq!(
            select(&ks, &q(Excluded("ab"), Included("c"), "", 9, false)),
            ["abc", "b", "b\u{0}", "c"]
        );
        assert_eq!(
            select(&ks, &q(Unbounded, Excluded("c"), "", 2, true)),
            ["b\u{0}", "b"]
        );
        assert_eq!(
            select(&ks, &q(Unbounded, Unbounded, "ab", 9, false)),
            ["ab", "abc"]
        );
        assert_eq!(
            select(&ks, &q(Unbounded, Unbounded, "ab", 9, true)),
            ["abc", "ab"]
        );
        assert_eq!(
            select(&ks, &q(Excluded("ab"), Unbounded, "ab", 9, false)),
            ["abc"]
        );
        assert_eq!(
            select(&ks, &q(Unbounded, Unbounded, "\u{10FFFF}", 9, false)),
            ["\u{10FFFF}", "\u{10FFFF}x"]
        );
        assert_eq!(
            select(&ks, &q(Unbounded, Unbounded, "\u{10FFFF}", 9, true)),
            ["\u{10FFFF}x", "\u{10FFFF}"]
        );
        // An empty or inverted range is empty rather than an error.
        assert!(select(&ks, &q(Included("c"), Excluded("a"), "", 9, false)).is_empty());
        assert!(select(&ks, &q(Included("a"), Excluded("a"), "", 9, false)).is_empty());
    }

    #[test]
    fn successors() {
        assert_eq!(successor("ab").as_deref(), Some("ac"));
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10FFFF}"), None);
    }

    #[test]
    fn the_cache_follows_the_calls_writes() {
        let doc = loro::LoroDoc::new();
        let m = doc.get_map("m");
        for k in ["c", "a", "b"] {
            m.insert(k, 1).unwrap();
        }
        let mut sk = SortedKeys::default();
        let all = q(Bound::Unbounded, Bound::Unbounded, "", 9, false);
        assert_eq!(sk.range(&m, &all), ["a", "b", "c"]);
        m.insert("aa", 1).unwrap();
        sk.inserted(&m, "aa");
        sk.inserted(&m, "b");
        m.delete("c").unwrap();
        sk.removed(&m, "c");
        assert_eq!(sk.range(&m, &all), ["a", "aa", "b"]);
        assert_eq!(
            sk.range(&m, &all),
            sorted_keys(&m)
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
        );
        m.clear().unwrap();
        sk.cleared(&m);
        assert!(sk.range(&m, &all).is_empty());
    }
}
