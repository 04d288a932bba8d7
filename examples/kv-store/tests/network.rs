//! kv-store on real nodes (`mero-testnet`): writes on both sides of a
//! partition meet after the heal, a convergence wait that gives up says
//! which keys and authors differ, a killed node restarts with its state,
//! a node added later catches up, and a failing test leaves nothing behind.

use std::time::Duration;

use mero_testnet::{Testnet, Value, json};

fn network(n: usize) -> Testnet {
    mero_testnet::app!()
        .network(n)
        .unwrap_or_else(|e| panic!("a {n}-node network: {e}"))
}

fn set(net: &Testnet, node: usize, key: &str, value: &str) {
    net.node(node)
        .execute("set", json!({ "key": key, "value": value }))
        .unwrap_or_else(|e| panic!("set {key} on node {node}: {e}"));
}

fn get(net: &Testnet, node: usize, key: &str) -> Value {
    net.node(node)
        .query("get", json!({ "key": key }))
        .unwrap_or_else(|e| panic!("get {key} on node {node}: {e}"))
}

#[test]
fn writes_on_both_sides_of_a_partition_converge_after_the_heal() {
    let mut net = network(3);
    net.partition(&[3]).unwrap();
    set(&net, 1, "left", "from 1");
    set(&net, 3, "right", "from 3");

    // Nothing crosses: not by gossip, not by catch-up (several rounds).
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(get(&net, 3, "left"), json!(null));
    assert_eq!(get(&net, 1, "right"), json!(null));
    assert_eq!(get(&net, 2, "right"), json!(null));

    // A wait that gives up names the keys and the authors that differ.
    let err = net.wait_converged(Duration::from_millis(1)).unwrap_err();
    let text = err.to_string();
    let line = |path: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{path}:")))
            .unwrap_or_else(|| panic!("no line for {path} in:\n{text}"))
            .to_owned()
    };
    let left = line("/items/left");
    assert!(left.contains(r#"node1="from 1""#), "{left}");
    assert!(left.contains("node3=absent"), "{left}");
    let right = line("/items/right");
    assert!(right.contains("node1=absent"), "{right}");
    assert!(right.contains(r#"node3="from 3""#), "{right}");
    for (author, ahead, behind) in [(1, 1, 3), (3, 3, 1)] {
        let key = net.node(author).member();
        let diff = err
            .authors
            .iter()
            .find(|a| a.author == key)
            .unwrap_or_else(|| panic!("node{author}'s key not named in:\n{text}"));
        assert_eq!(diff.node, Some(author));
        let seq = |n: usize| diff.seqs.iter().find(|(i, _)| *i == n).unwrap().1;
        assert!(seq(ahead) > seq(behind), "{text}");
        assert!(
            text.contains(&format!("node{author}'s key {key}:")),
            "{text}"
        );
    }

    net.heal().unwrap();
    let done = net
        .wait_converged(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(done.since_heal.is_some());
    for node in 1..=3 {
        assert_eq!(get(&net, node, "left"), json!("from 1"), "node {node}");
        assert_eq!(get(&net, node, "right"), json!("from 3"), "node {node}");
    }
}

#[test]
fn a_killed_node_restarts_with_its_state_and_catches_up() {
    let mut net = network(2);
    set(&net, 2, "before", "1");
    net.wait_converged(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let peer = net.node(2).peer_id().to_owned();
    let member = net.node(2).member().to_owned();

    net.kill(2).unwrap();
    assert!(!net.node(2).is_running());
    assert!(net.node(2).query("get", json!({"key": "before"})).is_err());
    set(&net, 1, "while-down", "2");

    net.restart(2).unwrap();
    // Same identity, and its own write back from its disk.
    assert_eq!(net.node(2).peer_id(), peer);
    assert_eq!(
        net.node(2)
            .client()
            .context(net.context())
            .unwrap()
            .member
            .to_string(),
        member
    );
    assert_eq!(get(&net, 2, "before"), json!("1"));
    net.wait_converged(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(get(&net, 2, "while-down"), json!("2"));
}

#[test]
fn an_added_node_catches_up_and_writes() {
    let mut net = network(2);
    set(&net, 1, "early", "1");
    let third = net.add_node().unwrap();
    assert_eq!(third, 3);
    net.wait_converged(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(get(&net, 3, "early"), json!("1"));
    set(&net, 3, "late", "3");
    net.wait_converged(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(get(&net, 1, "late"), json!("3"));
    let vector = net.node(1).sync().unwrap().vector;
    assert!(vector.contains_key(net.node(3).member()), "{vector:?}");
}

#[test]
fn a_failing_test_leaves_no_node_and_no_home_behind() {
    let seen = std::sync::Mutex::new(None);
    let unwound = std::panic::catch_unwind(|| {
        let net = network(1);
        let node = net.node(1);
        *seen.lock().unwrap() = Some((node.home().to_owned(), node.pid().unwrap()));
        panic!("a failing test");
    });
    assert!(unwound.is_err());
    let (home, pid) = seen.lock().unwrap().take().unwrap();
    assert!(!home.exists(), "{} is still there", home.display());
    // Reaped: no process, not even a zombie.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
