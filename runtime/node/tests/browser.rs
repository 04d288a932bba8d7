//! The kv-store example page (`examples/kv-store/web`), served by the node
//! from `[server] static_dir`, driven in headless Chromium by
//! `examples/kv-store/web/test/browser.mjs` (playwright-core).
//!
//! Needs Node.js, Chromium and `npm ci` in that directory; `scripts/test`
//! installs them. Set `MERO_SKIP_BROWSER=1` to skip on a machine without them.

mod support;

use std::process::Command;

use serde_json::json;
use support::{NodeProc, build_app, init_home, merod_config, workspace};

#[test]
fn kv_store_page_in_headless_chromium() {
    if std::env::var_os("MERO_SKIP_BROWSER").is_some() {
        eprintln!("MERO_SKIP_BROWSER is set: skipping the browser test");
        return;
    }
    let web = workspace().join("examples/kv-store/web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix examples/kv-store/web` (scripts/test does), or set MERO_SKIP_BROWSER=1"
    );
    let dir = tempfile::tempdir().unwrap();
    init_home(dir.path());
    let (ok, out) = merod_config(
        dir.path(),
        &["set", "server.static_dir", web.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    let node = NodeProc::start(dir.path());
    let app = node.install(&build_app("examples/kv-store/Cargo.toml"));
    let ctx = node.create_context(&app);
    let grant = node.post(
        "/admin/tokens",
        json!({"context": ctx, "methods": ["set", "get", "remove", "entries"]}),
    );
    let token = grant["accessToken"].as_str().expect("a client token");
    let page = format!("{}/app/index.html?context={ctx}&token={token}", node.url);
    let out = Command::new("node")
        .arg(web.join("test/browser.mjs"))
        .args([&page, &node.url, &node.token, &ctx])
        .output()
        .expect("running node (Node.js); scripts/test installs it, or set MERO_SKIP_BROWSER=1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser test failed");
    assert!(stdout.contains("browser test passed"));
    // What the page did is in the replicated state.
    assert_eq!(
        node.query(&ctx, "get", json!({"key": "from-browser"})),
        json!("hello")
    );
    assert_eq!(
        node.query(&ctx, "get", json!({"key": "from-elsewhere"})),
        json!(null)
    );
}
