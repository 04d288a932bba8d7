//! `cargo mero new` end to end: every template renders a project that
//! passes its own tests and builds to a WASM module carrying its ABI.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{cargo_mero, new_project, target_dir};

fn check_template(template: &str) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("tpl-{template}");
    let project = new_project(dir.path(), &name, template);
    assert!(
        project.join(".git").is_dir(),
        "git init outside a repository"
    );

    // Never over a non-empty directory.
    let again = cargo_mero(&["new", &name, "--template", template], dir.path());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let test = Command::new(cargo)
        .arg("test")
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(
        test.status.success(),
        "cargo test failed in the {template} project:\n{stdout}\n{}",
        String::from_utf8_lossy(&test.stderr)
    );
    // Native logic tests and a convergence test ran (and passed).
    assert!(stdout.contains(" ... ok"), "no test ran:\n{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("converge") && l.ends_with(" ... ok")),
        "no convergence test ran:\n{stdout}"
    );

    let build = cargo_mero(&["build", "--json"], &project);
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let report: Value = serde_json::from_slice(&build.stdout).unwrap();
    let wasm = std::fs::read(report["wasm"].as_str().unwrap()).unwrap();
    let abi = mero_abi::wasm::read_abi(&wasm).expect("the module carries its ABI");
    assert!(abi.init().is_some(), "{template}: no init in {abi:?}");
    assert!(abi.methods.len() >= 3, "{template}: {:?}", abi.methods);
}

#[test]
fn kv_store_template_tests_and_builds() {
    check_template("kv-store");
}

#[test]
fn counter_template_tests_and_builds() {
    check_template("counter");
}

#[test]
fn chat_template_tests_and_builds() {
    check_template("chat");
}

#[test]
fn lists_templates_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = cargo_mero(&["new", "--list"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    for t in ["kv-store", "counter", "chat"] {
        assert!(text.contains(t), "{text}");
    }
    let out = cargo_mero(&["new", "x", "--template", "nope"], dir.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("available: chat, counter, kv-store"));
    let out = cargo_mero(&["new", "9lives"], dir.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must start with a letter"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
