//! Roles, removal and key rotation, enforced by real `merod` nodes: a
//! reader cannot write, a writer cannot administer, and a removed member
//! reads nothing written after its removal and can no longer write; a
//! member invited after the rotation still reads what came before it.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{NodeProc, build_app, cluster, wait_converged, wait_for};

#[test]
fn readers_writers_admins_and_removal() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let d: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, _app) = cluster(&d[..2], &wasm);
    let (a, b) = (&nodes[0], &nodes[1]);
    // C joins as a reader.
    let c = NodeProc::init_and_join(d[2].path(), &[&a.p2p]);
    let inv = a.post(
        &format!("/admin/contexts/{ctx}/invitations"),
        json!({"role": "reader"}),
    );
    assert_eq!(inv["role"], "reader");
    c.join(inv["invitation"].as_str().unwrap());
    wait_converged(&[a, b, &c], &ctx, Duration::from_secs(60));
    wait_for(Duration::from_secs(30), || {
        (c.rpc("query", &ctx, "get", json!({"key": "x"}))
            .get("error")
            .is_none())
        .then_some(())
    })
    .expect("the reader can query");

    // A reader may not write: its node refuses with a clear error.
    let r = c.rpc("execute", &ctx, "set", json!({"key": "r", "value": "1"}));
    let msg = r["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("not a writer"), "{r}");
    // A writer may not invite or upgrade.
    let (status, body) = b.send(
        "POST",
        &format!("/admin/contexts/{ctx}/invitations"),
        Some(b"{}"),
        true,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("only admins"), "{body}");
    let app = a.get(&format!("/admin/contexts/{ctx}"))["app"].clone();
    let (status, _) = b.send(
        "POST",
        &format!("/admin/contexts/{ctx}/upgrade"),
        Some(json!({ "app": app }).to_string().as_bytes()),
        true,
    );
    assert_eq!(status, 403);
    // A writer writes; everyone reads it.
    b.execute(&ctx, "set", json!({"key": "w", "value": "1"}));
    wait_converged(&[a, b, &c], &ctx, Duration::from_secs(30));
    assert_eq!(c.query(&ctx, "get", json!({"key": "w"})), json!("1"));

    // A removes B: a new epoch key goes to A and C only.
    let bk = b.member_key(&ctx);
    let (status, body) = a.send(
        "DELETE",
        &format!("/admin/contexts/{ctx}/members/{bk}"),
        None,
        true,
    );
    assert_eq!(status, 200, "{body}");
    a.execute(
        &ctx,
        "set",
        json!({"key": "secret", "value": "after removal"}),
    );
    wait_converged(&[a, &c], &ctx, Duration::from_secs(30));
    assert_eq!(
        c.query(&ctx, "get", json!({"key": "secret"})),
        json!("after removal")
    );
    // B learns of its removal, the last delta of the epoch it had, and
    // nothing after it: the new epoch gossips on a topic named by the new
    // key, and the members' nodes refuse B's catch-up requests.
    wait_for(Duration::from_secs(30), || {
        let refused = a
            .metric_lines(|l| l.starts_with("mero_requests_refused_total"))
            .iter()
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        (refused >= 1.0).then_some(())
    })
    .expect("the removed member's requests are refused");
    assert_eq!(b.query(&ctx, "get", json!({"key": "secret"})), json!(null));
    assert!(
        rejected_no_key(b, &ctx) == 0,
        "B never even receives the new epoch's deltas"
    );
    // Its node knows it is out and refuses to write.
    let r = b.rpc("execute", &ctx, "set", json!({"key": "late", "value": "1"}));
    assert!(r.get("error").is_some(), "{r}");
    let members = a.get(&format!("/admin/contexts/{ctx}/members"));
    let removed = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == json!(bk))
        .unwrap();
    assert_eq!(removed["removed"], true);
    // The others go on together.
    c.query(&ctx, "get", json!({"key": "w"}));
    a.execute(&ctx, "set", json!({"key": "more", "value": "2"}));
    wait_converged(&[a, &c], &ctx, Duration::from_secs(30));
    assert_eq!(a.state(&ctx), c.state(&ctx));

    // A newcomer invited after the rotation reads the history from before
    // it too: its token carries the earlier epoch keys.
    let e = tempfile::tempdir().unwrap();
    let late = NodeProc::init_and_join(e.path(), &[&a.p2p]);
    let inv = a.post(&format!("/admin/contexts/{ctx}/invitations"), json!({}));
    late.join(inv["invitation"].as_str().unwrap());
    wait_converged(&[a, &c, &late], &ctx, Duration::from_secs(60));
    assert_eq!(late.query(&ctx, "get", json!({"key": "w"})), json!("1"));
    assert_eq!(rejected_no_key(&late, &ctx), 0);
    assert_eq!(a.state(&ctx), late.state(&ctx));
}

fn rejected_no_key(node: &NodeProc, ctx: &str) -> u64 {
    node.sync(ctx)["rejected"]["no_key"].as_u64().unwrap_or(0)
}
