//! SortedMap and SortedSet on the native test host: order, ranges,
//! prefixes, pages, nesting, and convergence of concurrent inserts.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use mero_sdk::app;
use mero_sdk::collections::{LwwRegister, SortedMap, SortedSet, UnorderedSet};
use mero_sdk::testing::{Network, Replica};
use serde_json::json;

#[app::state]
pub struct Index {
    nums: SortedMap<i64, String>,
    names: SortedMap<String, LwwRegister<u32>>,
    pairs: SortedMap<(u8, String), i64>,
    groups: SortedMap<u16, UnorderedSet<String>>,
    tags: SortedSet<String>,
    ids: SortedSet<u64>,
}

#[app::logic]
impl Index {
    #[app::init]
    pub fn init() -> Self {
        Self {
            nums: SortedMap::new(),
            names: SortedMap::new(),
            pairs: SortedMap::new(),
            groups: SortedMap::new(),
            tags: SortedSet::new(),
            ids: SortedSet::new(),
        }
    }

    pub fn put(&mut self, n: i64, s: String) {
        self.nums.insert(n, s);
    }

    pub fn tag(&mut self, t: String) -> bool {
        self.tags.insert(t)
    }

    pub fn nums(&self) -> Vec<i64> {
        self.nums.keys().collect()
    }

    pub fn tags(&self) -> Vec<String> {
        self.tags.iter().collect()
    }
}

fn index() -> Replica<Index> {
    let mut r = Replica::new(0);
    r.init(json!({})).unwrap();
    r
}

#[test]
fn keys_iterate_in_the_key_types_order() {
    let mut r = index();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut model = BTreeMap::new();
    let mut specials = vec![
        i64::MIN,
        i64::MAX,
        -1,
        0,
        1,
        1 << 53,
        (1 << 53) + 1,
        -(1 << 53),
    ];
    specials.extend((0..300).map(|_| rng.i64(..) >> rng.u32(0..63)));
    r.mutate(|s| {
        for n in &specials {
            s.nums.insert(*n, n.to_string());
            model.insert(*n, n.to_string());
        }
        Ok(())
    })
    .unwrap();
    let want: Vec<(i64, String)> = model.clone().into_iter().collect();
    r.view(|s| {
        assert_eq!(s.nums.len(), want.len());
        assert_eq!(s.nums.entries(), want);
        assert_eq!(s.nums.iter().collect::<Vec<_>>(), want);
        let rev: Vec<_> = want.iter().rev().cloned().collect();
        assert_eq!(s.nums.iter().rev().collect::<Vec<_>>(), rev);
        assert_eq!(s.nums.first(), want.first().cloned());
        assert_eq!(s.nums.last(), want.last().cloned());
        assert_eq!(
            s.nums.get(&i64::MIN).as_deref(),
            Some(i64::MIN.to_string().as_str())
        );
        // Ranges of every shape agree with BTreeMap's.
        for _ in 0..200 {
            let a = specials[rng.usize(..specials.len())].saturating_add(rng.i64(-1..=1));
            let b = specials[rng.usize(..specials.len())].saturating_add(rng.i64(-1..=1));
            let bound = |x: i64, k: u8| match k {
                0 => Bound::Included(x),
                1 => Bound::Excluded(x),
                _ => Bound::Unbounded,
            };
            let range = (bound(a, rng.u8(0..3)), bound(b, rng.u8(0..3)));
            let got: Vec<_> = s.nums.range(range).collect();
            let empty = match range {
                (
                    Bound::Included(x) | Bound::Excluded(x),
                    Bound::Included(y) | Bound::Excluded(y),
                ) => x > y || (x == y && range != (Bound::Included(x), Bound::Included(y))),
                _ => false,
            };
            let expected: Vec<_> = if empty {
                Vec::new()
            } else {
                model.range(range).map(|(k, v)| (*k, v.clone())).collect()
            };
            assert_eq!(got, expected, "{range:?}");
            let back: Vec<_> = s.nums.range(range).rev().collect();
            assert_eq!(
                back,
                expected.into_iter().rev().collect::<Vec<_>>(),
                "rev {range:?}"
            );
        }
    })
    .unwrap();
}

#[test]
fn iterators_page_from_both_ends_without_overlap() {
    let mut r = index();
    r.mutate(|s| {
        for i in 0..1000i64 {
            s.nums.insert(i, String::new());
        }
        Ok(())
    })
    .unwrap();
    r.view(|s| {
        // Alternating ends, past several pages each, meets exactly once.
        let mut it = s.nums.keys();
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        while let Some(k) = it.next() {
            lo.push(k);
            if lo.len() % 3 == 0 {
                match it.next_back() {
                    Some(k) => hi.push(k),
                    None => break,
                }
            }
        }
        hi.reverse();
        lo.extend(hi);
        assert_eq!(lo, (0..1000).collect::<Vec<_>>());
        assert_eq!(s.nums.range(990..).count(), 10);
        assert_eq!(
            s.nums.range(..=5).rev().map(|(k, _)| k).collect::<Vec<_>>(),
            [5, 4, 3, 2, 1, 0]
        );
        // Pages with a cursor cover everything once.
        let mut cursor = None;
        let mut seen = Vec::new();
        loop {
            let page = s.nums.page(cursor.as_ref(), 64);
            if page.is_empty() {
                break;
            }
            cursor = page.last().map(|(k, _)| *k);
            seen.extend(page.into_iter().map(|(k, _)| k));
        }
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
    })
    .unwrap();
}

#[test]
fn string_keys_prefixes_and_natural_json() {
    let mut r = index();
    r.mutate(|s| {
        for (i, name) in ["bob", "ann", "anna", "an", "b", "annex", "zed", "Ann", "é"]
            .iter()
            .enumerate()
        {
            s.names
                .insert((*name).to_owned(), LwwRegister::new(i as u32));
        }
        s.pairs.insert((2, "x".into()), 1);
        s.pairs.insert((10, "a".into()), 2);
        s.pairs.insert((2, String::new()), 3);
        s.ids.insert(42);
        Ok(())
    })
    .unwrap();
    r.view(|s| {
        let names: Vec<String> = s.names.keys().collect();
        assert_eq!(
            names,
            ["Ann", "an", "ann", "anna", "annex", "b", "bob", "zed", "é"]
        );
        let ann: Vec<String> = s.names.prefix("ann").map(|(k, _)| k).collect();
        assert_eq!(ann, ["ann", "anna", "annex"]);
        let ann_rev: Vec<String> = s.names.prefix("ann").rev().map(|(k, _)| k).collect();
        assert_eq!(ann_rev, ["annex", "anna", "ann"]);
        assert_eq!(s.names.prefix("q").count(), 0);
        assert_eq!(s.names.prefix("").count(), 9);
        let pairs: Vec<_> = s.pairs.iter().map(|(k, _)| k).collect();
        assert_eq!(
            pairs,
            [(2, String::new()), (2, "x".into()), (10, "a".into())]
        );
        let two: Vec<_> = s
            .pairs
            .range((2, String::new())..(3, String::new()))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(two, [3, 1]);
    })
    .unwrap();
    let state = r.state_json();
    assert!(
        state["names"].get("annex").is_some(),
        "string keys read as themselves: {state}"
    );
    assert_eq!(state["ids"], json!({"00000000000000000042": true}));
}

#[test]
fn values_nest_and_registers_write_through() {
    let mut r = index();
    r.mutate(|s| {
        s.groups.ensure(7).insert("x".into());
        s.groups.ensure(3).insert("y".into());
        s.groups.ensure(7).insert("z".into());
        s.names.insert("k".into(), LwwRegister::new(1));
        Ok(())
    })
    .unwrap();
    r.mutate(|s| {
        let (_, mut reg) = s.names.first().unwrap();
        reg.set(5);
        let mut g = s.groups.last().unwrap().1;
        g.insert("w".into());
        Ok(())
    })
    .unwrap();
    r.view(|s| {
        assert_eq!(*s.names.get("k").unwrap(), 5);
        let groups: Vec<(u16, Vec<String>)> =
            s.groups.iter().map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(
            groups,
            [
                (3, vec!["y".to_owned()]),
                (7, vec!["w".into(), "x".into(), "z".into()])
            ]
        );
    })
    .unwrap();
}

#[test]
fn sorted_sets_range_page_and_prefix() {
    let mut r = index();
    for t in ["rust", "crdt", "rss", "local-first", "crdt"] {
        r.execute("tag", json!({"t": t})).unwrap();
    }
    assert_eq!(
        r.execute("tags", json!({})).unwrap(),
        json!(["crdt", "local-first", "rss", "rust"])
    );
    r.mutate(|s| {
        for i in [5u64, 1, u64::MAX, 300] {
            s.ids.insert(i);
        }
        assert!(!s.ids.insert(5));
        assert!(s.ids.remove(&300));
        Ok(())
    })
    .unwrap();
    r.view(|s| {
        assert_eq!(s.tags.prefix("r").collect::<Vec<_>>(), ["rss", "rust"]);
        assert_eq!(
            s.tags.range("d".to_owned()..).collect::<Vec<_>>(),
            ["local-first", "rss", "rust"]
        );
        assert_eq!(s.tags.page(Some("local-first"), 1), ["rss"]);
        assert_eq!(s.tags.first().as_deref(), Some("crdt"));
        assert_eq!(s.ids.to_vec(), [1, 5, u64::MAX]);
        assert_eq!(s.ids.iter().rev().collect::<Vec<_>>(), [u64::MAX, 5, 1]);
        assert_eq!(s.ids.last(), Some(u64::MAX));
        assert!(s.ids.contains(&1));
        assert_eq!(s.ids.len(), 3);
    })
    .unwrap();
}

#[test]
fn concurrent_inserts_converge_to_one_order() {
    for seed in 0..10u64 {
        let mut net = Network::<Index>::new(3);
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut all = BTreeSet::new();
        for i in 0..3 {
            for _ in 0..20 {
                let n = rng.i64(-1000..1000);
                all.insert(n);
                net.replica(i)
                    .execute("put", json!({"n": n, "s": format!("r{i}")}))
                    .unwrap();
                net.replica(i)
                    .execute("tag", json!({"t": format!("t{}", rng.u8(..))}))
                    .unwrap();
            }
        }
        net.deliver_shuffled(seed);
        net.assert_converged();
        let want: Vec<i64> = all.into_iter().collect();
        let mut tags = None;
        for i in 0..3 {
            assert_eq!(
                net.replica(i).execute("nums", json!({})).unwrap(),
                json!(want),
                "seed {seed}"
            );
            let t = net.replica(i).execute("tags", json!({})).unwrap();
            let list: Vec<String> = serde_json::from_value(t.clone()).unwrap();
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
            assert!(tags.is_none_or(|prev| prev == t));
            tags = Some(t);
        }
    }
}
