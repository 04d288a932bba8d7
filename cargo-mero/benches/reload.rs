//! Save-to-live latency of `cargo mero dev`: the time from writing a source
//! file to the new code answering on all three nodes, over 10 edits.
//! Budget: p50 <= 3 s on the 2-core reference machine.
//!
//!     cargo bench --workspace --bench reload

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use cargo_mero::client::CallKind;
use serde_json::json;
use support::{Dev, add_view, new_project, wait_for};

const EDITS: usize = 10;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "bench-reload", "kv-store");
    let dev = Dev::start(&project, &["--nodes", "3", "--clean", "-q"]);
    let net = dev.network();
    let mut times = Vec::new();
    for i in 0..EDITS {
        let name = format!("edit_{i}");
        // Let the watcher see each save on its own.
        std::thread::sleep(Duration::from_millis(300));
        let saved = Instant::now();
        add_view(&project, &name, i as i64);
        for node in 1..=3 {
            wait_for(Duration::from_secs(120), "the edit on every node", || {
                let v = dev
                    .call(&net, node, CallKind::Query, &name, json!({}))
                    .ok()?;
                (v == json!(i)).then_some(())
            });
        }
        let t = saved.elapsed();
        println!(
            "edit {i}: new code live on 3 nodes {:.2} s after the save",
            t.as_secs_f64()
        );
        times.push(t);
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64();
    println!(
        "save to live on 3 nodes, {EDITS} edits: p50 {:.2} s, p90 {:.2} s, max {:.2} s (budget p50 <= 3 s)",
        at(0.5),
        at(0.9),
        at(1.0)
    );
}
