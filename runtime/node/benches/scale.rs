//! Propagation among 20 `merod` processes in one context, on loopback.
//!
//! Node 1 creates the context and invites the others. Two topologies:
//!
//! - **star**: every node knows only node 1 (what the invitation alone
//!   gives: a joiner dials its inviter), so gossip from any other writer
//!   takes two hops;
//! - **mesh**: node i also dials nodes i-1, i-2 and i/2 at start, so
//!   gossipsub builds its mesh among the members.
//!
//! In each, one writer (node 1, 200 writes) and then twenty writers (every
//! node, 20 writes each, all at once). Writes are paced (one per 20 ms per
//! writer with one writer, one per 100 ms per writer with twenty), so the
//! figures are propagation, not a queue. A write's latency is the time from
//! `execute` returning on its writer until the last of the other 19 nodes
//! applied it (its event on that node's WebSocket, pushed after the delta is
//! persisted; one clock, one machine); the per-node figure is the same for
//! each (write, receiving node) pair.
//!
//! Run: `cargo bench --workspace --bench scale` (`MERO_SCALE_NODES` changes
//! the node count).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::events::{connect, percentile, ws_url};
use support::{NodeProc, build_app, init_home, merod_config, share_context, wait_converged};

/// When each node applied each key.
type Arrivals = Arc<Mutex<HashMap<(String, usize), Instant>>>;

#[derive(Clone, Copy, Debug)]
enum Topology {
    Star,
    Mesh,
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n: usize = std::env::var("MERO_SCALE_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    assert!(n >= 2, "MERO_SCALE_NODES must be at least 2");
    let wasm = build_app("examples/kv-store/Cargo.toml");
    for topology in [Topology::Star, Topology::Mesh] {
        let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let nodes = start(&dirs, topology);
        let (ctx, _) = share_context(&nodes, &wasm);
        let arrivals = watch(&nodes, &ctx);
        let label = format!("{topology:?}, {n} nodes").to_lowercase();

        let one = write(
            &nodes,
            &ctx,
            &arrivals,
            &[0],
            200,
            Duration::from_millis(20),
        );
        report(
            &format!("{label}, 1 writer "),
            &one,
            &arrivals,
            &nodes,
            &ctx,
        );
        let writers: Vec<usize> = (0..n).collect();
        let all = write(
            &nodes,
            &ctx,
            &arrivals,
            &writers,
            20,
            Duration::from_millis(100),
        );
        report(
            &format!("{label}, {n} writers"),
            &all,
            &arrivals,
            &nodes,
            &ctx,
        );

        let refs: Vec<&NodeProc> = nodes.iter().collect();
        wait_converged(&refs, &ctx, Duration::from_secs(120));
    }
}

/// Starts a node in each of `dirs`, connected as `topology` says.
fn start(dirs: &[tempfile::TempDir], topology: Topology) -> Vec<NodeProc> {
    let mut nodes: Vec<NodeProc> = Vec::with_capacity(dirs.len());
    for (i, dir) in dirs.iter().enumerate() {
        init_home(dir.path());
        // Twenty nodes and this harness share two cores: a reader thread
        // may fall more than the default 1,024 messages behind a burst and
        // be dropped as too slow.
        let (ok, out) = merod_config(dir.path(), &["set", "events.subscriber_buffer", "65536"]);
        assert!(ok, "{out}");
        let mut dial: Vec<usize> = match topology {
            _ if i == 0 => vec![],
            Topology::Star => vec![0],
            Topology::Mesh => vec![0, i - 1, i.saturating_sub(2), i / 2],
        };
        dial.sort();
        dial.dedup();
        let bootstrap: Vec<&str> = dial.iter().map(|&j| nodes[j].p2p.as_str()).collect();
        nodes.push(NodeProc::start_with(dir.path(), &bootstrap));
    }
    nodes
}

/// Records, on a thread per node, when that node's WebSocket reports each
/// key set in `ctx`. A thread ends when its node stops.
fn watch(nodes: &[NodeProc], ctx: &str) -> Arrivals {
    let arrivals: Arrivals = Arc::default();
    for (i, node) in nodes.iter().enumerate() {
        let mut socket = connect(&ws_url(node, ctx), Duration::from_secs(3600));
        let arrivals = arrivals.clone();
        std::thread::spawn(move || {
            loop {
                let msg = match socket.read() {
                    Ok(msg) => msg,
                    Err(e) => {
                        // Also how a thread ends when its node stops.
                        eprintln!("node {}: event stream ended: {e}", i + 1);
                        return;
                    }
                };
                let tungstenite::Message::Text(t) = msg else {
                    continue;
                };
                let v: Value = serde_json::from_str(&t).unwrap_or_default();
                if let Some(key) = v["params"]["data"]["key"].as_str() {
                    let at = Instant::now();
                    arrivals.lock().unwrap().insert((key.to_owned(), i), at);
                }
            }
        });
    }
    arrivals
}

/// Each of `writers` sets `count` fresh keys, one per `pace`, all writers
/// at once; returns each key with its writer and when `execute` returned.
fn write(
    nodes: &[NodeProc],
    ctx: &str,
    arrivals: &Arrivals,
    writers: &[usize],
    count: usize,
    pace: Duration,
) -> Vec<(String, usize, Instant)> {
    let round = format!("r{}", arrivals.lock().unwrap().len());
    let written = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for &w in writers {
            let (written, round) = (&written, &round);
            s.spawn(move || {
                // Writers start spread over one pace, not in lockstep.
                std::thread::sleep(pace.mul_f64(w as f64 / writers.len() as f64));
                for k in 0..count {
                    let key = format!("{round}-{w}-{k}");
                    let began = Instant::now();
                    nodes[w].execute(ctx, "set", json!({"key": key, "value": "v"}));
                    written.lock().unwrap().push((key, w, Instant::now()));
                    std::thread::sleep(pace.saturating_sub(began.elapsed()));
                }
            });
        }
    });
    written.into_inner().unwrap()
}

/// Waits until every node but the writer reported every key, then prints
/// the latency to all of them and to each.
fn report(
    label: &str,
    written: &[(String, usize, Instant)],
    arrivals: &Arrivals,
    nodes: &[NodeProc],
    ctx: &str,
) {
    let n = nodes.len();
    let complete = support::wait_for(Duration::from_secs(120), || {
        let a = arrivals.lock().unwrap();
        let missing = written
            .iter()
            .flat_map(|(k, w, _)| (0..n).filter(move |i| i != w).map(move |i| (k, i)))
            .filter(|(k, i)| !a.contains_key(&((*k).clone(), *i)))
            .count();
        (missing == 0).then_some(())
    });
    if complete.is_none() {
        let a = arrivals.lock().unwrap();
        let missing: Vec<usize> = (0..n)
            .map(|i| {
                written
                    .iter()
                    .filter(|(k, w, _)| *w != i && !a.contains_key(&(k.clone(), i)))
                    .count()
            })
            .collect();
        let synced: Vec<Value> = nodes
            .iter()
            .map(|node| {
                let s = node.sync(ctx);
                json!([s["deltas"], s["pending"], s["summary"]["state"]])
            })
            .collect();
        panic!(
            "{label}: events missing on each node after 120 s: {missing:?}; deltas, pending and state: {synced:?}"
        );
    }
    let a = arrivals.lock().unwrap();
    let mut to_all = Vec::with_capacity(written.len());
    let mut to_each = Vec::with_capacity(written.len() * n);
    for (key, w, returned) in written {
        let mut last = Duration::ZERO;
        for i in (0..n).filter(|i| i != w) {
            let d = a[&(key.clone(), i)].saturating_duration_since(*returned);
            to_each.push(d);
            last = last.max(d);
        }
        to_all.push(last);
    }
    to_all.sort();
    to_each.sort();
    let show = |v: &[Duration]| {
        format!(
            "p50={:>8.2?} p99={:>8.2?} max={:>8.2?}",
            percentile(v, 0.5),
            percentile(v, 0.99),
            v[v.len() - 1]
        )
    };
    println!(
        "{label:<26} writes={:<5} to all others: {}   to each: {}",
        written.len(),
        show(&to_all),
        show(&to_each)
    );
}
