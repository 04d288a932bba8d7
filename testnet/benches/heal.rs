//! Heal to converged: three nodes, node 3 partitioned away while deltas
//! are written, then healed; the time from the heal to the last node's
//! last heads change (the nodes' own clocks, `headsChangedAtMs`). Median
//! of 5 per variant: 1,000 deltas on node 1's side, and 500 on each side.
//!
//!     cargo bench --workspace --bench heal

use std::time::{Duration, Instant};

use mero_testnet::{App, json};

const RUNS: usize = 5;

fn kv_store() -> App {
    App::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/kv-store"))
}

/// One run: writes `left` deltas on node 1 and `right` on node 3 while
/// they are apart; returns (heal to converged by the nodes' clocks, heal
/// to the wait's return).
fn run(left: usize, right: usize) -> (Duration, Duration) {
    let mut net = kv_store().network(3).expect("a 3-node network");
    net.partition(&[3]).unwrap();
    for (node, count) in [(1, left), (3, right)] {
        for i in 0..count {
            net.node(node)
                .execute("set", json!({"key": format!("n{node}-{i}"), "value": "x"}))
                .unwrap();
        }
    }
    // Let node 1's side settle first: only the heal is measured.
    std::thread::sleep(Duration::from_millis(500));
    let healed = Instant::now();
    net.heal().unwrap();
    let done = net
        .wait_converged(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    (done.since_heal.expect("healed"), healed.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    for (left, right) in [(1_000, 0), (500, 500)] {
        let (mut nodes, mut observed) = (Vec::new(), Vec::new());
        for i in 0..RUNS {
            let (n, o) = run(left, right);
            println!(
                "{left}/{right} run {i}: converged {} ms after the heal (seen {} ms)",
                n.as_millis(),
                o.as_millis()
            );
            nodes.push(n);
            observed.push(o);
        }
        println!(
            "heal -> converged, {left} + {right} deltas written apart: median {} ms (seen by polling: {} ms)",
            median(nodes).as_millis(),
            median(observed).as_millis()
        );
    }
}
