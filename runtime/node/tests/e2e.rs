//! Acceptance: kv-store built with `cargo mero build`, run on a real `merod`,
//! called over HTTP, SIGKILLed, restarted, and found intact.

mod support;

use serde_json::json;
use support::{NodeProc, build_app};

#[test]
fn kv_store_survives_sigkill_and_restart() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::init_and_start(dir.path());

    assert_eq!(node.send("GET", "/health", None, false).0, 200);
    let (status, status_body) = node.send("GET", "/admin/node", None, true);
    assert_eq!(status, 200, "{status_body}");
    let identity = status_body["identity"].as_str().unwrap().to_owned();
    let app = node.install(&wasm);
    // Installing the same bytes again is idempotent.
    assert_eq!(node.install(&wasm), app);
    let ctx = node.create_context(&app);

    node.execute(&ctx, "set", json!({"key": "a", "value": "1"}));
    node.execute(&ctx, "set", json!({"key": "b", "value": "2"}));
    node.execute(&ctx, "set", json!({"key": "c", "value": "3"}));
    node.execute(&ctx, "tag", json!({"key": "a", "tag": "important"}));
    assert_eq!(
        node.execute(&ctx, "remove", json!({"key": "b"})),
        json!("2")
    );
    assert_eq!(node.query(&ctx, "get", json!({"key": "a"})), json!("1"));
    assert_eq!(node.query(&ctx, "get", json!({"key": "b"})), json!(null));
    assert_eq!(node.query(&ctx, "len", json!({})), json!(2));
    let state_before = node.state(&ctx);
    assert_eq!(state_before["items"], json!({"a": "1", "c": "3"}));

    node.kill();
    let node = NodeProc::start(dir.path());

    assert_eq!(node.state(&ctx), state_before);
    // Same node identity after the restart.
    assert_eq!(
        node.send("GET", "/admin/node", None, true).1["identity"],
        json!(identity)
    );
    assert_eq!(node.query(&ctx, "get", json!({"key": "a"})), json!("1"));
    assert_eq!(node.query(&ctx, "get", json!({"key": "c"})), json!("3"));
    assert_eq!(node.query(&ctx, "get", json!({"key": "b"})), json!(null));
    assert_eq!(
        node.query(&ctx, "tags", json!({"key": "a"})),
        json!(["important"])
    );
    assert_eq!(node.query(&ctx, "writes", json!({})), json!(4));
    // And it keeps working after the restart.
    node.execute(&ctx, "set", json!({"key": "d", "value": "4"}));
    assert_eq!(
        node.query(&ctx, "entries", json!({})),
        json!([["a", "1"], ["c", "3"], ["d", "4"]])
    );
}

#[test]
fn many_writes_across_snapshots_survive_restart() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::init_and_start(dir.path());
    // Snapshot often so the restart exercises snapshot + tail replay.
    let cfg_path = dir.path().join("config.toml");
    node.kill();
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    assert!(cfg.contains("snapshot_every = 1000"), "{cfg}");
    std::fs::write(
        &cfg_path,
        cfg.replace("snapshot_every = 1000", "snapshot_every = 7"),
    )
    .unwrap();
    let node = NodeProc::start(dir.path());
    let app = node.install(&wasm);
    let ctx = node.create_context(&app);
    for i in 0..40 {
        node.execute(
            &ctx,
            "set",
            json!({"key": format!("k{i:02}"), "value": format!("v{i}")}),
        );
    }
    let before = node.state(&ctx);
    node.kill();
    let node = NodeProc::start(dir.path());
    assert_eq!(node.state(&ctx), before);
    assert_eq!(node.query(&ctx, "len", json!({})), json!(40));
}

#[test]
fn concurrent_clients_lose_no_writes() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::init_and_start(dir.path());
    let app = node.install(&wasm);
    let ctx = node.create_context(&app);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (node, ctx) = (&node, &ctx);
            s.spawn(move || {
                for i in 0..25 {
                    node.execute(
                        ctx,
                        "set",
                        json!({"key": format!("t{t}-{i}"), "value": "x"}),
                    );
                }
            });
        }
    });
    assert_eq!(node.query(&ctx, "len", json!({})), json!(200));
    assert_eq!(node.query(&ctx, "writes", json!({})), json!(200));
    let (_, info) = node.send("GET", &format!("/admin/contexts/{ctx}"), None, true);
    // One delta per write, in one unbroken sequence (kv-store's init only
    // creates empty collections, which is no change and so no delta).
    assert_eq!(info["seq"], json!(200), "{info}");
}
