//! Acceptance: the attacks on a context's trust model, tried against real
//! `merod` processes through `POST /admin/contexts/{id}/deltas` (the same
//! checks as gossip). Each is refused, counted by reason, and changes
//! nothing; honest replication goes on.

mod support;

use std::time::Duration;

use mero_engine::{ContextState, EmittedEvent};
use mero_sync::ids::{AppHash, MemberKey};
use mero_sync::{MemberSecret, Op, SignedDelta};
use serde_json::{Value, json};
use support::member::{Member, call, log, ops};
use support::{NodeProc, build_app, cluster, wait_converged, wait_for};

fn rejected(node: &NodeProc, ctx: &str, reason: &str) -> u64 {
    node.sync(ctx)["rejected"][reason].as_u64().unwrap_or(0)
}

fn metric_has(node: &NodeProc, reason: &str) -> bool {
    let reason = format!("reason=\"{reason}\"");
    !node
        .metric_lines(|l| l.contains("deltas_rejected") && l.contains(&reason))
        .is_empty()
}

fn resign(author: &MemberSecret, mut d: SignedDelta) -> SignedDelta {
    d.body.header.author = author.public();
    d.signature = author.sign(b"mero-delta-v2", &d.id().0);
    d
}

#[test]
fn copied_payloads_forged_authorship_and_injected_handlers_are_refused() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let d: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, app) = cluster(&d, &wasm);
    nodes[0].execute(&ctx, "set", json!({"key": "k", "value": "v"}));
    let mut m = Member::join(&nodes[0], &ctx, &app);
    wait_converged(&[&nodes[0], &nodes[1]], &ctx, Duration::from_secs(30));
    m.sync(&nodes[0]);
    let members_before = nodes[1].get(&format!("/admin/contexts/{ctx}/members"));

    // 1. The copied join: the payload of a member's join under a fresh
    // key's header does not open.
    let join = log(&nodes[0], &ctx)
        .into_iter()
        .find(|d| d.header().kind == mero_sync::OpKind::Join)
        .unwrap();
    let outsider = MemberSecret::generate();
    let copied_join = resign(&outsider, join);

    // 2. The copied upgrade: an admin's upgrade payload under a header
    // naming another app does not open; a writer's own upgrade is refused.
    nodes[0].post(
        &format!("/admin/contexts/{ctx}/upgrade"),
        json!({"app": app}),
    );
    wait_converged(&[&nodes[0], &nodes[1]], &ctx, Duration::from_secs(30));
    m.sync(&nodes[0]);
    let upgrade = log(&nodes[0], &ctx)
        .into_iter()
        .find(|d| d.header().kind == mero_sync::OpKind::Upgrade)
        .unwrap();
    let mut moved = upgrade.clone();
    moved.body.header.app = AppHash([66; 32]);
    moved.body.header.seq = 1;
    let admin = MemberSecret::generate();
    let copied_upgrade = resign(&admin, moved);
    let by_writer = m.craft(
        {
            let mut d = m.draft();
            d.app = AppHash([66; 32]);
            d
        },
        &Op::Upgrade {
            app: AppHash([66; 32]),
        },
    );

    // 3. The injected handler: an event naming `set` as its handler,
    // though kv-store declares none.
    let peer = ContextState::peer_id_for(&m.secret.public().0);
    let injected = {
        let event = EmittedEvent {
            kind: "Inserted".into(),
            data: json!({"key": "pwned", "value": "by handler"}).to_string(),
            handler: Some("set".into()),
        };
        let mut draft = m.draft();
        draft.clock = 1;
        m.craft(draft, &call(ops(peer, 0, "note", 1, 1), vec![event]))
    };

    // 4. Ops under the admin's Loro peer id, two counters ahead.
    let a_member: MemberKey = nodes[0].get(&format!("/admin/contexts/{ctx}"))["member"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let victim = ContextState::peer_id_for(&a_member.0);
    let stolen = {
        let mut draft = m.draft();
        draft.clock = 2;
        m.craft(draft, &call(ops(victim, 40, "items", 2, 9), vec![]))
    };

    let deltas_before = nodes[1].sync(&ctx)["deltas"].as_u64().unwrap();
    let report = m.send(
        &nodes[1],
        &[copied_join, copied_upgrade, by_writer, stolen.clone()],
    );
    assert_eq!(report["applied"], 0, "{report}");
    assert_eq!(report["rejected"], 4, "{report}");
    // The injected handler's delta itself is a valid write of the member;
    // what must not happen is any node running `set` for it.
    let report = m.send(&nodes[1], &[injected]);
    assert_eq!(report["applied"], 1, "{report}");
    wait_converged(&[&nodes[0], &nodes[1]], &ctx, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    for n in &nodes {
        assert_eq!(
            n.query(&ctx, "get", json!({"key": "pwned"})),
            Value::Null,
            "no node ran the injected handler"
        );
        assert_eq!(n.sync(&ctx)["deltas"], deltas_before + 1);
    }
    let counts = |n: &NodeProc| {
        (
            rejected(n, &ctx, "bad_payload"),
            rejected(n, &ctx, "forbidden"),
            rejected(n, &ctx, "bad_update"),
        )
    };
    assert_eq!(counts(&nodes[1]), (2, 1, 1), "{}", nodes[1].sync(&ctx));
    for reason in ["bad_payload", "forbidden", "bad_update"] {
        assert!(metric_has(&nodes[1], reason), "{reason} in /metrics");
    }
    // Both receivers of the injected event counted it and ran nothing.
    for n in &nodes {
        let counted =
            n.metric_lines(|l| l.starts_with("mero_handlers_refused_total") && l.ends_with(" 1"));
        assert!(!counted.is_empty(), "the injected handler is counted");
    }
    // Nothing joined, nothing switched app, nothing was stolen.
    let roles = |v: &Value| -> Vec<(Value, Value)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| (m["key"].clone(), m["role"].clone()))
            .collect()
    };
    let members_after = nodes[1].get(&format!("/admin/contexts/{ctx}/members"));
    assert_eq!(roles(&members_after), roles(&members_before));
    for n in &nodes {
        assert_eq!(n.get(&format!("/admin/contexts/{ctx}"))["app"], json!(app));
    }
    // The victim's next real write reaches the other node, and both agree.
    nodes[0].execute(&ctx, "set", json!({"key": "after", "value": "1"}));
    wait_converged(&[&nodes[0], &nodes[1]], &ctx, Duration::from_secs(30));
    assert_eq!(
        nodes[1].query(&ctx, "get", json!({"key": "after"})),
        json!("1")
    );
    assert_eq!(nodes[0].state(&ctx), nodes[1].state(&ctx));
}

#[test]
fn an_equivocating_member_is_flagged_everywhere_and_stalls_nothing() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let d: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, app) = cluster(&d, &wasm);
    let mut m = Member::join(&nodes[0], &ctx, &app);
    wait_converged(&[&nodes[0], &nodes[1]], &ctx, Duration::from_secs(30));
    m.sync(&nodes[0]);
    // Two different deltas with one seq, one for each node.
    let peer = ContextState::peer_id_for(&m.secret.public().0);
    let fork = |value: i64| {
        let mut draft = m.draft();
        draft.clock = 2;
        m.craft(draft, &call(ops(peer, 0, "fork", 2, value), vec![]))
    };
    let (d1, d2) = (fork(1), fork(2));
    assert_ne!(d1.id(), d2.id());
    assert_eq!(m.send(&nodes[0], std::slice::from_ref(&d1))["rejected"], 0);
    assert_eq!(m.send(&nodes[1], std::slice::from_ref(&d2))["rejected"], 0);
    // Honest writes on both sides.
    nodes[0].execute(&ctx, "set", json!({"key": "a", "value": "1"}));
    nodes[1].execute(&ctx, "set", json!({"key": "b", "value": "2"}));
    wait_converged(&[&nodes[0], &nodes[1]], &ctx, Duration::from_secs(30));
    for n in &nodes {
        assert_eq!(n.query(&ctx, "get", json!({"key": "a"})), json!("1"));
        assert_eq!(n.query(&ctx, "get", json!({"key": "b"})), json!("2"));
    }
    assert_eq!(nodes[0].state(&ctx), nodes[1].state(&ctx));
    // Both nodes flag the same author with the same two deltas.
    let flagged = |n: &NodeProc| {
        wait_for(Duration::from_secs(30), || {
            let members = n.get(&format!("/admin/contexts/{ctx}/members"));
            members
                .as_array()
                .unwrap()
                .iter()
                .find(|x| !x["flagged"].is_null())
                .cloned()
        })
        .expect("the equivocator is flagged")
    };
    let (fa, fb) = (flagged(&nodes[0]), flagged(&nodes[1]));
    assert_eq!(fa["key"], json!(m.secret.public().to_string()));
    assert_eq!(fa, fb);
    let mut pair: Vec<String> = fa["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    pair.sort();
    let mut expected = vec![d1.id().to_string(), d2.id().to_string()];
    expected.sort();
    assert_eq!(pair, expected);
    // Honest writes keep replicating afterwards; the forker's are refused.
    wait_converged(&[&nodes[0], &nodes[1]], &ctx, Duration::from_secs(30));
    m.sync(&nodes[0]);
    let mut draft = m.draft();
    draft.clock = 4;
    let later = m.craft(draft, &call(ops(peer, 2, "fork", 2, 3), vec![]));
    let report = m.send(&nodes[1], &[later]);
    assert_eq!(report["rejected"], 1, "{report}");
    assert!(rejected(&nodes[1], &ctx, "flagged") >= 1);
    nodes[1].execute(&ctx, "set", json!({"key": "c", "value": "3"}));
    wait_converged(&[&nodes[0], &nodes[1]], &ctx, Duration::from_secs(30));
    assert_eq!(nodes[0].query(&ctx, "get", json!({"key": "c"})), json!("3"));
    assert_eq!(nodes[0].state(&ctx), nodes[1].state(&ctx));
    assert!(nodes[0].sync(&ctx)["forks"].as_u64().unwrap() >= 1);
    let lines = nodes[1].metric_lines(|l| l.starts_with("mero_equivocations_total"));
    assert!(
        lines.iter().any(|l| !l.ends_with(" 0")),
        "the equivocation is counted: {lines:?}"
    );
}

#[test]
fn an_upgrade_to_an_app_nobody_has_keeps_the_old_app_serving() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let d: Vec<_> = (0..1).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, app) = cluster(&d, &wasm);
    // An admin (this test, invited as one) upgrades to an app that exists
    // nowhere: the upgrade is valid, but the node cannot verify the app.
    let inv = nodes[0].post(
        &format!("/admin/contexts/{ctx}/invitations"),
        json!({"role": "admin"}),
    );
    let mut m = Member::join_with(&nodes[0], &app, inv["invitation"].as_str().unwrap());
    let missing = AppHash([77; 32]);
    let up = m.author(Op::Upgrade { app: missing });
    assert_eq!(m.send(&nodes[0], &[up])["applied"], 1);
    let info = nodes[0].get(&format!("/admin/contexts/{ctx}"));
    assert_eq!(info["app"], json!(app), "the old app keeps serving");
    assert_eq!(info["pendingApp"], json!(missing.to_string()));
    nodes[0].execute(&ctx, "set", json!({"key": "still", "value": "works"}));
    assert_eq!(
        nodes[0].query(&ctx, "get", json!({"key": "still"})),
        json!("works")
    );
}
