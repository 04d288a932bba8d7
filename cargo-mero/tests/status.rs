//! `cargo mero status` (issue 16, acceptance 4): on a three-node
//! `cargo mero dev` network, `--json --node 1` is exactly the node's
//! `GET /admin/contexts/{ctx}/sync` (volatile times and traffic only
//! checked present), the table has a row per node "in sync", `-v` a row per
//! peer named by node number, and `--url --token --context` reads any node.

mod support;

use std::time::Duration;

use cargo_mero::client::NodeClient;
use mero_api::{SyncState, SyncStatus};
use serde_json::Value;
use support::{Dev, cargo_mero, new_project, wait_for};

/// `GET url` with a Bearer token, as JSON.
fn get_json(url: &str, token: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let text = agent
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Removes what changes between two reads of an idle network: times
/// (`*Ms`) and traffic counters, after checking they are there.
fn stable(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !(k.ends_with("Ms") || k == "sent" || k == "received"));
            map.values_mut().for_each(stable);
        }
        Value::Array(items) => items.iter_mut().for_each(stable),
        _ => {}
    }
}

fn stdout(args: &[&str], project: &std::path::Path) -> String {
    let out = cargo_mero(args, project);
    assert!(
        out.status.success(),
        "cargo mero {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn status_is_what_the_nodes_answer() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "status-kv", "kv-store");
    let dev = Dev::start(&project, &["--nodes", "3", "--clean", "--no-watch"]);
    let net = dev.network();
    for n in &net.nodes {
        let c = NodeClient::new(&n.rpc_url, Some(&n.admin_token));
        wait_for(Duration::from_secs(60), "every node in sync", || {
            let s = c.sync_status(&net.context).ok()?;
            let peers = s.peers.unwrap_or_default();
            (s.summary.state == SyncState::InSync
                && peers.len() == 2
                && peers.iter().all(|p| p.state == SyncState::InSync))
            .then_some(())
        });
    }

    // --json --node 1: the admin API's answer, re-serialized.
    let n1 = net.node(1).unwrap();
    let ours: Value =
        serde_json::from_str(&stdout(&["status", "--json", "--node", "1"], &project)).unwrap();
    let typed: SyncStatus = serde_json::from_value(ours.clone()).unwrap();
    assert_eq!(typed.context.to_string(), net.context);
    assert!(ours["headsChangedAtMs"].is_u64(), "{ours}");
    let peers = ours["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 2, "{ours}");
    assert!(
        peers
            .iter()
            .all(|p| p["sent"].is_object() && p["received"].is_object())
    );
    let mut api = get_json(
        &format!("{}/admin/contexts/{}/sync", n1.rpc_url, net.context),
        &n1.admin_token,
    );
    let mut ours = ours;
    stable(&mut ours);
    stable(&mut api);
    assert_eq!(ours, api);

    // The table: a row per node, in sync; -v names peers by node number.
    let table = stdout(&["status"], &project);
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<usize>().is_ok())
        })
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows.iter()
            .all(|r| r.contains(" up ") && r.contains("in sync")),
        "{table}"
    );
    assert!(rows.iter().all(|r| r.contains("2/2")), "{table}");
    let verbose = stdout(&["status", "-v"], &project);
    assert!(
        verbose.contains("↳ node 2") && verbose.contains("↳ node 1"),
        "{verbose}"
    );

    // --json without --node: every node, with the context.
    let all: Value = serde_json::from_str(&stdout(&["status", "--json"], &project)).unwrap();
    assert_eq!(all["context"], Value::from(net.context.clone()));
    let nodes = all["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{all}");
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n["index"], Value::from(i + 1));
        assert!(
            n["sync"]["digest"].is_string() && n["error"].is_null(),
            "{n}"
        );
    }

    // Any node by URL, from anywhere.
    let n2 = net.node(2).unwrap();
    let by_url = |json: bool| {
        let mut args = vec![
            "status",
            "--url",
            &n2.rpc_url,
            "--token",
            &n2.admin_token,
            "--context",
            &net.context,
        ];
        if json {
            args.push("--json");
        }
        stdout(&args, dir.path())
    };
    let s: SyncStatus = serde_json::from_str(&by_url(true)).unwrap();
    assert_eq!(s.context.to_string(), net.context);
    assert!(by_url(false).contains("in sync"));
    let (ok, err) = {
        let out = cargo_mero(&["status", "--url", &n2.rpc_url], dir.path());
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!ok && err.contains("--url needs --context"), "{err}");
}
