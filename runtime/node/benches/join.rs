//! Joining a context with a long history: 1,000,000 deltas (kv-store `set`s
//! over 10,000 keys), in real `merod` processes on loopback.
//!
//! Prints:
//! - the member's first load of the context after its restart (from its
//!   checkpoint, not its log);
//! - join to serving: from `POST /admin/contexts/join` on a fresh node until
//!   its heads digest equals the member's and a query answers, with the
//!   snapshot's size; then that both states are equal (`/state` export);
//! - for comparison, the same join by replaying every delta on a smaller
//!   history (`MERO_BENCH_REPLAY` deltas, default 50,000).
//!
//! The home is generated once in-process (`mero-node` as a library, a
//! minute or two) and kept under `~/.cache/mero/bench/`; every run copies it.
//! Budget: join to serving ≤ 2 s for 1,000,000 deltas.
//! Run: `cargo bench --workspace --bench join` (`MERO_BENCH_DELTAS` changes
//! the size).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mero_node::config::NodeConfig;
use mero_node::{CallKind, CallRequest, Node};
use serde_json::json;
use support::bench::{self, copy_dir, env_or};
use support::{NodeProc, build_app, init_home, merod_config, rss_kib, wait_for};

/// Bumped whenever the home's format or contents change.
const FORMAT: u32 = 2;
const KEYS: usize = 10_000;

fn main() {
    let deltas = env_or("MERO_BENCH_DELTAS", 1_000_000);
    let replay = env_or("MERO_BENCH_REPLAY", 50_000);
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let joined = join(&wasm, deltas, 10_000);
    println!("join to serving, {deltas} deltas, from a snapshot: {joined:.1?} (budget <= 2 s)");
    let replayed = join(&wasm, replay, 0);
    println!("join to serving, {replay} deltas, replaying every delta: {replayed:.1?}");
}

/// Starts a member on the cached home of `deltas` deltas and a fresh node
/// joining with `replica.snapshot_join_min = min`; returns join to serving.
fn join(wasm: &[u8], deltas: usize, min: u64) -> Duration {
    let cached = cached_home(wasm, deltas);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    copy_dir(&cached, &home);
    let ctx = std::fs::read_to_string(cached.join("context.txt")).unwrap();
    let a = NodeProc::start(&home);
    let loading = Instant::now();
    assert_eq!(a.query(&ctx, "get", json!({"key": "k1"})), json!("v"));
    println!(
        "{deltas} deltas: the member's first load after a restart: {:.1?}",
        loading.elapsed()
    );

    let b_dir = tempfile::tempdir().unwrap();
    init_home(b_dir.path());
    let (ok, out) = merod_config(
        b_dir.path(),
        &["set", "replica.snapshot_join_min", &min.to_string()],
    );
    assert!(ok, "{out}");
    let b = NodeProc::start_with(b_dir.path(), &[&a.p2p]);
    let token = a.invite(&ctx);
    let started = Instant::now();
    b.join(&token);
    wait_for(Duration::from_secs(600), || {
        let (sa, sb) = (a.sync(&ctx), b.sync(&ctx));
        (sa["digest"] == sb["digest"] && sb["joining"] == json!(false)).then_some(())
    })
    .expect("the joiner catches up");
    let app = a.get(&format!("/admin/contexts/{ctx}"))["app"].clone();
    b.wait_app(app.as_str().unwrap());
    assert_eq!(b.query(&ctx, "get", json!({"key": "k1"})), json!("v"));
    let elapsed = started.elapsed();
    let snapshots = b.metric_lines(|l| l.starts_with("mero_snapshot_joins_total "));
    println!(
        "  joiner: {} KiB resident after joining; {}",
        rss_kib(b.pid()),
        snapshots
            .first()
            .map_or("no snapshot metric", String::as_str)
    );
    assert_eq!(
        a.state(&ctx),
        b.state(&ctx),
        "the joiner's state is the member's"
    );
    println!(
        "  identical state: yes ({} deltas each)",
        b.sync(&ctx)["deltas"]
    );
    elapsed
}

/// The generated home for `deltas`, made now if it is not cached.
fn cached_home(wasm: &[u8], deltas: usize) -> PathBuf {
    let name = format!("join-v{FORMAT}-{deltas}");
    bench::cached_home(&name, "context.txt", |home| generate(home, wasm, deltas))
}

/// Writes a merod home with one context of `deltas` deltas, left cold.
fn generate(home: &Path, wasm: &[u8], deltas: usize) {
    init_home(home);
    let node = Node::open(home, NodeConfig::load(home).unwrap()).unwrap();
    let app = node.install_app(wasm).unwrap().hash;
    let ctx = node.create_context(&app, b"{}").unwrap().id;
    let calls = (0..deltas.saturating_sub(1)).map(|k| CallRequest {
        context: ctx,
        method: "set".into(),
        args: json!({"key": format!("k{}", k % KEYS), "value": "v"})
            .to_string()
            .into_bytes(),
        kind: CallKind::Execute,
    });
    let calls: Vec<CallRequest> = calls.collect();
    for chunk in calls.chunks(500) {
        for answer in node.call_many(chunk.to_vec()) {
            answer.unwrap();
        }
    }
    node.evict_idle(Duration::ZERO);
    node.close();
    drop(node);
    std::fs::write(home.join("context.txt"), ctx.to_string()).unwrap();
}
