//! Snapshot joins (`merod` processes): a joiner of a long history gets a
//! snapshot instead of every delta and ends with the same heads and state
//! as a joiner that replays, including after a member was removed (a key
//! rotation) in that history; it then writes and reads like any member,
//! and restarts from its checkpoint without the history below it.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use support::{
    NodeProc, build_app, init_home, merod_config, replicates_both_ways, wait_converged, wait_for,
};

const KV: &str = "examples/kv-store/Cargo.toml";

/// A node home whose joins ask for a snapshot from `min` deltas on (0: never).
fn home(dir: &Path, min: u64) {
    init_home(dir);
    let (ok, out) = merod_config(dir, &["set", "replica.snapshot_join_min", &min.to_string()]);
    assert!(ok, "{out}");
}

/// The value of the counter `name` (without labels), 0 if absent.
fn counter(node: &NodeProc, name: &str) -> u64 {
    node.metric_lines(|l| l.split_whitespace().next() == Some(name))
        .first()
        .map_or(0, |l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
}

#[test]
fn a_joiner_of_a_long_history_joins_from_a_snapshot_equal_to_replaying() {
    let wasm = build_app(KV);
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    home(dirs[0].path(), 0);
    let a = NodeProc::start(dirs[0].path());
    let app = a.install(&wasm);
    let ctx = a.create_context(&app);

    // A member writes, then is removed: the history holds a key rotation.
    home(dirs[1].path(), 0);
    let c = NodeProc::start_with(dirs[1].path(), &[&a.p2p]);
    c.join(&a.invite(&ctx));
    wait_converged(&[&a, &c], &ctx, Duration::from_secs(30));
    c.wait_app(&app);
    c.execute(&ctx, "set", json!({"key": "from-c", "value": "c"}));
    wait_converged(&[&a, &c], &ctx, Duration::from_secs(30));
    let ck = c.member_key(&ctx);
    let (status, body) = a.send(
        "DELETE",
        &format!("/admin/contexts/{ctx}/members/{ck}"),
        None,
        true,
    );
    assert_eq!(status, 200, "{body}");
    c.kill();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (a, ctx) = (&a, &ctx);
            s.spawn(move || {
                for k in 0..600 {
                    let args = json!({"key": format!("k{}", k % 300), "value": format!("{t}-{k}")});
                    a.execute(ctx, "set", args);
                }
            });
        }
    });
    let written = a.sync(&ctx)["deltas"].as_u64().unwrap();
    assert!(written > 2_400, "{written}");

    // B joins from a snapshot, D replays.
    home(dirs[2].path(), 1_000);
    let b = NodeProc::start_with(dirs[2].path(), &[&a.p2p]);
    home(dirs[3].path(), 0);
    let d = NodeProc::start_with(dirs[3].path(), &[&a.p2p]);
    b.join(&a.invite(&ctx));
    d.join(&a.invite(&ctx));
    wait_converged(&[&a, &b, &d], &ctx, Duration::from_secs(120));
    b.wait_app(&app);
    d.wait_app(&app);
    assert_eq!(
        counter(&b, "mero_snapshot_joins_total"),
        1,
        "B joined from a snapshot"
    );
    assert_eq!(counter(&d, "mero_snapshot_joins_total"), 0, "D replayed");
    assert!(counter(&a, "mero_snapshots_built_total") >= 1);
    // Every member as each node sees it ("me" aside: it differs by node).
    let members = |n: &NodeProc| {
        let mut v = n.get(&format!("/admin/contexts/{ctx}/members"));
        for m in v.as_array_mut().unwrap() {
            m.as_object_mut().unwrap().remove("me");
        }
        v
    };
    assert_eq!(members(&b), members(&a));
    assert_eq!(members(&b), members(&d));
    assert_eq!(b.query(&ctx, "get", json!({"key": "from-c"})), json!("c"));
    for n in [&b, &d] {
        assert_eq!(n.sync(&ctx)["deltas"], a.sync(&ctx)["deltas"]);
    }

    // The history below the snapshot arrives in the background: then B
    // holds every delta A holds, byte for byte (the joins at the end may be
    // in another order: each node applied them as they came).
    let len = a.sync(&ctx)["deltas"].as_u64().unwrap() as usize;
    wait_for(Duration::from_secs(60), || {
        (support::member::log_page(&b, &ctx, len).len() == len).then_some(())
    })
    .expect("the joiner fetched the history below its snapshot");
    let sorted = |n: &NodeProc| {
        let mut v: Vec<Vec<u8>> = support::member::log_page(n, &ctx, len)
            .iter()
            .map(|d| d.to_bytes())
            .collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&b), sorted(&a));

    // It writes and reads like any member.
    replicates_both_ways(&a, &b, &ctx);
    wait_converged(&[&a, &b, &d], &ctx, Duration::from_secs(30));

    // A restart loads it from its checkpoint (no history below it is stored).
    let state = b.state(&ctx);
    b.kill();
    let b = NodeProc::start_with(dirs[2].path(), &[&a.p2p]);
    assert_eq!(b.state(&ctx), state);
    replicates_both_ways(&b, &a, &ctx);
    wait_for(Duration::from_secs(30), || {
        (b.sync(&ctx)["digest"] == d.sync(&ctx)["digest"]).then_some(())
    })
    .expect("the replaying joiner follows too");
}
