//! One context's replica fails (the fault hook makes the rollback of a
//! failed call fail, as a corrupt document would): that context is
//! quarantined and reported, every other context on the node keeps
//! replicating, and the node restarts with the context whole again.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{NodeProc, build_app, cluster, wait_converged, wait_for};

const FAULTY: &str = "runtime/fixtures/faulty-app/Cargo.toml";

#[test]
fn a_failed_replica_is_quarantined_alone_and_back_after_a_restart() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let wasm = build_app(FAULTY);
    let (mut nodes, bad, app) = cluster(&dirs, &wasm);
    // A second context, on both nodes.
    let good = nodes[0].create_context(&app);
    nodes[1].join(&nodes[0].invite(&good));
    wait_converged(&[&nodes[0], &nodes[1]], &good, Duration::from_secs(30));

    // Restart A with the fault hook on.
    let a = nodes.remove(0);
    let home = a.home.clone();
    a.kill();
    let plain = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(plain.contains("[testing]\n"), "{plain}");
    let hooked = plain.replace(
        "[testing]\n",
        "[testing]\nfail_rollback_method = \"fail\"\n",
    );
    std::fs::write(home.join("config.toml"), &hooked).unwrap();
    let b = &nodes[0];
    let a = NodeProc::start_with(&home, &[&b.p2p]);

    // `fail` writes, then errors; its rollback fails: quarantine.
    let r = a.rpc("execute", &bad, "fail", json!({}));
    let msg = r["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(msg.contains("quarantined"), "{r}");
    let info = a.get(&format!("/admin/contexts/{bad}"));
    assert!(
        info["quarantined"]
            .as_str()
            .is_some_and(|w| w.contains("roll")),
        "{info}"
    );
    let r = a.rpc("query", &bad, "get", json!({"key": "x"}));
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("quarantined"),
        "{r}"
    );
    let gauge = a.metric_lines(|l| l.starts_with("mero_contexts_quarantined"));
    assert_eq!(
        gauge,
        vec!["mero_contexts_quarantined 1".to_owned()],
        "{gauge:?}"
    );

    // The other context still replicates both ways, and B's writes to the
    // quarantined one wait for A's restart.
    b.execute(&good, "set", json!({"key": "from_b", "value": "1"}));
    b.execute(&bad, "set", json!({"key": "while_away", "value": "2"}));
    a.execute(&good, "set", json!({"key": "from_a", "value": "3"}));
    wait_converged(&[&a, b], &good, Duration::from_secs(30));
    assert_eq!(a.query(&good, "get", json!({"key": "from_b"})), json!("1"));

    // A restart (without the hook) reloads it from the store: nothing of
    // the failed call, and it catches up.
    a.kill();
    std::fs::write(home.join("config.toml"), &plain).unwrap();
    let a = NodeProc::start_with(&home, &[&b.p2p]);
    let info = a.get(&format!("/admin/contexts/{bad}"));
    assert!(info.get("quarantined").is_none(), "{info}");
    wait_converged(&[&a, b], &bad, Duration::from_secs(30));
    assert_eq!(
        a.query(&bad, "get", json!({"key": "while_away"})),
        json!("2")
    );
    wait_for(Duration::from_secs(5), || {
        let s = a.state(&bad);
        (!s.to_string().contains("fail")).then_some(())
    })
    .expect("the failed call left nothing");
}
