//! `cargo mero new` end to end: every template renders a project that
//! passes its own tests (native ones and a network test on three real
//! nodes) and builds to a WASM module carrying its ABI; the
//! `web` template also builds its front end with the generated bindings,
//! and `cargo mero dev` serves its page.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::{Dev, cargo_mero, http_get, new_project, target_dir};

/// Creates, tests and builds a project from `template`; returns the
/// project (kept in the returned temp dir) and the build report.
fn check_template(template: &str) -> (tempfile::TempDir, PathBuf, Value) {
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
        // The network test builds the app and runs nodes with this cargo-mero.
        .env("MERO_BIN", support::exe())
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
    // And the network test, on three real nodes.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("test network_") && l.ends_with(" ... ok")),
        "no network test ran:\n{stdout}"
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
    // The bindings, beside the module, name the module's hash.
    let ts = std::fs::read_to_string(report["bindings"].as_str().unwrap()).unwrap();
    let hash = report["hash"].as_str().unwrap();
    assert!(ts.contains(&format!("APP_HASH = \"{hash}\"")), "{ts}");
    (dir, project, report)
}

#[test]
fn kv_store_template_tests_and_builds() {
    let (_, _, report) = check_template("kv-store");
    // No web/: no front end built.
    assert!(report.get("web").is_none(), "{report}");
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
fn web_template_builds_its_front_end_and_dev_serves_the_page() {
    if std::env::var_os("MERO_SKIP_BROWSER").is_some() {
        eprintln!("MERO_SKIP_BROWSER is set: skipping the web template (it needs Node.js)");
        return;
    }
    let (_dir, project, report) = check_template("web");
    // `build` ran the front end's build: packages installed, the bindings
    // copied where the page imports them, web/dist written.
    let web = &report["web"];
    assert_eq!(web["built"], true, "{report}");
    assert_eq!(
        PathBuf::from(web["dir"].as_str().unwrap()),
        project.join("web/dist")
    );
    let generated = std::fs::read_to_string(project.join("web/src/generated/tpl-web.ts")).unwrap();
    assert_eq!(
        generated,
        std::fs::read_to_string(report["bindings"].as_str().unwrap()).unwrap()
    );
    assert!(generated.contains("export class TplWeb {"), "{generated}");
    assert!(generated.contains("add(args: { text: string }): Promise<string>"));
    assert!(generated.contains("items(): Promise<[string, string, boolean][]>"));
    let js = std::fs::read_to_string(project.join("web/dist/main.js")).unwrap();
    assert!(
        js.contains(report["hash"].as_str().unwrap()),
        "the bundle lacks the bindings"
    );
    let html = std::fs::read_to_string(project.join("web/dist/index.html")).unwrap();
    assert!(
        !html.contains("EventSource"),
        "reload code in the production page"
    );
    // Ignored by git: what builds write.
    let ignore = std::fs::read_to_string(project.join(".gitignore")).unwrap();
    for p in ["/web/node_modules", "/web/dist", "/web/src/generated"] {
        assert!(ignore.lines().any(|l| l == p), "{ignore}");
    }

    // Under `cargo mero dev`, the node serves the page at the URL it
    // prints, and the page's script.
    let dev = Dev::start(&project, &["--nodes", "1", "--no-watch", "--clean"]);
    let net = dev.network();
    let page = net.nodes[0].page_url.clone().expect("a page URL");
    assert!(dev.output().contains(&page), "{}", dev.output());
    let (status, html) = http_get(&page);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<title>tpl-web</title>"), "{html}");
    assert!(html.contains(net.reload_url.as_deref().unwrap()), "{html}");
    let (status, js) = http_get(&format!("{}/app/main.js", net.nodes[0].rpc_url));
    assert_eq!(status, 200);
    assert!(
        js.contains(&net.app),
        "the served bundle lacks the running app's bindings"
    );
}

#[test]
fn lists_templates_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = cargo_mero(&["new", "--list"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    for t in ["kv-store", "counter", "chat", "web"] {
        assert!(text.contains(t), "{text}");
    }
    let out = cargo_mero(&["new", "x", "--template", "nope"], dir.path());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("available: chat, counter, kv-store, web")
    );
    let out = cargo_mero(&["new", "9lives"], dir.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must start with a letter"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
