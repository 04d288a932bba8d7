//! Per-peer sync status on three real dev-mode nodes (`merod run --dev`,
//! a full mesh, `sync_interval_ms = 500`): all in sync; node 3 isolated is
//! `unreachable` on nodes 1 and 2 while both sides write; after the heal
//! every row is in sync again and node 3 caught up through catch-up. Also
//! what a client token sees (a summary, no peer ids) and the `/metrics`
//! sync gauges.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    NodeProc, build_app, init_home, merod_config, share_context, wait_converged, wait_for,
};

const KV: &str = "examples/kv-store/Cargo.toml";
const INTERVAL_MS: u64 = 500;

/// Three dev nodes, each dialing every earlier one; node 1 creates the
/// context, the others join.
fn mesh(dirs: &[tempfile::TempDir]) -> (Vec<NodeProc>, String) {
    let wasm = build_app(KV);
    let mut nodes: Vec<NodeProc> = Vec::new();
    for dir in dirs {
        init_home(dir.path());
        let (ok, out) = merod_config(
            dir.path(),
            &["set", "network.sync_interval_ms", &INTERVAL_MS.to_string()],
        );
        assert!(ok, "{out}");
        let earlier: Vec<String> = nodes.iter().map(|n| n.p2p.clone()).collect();
        let earlier: Vec<&str> = earlier.iter().map(String::as_str).collect();
        nodes.push(NodeProc::start_args(dir.path(), &earlier, &["--dev"]));
    }
    let (ctx, _) = share_context(&nodes, &wasm);
    (nodes, ctx)
}

/// `node`'s row for `peer` in the admin sync status.
fn row(node: &NodeProc, ctx: &str, peer: &str) -> Option<Value> {
    let s = node.sync(ctx);
    s["peers"]
        .as_array()?
        .iter()
        .find(|r| r["peerId"] == json!(peer))
        .cloned()
}

/// Waits until every node has an `in_sync` row for every other node.
fn wait_all_in_sync(nodes: &[NodeProc], ctx: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    let done = wait_for(timeout, || {
        for n in nodes {
            for m in nodes {
                if n.peer_id() != m.peer_id() {
                    let r = row(n, ctx, &m.peer_id())?;
                    (r["state"] == "in_sync" && r["connected"] == true).then_some(())?;
                }
            }
            (n.sync(ctx)["summary"]["state"] == "in_sync").then_some(())?;
        }
        Some(())
    });
    if done.is_none() {
        let all: Vec<Value> = nodes.iter().map(|n| n.sync(ctx)).collect();
        panic!("not every peer in sync within {timeout:?}: {all:#?}");
    }
    start.elapsed()
}

#[test]
fn peers_go_unreachable_in_a_partition_and_back_in_sync_after_the_heal() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx) = mesh(&dirs);
    let third = nodes[2].peer_id();
    // In sync within a few rounds of every pair.
    wait_all_in_sync(&nodes, &ctx, Duration::from_secs(20));
    let s = nodes[0].sync(&ctx);
    assert_eq!(s["summary"]["peers"], 2, "{s}");
    assert_eq!(s["summary"]["reachable"], 2, "{s}");
    assert!(s["headsChangedAtMs"].as_u64().unwrap() > 0, "{s}");

    // Isolate node 3: nodes 1 and 2 see it unreachable, since when.
    let isolated_at = support_now_ms();
    nodes[2].set_faults(json!({"isolated": true}));
    for n in &nodes[..2] {
        let r = wait_for(Duration::from_secs(10), || {
            let r = row(n, &ctx, &third)?;
            (r["state"] == "unreachable").then_some(r)
        })
        .unwrap_or_else(|| panic!("node 3 not unreachable: {}", n.sync(&ctx)));
        assert_eq!(r["connected"], false);
        let since = r["unreachableSinceMs"].as_u64().expect("since when");
        assert!(since + 1000 >= isolated_at, "{since} vs {isolated_at}");
    }
    let lonely = nodes[2].sync(&ctx);
    assert_eq!(lonely["summary"]["reachable"], 0, "{lonely}");
    assert_eq!(lonely["summary"]["state"], "unreachable", "{lonely}");
    let link = row(&nodes[2], &ctx, &nodes[0].peer_id()).expect("row kept");
    assert_eq!(link["link"]["lossPercent"], 100.0, "a block shows: {link}");

    // Both sides write.
    for k in 0..5 {
        nodes[0].execute(&ctx, "set", json!({"key": format!("a{k}"), "value": "one"}));
        nodes[2].execute(
            &ctx,
            "set",
            json!({"key": format!("c{k}"), "value": "three"}),
        );
    }
    // Past gossipsub's message history (5 heartbeats of 700 ms), so what
    // node 3 lacks can only come by catch-up.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        nodes[2].query(&ctx, "get", json!({"key": "a4"})),
        Value::Null,
        "partitioned"
    );

    // Heal: every row in sync again, and node 3 has node 1's writes.
    nodes[2].heal();
    wait_all_in_sync(&nodes, &ctx, Duration::from_secs(30));
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    wait_converged(&refs, &ctx, Duration::from_secs(30));
    assert_eq!(
        nodes[2].query(&ctx, "get", json!({"key": "a4"})),
        json!("one")
    );
    assert_eq!(
        nodes[1].query(&ctx, "get", json!({"key": "c4"})),
        json!("three")
    );
    let s = nodes[2].sync(&ctx);
    let caught: u64 = s["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["received"]["catchUpDeltas"].as_u64().unwrap())
        .sum();
    assert!(caught >= 5, "node 3 got node 1's 5 writes by catch-up: {s}");

    // A client token: the summary, never peer ids.
    let grant = nodes[0].post("/admin/tokens", json!({"context": ctx}));
    let token = grant["accessToken"].as_str().unwrap();
    let auth = format!("Bearer {token}");
    let client = support::http(
        "GET",
        &format!("{}/contexts/{ctx}/sync", nodes[0].url),
        &[("Authorization", auth.as_str())],
        None,
    );
    assert_eq!(client.status, 200, "{}", client.body);
    assert_eq!(client.body["summary"]["state"], "in_sync");
    assert!(client.body.get("peers").is_none(), "{}", client.body);
    assert!(!client.body.to_string().contains(&third));

    // /metrics: context gauges, and per-peer series in dev mode.
    let lines = nodes[0].metric_lines(|l| l.starts_with("mero_"));
    for name in [
        "mero_context_behind_deltas{",
        "mero_context_peers_in_sync{",
        "mero_context_peers_unreachable{",
        "mero_peer_behind_deltas{",
        "mero_peer_in_sync{",
        "mero_dev_mode 1",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(name)),
            "{name} missing: {lines:#?}"
        );
    }
    let in_sync = lines
        .iter()
        .find(|l| l.starts_with("mero_context_peers_in_sync{"))
        .unwrap();
    assert!(in_sync.ends_with(" 2"), "{in_sync}");
    assert_eq!(nodes[0].get("/admin/node")["devMode"], true);

    // The DAG's headers: the same log as the exported deltas, by position.
    let sync = nodes[2].sync(&ctx);
    let len = sync["deltas"].as_u64().unwrap();
    let dag = nodes[2].get(&format!("/admin/contexts/{ctx}/dag?limit=500"));
    assert_eq!(dag["len"], len);
    let entries = dag["entries"].as_array().unwrap();
    assert_eq!(entries.len() as u64, len.min(500));
    assert_eq!(dag["next"], entries.len() as u64);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["pos"], i as u64);
        assert!(e["seq"].as_u64().unwrap() >= 1);
    }
    let authors: std::collections::BTreeSet<&str> = entries
        .iter()
        .map(|e| e["author"].as_str().unwrap())
        .collect();
    let vector = sync["vector"].as_object().unwrap();
    assert_eq!(authors.len(), vector.len(), "one author per vector entry");
    let last = nodes[2].get(&format!("/admin/contexts/{ctx}/dag?last=2"));
    let tail: Vec<&Value> = last["entries"].as_array().unwrap().iter().collect();
    assert_eq!(tail.len(), 2);
    assert_eq!(tail[1]["pos"], len - 1);
    let heads: Vec<&str> = sync["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert!(
        heads.contains(&tail[1]["id"].as_str().unwrap()),
        "the last delta is a head"
    );
    let kinds: std::collections::BTreeSet<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains("call") && kinds.contains("join"),
        "{kinds:?}"
    );
    // A parent always comes before its child.
    let seen: Vec<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    for (i, e) in entries.iter().enumerate() {
        for p in e["parents"].as_array().unwrap() {
            let at = seen.iter().position(|s| *s == p.as_str().unwrap());
            assert!(at.is_some_and(|a| a < i), "parent of {i} not before it");
        }
    }
}

fn support_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
