//! `cargo mero build` end to end: real cargo, real wasm-opt, ABI embedded.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn target_dir() -> PathBuf {
    // Shared with the node's tests so the wasm dependencies compile once.
    Path::new(env!("CARGO_BIN_EXE_cargo-mero"))
        .parent()
        .unwrap()
        .join("../mero-test-wasm")
}

fn cargo_mero(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-mero"))
        .arg("mero")
        .args(args)
        .arg("--target-dir")
        .arg(target_dir())
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn builds_optimizes_and_embeds_the_abi() {
    let out = cargo_mero(&["build", "--json"], &workspace().join("examples/kv-store"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["package"], "kv-store");
    assert_eq!(report["optimized"], true);
    let before = report["sizeBefore"].as_u64().unwrap();
    let after = report["sizeAfter"].as_u64().unwrap();
    assert!(
        after < before,
        "wasm-opt shrank nothing: {before} -> {after}"
    );

    let wasm = std::fs::read(report["wasm"].as_str().unwrap()).unwrap();
    assert!(wasm.starts_with(b"\0asm"));
    let abi = mero_abi::wasm::read_abi(&wasm).unwrap();
    assert!(
        mero_abi::wasm::custom_section(&wasm, mero_abi::ABI_FRAGMENT_SECTION)
            .unwrap()
            .is_none()
    );
    let names: Vec<_> = abi.methods.iter().map(|m| m.name.as_str()).collect();
    for m in [
        "entries", "get", "init", "len", "remove", "set", "tag", "tags", "writes",
    ] {
        assert!(names.contains(&m), "ABI lacks {m}: {names:?}");
    }
    let get = abi.method("get").unwrap();
    assert_eq!(get.mutability, mero_abi::Mutability::View);
    assert_eq!(get.params[0].name, "key");
    assert_eq!(get.params[0].ty, "&str");
    assert_eq!(get.returns, "Option<String>");
    let set = abi.method("set").unwrap();
    assert!(set.fallible);
    assert_eq!(set.mutability, mero_abi::Mutability::Mutating);
    assert_eq!(abi.events.len(), 2);
    assert_eq!(abi.state.name, "KvStore");
    assert_eq!(abi.state.emits.as_deref(), Some("Event"));

    let file: mero_abi::AppAbi =
        serde_json::from_slice(&std::fs::read(report["abiPath"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(file, abi);
    // The hash is the node's app hash of exactly these bytes.
    assert_eq!(
        report["hash"].as_str().unwrap(),
        mero_node::ids::AppHash(mero_node::ids::sha256(&wasm)).to_string()
    );
}

#[test]
fn selects_packages_in_a_workspace_and_reports_bad_ones() {
    let ws = workspace();
    let out = cargo_mero(&["build", "--json", "--no-opt", "-p", "faulty-app"], &ws);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["optimized"], false);

    let out = cargo_mero(&["build", "-p", "mero-abi"], &ws);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an app"));

    let out = cargo_mero(&["build", "-p", "no-such-package"], &ws);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no package `no-such-package`"));

    let manifest = ws.join("examples/kv-store/Cargo.toml");
    let out = cargo_mero(
        &[
            "build",
            "--json",
            "--manifest-path",
            manifest.to_str().unwrap(),
        ],
        Path::new("/"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
