//! Light contexts (`merod` processes): a replica idle for
//! `store.idle_evict_secs` goes cold; listing it, its sync status and
//! peers' digests are answered without loading it; a call or a delta loads
//! it back with the same state; a restart starts such contexts cold.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{NodeProc, build_app, init_home, merod_config, wait_converged, wait_for};

/// Initializes a home whose idle contexts go cold after one second.
fn light_home(dir: &Path) {
    init_home(dir);
    let (ok, out) = merod_config(dir, &["set", "store.idle_evict_secs", "1"]);
    assert!(ok, "{out}");
}

/// The value of the metric `name` (without labels).
fn metric(node: &NodeProc, name: &str) -> u64 {
    let lines = node.metric_lines(|l| l.split_whitespace().next() == Some(name));
    let line = lines.first().unwrap_or_else(|| panic!("no metric {name}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Waits until no replica of `node` is in memory.
fn wait_cold(node: &NodeProc) {
    wait_for(Duration::from_secs(30), || {
        (metric(node, "mero_contexts_resident") == 0).then_some(())
    })
    .expect("idle contexts go cold");
}

/// What a context reports without its replica: listing and sync status
/// (the per-peer rows aside, which move with time).
fn report(node: &NodeProc, ctx: &str) -> (Value, Value) {
    let mut sync = node.sync(ctx);
    sync.as_object_mut().unwrap().remove("peers");
    (node.get(&format!("/admin/contexts/{ctx}")), sync)
}

/// [`report`] without what a restart resets (when the heads last changed).
fn restarted((info, mut sync): (Value, Value)) -> (Value, Value) {
    sync.as_object_mut().unwrap().remove("headsChangedAtMs");
    (info, sync)
}

#[test]
fn idle_contexts_go_cold_and_answer_as_before() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let dir = tempfile::tempdir().unwrap();
    light_home(dir.path());
    let a = NodeProc::start(dir.path());
    let app = a.install(&wasm);
    let contexts: Vec<String> = (0..20).map(|_| a.create_context(&app)).collect();
    for (i, ctx) in contexts.iter().enumerate() {
        for k in 0..5 {
            a.execute(
                ctx,
                "set",
                json!({"key": format!("k{k}"), "value": i.to_string()}),
            );
        }
    }
    let reports: Vec<_> = contexts.iter().map(|c| report(&a, c)).collect();
    let states: Vec<Value> = contexts.iter().map(|c| a.state(c)).collect();

    wait_cold(&a);
    let loads = metric(&a, "mero_context_loads_total");
    for (ctx, before) in contexts.iter().zip(&reports) {
        assert_eq!(
            &report(&a, ctx),
            before,
            "a cold context reports as a loaded one"
        );
    }
    assert_eq!(
        metric(&a, "mero_context_loads_total"),
        loads,
        "listing and status do not load"
    );
    for (ctx, state) in contexts.iter().zip(&states) {
        assert_eq!(&a.state(ctx), state);
    }
    assert_eq!(
        metric(&a, "mero_context_loads_total"),
        loads + contexts.len() as u64,
        "reading the state loads each context once"
    );

    // A restart starts them cold: nothing is loaded until it is used.
    wait_cold(&a);
    a.kill();
    let a = NodeProc::start(dir.path());
    assert_eq!(metric(&a, "mero_contexts_resident"), 0);
    assert_eq!(metric(&a, "mero_context_loads_total"), 0);
    for (ctx, before) in contexts.iter().zip(&reports) {
        assert_eq!(restarted(report(&a, ctx)), restarted(before.clone()));
    }
    // A write to a cold context loads it; it goes cold again with its new
    // heads, and answers them after another restart.
    let ctx = &contexts[3];
    a.execute(ctx, "set", json!({"key": "late", "value": "1"}));
    let after = report(&a, ctx);
    assert_ne!(after, reports[3]);
    wait_cold(&a);
    assert_eq!(report(&a, ctx), after);
    a.kill();
    let a = NodeProc::start(dir.path());
    assert_eq!(metric(&a, "mero_contexts_resident"), 0);
    assert_eq!(restarted(report(&a, ctx)), restarted(after));
    assert_eq!(a.query(ctx, "get", json!({"key": "late"})), json!("1"));
}

#[test]
fn cold_contexts_still_replicate() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    light_home(dirs[0].path());
    light_home(dirs[1].path());
    let a = NodeProc::start(dirs[0].path());
    let b = NodeProc::start_with(dirs[1].path(), &[&a.p2p]);
    let nodes = vec![a, b];
    let (ctx, _) = support::share_context(&nodes, &wasm);
    let (a, b) = (&nodes[0], &nodes[1]);
    wait_cold(a);
    wait_cold(b);
    // Both stay cold while they compare digests.
    let loads = (
        metric(a, "mero_context_loads_total"),
        metric(b, "mero_context_loads_total"),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        (
            metric(a, "mero_context_loads_total"),
            metric(b, "mero_context_loads_total"),
        ),
        loads,
        "equal digests are answered cold"
    );
    // A write on A reaches cold B, and the other way round.
    support::replicates_both_ways(a, b, &ctx);
    wait_cold(a);
    wait_cold(b);
    a.execute(&ctx, "set", json!({"key": "again", "value": "4"}));
    wait_converged(&[a, b], &ctx, Duration::from_secs(30));
    assert_eq!(b.query(&ctx, "get", json!({"key": "again"})), json!("4"));
}
