//! Acceptance: forged, tampered, replayed and non-member deltas are refused,
//! counted, and change nothing.

mod support;

use std::time::Duration;

use mero_sync::ids::{AppHash, ContextId, DeltaId};
use mero_sync::{ContextKey, InvitationToken, MemberSecret, SignedDelta};
use serde_json::{Value, json};
use support::{build_app, cluster, wait_converged};

#[test]
fn bad_deltas_are_rejected_counted_and_change_nothing() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let d: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, app) = cluster(&d, &wasm);
    nodes[0].execute(&ctx, "set", json!({"key": "k", "value": "v"}));
    wait_converged(&[&nodes[0], &nodes[1]], &ctx, Duration::from_secs(30));

    // What an attacker who saw an invitation (the context key) and the
    // traffic (real deltas) has.
    let token: InvitationToken = nodes[0].invite(&ctx).parse().unwrap();
    let key = ContextKey(token.key);
    let log = nodes[0].get(&format!("/admin/contexts/{ctx}/deltas"));
    let real_hex = log["deltas"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let real = SignedDelta::from_bytes(&hex::decode(&real_hex).unwrap()).unwrap();
    let ctx_id: ContextId = ctx.parse().unwrap();
    let app: AppHash = app.parse().unwrap();
    let heads: Vec<DeltaId> = nodes[1].sync(&ctx)["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().parse().unwrap())
        .collect();

    let mut tampered = real.clone();
    let last = tampered.body.payload.len() - 1;
    tampered.body.payload[last] ^= 1;
    let attacker = MemberSecret::generate();
    let op = real.open(&key).unwrap();
    let non_member = SignedDelta::create(&attacker, &key, ctx_id, 1, heads.clone(), app, &op);
    // (A changed signature over a known delta's fields is just that delta
    // again: the id covers the signed fields. Break an unknown one.)
    let mut bad_sig = non_member.clone();
    bad_sig.signature[0] ^= 0xff;
    // An attacker claiming a member's key cannot sign for it.
    let mut impostor = non_member.clone();
    impostor.body.author = real.body.author;
    impostor.body.seq = 100;

    let target = &nodes[1];
    let before_state = target.state(&ctx);
    let before = target.sync(&ctx);
    let batch: Vec<String> = [&real, &tampered, &bad_sig, &non_member, &impostor]
        .iter()
        .map(|d| hex::encode(d.to_bytes()))
        .collect();
    let report = target.post(&format!("/admin/contexts/{ctx}/deltas"), json!(batch));
    assert_eq!(report, json!({"applied": 0, "rejected": 5, "buffered": 0}));

    let after = target.sync(&ctx);
    let rejected = &after["rejected"];
    let count = |k: &str| rejected[k].as_u64().unwrap_or(0);
    assert!(count("duplicate") >= 1, "{rejected}");
    assert_eq!(count("bad_signature"), 3, "{rejected}");
    assert_eq!(count("not_member"), 1, "{rejected}");
    assert_eq!(after["heads"], before["heads"]);
    assert_eq!(after["deltas"], before["deltas"]);
    assert_eq!(target.state(&ctx), before_state);
    // The node still works and still agrees with its peer.
    nodes[0].execute(&ctx, "set", json!({"key": "k2", "value": "v2"}));
    wait_converged(&[&nodes[0], &nodes[1]], &ctx, Duration::from_secs(30));
    assert_eq!(nodes[1].query(&ctx, "get", json!({"key": "k"})), json!("v"));
    let _: Value = nodes[1].get(&format!("/admin/contexts/{ctx}/members"));
}
