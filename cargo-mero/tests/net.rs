//! `cargo mero dev` as the network's control plane (issue 16, acceptance
//! 2): one three-node session with piped stdin; every command once through
//! `cargo mero net ...` and once as a terminal line, each checked through
//! the nodes' own API (`/admin/contexts/{ctx}/sync`, `/admin/dev/faults`),
//! a reload while a node is cut off, and `cargo mero net` without a
//! session.
//!
//! That a node started without `--dev` refuses every fault route (403
//! `dev_mode_off`) is runtime/node/tests/faults.rs
//! `without_dev_mode_there_is_no_fault_injection`.

mod support;

use std::path::Path;
use std::time::Duration;

use cargo_mero::client::{CallKind, NodeClient};
use cargo_mero::network::DevNetwork;
use mero_api::{Faults, SyncState, SyncStatus};
use serde_json::{Value, json};
use support::{Dev, add_view, cargo_mero, new_project, wait_for};

const SETTLE: Duration = Duration::from_secs(60);
/// A rebuild of the app on a busy machine.
const RELOAD: Duration = Duration::from_secs(300);

fn client(net: &DevNetwork, i: usize) -> NodeClient {
    let n = net
        .node(i)
        .unwrap_or_else(|| panic!("no node {i} in network.json"));
    NodeClient::new(&n.rpc_url, Some(&n.admin_token))
}

fn sync(net: &DevNetwork, i: usize) -> Option<SyncStatus> {
    client(net, i).sync_status(&net.context).ok()
}

fn faults(net: &DevNetwork, i: usize) -> Faults {
    client(net, i).faults().unwrap()
}

fn peer(net: &DevNetwork, i: usize) -> String {
    net.node(i).unwrap().peer_id.clone()
}

/// How node `i` sees node `of`, per its sync status.
fn sees(net: &DevNetwork, i: usize, of: usize) -> Option<SyncState> {
    let id = peer(net, of);
    sync(net, i)?
        .peers?
        .into_iter()
        .find(|p| p.peer_id == id)
        .map(|p| p.state)
}

/// `cargo mero net ARGS` in the project: (success, stdout, stderr).
fn net_cmd(project: &Path, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["net"];
    all.extend_from_slice(args);
    let out = cargo_mero(&all, project);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn net_ok(project: &Path, args: &[&str]) -> String {
    let (ok, out, err) = net_cmd(project, args);
    assert!(ok, "cargo mero net {args:?} failed:\n{out}\n{err}");
    out
}

fn wait_partitioned(net: &DevNetwork) {
    assert_eq!(faults(net, 1).blocked, [peer(net, 3)]);
    assert_eq!(faults(net, 2).blocked, [peer(net, 3)]);
    let mut on3 = faults(net, 3).blocked;
    on3.sort();
    let mut expected = vec![peer(net, 1), peer(net, 2)];
    expected.sort();
    assert_eq!(on3, expected);
    for i in [1, 2] {
        wait_for(SETTLE, "node 3 unreachable from nodes 1 and 2", || {
            (sees(net, i, 3) == Some(SyncState::Unreachable)).then_some(())
        });
    }
}

fn wait_all_in_sync(net: &DevNetwork, nodes: &[usize]) {
    for &i in nodes {
        wait_for(SETTLE, "every node in sync", || {
            let s = sync(net, i)?;
            let peers = s.peers.unwrap_or_default();
            let all = peers.len() + 1 >= nodes.len()
                && peers.iter().all(|p| p.state == SyncState::InSync);
            (s.summary.state == SyncState::InSync && all).then_some(())
        });
    }
}

fn no_faults(net: &DevNetwork, nodes: &[usize]) {
    for &i in nodes {
        let f = faults(net, i);
        assert!(
            f.blocked.is_empty() && f.links.is_empty(),
            "node {i}: {f:?}"
        );
    }
}

/// The delay and loss node `i` applies to what `from` sends it.
fn link(net: &DevNetwork, i: usize, from: usize) -> Option<(u32, f64)> {
    let id = peer(net, from);
    faults(net, i)
        .links
        .into_iter()
        .find(|l| l.peer.as_deref() == Some(id.as_str()))
        .map(|l| (l.delay_ms, l.loss_percent))
}

fn set(dev: &Dev, net: &DevNetwork, node: usize, key: &str) {
    dev.call(
        net,
        node,
        CallKind::Execute,
        "set",
        json!({"key": key, "value": "v"}),
    )
    .unwrap();
}

fn has(dev: &Dev, net: &DevNetwork, node: usize, key: &str) -> bool {
    dev.call(net, node, CallKind::Query, "get", json!({"key": key}))
        .is_ok_and(|v| v == json!("v"))
}

#[test]
fn every_command_through_net_and_as_a_terminal_line() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "net-kv", "kv-store");
    let mut dev = Dev::start_with_keys(&project, &["--nodes", "3", "--clean"]);
    let net = dev.network();
    assert!(dev.dashboard_url().is_some(), "{}", dev.output());
    assert!(
        net.control.is_some(),
        "network.json names the control server"
    );
    wait_all_in_sync(&net, &[1, 2, 3]);

    // partition / heal through `cargo mero net`.
    let out = net_ok(&project, &["partition", "3"]);
    assert!(out.contains("node 3 partitioned from nodes 1, 2"), "{out}");
    wait_partitioned(&net);
    set(&dev, &net, 1, "during-partition");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !has(&dev, &net, 3, "during-partition"),
        "the partition leaks"
    );
    let out = net_ok(&project, &["heal"]);
    assert!(out.contains("after the heal"), "{out}");
    dev.wait_output("ms after the heal", SETTLE);
    wait_all_in_sync(&net, &[1, 2, 3]);
    no_faults(&net, &[1, 2, 3]);
    assert!(has(&dev, &net, 3, "during-partition"));

    // The same as terminal lines.
    dev.send_line("p 3");
    dev.wait_output_n("node 3 partitioned from nodes 1, 2", 2, SETTLE);
    wait_partitioned(&net);
    dev.send_line("h");
    dev.wait_output_n("ms after the heal", 2, SETTLE);
    wait_all_in_sync(&net, &[1, 2, 3]);
    no_faults(&net, &[1, 2, 3]);

    // delay and loss: a link on both ends, summed per link.
    net_ok(&project, &["delay", "2", "200ms"]);
    assert_eq!(link(&net, 1, 2), Some((200, 0.0)));
    assert_eq!(link(&net, 2, 1), Some((200, 0.0)));
    dev.send_line("d 3 100ms");
    dev.wait_output("node 3: 100 ms more delay", SETTLE);
    assert_eq!(link(&net, 3, 2), Some((300, 0.0)));
    assert_eq!(link(&net, 1, 3), Some((100, 0.0)));
    net_ok(&project, &["loss", "2", "10%"]);
    let (_, loss) = link(&net, 1, 2).unwrap();
    assert!((loss - 10.0).abs() < 1e-9, "{loss}");
    dev.send_line("l 1 50%");
    dev.wait_output("node 1: 50% of gossip lost", SETTLE);
    let (delay, loss) = link(&net, 2, 1).unwrap();
    assert_eq!(delay, 200);
    assert!((loss - 55.0).abs() < 1e-9, "{loss}");
    // Sync still works through delay and loss; heal clears both.
    set(&dev, &net, 2, "through-faults");
    wait_for(SETTLE, "a write through delay and loss", || {
        (has(&dev, &net, 1, "through-faults") && has(&dev, &net, 3, "through-faults")).then_some(())
    });
    net_ok(&project, &["heal", "--no-wait"]);
    no_faults(&net, &[1, 2, 3]);

    // kill / restart: the URL refuses, then answers again, in sync.
    let url3 = net.node(3).unwrap().rpc_url.clone();
    let out = net_ok(&project, &["kill", "3"]);
    assert!(out.contains("node 3 killed"), "{out}");
    assert!(client(&net, 3).health().is_err(), "node 3 still answers");
    wait_for(SETTLE, "node 3 unreachable", || {
        (sees(&net, 1, 3) == Some(SyncState::Unreachable)).then_some(())
    });
    set(&dev, &net, 1, "while-killed");
    let out = net_ok(&project, &["restart", "3"]);
    assert!(out.contains("node 3 restarted"), "{out}");
    let after = dev.network();
    assert_eq!(after.node(3).unwrap().rpc_url, url3, "same ports");
    wait_for(SETTLE, "node 3 catches up", || {
        has(&dev, &after, 3, "while-killed").then_some(())
    });
    wait_all_in_sync(&after, &[1, 2, 3]);
    dev.send_line("k 3");
    dev.wait_output_n("node 3 killed", 2, SETTLE);
    assert!(client(&after, 3).health().is_err(), "node 3 still answers");
    dev.send_line("r 3");
    dev.wait_output_n("node 3 restarted", 2, SETTLE);
    assert_eq!(dev.network().node(3).unwrap().rpc_url, url3);
    wait_all_in_sync(&after, &[1, 2, 3]);

    // A reload while node 3 is cut off: the others switch, the session
    // goes on, and node 3 switches once healed.
    net_ok(&project, &["partition", "3"]);
    wait_partitioned(&after);
    add_view(&project, "answer", 42);
    dev.wait_output("reloaded on 2 nodes", RELOAD);
    let answer = |i: usize| {
        dev.call(&after, i, CallKind::Query, "answer", json!({}))
            .ok()
    };
    assert_eq!(answer(1), Some(json!(42)));
    assert_eq!(answer(3), None, "node 3 switched across the partition");
    net_ok(&project, &["heal"]);
    wait_for(SETTLE, "node 3 on the new code", || {
        (answer(3) == Some(json!(42))).then_some(())
    });

    // add-node: node 4 joins with the same history, then node 5.
    let out = net_ok(&project, &["add-node", "--json"]);
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["ok"], json!(true), "{out}");
    assert_eq!(answer["nodes"].as_array().unwrap().len(), 4, "{out}");
    dev.send_line("a");
    dev.wait_output("node 5 added", SETTLE);
    let grown = dev.network();
    assert_eq!(grown.nodes.len(), 5);
    wait_for(SETTLE, "nodes 4 and 5 share node 1's digest", || {
        let d1 = sync(&grown, 1)?.digest;
        (sync(&grown, 4)?.digest == d1 && sync(&grown, 5)?.digest == d1).then_some(())
    });
    assert!(has(&dev, &grown, 5, "while-killed"));

    // status, and a bad node number.
    dev.send_line("s");
    dev.wait_output("node 5 up", SETTLE);
    let (ok, _, err) = net_cmd(&project, &["kill", "9"]);
    assert!(!ok && err.contains("there is no node 9"), "{err}");

    // No session: the error says what to do.
    drop(dev);
    let (ok, _, err) = net_cmd(&project, &["heal"]);
    assert!(!ok, "heal without a session succeeded");
    assert!(
        err.contains(
            "no running `cargo mero dev` for this project (start one with `cargo mero dev`)"
        ),
        "{err}"
    );
}
