//! Counter on the native test host: exact over i64, overflow behaviour,
//! and convergence of concurrent adds (near the limits too).

use mero_sdk::app;
use mero_sdk::collections::{Counter, CounterOverflow, UnorderedMap, Vector};
use mero_sdk::testing::{Network, Replica};
use serde_json::json;

#[app::state]
pub struct Tally {
    total: Counter,
    per_key: UnorderedMap<String, Counter>,
    list: Vector<Counter>,
}

#[app::logic]
impl Tally {
    #[app::init]
    pub fn init(start: i64) -> Self {
        let mut total = Counter::new();
        total.add(start);
        Self {
            total,
            per_key: UnorderedMap::new(),
            list: Vector::new(),
        }
    }

    pub fn add(&mut self, by: i64) -> i64 {
        self.total.add(by);
        self.total.value()
    }

    pub fn try_add(&mut self, by: i64) -> app::Result<i64> {
        if let Err(e) = self.total.try_add(by) {
            app::bail!("{e}");
        }
        Ok(self.total.value())
    }

    pub fn bump(&mut self, key: String, by: i64) {
        self.per_key.ensure(key).add(by);
    }

    pub fn value(&self) -> i64 {
        self.total.value()
    }

    pub fn exact(&self) -> String {
        self.total.total().to_string()
    }

    pub fn key(&self, key: String) -> i64 {
        self.per_key.get(&key).map_or(0, |c| c.value())
    }
}

#[test]
fn adds_are_exact_past_f64_precision() {
    let mut r = Replica::<Tally>::new(0);
    r.init(json!({"start": 1i64 << 53})).unwrap();
    assert_eq!(
        r.execute("add", json!({"by": 1})).unwrap(),
        json!((1i64 << 53) + 1)
    );
    assert_eq!(
        r.execute("add", json!({"by": 1})).unwrap(),
        json!((1i64 << 53) + 2)
    );
    r.execute("add", json!({"by": i64::MAX - (1i64 << 53) - 2}))
        .unwrap();
    assert_eq!(r.execute("value", json!({})).unwrap(), json!(i64::MAX));
    r.execute("add", json!({"by": i64::MIN})).unwrap();
    assert_eq!(r.execute("value", json!({})).unwrap(), json!(-1));
}

#[test]
fn an_add_leaving_i64_fails_the_call_and_try_add_reports_it() {
    let mut r = Replica::<Tally>::new(0);
    r.init(json!({"start": i64::MAX - 1})).unwrap();
    let before = r.state_json();
    let err = r.execute("add", json!({"by": 2})).unwrap_err();
    assert!(err.message.contains("overflow"), "{err:?}");
    assert_eq!(r.state_json(), before, "the failed call left no trace");
    let refused = r.execute("try_add", json!({"by": 2})).unwrap_err();
    assert!(refused.message.contains("counter overflow"), "{refused:?}");
    assert_eq!(
        r.execute("try_add", json!({"by": 1})).unwrap(),
        json!(i64::MAX)
    );
    let e = CounterOverflow { value: 1, by: 2 };
    assert!(e.to_string().contains("1 + 2"));
    // The minimum side too.
    let mut r = Replica::<Tally>::new(0);
    r.init(json!({"start": i64::MIN})).unwrap();
    assert!(r.execute("add", json!({"by": -1})).is_err());
    assert_eq!(
        r.execute("add", json!({"by": 1})).unwrap(),
        json!(i64::MIN + 1)
    );
}

#[test]
fn concurrent_adds_near_the_limit_converge_and_saturate() {
    for seed in 0..10u64 {
        let mut net = Network::<Tally>::with_init(3, json!({"start": i64::MAX - 100}));
        // Each add is in range where it runs; together they pass i64::MAX.
        for i in 0..3 {
            net.replica(i).execute("add", json!({"by": 60})).unwrap();
        }
        net.deliver_shuffled(seed);
        net.assert_converged();
        let exact = i128::from(i64::MAX) + 80;
        for i in 0..3 {
            let r = net.replica(i);
            assert_eq!(
                r.execute("exact", json!({})).unwrap(),
                json!(exact.to_string())
            );
            assert_eq!(
                r.execute("value", json!({})).unwrap(),
                json!(i64::MAX),
                "saturates"
            );
            assert!(
                r.execute("add", json!({"by": 1})).is_err(),
                "further out is refused"
            );
        }
        // Back towards the range is allowed, and converges.
        net.replica(1).execute("add", json!({"by": -50})).unwrap();
        net.replica(2).execute("add", json!({"by": -40})).unwrap();
        net.deliver_shuffled(seed + 1);
        net.assert_converged();
        assert_eq!(
            net.replica(0).execute("value", json!({})).unwrap(),
            json!(i64::MAX - 10)
        );
    }
}

#[test]
fn many_concurrent_adds_lose_nothing() {
    let mut net = Network::<Tally>::with_init(4, json!({"start": 0}));
    let mut expected = 0i64;
    let mut rng = fastrand::Rng::with_seed(3);
    for round in 0..5 {
        for i in 0..4 {
            for _ in 0..5 {
                let by = rng.i64(-(1 << 60)..(1 << 60));
                expected += by;
                net.replica(i).execute("add", json!({"by": by})).unwrap();
                net.replica(i)
                    .execute("bump", json!({"key": "k", "by": 3}))
                    .unwrap();
            }
        }
        net.deliver_shuffled(round);
        net.assert_converged();
    }
    for i in 0..4 {
        assert_eq!(
            net.replica(i).execute("value", json!({})).unwrap(),
            json!(expected)
        );
        assert_eq!(
            net.replica(i).execute("key", json!({"key": "k"})).unwrap(),
            json!(4 * 5 * 5 * 3)
        );
    }
}

#[test]
fn counters_nest_and_store_like_other_collections() {
    let mut r = Replica::<Tally>::new(0);
    r.init(json!({"start": 5})).unwrap();
    r.mutate(|s| {
        let mut c = Counter::new();
        c.add(7);
        s.list.push(c);
        let mut c2 = Counter::new();
        c2.add(-2);
        s.per_key.insert("a".into(), c2);
        // Storing a counter over another sets its value.
        let mut c3 = Counter::new();
        c3.add(40);
        s.per_key.insert("a".into(), c3);
        Ok(())
    })
    .unwrap();
    r.view(|s| {
        assert_eq!(s.list.get(0).unwrap().value(), 7);
        assert_eq!(s.per_key.get("a").unwrap().value(), 40);
        assert_eq!(s.total.value(), 5);
    })
    .unwrap();
    let state = r.state_json();
    let items = state["total"]
        .as_array()
        .expect("a counter exports its per-replica totals");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["total"], json!(5));
}
