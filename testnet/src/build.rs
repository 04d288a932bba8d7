//! Building the app under test with `cargo mero build`, once per process.
//!
//! This runs the `cargo-mero` binary rather than linking its build library:
//! that library depends on `mero-node` (wasmtime, RocksDB, libp2p) and
//! binaryen's C++ build through `wasm-opt`, which would make every app's
//! `cargo test` compile the whole node. The binary is needed anyway to run
//! the nodes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Deserialize;

use crate::TestnetError;

/// A built app module.
#[derive(Debug)]
pub struct Built {
    /// The module's bytes.
    pub wasm: Vec<u8>,
    /// Its content hash, as nodes name it.
    pub hash: String,
}

/// The part of `cargo mero build --json` read here.
#[derive(Deserialize)]
struct Report {
    wasm: PathBuf,
    hash: String,
}

/// The target directory builds go to: `<target>/mero-test-wasm` beside
/// the running test executable's `target/`, which the node's and
/// cargo-mero's own tests share (the SDK then compiles to WASM once). Not
/// the outer `cargo test`'s own directory: it may hold that lock.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().ok();
    let target = exe
        .as_deref()
        .and_then(crate::locate::profile_dir)
        .and_then(|p| p.parent().map(Path::to_owned))
        .unwrap_or_else(std::env::temp_dir);
    target.join("mero-test-wasm")
}

/// Built modules by (app directory, features).
type Cache = HashMap<(PathBuf, Vec<String>), Arc<Built>>;

/// Builds the app at `dir` (its Cargo.toml) with `features`; every later
/// call in this process with the same arguments returns the same module.
pub fn build(
    cargo_mero: &Path,
    dir: &Path,
    features: &[String],
) -> Result<Arc<Built>, TestnetError> {
    static BUILT: OnceLock<Mutex<Cache>> = OnceLock::new();
    // Held for the whole build: concurrent tests must not read a module
    // another test's build is still writing.
    let mut cache = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (dir.to_owned(), features.to_vec());
    if let Some(b) = cache.get(&key) {
        return Ok(b.clone());
    }
    let manifest = dir.join("Cargo.toml");
    let mut cmd = Command::new(cargo_mero);
    cmd.args(["mero", "build", "--json", "--no-web", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir())
        .stdin(Stdio::null());
    for f in features {
        cmd.args(["--features", f]);
    }
    let out = cmd.output().map_err(|e| TestnetError::Build {
        manifest: manifest.clone(),
        message: format!("cannot run {}: {e}", cargo_mero.display()),
    })?;
    if !out.status.success() {
        return Err(TestnetError::Build {
            manifest,
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let report: Report = serde_json::from_slice(&out.stdout).map_err(|e| TestnetError::Build {
        manifest: manifest.clone(),
        message: format!("unreadable `--json` report ({e}); is MERO_BIN a cargo-mero?"),
    })?;
    let wasm = std::fs::read(&report.wasm).map_err(|e| TestnetError::Build {
        manifest,
        message: format!("{}: {e}", report.wasm.display()),
    })?;
    let built = Arc::new(Built {
        wasm,
        hash: report.hash,
    });
    cache.insert(key, built.clone());
    Ok(built)
}
