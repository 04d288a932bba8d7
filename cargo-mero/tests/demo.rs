//! `scripts/demo` with a prebuilt binary (`MERO_DEMO_BIN`): it runs
//! `cargo mero dev` on examples/kv-store, which prints the dashboard URL
//! and `ready:`, and SIGTERM to the script (it execs the session) leaves
//! no node behind.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cargo_mero::network::DevNetwork;
use support::{capture, exe, process_gone, target_dir, wait_for};

#[test]
fn the_demo_runs_a_dev_session_and_stops_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut child = Command::new(root.join("scripts/demo"))
        .arg("--no-watch")
        .env("MERO_DEMO_BIN", exe())
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = capture(&mut child);
    let text = || output.lock().unwrap().clone();
    wait_for(Duration::from_secs(600), "the demo's ready line", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("scripts/demo exited ({status}):\n{}", text());
        }
        text().contains("ready:").then_some(())
    });
    let out = text();
    assert!(out.contains("dashboard: http://127.0.0.1:"), "{out}");
    // The session runs the example, in the shared target dir's own network.
    let project = cargo_mero::build::project(&cargo_mero::build::BuildOptions {
        manifest_path: Some(root.join("examples/kv-store/Cargo.toml")),
        target_dir: Some(target_dir()),
        ..Default::default()
    })
    .unwrap();
    let net = DevNetwork::load(&cargo_mero::network::dev_dir(&project)).unwrap();
    assert_eq!(net.nodes.len(), 3);
    assert_eq!(net.pid, child.id(), "the script execs the session");

    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the demo ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    for n in &net.nodes {
        wait_for(Duration::from_secs(10), "every node gone", || {
            process_gone(n.pid).then_some(())
        });
    }
}
