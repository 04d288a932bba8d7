//! Watching an app's sources: notify events, filtered to files that can
//! change the build, batched until the writes settle.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::{DevError, DevEvent};

/// How long the sources must be quiet before a rebuild starts: editors
/// write a file in several steps, and a save-all touches many files.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// Whether a changed path can affect the build.
fn relevant(path: &Path, ignored: &[PathBuf]) -> bool {
    if ignored.iter().any(|i| path.starts_with(i)) {
        return false;
    }
    if path.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("target" | ".git" | "node_modules")
        )
    }) {
        return false;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // Editor swap, backup and lock files.
    !(name.ends_with('~')
        || name.starts_with(".#")
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name == "4913")
}

/// Starts watching `roots` (recursively), sending [`DevEvent::Changed`]
/// for relevant changes. Paths under `ignored` (the target dir) never count.
/// Keep the returned watcher alive for as long as events are wanted.
pub fn watch(
    roots: &[PathBuf],
    ignored: Vec<PathBuf>,
    tx: Sender<DevEvent>,
) -> Result<RecommendedWatcher, DevError> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if !matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) {
            return;
        }
        let paths: Vec<PathBuf> = event
            .paths
            .into_iter()
            .filter(|p| relevant(p, &ignored))
            .collect();
        if !paths.is_empty() {
            let _ = tx.send(DevEvent::Changed(paths, Instant::now()));
        }
    })
    .map_err(|e| DevError::Watch(e.to_string()))?;
    for root in roots {
        watcher
            .watch(root, RecursiveMode::Recursive)
            .map_err(|e| DevError::Watch(format!("{}: {e}", root.display())))?;
    }
    Ok(watcher)
}

/// After a first change, collects further ones until [`DEBOUNCE`] passes
/// with none. Other events that arrive meanwhile are returned for the
/// caller to handle next.
pub fn settle(rx: &Receiver<DevEvent>, mut changed: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<DevEvent>) {
    let mut other = Vec::new();
    while let Ok(ev) = rx.recv_timeout(DEBOUNCE) {
        match ev {
            DevEvent::Changed(p, _) => changed.extend(p),
            ev => {
                other.push(ev);
                break;
            }
        }
    }
    changed.sort();
    changed.dedup();
    (changed, other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_build_output_and_editor_files() {
        let ignored = vec![PathBuf::from("/p/out")];
        assert!(relevant(Path::new("/p/src/lib.rs"), &ignored));
        assert!(!relevant(Path::new("/p/out/x.rs"), &ignored));
        assert!(!relevant(Path::new("/p/target/debug/x"), &ignored));
        assert!(!relevant(Path::new("/p/src/.lib.rs.swp"), &ignored));
        assert!(!relevant(Path::new("/p/src/lib.rs~"), &ignored));
        assert!(!relevant(Path::new("/p/web/node_modules/x/y.js"), &ignored));
    }
}
