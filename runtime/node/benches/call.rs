//! In-node call latency: a no-op call, a view and kv-store `set`/`get`, through
//! `Node::call` (WASM instance per call, state engine, RocksDB write batch),
//! without HTTP, and a cross-context call beside the same work done
//! locally. Prints percentiles; the budget is p50 <= 50 us for a no-op.
//!
//! Run: `cargo bench --workspace --bench call`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use mero_node::config::NodeConfig;
use mero_node::ids::ContextId;
use mero_node::{CallKind, Node};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn measure(name: &str, n: usize, mut f: impl FnMut(usize)) {
    for i in 0..n / 10 {
        f(usize::MAX - i);
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i);
        samples.push(t.elapsed());
    }
    samples.sort();
    let total: Duration = samples.iter().sum();
    println!(
        "{name:<28} n={n:<6} p50={:>8.1?} p90={:>8.1?} p99={:>8.1?} mean={:>8.1?}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.90),
        percentile(&samples, 0.99),
        total / n as u32,
    );
}

fn setup(dir: &std::path::Path, manifest: &str) -> (std::sync::Arc<Node>, ContextId) {
    let node = Node::open(dir, NodeConfig::generate("127.0.0.1:0".parse().unwrap())).unwrap();
    let ctx = support::context_of(&node, manifest);
    (node, ctx)
}

fn main() {
    // `cargo bench` passes flags such as `--bench`; this harness takes none.
    let n = 20_000;
    let faulty_dir = tempfile::tempdir().unwrap();
    let (node, ctx) = setup(faulty_dir.path(), "runtime/fixtures/faulty-app/Cargo.toml");
    println!("mero in-node call latency (release, one context, one thread)");
    measure("no-op mutating call", n, |_| {
        node.call(&ctx, "noop", b"{}", CallKind::Execute).unwrap();
    });
    measure("no-op view (query)", n, |_| {
        node.call(&ctx, "peek", b"{}", CallKind::Query).unwrap();
    });

    let kv_dir = tempfile::tempdir().unwrap();
    let (node, ctx) = setup(kv_dir.path(), "examples/kv-store/Cargo.toml");
    measure("kv-store set (new key)", n, |i| {
        let args = format!(r#"{{"key":"k{i}","value":"v{i}"}}"#);
        node.call(&ctx, "set", args.as_bytes(), CallKind::Execute)
            .unwrap();
    });
    measure("kv-store get", n, |i| {
        let args = format!(r#"{{"key":"k{}"}}"#, i % 1000);
        node.call(&ctx, "get", args.as_bytes(), CallKind::Query)
            .unwrap();
    });

    // The same increment done in the caller's context, and in another
    // context through a cross-context call (both deltas in one write).
    let x_dir = tempfile::tempdir().unwrap();
    let (node, a) = setup(x_dir.path(), "runtime/fixtures/xcall-app/Cargo.toml");
    let b = support::context_of(&node, "runtime/fixtures/xcall-app/Cargo.toml");
    measure("xcall-app local increment", n, |_| {
        node.call(&a, "bump", b"{}", CallKind::Execute).unwrap();
    });
    let args = format!(r#"{{"to":"{b}"}}"#);
    measure("xcall-app increment via xcall", n, |_| {
        node.call(&a, "bump_other", args.as_bytes(), CallKind::Execute)
            .unwrap();
    });
    let args = format!(r#"{{"other":"{b}"}}"#);
    measure("xcall-app view via xcall", n, |_| {
        node.call(&a, "sum_with", args.as_bytes(), CallKind::Query)
            .unwrap();
    });
    measure("xcall-app local view", n, |_| {
        node.call(&a, "total", b"{}", CallKind::Query).unwrap();
    });
}
