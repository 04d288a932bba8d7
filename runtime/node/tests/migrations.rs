//! Acceptance: upgrading a context whose state schema changed, across
//! three real `merod` processes. The new app's `#[app::migrate]` runs once,
//! on the upgrading node, inside the upgrade delta; every node ends with
//! the same transformed state. A schema change without a migration that old
//! state cannot be read under is refused, and nothing changes.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::member::log;
use support::{NodeProc, build_app, build_app_with, cluster, wait_converged, wait_for};

const APP: &str = "runtime/fixtures/schema-app/Cargo.toml";

fn upgrade(node: &NodeProc, ctx: &str, app: &str) -> (u16, Value) {
    let body = json!({ "app": app }).to_string();
    node.send(
        "POST",
        &format!("/admin/contexts/{ctx}/upgrade"),
        Some(body.as_bytes()),
        true,
    )
}

fn runs(node: &NodeProc, ctx: &str, app: &str) -> bool {
    node.get(&format!("/admin/contexts/{ctx}"))["app"] == json!(app)
}

#[test]
fn a_migration_runs_once_and_every_node_ends_with_the_same_transformed_state() {
    let v1 = build_app(APP);
    let v2 = build_app_with(APP, &["v2"]);
    let unmigrated = build_app_with(APP, &["unmigrated"]);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, _) = cluster(&dirs, &v1);
    for (i, n) in nodes.iter().enumerate() {
        n.execute(
            &ctx,
            "put",
            json!({"key": format!("n{i}"), "value": "x".repeat(i + 1)}),
        );
        n.execute(&ctx, "set_profile", json!({"name": format!("node {i}")}));
    }
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    wait_converged(&refs, &ctx, Duration::from_secs(30));
    let before = nodes[0].state(&ctx);

    // The same schema change without a migration: refused, with what
    // changed and what to write; nothing is written.
    let bad = nodes[0].install(&unmigrated);
    let deltas = log(&nodes[0], &ctx).len();
    let (status, err) = upgrade(&nodes[0], &ctx, &bad);
    assert_eq!(status, 409, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("title: LwwRegister<String>"), "{msg}");
    assert!(msg.contains("#[app::migrate]"), "{msg}");
    assert_eq!(
        log(&nodes[0], &ctx).len(),
        deltas,
        "a refused upgrade writes nothing"
    );
    assert_eq!(nodes[0].state(&ctx), before);

    let v2 = nodes[0].install(&v2);
    let (status, info) = upgrade(&nodes[0], &ctx, &v2);
    assert_eq!(status, 200, "{info}");
    for n in &nodes {
        wait_for(Duration::from_secs(30), || runs(n, &ctx, &v2).then_some(()))
            .expect("every node switches to the new app");
    }
    wait_converged(&refs, &ctx, Duration::from_secs(30));
    for n in &nodes {
        assert_eq!(n.query(&ctx, "title", json!({})), json!("3 items migrated"));
        assert_eq!(
            n.query(&ctx, "get", json!({"key": "n2"})),
            json!({"value": "xxx", "len": 3})
        );
        let profiles = n.query(&ctx, "profiles", json!({}));
        assert_eq!(profiles.as_array().unwrap().len(), 3, "{profiles}");
        // Old methods keep working on the migrated state.
        assert_eq!(n.query(&ctx, "count", json!({})), json!(3));
    }
    nodes[1].execute(&ctx, "put", json!({"key": "after", "value": "abcd"}));
    wait_converged(&refs, &ctx, Duration::from_secs(30));
    assert_eq!(
        nodes[2].query(&ctx, "get", json!({"key": "after"})),
        json!({"value": "abcd", "len": 4})
    );

    // Exactly once: one upgrade delta, by the upgrading node, carrying the
    // migration's ops; no other node wrote anything for it.
    let upgrades: Vec<_> = log(&nodes[0], &ctx)
        .into_iter()
        .filter(|d| d.header().kind == mero_sync::OpKind::Upgrade)
        .collect();
    assert_eq!(upgrades.len(), 1);
    let admin = nodes[0].get(&format!("/admin/contexts/{ctx}"))["member"].clone();
    assert_eq!(json!(upgrades[0].header().author.to_string()), admin);
    assert!(
        upgrades[0].header().clock > 0,
        "the migration's ops ride in the upgrade"
    );
}

/// The closing note's figure: a migration rewriting a 100,000-key state.
#[test]
fn migrating_a_large_state() {
    const KEYS: u32 = 100_000;
    let v1 = build_app(APP);
    let v2 = build_app_with(APP, &["v2"]);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, _) = cluster(&dirs, &v1);
    for start in (0..KEYS).step_by(25_000) {
        nodes[0].execute(&ctx, "fill_from", json!({"start": start, "n": 25_000}));
    }
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    wait_converged(&refs, &ctx, Duration::from_secs(120));
    let v2 = nodes[0].install(&v2);
    let t = Instant::now();
    let (status, info) = upgrade(&nodes[0], &ctx, &v2);
    let migrated = t.elapsed();
    assert_eq!(status, 200, "{info}");
    wait_for(Duration::from_secs(120), || {
        runs(&nodes[1], &ctx, &v2).then_some(())
    })
    .expect("the other node switches");
    wait_converged(&refs, &ctx, Duration::from_secs(120));
    let everywhere = t.elapsed();
    assert_eq!(nodes[1].query(&ctx, "count", json!({})), json!(KEYS));
    assert_eq!(
        nodes[1].query(&ctx, "title", json!({})),
        json!(format!("{KEYS} items migrated"))
    );
    println!(
        "migration of {KEYS} keys: {:.0} ms on the upgrading node, {:.0} ms until both nodes hold it",
        migrated.as_secs_f64() * 1e3,
        everywhere.as_secs_f64() * 1e3
    );
}
