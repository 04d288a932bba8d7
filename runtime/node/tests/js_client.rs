//! `@mero/client` (`clients/js`) against a real `merod`: its `node --test`
//! suites (`clients/js/test/*.test.js`) call, batch, fail in every typed
//! way, refresh a token that lives 3 seconds, and cut their WebSocket
//! mid-stream through a TCP proxy, on a node running
//! `runtime/fixtures/policy-app`.
//!
//! Needs Node.js 20+ and npm (`scripts/test` installs them; `npm ci` runs
//! here when `clients/js/node_modules` is missing). Set
//! `MERO_SKIP_BROWSER=1` to skip the JS suites on a machine without them.
//! Also checks that the OpenAPI document the node serves is the checked-in
//! one, which `runtime/api/tests/generated.rs` keeps equal to the types.

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::{NodeProc, build_app, init_home, merod_config, workspace};
use tungstenite::stream::MaybeTlsStream;

const POLICY: &str = "runtime/fixtures/policy-app/Cargo.toml";

#[test]
fn the_served_openapi_document_is_the_checked_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::init_and_start(dir.path());
    let (status, served) = node.send("GET", "/openapi.json", None, false);
    assert_eq!(status, 200);
    let file = std::fs::read_to_string(workspace().join("runtime/node/openapi.json")).unwrap();
    let file: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(
        served, file,
        "the node serves another document than runtime/node/openapi.json"
    );
    assert!(
        served["paths"]["/contexts/{id}/sync"]["get"].is_object(),
        "the client's sync status route is documented"
    );
}

type Socket = tungstenite::WebSocket<MaybeTlsStream<TcpStream>>;

fn socket(node: &NodeProc) -> Socket {
    let url = format!(
        "{}/ws?token={}",
        node.url.replace("http://", "ws://"),
        node.token
    );
    let (ws, _) = tungstenite::connect(url.as_str()).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    ws
}

fn send(ws: &mut Socket, v: Value) {
    ws.send(tungstenite::Message::Text(v.to_string().into()))
        .unwrap();
}

fn read(ws: &mut Socket) -> Value {
    loop {
        if let tungstenite::Message::Text(t) = ws.read().unwrap() {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

fn subscribe(ws: &mut Socket, params: Value) -> Value {
    send(
        ws,
        json!({"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": params}),
    );
    read(ws)
}

/// The ids of the next `n` stream items on the socket.
fn items(ws: &mut Socket, n: usize) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let m = read(ws);
            assert!(m["method"] == "event" || m["method"] == "state", "{m}");
            m["params"]["id"].as_u64().unwrap()
        })
        .collect()
}

/// What `@mero/client` resumes with: `subscribe` answers where the stream
/// stands (`last`), and with `after` replays the log (a `gap` first for
/// what retention pruned), then live items, none twice.
#[test]
fn websocket_subscriptions_resume_after_an_item_id() {
    let dir = tempfile::tempdir().unwrap();
    init_home(dir.path());
    let (ok, out) = merod_config(dir.path(), &["set", "events.retention", "10"]);
    assert!(ok, "{out}");
    let node = NodeProc::start(dir.path());
    let app = node.install(&build_app(POLICY));
    let ctx = node.create_context(&app);
    let deposit = || node.execute(&ctx, "deposit", json!({"account": "a", "amount": 1}));
    // The log is pruned in steps of 64 items: 40 deposits (80 items) are past one.
    for _ in 0..40 {
        deposit();
    }

    // Without `after`: the answer says where the stream stands; what follows
    // is the next item.
    let mut live = socket(&node);
    let answer = subscribe(&mut live, json!({"contexts": [ctx]}));
    assert_eq!(answer["result"]["subscribed"], json!([ctx]));
    let last = answer["result"]["last"][&ctx].as_u64().unwrap();
    assert!(last >= 80, "40 deposits are 80 items: {answer}");
    deposit();
    assert_eq!(items(&mut live, 2), [last + 1, last + 2]);

    // With `after`: the pruned part is a gap, then the log, then live items.
    let mut resumed = socket(&node);
    let answer = subscribe(&mut resumed, json!({"contexts": [ctx], "after": {&ctx: 3}}));
    assert_eq!(answer["result"]["last"][&ctx], last + 2, "{answer}");
    let gap = read(&mut resumed);
    assert_eq!(gap["method"], "gap", "{gap}");
    assert_eq!(gap["params"]["context"], json!(ctx));
    assert_eq!(gap["params"]["requested"], 4);
    let from = gap["params"]["replayFrom"].as_u64().unwrap();
    assert!(from > 4 && from <= last + 2, "{gap}");
    let replayed = items(&mut resumed, (last + 3 - from) as usize);
    assert_eq!(replayed, (from..=last + 2).collect::<Vec<_>>());
    deposit();
    assert_eq!(items(&mut resumed, 2), [last + 3, last + 4]);
    assert_eq!(items(&mut live, 2), [last + 3, last + 4]);
    // A ping answers next: nothing was sent twice in between.
    send(
        &mut resumed,
        json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}),
    );
    assert_eq!(read(&mut resumed)["result"], "pong");

    // `after` must name a context the request subscribes to.
    let wrong = subscribe(&mut resumed, json!({"contexts": [], "after": {&ctx: 1}}));
    assert_eq!(wrong["error"]["code"], -32602, "{wrong}");
}

/// Runs `program args` in `dir`; panics with its output if it fails.
fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("running {program}: {e}; scripts/test installs Node.js and npm, or set MERO_SKIP_BROWSER=1")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--experimental-websocket` where Node.js needs it for a global
/// `WebSocket` (Node.js 20; 22 and later have one).
fn websocket_flag() -> Option<&'static str> {
    let out = Command::new("node")
        .args(["-p", "typeof WebSocket"])
        .output()
        .expect("running node");
    (String::from_utf8_lossy(&out.stdout).trim() != "function")
        .then_some("--experimental-websocket")
}

#[test]
fn js_client_suites_against_a_real_node() {
    if std::env::var_os("MERO_SKIP_BROWSER").is_some() {
        eprintln!("MERO_SKIP_BROWSER is set: skipping the @mero/client suites");
        return;
    }
    let js = workspace().join("clients/js");
    if !js.join("node_modules/typescript").is_dir() {
        run(
            &js,
            "npm",
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
        );
    }
    run(&js, "npm", &["run", "--silent", "build"]);

    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::init_and_start(dir.path());
    let app = node.install(&build_app(POLICY));
    let ctx = node.create_context(&app);
    // Issued last, just before the suites start: it lives 3 seconds.
    let short = node.post("/admin/tokens", json!({"context": ctx, "ttlSecs": 3}));
    let mut tests: Vec<String> = std::fs::read_dir(js.join("test"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".test.js"))
        .map(|n| format!("test/{n}"))
        .collect();
    tests.sort();
    assert!(tests.len() >= 3, "the suites are missing: {tests:?}");
    let mut cmd = Command::new("node");
    cmd.args(websocket_flag()).arg("--test").args(&tests);
    let out = cmd
        .current_dir(&js)
        .env("MERO_URL", &node.url)
        .env("MERO_CONTEXT", &ctx)
        .env("MERO_TOKEN", short["accessToken"].as_str().unwrap())
        .env(
            "MERO_REFRESH_TOKEN",
            short["refreshToken"].as_str().unwrap(),
        )
        .env("MERO_ADMIN_TOKEN", &node.token)
        .output()
        .expect("running node --test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "a @mero/client suite failed");
    assert!(
        stdout.lines().any(|l| l.trim() == "# fail 0"),
        "node --test reported no result"
    );
    // What the suites did is in the replicated state: the node's own view.
    let sync = node.get(&format!("/admin/contexts/{ctx}/sync"));
    assert!(sync["deltas"].as_u64().unwrap() > 100, "{sync}");
}
