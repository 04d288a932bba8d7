//! Acceptance: several real `merod` processes share a context over libp2p on
//! loopback and always end with identical state and heads.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{
    NodeProc, build_app, build_app_with, cluster, cluster_with, wait_converged, wait_for,
};

const KV: &str = "examples/kv-store/Cargo.toml";
const RELAY: &str = "runtime/fixtures/relay-app/Cargo.toml";

fn dirs(n: usize) -> Vec<tempfile::TempDir> {
    (0..n).map(|_| tempfile::tempdir().unwrap()).collect()
}

fn refs(nodes: &[NodeProc]) -> Vec<&NodeProc> {
    nodes.iter().collect()
}

#[test]
fn concurrent_writes_on_three_nodes_converge() {
    let wasm = build_app(KV);
    let d = dirs(3);
    let (nodes, ctx, _) = cluster(&d, &wasm);
    let per_node = 700;
    let before = nodes[0].sync(&ctx)["deltas"].as_u64().unwrap();
    std::thread::scope(|s| {
        for (i, n) in nodes.iter().enumerate() {
            let ctx = ctx.clone();
            s.spawn(move || {
                for k in 0..per_node {
                    // Shared keys conflict on purpose; own keys do not.
                    let key = if k % 3 == 0 {
                        format!("shared{}", k % 10)
                    } else {
                        format!("n{i}-{k}")
                    };
                    n.execute(
                        &ctx,
                        "set",
                        json!({"key": key, "value": format!("{i}:{k}")}),
                    );
                }
            });
        }
    });
    wait_converged(&refs(&nodes), &ctx, Duration::from_secs(60));
    let sync = nodes[0].sync(&ctx);
    assert_eq!(sync["deltas"], json!(before + 3 * per_node), "{sync}");
    assert_eq!(
        nodes[0].query(&ctx, "writes", json!({})),
        json!(3 * per_node)
    );
    for n in &nodes {
        assert_eq!(n.sync(&ctx)["heads"], sync["heads"]);
    }
}

#[test]
fn sigkilled_node_catches_up_without_losing_acknowledged_writes() {
    let wasm = build_app(KV);
    let d = dirs(3);
    let (mut nodes, ctx, _) = cluster(&d, &wasm);
    let victim = nodes.pop().unwrap();
    // Writes on the victim: every acknowledged one must survive the kill.
    let mut acked = Vec::new();
    for k in 0..200 {
        victim.execute(&ctx, "set", json!({"key": format!("c{k}"), "value": "x"}));
        acked.push(format!("c{k}"));
    }
    let home = victim.home.clone();
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for k in 0..600 {
                nodes[0].execute(&ctx, "set", json!({"key": format!("a{k}"), "value": "y"}));
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        victim.kill();
        writer.join().unwrap();
    });
    for k in 600..800 {
        nodes[1].execute(&ctx, "set", json!({"key": format!("b{k}"), "value": "z"}));
    }
    let restarted = NodeProc::start_with(&home, &[&nodes[0].p2p, &nodes[1].p2p]);
    nodes.push(restarted);
    wait_converged(&refs(&nodes), &ctx, Duration::from_secs(60));
    for n in &nodes {
        for key in acked
            .iter()
            .step_by(37)
            .chain(["a599".to_owned(), "b799".to_owned()].iter())
        {
            assert!(
                n.query(&ctx, "get", json!({ "key": key })).is_string(),
                "{key} missing"
            );
        }
    }
    assert_eq!(nodes[2].query(&ctx, "writes", json!({})), json!(1000));
}

#[test]
fn node_invited_after_ten_thousand_deltas_catches_up() {
    let wasm = build_app(KV);
    let d = dirs(2);
    let a = NodeProc::init_and_start(d[0].path());
    let app = a.install(&wasm);
    let ctx = a.create_context(&app);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (a, ctx) = (&a, &ctx);
            s.spawn(move || {
                for k in 0..2500 {
                    a.execute(
                        ctx,
                        "set",
                        json!({"key": format!("k{}", k % 500), "value": format!("{t}-{k}")}),
                    );
                }
            });
        }
    });
    let written = a.sync(&ctx)["deltas"].as_u64().unwrap();
    assert!(written >= 10_000, "{written}");
    let b = NodeProc::init_and_join(d[1].path(), &[&a.p2p]);
    b.join(&a.invite(&ctx));
    wait_converged(&[&a, &b], &ctx, Duration::from_secs(120));
    // Every delta, plus the invitation and the joiner's join.
    assert_eq!(b.sync(&ctx)["deltas"], json!(written + 2));
    wait_for(Duration::from_secs(30), || {
        (b.send("GET", &format!("/admin/apps/{app}"), None, true).0 == 200).then_some(())
    })
    .expect("the joiner fetched the app");
    assert_eq!(b.query(&ctx, "writes", json!({})), json!(10_000));
}

#[test]
fn partition_then_heal_converges() {
    let wasm = build_app(KV);
    let d = dirs(3);
    let (nodes, ctx, _) = cluster_with(&d, &wasm, true);
    nodes[2].set_faults(json!({"isolated": true}));
    wait_for(Duration::from_secs(10), || {
        let peers = nodes[2].get("/admin/network")["peers"].as_array()?.len();
        (peers == 0).then_some(())
    })
    .expect("the isolated node drops its connections");
    for k in 0..100 {
        nodes[0].execute(
            &ctx,
            "set",
            json!({"key": format!("a{k}"), "value": "majority"}),
        );
        nodes[2].execute(
            &ctx,
            "set",
            json!({"key": format!("c{k}"), "value": "minority"}),
        );
        nodes[(k % 2) as usize * 2].execute(
            &ctx,
            "set",
            json!({"key": "both", "value": format!("{k}")}),
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        nodes[2].query(&ctx, "get", json!({"key": "a5"})),
        Value::Null,
        "partitioned"
    );
    assert_eq!(
        nodes[0].query(&ctx, "get", json!({"key": "c5"})),
        Value::Null,
        "partitioned"
    );
    nodes[2].heal();
    wait_converged(&refs(&nodes), &ctx, Duration::from_secs(60));
    assert_eq!(
        nodes[1].query(&ctx, "get", json!({"key": "c99"})),
        json!("minority")
    );
    assert_eq!(
        nodes[2].query(&ctx, "get", json!({"key": "a99"})),
        json!("majority")
    );
}

#[test]
fn events_reach_subscribers_and_handlers_run_on_receivers_only() {
    let wasm = build_app(RELAY);
    let d = dirs(3);
    let (nodes, ctx, _) = cluster(&d, &wasm);
    let ws_url = format!(
        "{}/ws?context={ctx}&token={}",
        nodes[2].url.replace("http://", "ws://"),
        nodes[2].token
    );
    let (mut socket, _) = tungstenite::connect(&ws_url).expect("websocket connects");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    nodes[0].execute(&ctx, "post", json!({"text": "hello"}));
    let event: Value = loop {
        let msg = socket.read().expect("an event arrives on C");
        if let tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["method"] == "event" {
                break v["params"].clone();
            }
        }
    };
    assert_eq!(event["kind"], json!("Posted"));
    assert_eq!(event["data"], json!({"text": "hello"}));
    assert_eq!(event["local"], json!(false));
    // The handler runs on receivers only: clients cannot call it.
    let r = nodes[1].rpc("execute", &ctx, "on_posted", json!({"text": "forged"}));
    let msg = r["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("handler of event `Posted`"), "{r}");
    let hex = |n: &NodeProc| {
        let info = n.get(&format!("/admin/contexts/{ctx}"));
        let key: mero_node::ids::MemberKey = info["member"].as_str().unwrap().parse().unwrap();
        key.0.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let expected = json!([[hex(&nodes[1]), 1], [hex(&nodes[2]), 1]]);
    let mut expected = expected.as_array().unwrap().clone();
    expected.sort_by_key(|v| v[0].as_str().unwrap().to_owned());
    wait_for(Duration::from_secs(30), || {
        (nodes
            .iter()
            .all(|n| n.query(&ctx, "handled", json!({})) == json!(expected)))
        .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "handlers: {} (A is {})",
            nodes[0].query(&ctx, "handled", json!({})),
            hex(&nodes[0])
        )
    });
    wait_converged(&refs(&nodes), &ctx, Duration::from_secs(30));
}

#[test]
fn app_upgrade_reaches_every_member_with_state_kept() {
    let v1 = build_app(RELAY);
    let v2 = build_app_with(RELAY, &["v2"]);
    let d = dirs(3);
    let (nodes, ctx, app1) = cluster(&d, &v1);
    nodes[1].execute(&ctx, "post", json!({"text": "before"}));
    let app2 = nodes[0].install(&v2);
    assert_ne!(app1, app2);
    nodes[0].post(
        &format!("/admin/contexts/{ctx}/upgrade"),
        json!({ "app": app2 }),
    );
    for n in &nodes {
        wait_for(Duration::from_secs(30), || {
            let info = n.get(&format!("/admin/contexts/{ctx}"));
            (info["app"] == json!(app2)
                && n.rpc("query", &ctx, "version", json!({}))["result"]["output"] == json!("v2"))
            .then_some(())
        })
        .expect("every member runs v2");
        assert_eq!(n.query(&ctx, "posts", json!({})), json!(["before"]));
    }
    nodes[2].execute(&ctx, "post", json!({"text": "after"}));
    wait_converged(&refs(&nodes), &ctx, Duration::from_secs(30));
    assert_eq!(
        nodes[0].query(&ctx, "posts", json!({})),
        json!(["before", "after"])
    );
}

/// Deltas of 500 KiB each, 70 MB in all: more than one response may carry
/// (64 MiB), so catch-up must page them by bytes. A lagging node and a
/// joiner both get every one.
#[test]
fn lagging_nodes_and_joiners_catch_up_deltas_of_half_a_megabyte() {
    let wasm = build_app(KV);
    let d = dirs(3);
    let (mut nodes, ctx, _) = cluster(&d[..2], &wasm);
    let lagging = nodes.pop().unwrap();
    let home = lagging.home.clone();
    lagging.kill();
    let big = "x".repeat(500 << 10);
    for k in 0..140 {
        // One key: the log grows by 500 KiB a delta, the state does not.
        nodes[0].execute(
            &ctx,
            "set",
            json!({"key": "big", "value": format!("{k}{big}")}),
        );
    }
    let a = &nodes[0];
    let lagging = NodeProc::start_with(&home, &[&a.p2p]);
    wait_converged(&[a, &lagging], &ctx, Duration::from_secs(60));
    let joiner = NodeProc::init_and_join(d[2].path(), &[&a.p2p]);
    joiner.join(&a.invite(&ctx));
    wait_converged(&[a, &lagging, &joiner], &ctx, Duration::from_secs(60));
    let value = joiner.query(&ctx, "get", json!({"key": "big"}));
    assert!(value.as_str().unwrap().starts_with("139x"));
    assert_eq!(joiner.sync(&ctx)["deltas"], a.sync(&ctx)["deltas"]);
}
