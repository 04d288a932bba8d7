//! What an open dashboard costs the nodes: CPU time (utime + stime from
//! `/proc/<pid>/stat`) of the three nodes of a `cargo mero dev --nodes 3`
//! session over 30 s with no page, then over 30 s with the dashboard open in
//! headless Chromium (it polls three routes per node each second and holds
//! one event stream per node). Idle network, no calls. A number for the
//! closing note, not a pass/fail test. Needs Node.js and Chromium, as the
//! dashboard test does.
//!
//!     cargo bench --workspace --bench dashboard

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{Dev, new_project};

const WINDOW: Duration = Duration::from_secs(30);

/// CPU time a process used so far, in clock ticks (fields 14 and 15 of
/// `/proc/<pid>/stat`, counted after the parenthesised name).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("node process {pid} is gone: {e}"));
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// Per node, % of one core used over `window` while `during` runs.
fn measure(pids: &[u32], window: Duration, during: impl FnOnce()) -> Vec<f64> {
    let before: Vec<u64> = pids.iter().map(|&p| cpu_ticks(p)).collect();
    let start = Instant::now();
    during();
    let rest = window.saturating_sub(start.elapsed());
    std::thread::sleep(rest);
    let secs = start.elapsed().as_secs_f64();
    let hz = ticks_per_second();
    pids.iter()
        .zip(before)
        .map(|(&p, b)| (cpu_ticks(p) - b) as f64 / hz / secs * 100.0)
        .collect()
}

fn show(label: &str, pcts: &[f64]) {
    let each: Vec<String> = pcts
        .iter()
        .enumerate()
        .map(|(i, p)| format!("node {} {p:.2} %", i + 1))
        .collect();
    let mean = pcts.iter().sum::<f64>() / pcts.len() as f64;
    println!("{label}: {} (mean {mean:.2} % of a core)", each.join(", "));
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "bench-dash", "kv-store");
    let mut dev = Dev::start(&project, &["--nodes", "3", "--clean", "-q"]);
    dev.wait_output("dashboard: ", Duration::from_secs(30));
    let url = dev
        .output()
        .lines()
        .find_map(|l| {
            l.split_once("dashboard: ")
                .map(|(_, u)| u.trim().to_owned())
        })
        .expect("a dashboard URL");
    let net = dev.network();
    let pids: Vec<u32> = net.nodes.iter().map(|n| n.pid).collect();
    // Let start-up work (joins, first sync rounds) settle.
    std::thread::sleep(Duration::from_secs(5));

    let closed = measure(&pids, WINDOW, || {});
    show("dashboard closed, 30 s", &closed);

    let script = support::ts_packages().join("dashboard.mjs");
    let secs = WINDOW.as_secs().to_string();
    let open = measure(&pids, WINDOW, || {
        let out = std::process::Command::new("node")
            .arg(&script)
            .args(["--hold", &secs, &url])
            .output()
            .expect("running node (Node.js) for headless Chromium");
        assert!(
            out.status.success(),
            "the page did not stay open: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    show("dashboard open, 30 s (plus page start)", &open);
    let extra: Vec<f64> = open.iter().zip(&closed).map(|(o, c)| o - c).collect();
    show("cost of the open dashboard", &extra);
}
