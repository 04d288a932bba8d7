//! A node holding many contexts: 1,000 contexts of 1,000 deltas each
//! (kv-store `set`s of distinct keys), in a real `merod` process.
//!
//! Prints:
//! - restart to serving: from spawning `merod` on the home until a query
//!   on a random context has answered (the contexts start cold: their logs
//!   are read when first used);
//! - resident memory per idle context: (RSS of the node − RSS of a node
//!   with the same app and no context) / contexts, right after the
//!   restart, with every context loaded (each queried once), and once
//!   they went cold again (`store.idle_evict_secs = 2`);
//! - that the contexts still replicate: a second node joins a few of
//!   them, and writes cross both ways.
//!
//! The home is generated once in-process (`mero-node` as a library, about
//! a minute) and kept under `~/.cache/mero/bench/`; every run copies it.
//! Budgets: restart ≤ 300 ms, ≤ 100 KiB per idle context.
//! Run: `cargo bench --workspace --bench contexts`
//! (`MERO_BENCH_CONTEXTS`, `MERO_BENCH_DELTAS` change the sizes).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mero_node::config::NodeConfig;
use mero_node::{CallKind, CallRequest, Node};
use serde_json::json;
use support::bench::{self, copy_dir, env_or};
use support::{NodeProc, build_app, init_home, merod_config, rss_kib, wait_converged, wait_for};

/// Bumped whenever the home's format or contents change.
const FORMAT: u32 = 5;

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let contexts = env_or("MERO_BENCH_CONTEXTS", 1000);
    let deltas = env_or("MERO_BENCH_DELTAS", 1000);
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let cached = cached_home(&wasm, contexts, deltas);

    // Baseline: the same app, no context, restarted (so it loads the
    // compiled module as the measured node does, instead of compiling it).
    let empty_dir = tempfile::tempdir().unwrap();
    init_home(empty_dir.path());
    let empty = NodeProc::start(empty_dir.path());
    empty.install(&wasm);
    empty.kill();
    let empty = NodeProc::start(empty_dir.path());
    std::thread::sleep(Duration::from_secs(2));
    let empty_kib = rss_kib(empty.pid());

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    copy_dir(&cached, &home);
    let (ok, out) = merod_config(&home, &["set", "store.idle_evict_secs", "2"]);
    assert!(ok, "{out}");
    let ids = context_ids(&cached);
    let probe = &ids[ids.len() / 2];

    let started = Instant::now();
    let a = NodeProc::start(&home);
    let answer = a.query(probe, "get", json!({"key": "k0"}));
    let restart = started.elapsed();
    assert_eq!(answer, json!("v"));
    std::thread::sleep(Duration::from_secs(1));
    let cold_start_kib = rss_kib(a.pid());
    println!(
        "restart to serving, {contexts} contexts x {deltas} deltas: {restart:.1?} (budget <= 300 ms)"
    );

    let loading = Instant::now();
    for id in &ids {
        assert_eq!(a.query(id, "get", json!({"key": "k1"})), json!("v"));
    }
    let loading = loading.elapsed();
    let loaded_kib = rss_kib(a.pid());
    wait_for(Duration::from_secs(60), || {
        let resident = a.metric_lines(|l| l.starts_with("mero_contexts_resident "));
        (resident.first().map(String::as_str) == Some("mero_contexts_resident 0")).then_some(())
    })
    .expect("the contexts go cold again");
    std::thread::sleep(Duration::from_secs(1));
    let idle_kib = rss_kib(a.pid());
    let per = |kib: u64| kib.saturating_sub(empty_kib) as f64 / contexts as f64;
    println!(
        "first query of every context: {loading:.1?} ({:.2?} each)",
        loading / contexts as u32
    );
    println!(
        "resident memory per context: {:.1} KiB after the restart (none used yet), {:.1} KiB with all loaded, {:.1} KiB once idle again (budget <= 100 KiB idle; node {} KiB, empty node {} KiB)",
        per(cold_start_kib),
        per(loaded_kib),
        per(idle_kib),
        idle_kib,
        empty_kib
    );

    replicates(&a, &ids);
    drop(empty);
}

/// A second node joins a few of `a`'s contexts (cold by now); writes on
/// either side reach the other.
fn replicates(a: &NodeProc, ids: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    init_home(dir.path());
    let b = NodeProc::start_with(dir.path(), &[&a.p2p]);
    let step = (ids.len() / 5).max(1);
    let picked: Vec<&String> = ids.iter().step_by(step).take(5).collect();
    let joined = Instant::now();
    for ctx in &picked {
        b.join(&a.invite(ctx));
    }
    for ctx in &picked {
        wait_converged(&[a, &b], ctx, Duration::from_secs(120));
        let app = a.get(&format!("/admin/contexts/{ctx}"))["app"].clone();
        b.wait_app(app.as_str().unwrap());
    }
    println!(
        "a second node joined {} contexts and caught up in {:.1?}",
        picked.len(),
        joined.elapsed()
    );
    for ctx in &picked {
        support::replicates_both_ways(a, &b, ctx);
    }
    println!("writes replicate both ways in each");
}

/// The contexts of the home at `home` (its `contexts.txt`).
fn context_ids(home: &Path) -> Vec<String> {
    std::fs::read_to_string(home.join("contexts.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The generated home for these sizes, made now if it is not cached.
fn cached_home(wasm: &[u8], contexts: usize, deltas: usize) -> PathBuf {
    let name = format!("contexts-v{FORMAT}-{contexts}x{deltas}");
    bench::cached_home(&name, "contexts.txt", |home| {
        generate(home, wasm, contexts, deltas)
    })
}

/// Writes a merod home with `contexts` contexts of `deltas` deltas each,
/// every one left cold, and lists them in `contexts.txt`.
fn generate(home: &Path, wasm: &[u8], contexts: usize, deltas: usize) {
    init_home(home);
    let node = Node::open(home, NodeConfig::load(home).unwrap()).unwrap();
    let app = node.install_app(wasm).unwrap().hash;
    let mut ids = Vec::with_capacity(contexts);
    for _ in 0..contexts {
        // `init` writes the first delta.
        let ctx = node.create_context(&app, b"{}").unwrap().id;
        let calls: Vec<CallRequest> = (0..deltas.saturating_sub(1))
            .map(|k| CallRequest {
                context: ctx,
                method: "set".into(),
                args: json!({"key": format!("k{k}"), "value": "v"})
                    .to_string()
                    .into_bytes(),
                kind: CallKind::Execute,
            })
            .collect();
        for chunk in calls.chunks(250) {
            for answer in node.call_many(chunk.to_vec()) {
                answer.unwrap();
            }
        }
        ids.push(ctx.to_string());
        // Keep the generator's own memory flat.
        node.evict_idle(Duration::ZERO);
    }
    node.evict_idle(Duration::ZERO);
    node.close();
    drop(node);
    std::fs::write(home.join("contexts.txt"), ids.join("\n")).unwrap();
}
