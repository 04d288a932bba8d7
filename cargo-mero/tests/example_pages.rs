//! The example apps' pages under `cargo mero dev --nodes 2`, two headless
//! Chromium windows each, one per node, driven by playwright-core scripts:
//!
//! - notes (`examples/notes/web/test/browser.mjs`): two users type into one
//!   document at the same time, at different places and at one place, and
//!   both end with the same text, holding every word; a keystroke on page 1
//!   shows on page 2 within 1 s; 200 keystrokes are timed from page 1 to
//!   page 2 (p50, p99 printed). The editor's own logic (`npm test` in the
//!   page's directory) runs first.
//! - board (`examples/board/web/test/browser.mjs`): profiles, and a card
//!   created, ticked off, moved, dragged, assigned, renamed and deleted on
//!   one page shows on the other.
//!
//! Each example is copied to a temp dir, since `cargo mero dev` writes into
//! the project (`web/node_modules`, `web/dist`, the bindings), and runs with
//! `--no-watch`, since its sources include the SDK that others edit. The
//! tests take turns: two sessions and four browsers at once would time each
//! other. Needs Node.js, npm and Chromium (`scripts/test` installs them)
//! and playwright-core, from `tests/ts` (installed there when missing). Set
//! `MERO_SKIP_BROWSER=1` to skip on a machine without them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use cargo_mero::client::CallKind;
use cargo_mero::network::DevNetwork;
use serde_json::{Value, json};
use support::{Dev, ts_packages, wait_for};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The workspace's value for a `key.workspace = true` entry, with paths
/// made absolute.
fn inherited(ws: &Path, entry: &toml::Value, from: Option<&toml::Value>) -> toml::Value {
    let Some(from) = from else {
        panic!("the workspace has no entry for {entry}");
    };
    let mut value = match from {
        toml::Value::String(v) => {
            let mut t = toml::Table::new();
            t.insert("version".into(), toml::Value::String(v.clone()));
            t
        }
        toml::Value::Table(t) => t.clone(),
        other => return other.clone(),
    };
    if let Some(toml::Value::String(p)) = value.get("path") {
        let abs = ws.join(p).to_string_lossy().into_owned();
        value.insert("path".into(), toml::Value::String(abs));
    }
    // Keys beside `workspace = true` (features, optional) add to it.
    if let toml::Value::Table(own) = entry {
        for (k, v) in own.iter().filter(|(k, _)| *k != "workspace") {
            value.insert(k.clone(), v.clone());
        }
    }
    toml::Value::Table(value)
}

fn is_inherited(v: &toml::Value) -> bool {
    v.get("workspace").and_then(toml::Value::as_bool) == Some(true)
}

/// The manifest of workspace member `member`, standing alone: inherited
/// fields and dependencies spelled out, and a `[workspace]` of its own.
fn standalone_manifest(ws: &Path, member: &Path) -> String {
    let read =
        |p: &Path| -> toml::Table { toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let root = read(&ws.join("Cargo.toml"));
    let mut manifest = read(&member.join("Cargo.toml"));
    let shared = &root["workspace"];
    if let Some(toml::Value::Table(pkg)) = manifest.get_mut("package") {
        for (k, v) in pkg.iter_mut() {
            if is_inherited(v) {
                *v = shared["package"].get(k).cloned().expect("inherited field");
            }
        }
    }
    for section in ["dependencies", "dev-dependencies"] {
        if let Some(toml::Value::Table(deps)) = manifest.get_mut(section) {
            for (name, v) in deps.iter_mut() {
                if is_inherited(v) {
                    *v = inherited(ws, v, shared["dependencies"].get(name));
                }
            }
        }
    }
    manifest.insert("workspace".into(), toml::Value::Table(toml::Table::new()));
    toml::to_string(&manifest).unwrap()
}

/// Copies `from` to `to`, leaving out what builds write.
fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if skip.contains(&name.to_str().unwrap_or_default()) {
            continue;
        }
        let (src, dest) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dest, &[]);
        } else {
            std::fs::copy(&src, &dest).unwrap();
        }
    }
}

/// Example `name` as a project of its own in `parent`: its sources, its
/// page (with `file:` dependencies made absolute) beside the examples'
/// `web-kit`, and the workspace's lock,
/// so it builds with the same dependency versions.
fn copy_example(ws: &Path, name: &str, parent: &Path) -> PathBuf {
    let example = ws.join("examples").join(name);
    let project = parent.join(name);
    copy_tree(&example.join("src"), &project.join("src"), &[]);
    copy_tree(
        &example.join("web"),
        &project.join("web"),
        &["node_modules", "dist", "generated"],
    );
    // The pages' shared build script, styles and test helpers, where
    // `../../web-kit` from the page finds them.
    copy_tree(&ws.join("examples/web-kit"), &parent.join("web-kit"), &[]);
    std::fs::write(
        project.join("Cargo.toml"),
        standalone_manifest(ws, &example),
    )
    .unwrap();
    std::fs::copy(ws.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let pkg_path = project.join("web/package.json");
    let mut pkg: Value = serde_json::from_slice(&std::fs::read(&pkg_path).unwrap()).unwrap();
    for section in ["dependencies", "devDependencies"] {
        if let Some(deps) = pkg[section].as_object_mut() {
            for spec in deps.values_mut() {
                if let Some(rel) = spec.as_str().and_then(|s| s.strip_prefix("file:")) {
                    let abs = example.join("web").join(rel).canonicalize().unwrap();
                    *spec = json!(format!("file:{}", abs.display()));
                }
            }
        }
    }
    std::fs::write(&pkg_path, serde_json::to_vec_pretty(&pkg).unwrap()).unwrap();
    project
}

/// The page URLs `cargo mero dev` printed, by node.
fn printed_pages(output: &str) -> Vec<(usize, String)> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("node ")?;
            let (index, url) = rest.split_once(char::is_whitespace)?;
            let url = url.trim();
            if !url.contains("/app/index.html?") {
                return None;
            }
            Some((index.parse().ok()?, url.to_owned()))
        })
        .collect()
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {what}: {e}; set MERO_SKIP_BROWSER=1 without Node.js")
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed");
    stdout
}

/// One test at a time: see the module doc.
static TURN: Mutex<()> = Mutex::new(());

/// A dev session of an example with two nodes, and their page URLs as it
/// printed them.
struct Session {
    ws: PathBuf,
    dir: tempfile::TempDir,
    project: PathBuf,
    dev: Dev,
    net: DevNetwork,
    pages: Vec<String>,
}

impl Session {
    /// Starts one for example `name`; `None` when browser tests are skipped.
    fn start(name: &str) -> Option<Session> {
        if std::env::var_os("MERO_SKIP_BROWSER").is_some() {
            eprintln!("MERO_SKIP_BROWSER is set: skipping the browser test");
            return None;
        }
        let ws = workspace();
        let dir = tempfile::tempdir().unwrap();
        let project = copy_example(&ws, name, dir.path());
        let dev = Dev::start(&project, &["--nodes", "2", "--clean", "--no-watch"]);
        let net = dev.network();
        // The URLs dev printed are the ones it saved, one per node.
        let printed = printed_pages(&dev.output());
        assert_eq!(printed.len(), 2, "{}", dev.output());
        let mut pages = Vec::new();
        for (index, url) in printed {
            let node = net.node(index).unwrap();
            assert_eq!(node.page_url.as_deref(), Some(url.as_str()));
            assert!(url.starts_with(&format!("{}/app/", node.rpc_url)), "{url}");
            pages.push(url);
        }
        Some(Session {
            ws,
            dir,
            project,
            dev,
            net,
            pages,
        })
    }

    /// Runs the example's `web/test/browser.mjs` on the two pages; its stdout.
    fn browse(&self, name: &str) -> String {
        let script = self
            .ws
            .join("examples")
            .join(name)
            .join("web/test/browser.mjs");
        let stdout = run(
            Command::new("node")
                .arg(&script)
                .args(&self.pages)
                .env("MERO_PLAYWRIGHT", ts_packages().join("package.json"))
                .env("SCREENSHOT_DIR", self.dir.path()),
            &format!("the browser test (node {})", script.display()),
        );
        assert!(
            stdout.contains(&format!("{name} browser test passed")),
            "{stdout}"
        );
        stdout
    }
}

#[test]
fn notes_typed_into_at_once_in_two_browsers_on_two_nodes() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(s) = Session::start("notes") else {
        return;
    };
    // The editor's logic on its own, with the packages dev installed.
    run(
        Command::new("npm")
            .args(["test", "--silent"])
            .current_dir(s.project.join("web")),
        "npm test (the editor's unit tests)",
    );
    let stdout = s.browse("notes");
    assert!(stdout.contains("keystroke to display"), "{stdout}");

    // What the pages showed is what both nodes hold.
    let last = stdout
        .lines()
        .find_map(|l| l.strip_prefix("final: "))
        .expect("the script prints the final text");
    let last: Value = serde_json::from_str(last).unwrap();
    for i in [1, 2] {
        wait_for(
            Duration::from_secs(10),
            "both nodes to hold the text",
            || {
                let doc = s
                    .dev
                    .call(
                        &s.net,
                        i,
                        CallKind::Query,
                        "get",
                        json!({"doc": last["doc"]}),
                    )
                    .ok()?;
                (doc["body"] == last["text"]).then_some(())
            },
        );
    }
}

#[test]
fn board_changes_on_one_page_show_on_the_other() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(s) = Session::start("board") else {
        return;
    };
    s.browse("board");
    // Both profiles, set through the pages, are on both nodes.
    for i in [1, 2] {
        let profiles = s
            .dev
            .call(&s.net, i, CallKind::Query, "profiles", json!({}))
            .unwrap();
        let mut names: Vec<&str> = profiles
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        names.sort();
        assert_eq!(names, ["Ada", "Grace"], "node {i}");
    }
}
