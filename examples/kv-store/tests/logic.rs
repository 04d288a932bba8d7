//! kv-store's native tests: the same state engine the node runs, no WASM.

use kv_store::KvStore;
use mero_sdk::collections::UnorderedSet;
use mero_sdk::testing::{Network, Replica};
use serde_json::json;

fn store() -> Replica<KvStore> {
    let mut r = Replica::new(0);
    r.init(json!({})).unwrap();
    r
}

#[test]
fn set_get_remove_entries_len() {
    let mut r = store();
    r.execute("set", json!({"key": "a", "value": "1"})).unwrap();
    r.execute("set", json!({"key": "b", "value": "2"})).unwrap();
    assert_eq!(r.execute("get", json!({"key": "a"})).unwrap(), json!("1"));
    assert_eq!(r.execute("len", json!({})).unwrap(), json!(2));
    assert_eq!(
        r.execute("remove", json!({"key": "a"})).unwrap(),
        json!("1")
    );
    assert_eq!(r.execute("get", json!({"key": "a"})).unwrap(), json!(null));
    assert_eq!(
        r.execute("entries", json!({})).unwrap(),
        json!([["b", "2"]])
    );
    assert_eq!(r.execute("writes", json!({})).unwrap(), json!(3));
    let kinds: Vec<_> = r.emitted().iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["Inserted", "Inserted", "Removed"]);
    assert_eq!(r.emitted()[0].data, r#"{"key":"a","value":"1"}"#);
}

#[test]
fn typed_calls_work_too() {
    let mut r = store();
    r.mutate(|s| s.set("k".into(), "v".into())).unwrap();
    assert_eq!(r.view(|s| s.get("k")).unwrap(), Some("v".into()));
}

#[test]
fn app_errors_leave_no_trace() {
    let mut r = store();
    r.execute("set", json!({"key": "a", "value": "1"})).unwrap();
    let before = r.state_json();
    let err = r.execute("remove", json!({"key": "missing"})).unwrap_err();
    assert_eq!(err.kind, mero_sdk::__private::mero_abi::CallErrorKind::App);
    assert_eq!(err.message, "no such key: missing");
    let err = r
        .execute("set", json!({"key": "", "value": "x"}))
        .unwrap_err();
    assert_eq!(err.message, "key must not be empty");
    assert_eq!(r.state_json(), before);
    assert_eq!(r.emitted().len(), 1);
}

#[test]
fn bad_arguments_are_reported() {
    let mut r = store();
    for args in [
        json!({}),
        json!({"key": 1, "value": "x"}),
        json!({"key": "a", "value": "x", "extra": 1}),
        json!([1]),
    ] {
        let err = r.execute("set", args.clone()).unwrap_err();
        assert_eq!(
            err.kind,
            mero_sdk::__private::mero_abi::CallErrorKind::InvalidArgs,
            "{args}"
        );
    }
    let err = r.execute("nope", json!({})).unwrap_err();
    assert_eq!(
        err.kind,
        mero_sdk::__private::mero_abi::CallErrorKind::UnknownMethod
    );
}

#[test]
fn views_may_build_detached_collections() {
    let mut r = store();
    let before = r.state_json();
    let n = r
        .view(|s| {
            let _ = s.tags("x");
            let mut scratch: UnorderedSet<String> = UnorderedSet::new();
            scratch.insert("not state".into());
            scratch.len()
        })
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(r.state_json(), before);
}

#[test]
fn three_replicas_converge_under_shuffled_delivery() {
    for seed in 0..20u64 {
        let mut net = Network::<KvStore>::new(3);
        for round in 0..5 {
            for i in 0..3 {
                let key = format!("k{}", (round + i) % 4);
                net.replica(i)
                    .execute("set", json!({"key": key, "value": format!("r{i}-{round}")}))
                    .unwrap();
                net.replica(i)
                    .execute("tag", json!({"key": "shared", "tag": format!("t{i}")}))
                    .unwrap();
            }
            if round == 2 {
                net.replica(1).execute("remove", json!({"key": "k1"})).ok();
            }
        }
        net.deliver_shuffled(seed);
        net.assert_converged();
        let r = net.replica(0);
        // 15 sets plus the remove replica 1 made of its own k1: every write counts once.
        assert_eq!(
            r.execute("writes", json!({})).unwrap(),
            json!(16),
            "seed {seed}"
        );
        let tags = r.execute("tags", json!({"key": "shared"})).unwrap();
        assert_eq!(tags, json!(["t0", "t1", "t2"]), "seed {seed}");
    }
}

#[test]
fn concurrent_creation_of_the_same_nested_set_keeps_both_sides() {
    let mut net = Network::<KvStore>::new(2);
    net.replica(0)
        .execute("tag", json!({"key": "doc", "tag": "from-0"}))
        .unwrap();
    net.replica(1)
        .execute("tag", json!({"key": "doc", "tag": "from-1"}))
        .unwrap();
    net.deliver_shuffled(7);
    net.assert_converged();
    for i in 0..2 {
        assert_eq!(
            net.replica(i)
                .execute("tags", json!({"key": "doc"}))
                .unwrap(),
            json!(["from-0", "from-1"])
        );
    }
}
