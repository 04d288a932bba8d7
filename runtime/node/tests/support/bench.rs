//! What the benchmarks share: sizes from the environment, and generated
//! homes cached under `~/.cache/mero/bench/` (made once, copied per run).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The number in the environment variable `name`, else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The cached home `name`, made now by `generate` if it is not there:
/// a home counts as made once it holds the file `marker` (`generate`
/// writes it last), so an interrupted generation is made again.
pub fn cached_home(name: &str, marker: &str, generate: impl FnOnce(&Path)) -> PathBuf {
    let root = PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/mero/bench");
    let home = root.join(name);
    if home.join(marker).exists() {
        return home;
    }
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&root).unwrap();
    let partial = root.join(format!("{name}-partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let started = Instant::now();
    generate(&partial);
    std::fs::rename(&partial, &home).unwrap();
    println!(
        "generated {name} in {:.1?} ({})",
        started.elapsed(),
        home.display()
    );
    home
}

/// Copies the directory `from` to `to` (`cp -a`).
pub fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success(), "copying {} failed", from.display());
}
