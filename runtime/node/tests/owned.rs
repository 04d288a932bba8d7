//! Acceptance: owned data is enforced by every receiver. A member whose
//! node is modified to write another member's entry of an `OwnedMap` gets
//! its delta refused by each of three real nodes (counted as `not_owner`),
//! the entry keeps its owner's value everywhere, and honest writes go on.

mod support;

use std::time::Duration;

use serde_json::json;
use support::member::{Member, call};
use support::{NodeProc, build_app, cluster, wait_converged};

/// Loro ops as `peer` from counter `from`: `key` set to `value` in the
/// owned collection `profiles`.
fn owned_write(peer: u64, from: u32, key: &str, value: &str) -> Vec<u8> {
    let doc = loro::LoroDoc::new();
    doc.set_peer_id(peer).unwrap();
    for i in 0..from {
        doc.get_map("scratch").insert(&format!("s{i}"), 0).unwrap();
    }
    doc.commit();
    let before = doc.oplog_vv();
    doc.get_map("$owned:profiles").insert(key, value).unwrap();
    doc.commit();
    doc.export(loro::ExportMode::updates(&before)).unwrap()
}

fn member_of(node: &NodeProc, ctx: &str) -> String {
    node.get(&format!("/admin/contexts/{ctx}"))["member"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_forged_write_of_another_members_entry_is_refused_by_every_receiver() {
    let wasm = build_app("runtime/fixtures/schema-app/Cargo.toml");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, app) = cluster(&dirs, &wasm);
    for (i, n) in nodes.iter().enumerate() {
        n.execute(&ctx, "set_profile", json!({"name": format!("node {i}")}));
    }
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    wait_converged(&refs, &ctx, Duration::from_secs(30));

    // Through the API, a node writes only its own member's entry.
    let victim = member_of(&nodes[0], &ctx);
    let mut m = Member::join(&nodes[0], &ctx, &app);
    wait_converged(&refs, &ctx, Duration::from_secs(30));
    m.sync(&nodes[0]);
    let peer = m.state.peer();
    let forged = {
        let mut draft = m.draft();
        draft.clock = 1;
        m.craft(
            draft,
            &call(owned_write(peer, 0, &victim, "forged"), vec![]),
        )
    };
    for n in &nodes {
        let report = m.send(n, std::slice::from_ref(&forged));
        assert_eq!(report["applied"], 0, "{report}");
        assert_eq!(report["rejected"], 1, "{report}");
        assert_eq!(n.sync(&ctx)["rejected"]["not_owner"], 1, "{}", n.sync(&ctx));
        let profiles = n.query(&ctx, "profiles", json!({}));
        assert!(
            profiles
                .as_array()
                .unwrap()
                .contains(&json!([victim, "node 0"])),
            "{profiles}"
        );
        assert!(!profiles.to_string().contains("forged"), "{profiles}");
    }
    let mine = m.secret.public().to_string();
    let honest = m.author(call(owned_write(peer, 0, &mine, "tester"), vec![]));
    let report = m.send(&nodes[1], &[honest]);
    assert_eq!(report["applied"], 1, "{report}");
    wait_converged(&refs, &ctx, Duration::from_secs(30));
    let profiles = nodes[2].query(&ctx, "profiles", json!({}));
    assert_eq!(profiles.as_array().unwrap().len(), 4, "{profiles}");
    assert!(
        profiles
            .as_array()
            .unwrap()
            .contains(&json!([mine, "tester"]))
    );
}
