//! The node API through real HTTP, WebSocket and SSE clients against real
//! `merod` processes: every REST endpoint, each auth failure, client-token
//! scopes, CORS, `merod config`, SSE replay and slow WebSocket subscribers.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{NodeProc, Reply, build_app, http, init_home, merod_config, wait_for};
use tungstenite::stream::MaybeTlsStream;

const KV: &str = "examples/kv-store/Cargo.toml";
const RELAY: &str = "runtime/fixtures/relay-app/Cargo.toml";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A request with `token` (or none).
fn call(
    node: &NodeProc,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let auth = token.map(bearer);
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let body = body.map(|b| b.to_string().into_bytes());
    http(
        method,
        &format!("{}{path}", node.url),
        &headers,
        body.as_deref(),
    )
}

/// A kv-store `get` query on `ctx` with `token`.
fn query_with(node: &NodeProc, token: &str, ctx: &str) -> Reply {
    let body = rpc("query", ctx, "get", json!({"key": "a"}));
    call(node, "POST", "/jsonrpc", Some(token), Some(body))
}

fn admin(node: &NodeProc, method: &str, path: &str, body: Option<Value>) -> Reply {
    call(node, method, path, Some(&node.token.clone()), body)
}

fn rpc(kind: &str, ctx: &str, method: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": kind,
        "params": {"context": ctx, "method": method, "args": args}})
}

/// A node with kv-store installed and one context.
fn kv_node(dir: &std::path::Path) -> (NodeProc, String, String) {
    let node = NodeProc::init_and_start(dir);
    let app = node.install(&build_app(KV));
    let ctx = node.create_context(&app);
    (node, app, ctx)
}

fn issue(node: &NodeProc, body: Value) -> Value {
    let r = admin(node, "POST", "/admin/tokens", Some(body));
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

#[test]
fn every_admin_endpoint_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (node, app, ctx) = kv_node(dir.path());
    let ok = |r: Reply, status: u16| {
        assert_eq!(r.status, status, "{}", r.body);
        r.body
    };
    // Public.
    assert_eq!(
        ok(call(&node, "GET", "/health", None, None), 200)["status"],
        "ok"
    );
    let doc = ok(call(&node, "GET", "/openapi.json", None, None), 200);
    assert_eq!(doc["openapi"].as_str().unwrap().get(..2), Some("3."));

    // Apps.
    let apps = ok(admin(&node, "GET", "/admin/apps", None), 200);
    assert_eq!(apps[0]["hash"], json!(app));
    let abi = ok(
        admin(&node, "GET", &format!("/admin/apps/{app}"), None),
        200,
    );
    assert!(
        abi["methods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "set")
    );
    let r = admin(&node, "DELETE", &format!("/admin/apps/{app}"), None);
    assert_eq!(
        (r.status, r.code()),
        (409, "conflict"),
        "an app in use stays: {}",
        r.body
    );
    let relay = node.install(&build_app(RELAY));
    ok(
        admin(&node, "DELETE", &format!("/admin/apps/{relay}"), None),
        200,
    );
    assert_eq!(
        admin(&node, "GET", &format!("/admin/apps/{relay}"), None).status,
        404
    );

    // Contexts.
    assert_eq!(
        ok(admin(&node, "GET", "/admin/contexts", None), 200)[0]["id"],
        json!(ctx)
    );
    assert_eq!(
        ok(
            admin(&node, "GET", &format!("/admin/contexts/{ctx}"), None),
            200
        )["app"],
        json!(app)
    );
    node.execute(&ctx, "set", json!({"key": "k", "value": "v"}));
    let state = ok(
        admin(&node, "GET", &format!("/admin/contexts/{ctx}/state"), None),
        200,
    );
    assert!(state.to_string().contains("\"k\""), "{state}");
    let sync = ok(
        admin(&node, "GET", &format!("/admin/contexts/{ctx}/sync"), None),
        200,
    );
    assert_eq!(sync["deltas"], 1);
    let members = ok(
        admin(
            &node,
            "GET",
            &format!("/admin/contexts/{ctx}/members"),
            None,
        ),
        200,
    );
    assert_eq!(members[0]["me"], true);
    let inv = ok(
        admin(
            &node,
            "POST",
            &format!("/admin/contexts/{ctx}/invitations"),
            Some(json!({"validForSecs": 60})),
        ),
        201,
    );
    assert!(inv["invitation"].as_str().unwrap().len() > 50);
    let page = ok(
        admin(
            &node,
            "GET",
            &format!("/admin/contexts/{ctx}/deltas?from=0&limit=10"),
            None,
        ),
        200,
    );
    // The init call and the invitation (an invitation is a delta).
    assert_eq!(page["deltas"].as_array().unwrap().len(), 2);
    let again = ok(
        admin(
            &node,
            "POST",
            &format!("/admin/contexts/{ctx}/deltas"),
            Some(page["deltas"].clone()),
        ),
        200,
    );
    assert_eq!(
        again["applied"], 0,
        "re-importing known deltas changes nothing"
    );
    let relay = node.install(&build_app(RELAY));
    let up = ok(
        admin(
            &node,
            "POST",
            &format!("/admin/contexts/{ctx}/upgrade"),
            Some(json!({"app": relay})),
        ),
        200,
    );
    assert_eq!(up["app"], json!(relay));
    // A second context to join into a second node, then leave.
    let dir2 = tempfile::tempdir().unwrap();
    let other = NodeProc::init_and_join(dir2.path(), &[&node.p2p]);
    let joined = ok(
        admin(
            &other,
            "POST",
            "/admin/contexts/join",
            Some(json!({"invitation": inv["invitation"]})),
        ),
        201,
    );
    assert_eq!(joined["id"], json!(ctx));
    ok(
        admin(
            &other,
            "POST",
            &format!("/admin/contexts/{ctx}/leave"),
            None,
        ),
        200,
    );
    assert_eq!(
        admin(&other, "GET", &format!("/admin/contexts/{ctx}"), None).status,
        404
    );

    // Node.
    let status = ok(admin(&node, "GET", "/admin/node", None), 200);
    assert!(status["identity"].is_string() && status["peerId"].is_string());
    let started = status["startedAtMs"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(started > 0 && started <= now, "startedAtMs {started}");
    let rss = status["rssBytes"].as_u64().unwrap();
    let kib = support::rss_kib(node.pid());
    // The node's own reading and the test's, a moment apart.
    assert!(
        rss / 1024 > kib / 2 && rss / 1024 < kib * 2,
        "{rss} B vs {kib} KiB"
    );
    let peers = ok(admin(&node, "GET", "/admin/node/peers", None), 200);
    assert!(peers.is_array());
    let cfg = ok(admin(&node, "GET", "/admin/node/config", None), 200);
    assert_eq!(cfg["auth"]["admin_token"], "<redacted>");
    assert!(
        !cfg.to_string().contains(&node.token),
        "the admin token never leaves the node"
    );
    let net = ok(admin(&node, "GET", "/admin/network", None), 200);
    assert!(net.get("faults").is_none(), "no fault state without --dev");
    assert_eq!(status["devMode"], false);
    // Fault injection exists only in dev mode; the old switch is gone.
    let off = admin(&node, "GET", "/admin/dev/faults", None);
    assert_eq!((off.status, off.code()), (403, "dev_mode_off"));
    assert_eq!(
        admin(&node, "POST", "/admin/network/pause", None).status,
        404
    );

    // Metrics count what happened.
    let m = admin(&node, "GET", "/metrics", None);
    assert_eq!(m.status, 200);
    let text = m.body.as_str().unwrap().to_owned();
    for name in [
        "mero_calls_total",
        "mero_call_duration_seconds_bucket",
        "mero_deltas_sent_total",
        "mero_stream_items_total",
        "mero_peers",
        "mero_contexts",
        "mero_deltas_buffered",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    assert!(
        text.contains(&format!(
            "mero_calls_total{{context=\"{ctx}\",kind=\"execute\"}} 1"
        )),
        "{text}"
    );

    // Delete: gone here, 404 afterwards.
    ok(
        admin(&node, "DELETE", &format!("/admin/contexts/{ctx}"), None),
        200,
    );
    assert_eq!(
        admin(&node, "GET", &format!("/admin/contexts/{ctx}"), None).status,
        404
    );
    ok(
        admin(&node, "DELETE", &format!("/admin/apps/{app}"), None),
        200,
    );
}

/// Every route of the OpenAPI document exists and is guarded as documented.
#[test]
fn auth_failures_on_every_documented_route() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _app, ctx) = kv_node(dir.path());
    let doc = call(&node, "GET", "/openapi.json", None, None).body;
    let client = issue(&node, json!({"context": ctx}))["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "the document lists the API");
    let mut checked = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let concrete = path
                .replace("{hash}", &"1".repeat(32))
                .replace("{id}", &ctx)
                .replace("{tokenId}", &"cd".repeat(16))
                .replace("{invite}", &"1".repeat(32))
                .replace("{member}", &"1".repeat(32));
            let public = op["security"] == json!([]);
            let method = method.to_uppercase();
            let none = call(&node, &method, &concrete, None, None);
            if public {
                assert_ne!(none.status, 401, "{method} {path} is public");
                continue;
            }
            checked += 1;
            assert_eq!(
                (none.status, none.code()),
                (401, "unauthorized"),
                "{method} {path}: {}",
                none.body
            );
            assert_eq!(none.header("www-authenticate"), Some("Bearer"));
            let wrong = call(
                &node,
                &method,
                &concrete,
                Some("not-the-token-at-all"),
                None,
            );
            assert_eq!(
                (wrong.status, wrong.code()),
                (401, "invalid_token"),
                "{method} {path}"
            );
            if path.starts_with("/admin") || path == "/metrics" {
                let c = call(&node, &method, &concrete, Some(&client), None);
                assert_eq!(
                    (c.status, c.code()),
                    (403, "forbidden"),
                    "client token on {method} {path}"
                );
            }
        }
    }
    assert!(checked >= 20, "only {checked} guarded operations");
    // Nothing changed: still one context, with no delta.
    assert_eq!(
        admin(&node, "GET", &format!("/admin/contexts/{ctx}"), None).body["deltas"],
        0
    );
    assert_eq!(
        admin(&node, "GET", "/admin/contexts", None)
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn client_tokens_are_scoped_expire_refresh_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let (node, app, ctx) = kv_node(dir.path());
    let other_ctx = node.create_context(&app);
    let grant = issue(&node, json!({"context": ctx, "methods": ["get", "set"]}));
    let access = grant["accessToken"].as_str().unwrap().to_owned();
    let refresh = grant["refreshToken"].as_str().unwrap().to_owned();
    let token_id = grant["tokenId"].as_str().unwrap().to_owned();
    let post = |token: &str, body: Value| call(&node, "POST", "/jsonrpc", Some(token), Some(body));

    // In scope.
    let r = post(
        &access,
        rpc("execute", &ctx, "set", json!({"key": "a", "value": "1"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        post(&access, rpc("query", &ctx, "get", json!({"key": "a"}))).body["result"]["output"],
        "1"
    );
    // Another method, another context, a batch with one out-of-scope call.
    let r = post(&access, rpc("execute", &ctx, "remove", json!({"key": "a"})));
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (403, json!(-32006)),
        "{}",
        r.body
    );
    let r = post(
        &access,
        rpc("query", &other_ctx, "get", json!({"key": "a"})),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let batch = json!([
        rpc("execute", &ctx, "set", json!({"key": "b", "value": "2"})),
        rpc("execute", &ctx, "remove", json!({"key": "a"}))
    ]);
    assert_eq!(post(&access, batch).status, 403);
    assert_eq!(
        node.query(&ctx, "get", json!({"key": "b"})),
        Value::Null,
        "a refused batch runs nothing"
    );
    // Issuing validates the scope.
    let r = admin(
        &node,
        "POST",
        "/admin/tokens",
        Some(json!({"context": ctx, "methods": ["nope"]})),
    );
    assert_eq!(r.status, 400);
    let r = admin(
        &node,
        "POST",
        "/admin/tokens",
        Some(json!({"context": ctx, "member": "11111111111111111111111111111111"})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // WebSocket and SSE check the context too.
    let ws = format!(
        "{}/ws?context={other_ctx}&token={access}",
        node.url.replace("http://", "ws://")
    );
    match tungstenite::connect(ws.as_str()) {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!(
            "a client token for another context must not subscribe: {:?}",
            other.map(|_| ())
        ),
    }
    let r = call(
        &node,
        "GET",
        &format!("/events?context={other_ctx}&token={access}"),
        None,
        None,
    );
    assert_eq!(r.status, 403);

    // Tampered, wrong use.
    let mut forged = access.clone();
    forged.pop();
    forged.push(if access.ends_with('A') { 'B' } else { 'A' });
    let r = post(&forged, rpc("query", &ctx, "get", json!({"key": "a"})));
    assert_eq!((r.status, r.code()), (401, "invalid_token"));
    let r = post(&refresh, rpc("query", &ctx, "get", json!({"key": "a"})));
    assert_eq!(
        (r.status, r.code()),
        (401, "invalid_token"),
        "a refresh token is not an access token"
    );

    // Refresh: a new pair works; the spent refresh token does not.
    let r = call(
        &node,
        "POST",
        "/auth/refresh",
        None,
        Some(json!({"refreshToken": refresh})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let access2 = r.body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(r.body["tokenId"], json!(token_id));
    assert_eq!(
        post(&access2, rpc("query", &ctx, "get", json!({"key": "a"}))).status,
        200
    );
    let r = call(
        &node,
        "POST",
        "/auth/refresh",
        None,
        Some(json!({"refreshToken": refresh})),
    );
    assert_eq!((r.status, r.code()), (401, "token_revoked"));

    // Expiry.
    let short = issue(&node, json!({"context": ctx, "ttlSecs": 1}))["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        post(&short, rpc("query", &ctx, "get", json!({"key": "a"}))).status,
        200
    );
    std::thread::sleep(Duration::from_millis(2100));
    let r = post(&short, rpc("query", &ctx, "get", json!({"key": "a"})));
    assert_eq!((r.status, r.code()), (401, "token_expired"));

    // Revoke the family: both generations stop working, also after a restart.
    let r = admin(&node, "DELETE", &format!("/admin/tokens/{token_id}"), None);
    assert_eq!(r.status, 200);
    for t in [&access, &access2] {
        let r = post(t, rpc("query", &ctx, "get", json!({"key": "a"})));
        assert_eq!((r.status, r.code()), (401, "token_revoked"));
    }
    drop(node);
    let node = NodeProc::start(dir.path());
    let r = query_with(&node, &access2, &ctx);
    assert_eq!(
        (r.status, r.code()),
        (401, "token_revoked"),
        "revocations survive a restart"
    );
}

#[test]
fn cors_is_off_unless_configured_and_config_set_validates() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    init_home(home);
    let preflight = |node: &NodeProc, origin: &str| {
        http(
            "OPTIONS",
            &format!("{}/jsonrpc", node.url),
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "authorization,content-type",
                ),
            ],
            None,
        )
    };
    {
        let node = NodeProc::start(home);
        assert!(
            node.url.starts_with("http://127.0.0.1:"),
            "loopback by default"
        );
        let r = preflight(&node, "http://app.test");
        assert!(
            r.header("access-control-allow-origin").is_none(),
            "no CORS by default"
        );
    }
    // Bad values are refused and leave the file as it was.
    let before = std::fs::read_to_string(home.join("config.toml")).unwrap();
    for (key, value) in [
        ("server.cors_origins", r#"["not an origin"]"#),
        ("server.listen", "nowhere"),
        ("limits.call_timeout_ms", "0"),
        ("server.no_such_key", "1"),
        ("events.retention", "\"many\""),
    ] {
        let (ok, out) = merod_config(home, &["set", key, value]);
        assert!(!ok, "`{key} = {value}` must be refused");
        assert!(
            out.contains(key.split('.').next().unwrap()) || out.contains(key),
            "{out}"
        );
    }
    assert_eq!(
        before,
        std::fs::read_to_string(home.join("config.toml")).unwrap()
    );
    let (ok, out) = merod_config(
        home,
        &["set", "server.cors_origins", r#"["http://app.test"]"#],
    );
    assert!(ok, "{out}");
    let (ok, out) = merod_config(home, &["get", "server.cors_origins"]);
    assert!(ok && out.contains("http://app.test"), "{out}");
    let (ok, out) = merod_config(home, &["get", "events.retention"]);
    assert_eq!((ok, out.trim()), (true, "10000"), "defaults are shown");
    let (ok, out) = merod_config(home, &["get", "nope.nothing"]);
    assert!(!ok && out.contains("no setting"), "{out}");

    let node = NodeProc::start(home);
    let r = preflight(&node, "http://app.test");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap_or("")
        .to_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    let r = preflight(&node, "http://evil.test");
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "other origins get nothing"
    );
    let r = http(
        "GET",
        &format!("{}/health", node.url),
        &[("Origin", "http://app.test")],
        None,
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    // CORS does not replace auth.
    let r = http(
        "GET",
        &format!("{}/admin/apps", node.url),
        &[("Origin", "http://app.test")],
        None,
    );
    assert_eq!(r.status, 401);
}

/// An SSE connection read line by line.
struct Sse {
    lines: std::io::Lines<BufReader<Box<dyn Read + Send + Sync>>>,
}

/// One SSE message: (id, event, data).
type SseMessage = (Option<u64>, String, Value);

impl Sse {
    fn connect(node: &NodeProc, ctx: &str, last_event_id: Option<u64>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut req = agent
            .get(format!("{}/events?context={ctx}", node.url))
            .header("Authorization", bearer(&node.token));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.call().expect("SSE connects");
        assert_eq!(resp.status(), 200);
        let reader: Box<dyn Read + Send + Sync> = Box::new(resp.into_body().into_reader());
        Self {
            lines: BufReader::new(reader).lines(),
        }
    }

    fn next(&mut self) -> SseMessage {
        let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
        loop {
            let line = self
                .lines
                .next()
                .expect("the stream goes on")
                .expect("readable");
            if line.is_empty() {
                if data.is_empty() {
                    continue; // keep-alive comment block
                }
                return (id, event, serde_json::from_str(&data).unwrap());
            }
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().parse().unwrap());
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
    }

    /// The next `event`-type message (skipping `state` ones).
    fn next_event(&mut self) -> SseMessage {
        loop {
            let m = self.next();
            if m.1 == "event" {
                return m;
            }
        }
    }
}

#[test]
fn sse_reconnect_with_last_event_id_replays_exactly_the_missed_items() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _app, ctx) = kv_node(dir.path());
    let mut sse = Sse::connect(&node, &ctx, None);
    for i in 0..5 {
        node.execute(&ctx, "set", json!({"key": format!("k{i}"), "value": "x"}));
    }
    let mut last = 0;
    for i in 0..5 {
        let (id, _, data) = sse.next_event();
        assert_eq!(data["data"]["key"], format!("k{i}"));
        assert_eq!(data["context"], json!(ctx));
        last = id.unwrap();
        // The `state` item that follows each event.
        let (sid, kind, state) = sse.next();
        assert_eq!((kind.as_str(), sid), ("state", Some(last + 1)));
        assert!(state["heads"].is_array());
        let at = state["atMs"].as_u64().expect("a state item says when");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(at <= now && now - at < 60_000, "atMs {at}, now {now}");
        last = sid.unwrap();
    }
    drop(sse);
    // 20 events while disconnected.
    for i in 5..25 {
        node.execute(&ctx, "set", json!({"key": format!("k{i}"), "value": "x"}));
    }
    let mut sse = Sse::connect(&node, &ctx, Some(last));
    let mut expected_id = last + 1;
    for i in 5..25 {
        for kind in ["event", "state"] {
            let (id, k, data) = sse.next();
            assert_eq!(
                (id, k.as_str()),
                (Some(expected_id), kind),
                "in order, nothing skipped"
            );
            if kind == "event" {
                assert_eq!(data["data"]["key"], format!("k{i}"));
            }
            expected_id += 1;
        }
    }
    // Then live, with no duplicate of the replayed ones.
    node.execute(&ctx, "set", json!({"key": "live", "value": "x"}));
    let (id, _, data) = sse.next_event();
    assert_eq!(
        (id, data["data"]["key"].clone()),
        (Some(expected_id), json!("live"))
    );
}

#[test]
fn sse_replay_reports_a_gap_past_retention() {
    let dir = tempfile::tempdir().unwrap();
    init_home(dir.path());
    assert!(merod_config(dir.path(), &["set", "events.retention", "16"]).0);
    let node = NodeProc::start(dir.path());
    let app = node.install(&build_app(KV));
    let ctx = node.create_context(&app);
    let batch: Vec<Value> = (0..100)
        .map(|i| {
            rpc(
                "execute",
                &ctx,
                "set",
                json!({"key": format!("k{i}"), "value": "x"}),
            )
        })
        .collect();
    assert_eq!(
        admin(&node, "POST", "/jsonrpc", Some(Value::Array(batch))).status,
        200
    );
    let mut sse = Sse::connect(&node, &ctx, Some(1));
    let (_, kind, gap) = sse.next();
    assert_eq!(kind, "gap");
    assert_eq!(gap["requested"], 2);
    // Item 1 is the creation's `state`; the batch commits as one group:
    // 100 events and one `state` item, ids 2 to 102.
    let from = gap["replayFrom"].as_u64().unwrap();
    assert!(
        from > 2 && from <= 102 - 16 + 1,
        "items before {from} were pruned and the last 16 kept"
    );
    let (id, _, _) = sse.next();
    assert_eq!(id, Some(from));
}

fn metric(node: &NodeProc, name: &str) -> f64 {
    let m = admin(node, "GET", "/metrics", None);
    m.body
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn websocket_protocol_subscribe_calls_ping_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let (node, app, ctx) = kv_node(dir.path());
    let other = node.create_context(&app);
    let url = format!(
        "{}/ws?token={}",
        node.url.replace("http://", "ws://"),
        node.token
    );
    let (mut ws, _) = tungstenite::connect(url.as_str()).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    let send = |ws: &mut tungstenite::WebSocket<MaybeTlsStream<TcpStream>>, v: Value| {
        ws.send(tungstenite::Message::Text(v.to_string().into()))
            .unwrap();
    };
    let read = |ws: &mut tungstenite::WebSocket<MaybeTlsStream<TcpStream>>| -> Value {
        loop {
            match ws.read().unwrap() {
                tungstenite::Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                tungstenite::Message::Pong(p) => {
                    return json!({"pong": String::from_utf8_lossy(&p)});
                }
                _ => {}
            }
        }
    };
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"contexts": [ctx]}}),
    );
    assert_eq!(read(&mut ws)["result"]["subscribed"], json!([ctx]));
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
    );
    assert_eq!(read(&mut ws)["result"], "pong");
    ws.send(tungstenite::Message::Ping(b"hi".to_vec().into()))
        .unwrap();
    assert_eq!(read(&mut ws), json!({"pong": "hi"}));
    // A call over the socket, then its notifications (event, state).
    send(
        &mut ws,
        rpc("execute", &ctx, "set", json!({"key": "w", "value": "s"})),
    );
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let m = read(&mut ws);
        seen.push(
            m["method"]
                .as_str()
                .map_or_else(|| format!("reply {}", m["id"]), str::to_owned),
        );
        if m["method"] == "event" {
            assert_eq!(m["params"]["data"], json!({"key": "w", "value": "s"}));
            assert_eq!(m["params"]["local"], true);
        }
    }
    seen.sort();
    assert_eq!(seen, ["event", "reply 7", "state"]);
    // Not subscribed to the other context: nothing from it.
    node.execute(&other, "set", json!({"key": "x", "value": "y"}));
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 3, "method": "unsubscribe", "params": {"contexts": [ctx]}}),
    );
    assert_eq!(read(&mut ws)["result"]["subscribed"], json!([]));
    node.execute(&ctx, "set", json!({"key": "after", "value": "y"}));
    // Errors keep the socket open.
    ws.send(tungstenite::Message::Text("{not json".into()))
        .unwrap();
    assert_eq!(read(&mut ws)["error"]["code"], -32700);
    send(
        &mut ws,
        json!({"jsonrpc": "1.0", "id": 4, "method": "ping"}),
    );
    assert_eq!(read(&mut ws)["error"]["code"], -32600);
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 5, "method": "frobnicate"}),
    );
    assert_eq!(read(&mut ws)["error"]["code"], -32601);
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 6, "method": "subscribe", "params": {"contexts": ["zz"]}}),
    );
    assert_eq!(read(&mut ws)["error"]["code"], -32602);
    send(&mut ws, rpc("query", &ctx, "get", json!({"key": 5})));
    assert_eq!(read(&mut ws)["error"]["code"], -32602);
    // Clean close: the node answers the close frame.
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break,
            Ok(_) => {}
            Err(e) => panic!("unclean close: {e}"),
        }
    }
}

const FAULTY: &str = "runtime/fixtures/faulty-app/Cargo.toml";

/// Events produced by [`flood`]: 1200 of 256 KiB.
const FLOOD_EVENTS: usize = 1200;

/// Produces ~300 MiB of events (with a tiny state change each) on a fresh
/// node; returns the node's RSS growth in KiB (peak over baseline).
fn flood(node: &NodeProc, ctx: &str) -> u64 {
    let text = "v".repeat(256 << 10);
    let baseline = support::rss_kib(node.pid());
    let mut peak = baseline;
    for round in 0..FLOOD_EVENTS / 3 {
        let batch: Vec<Value> = (0..3)
            .map(|_| rpc("execute", ctx, "shout", json!({"text": text})))
            .collect();
        let r = admin(node, "POST", "/jsonrpc", Some(Value::Array(batch)));
        assert_eq!(r.status, 200);
        if round % 10 == 0 {
            peak = peak.max(support::rss_kib(node.pid()));
        }
    }
    peak.max(support::rss_kib(node.pid())) - baseline
}

fn faulty_node(dir: &std::path::Path, wasm: &[u8]) -> (NodeProc, String) {
    init_home(dir);
    assert!(merod_config(dir, &["set", "events.subscriber_buffer", "32"]).0);
    let node = NodeProc::start(dir);
    let app = node.install(wasm);
    let ctx = node.create_context(&app);
    // Warm up: compile caches, first allocations.
    node.execute(&ctx, "shout", json!({"text": "warm"}));
    (node, ctx)
}

#[test]
fn a_websocket_subscriber_that_stops_reading_is_dropped_and_memory_stays_bounded() {
    let wasm = build_app(FAULTY);
    // The same load without any subscriber, for comparison: RocksDB's
    // memtables grow with it either way.
    let control_dir = tempfile::tempdir().unwrap();
    let (control, control_ctx) = faulty_node(control_dir.path(), &wasm);
    let control_growth = flood(&control, &control_ctx);
    drop(control);

    let dir = tempfile::tempdir().unwrap();
    let (node, ctx) = faulty_node(dir.path(), &wasm);
    let url = format!(
        "{}/ws?context={ctx}&token={}",
        node.url.replace("http://", "ws://"),
        node.token
    );
    let (mut ws, _) = tungstenite::connect(url.as_str()).unwrap();
    // The subscriber now stops reading while ~300 MiB of events are produced.
    let started = Instant::now();
    let growth = flood(&node, &ctx);
    eprintln!(
        "stalled subscriber: RSS grew {} MiB (without a subscriber: {} MiB) while {} MiB of events were produced in {:?}",
        growth >> 10,
        control_growth >> 10,
        FLOOD_EVENTS / 4,
        started.elapsed()
    );
    assert!(
        metric(&node, "mero_subscribers_dropped_total") >= 1.0,
        "the subscriber was dropped"
    );
    // Queueing for the stalled reader would add the ~300 MiB of events;
    // what it may cost is its queue (32 messages here), the socket's
    // buffers and allocator slack.
    assert!(
        growth < control_growth + (100 << 10),
        "the node grew by {} MiB with a stalled subscriber, {} MiB without",
        growth >> 10,
        control_growth >> 10
    );
    // Reading again: what was queued, then the close frame with the reason.
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    let mut messages = 0;
    let frame = loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(f)) => break f.expect("a close frame with a reason"),
            Ok(_) => messages += 1,
            Err(e) => panic!("expected a close frame after {messages} messages, got {e}"),
        }
    };
    assert_eq!(u16::from(frame.code), 1008);
    assert!(frame.reason.contains("too slow"), "{}", frame.reason);
    assert!(
        messages < FLOOD_EVENTS,
        "{messages} messages were queued for a stalled reader"
    );
    wait_for(Duration::from_secs(10), || {
        (metric(&node, "mero_subscribers") == 0.0).then_some(())
    })
    .expect("the subscription is gone");
}

#[test]
fn bad_requests_get_documented_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _app, ctx) = kv_node(dir.path());
    node.execute(&ctx, "set", json!({"key": "keep", "value": "1"}));
    let raw = |body: &[u8]| {
        http(
            "POST",
            &format!("{}/jsonrpc", node.url),
            &[
                ("Authorization", &bearer(&node.token)),
                ("Content-Type", "application/json"),
            ],
            Some(body),
        )
    };
    let code = |r: &Reply| r.body["error"]["code"].as_i64();
    assert_eq!(code(&raw(b"{\"jsonrpc\": ")), Some(-32700));
    assert_eq!(
        code(&raw(br#"{"jsonrpc":"1.0","id":1,"method":"query"}"#)),
        Some(-32600)
    );
    assert_eq!(
        code(&raw(
            br#"{"jsonrpc":"2.0","id":1,"method":"delete_everything"}"#
        )),
        Some(-32601)
    );
    assert_eq!(code(&raw(br#"[]"#)), Some(-32600));
    assert_eq!(
        code(&raw(
            br#"{"jsonrpc":"2.0","id":1,"method":"execute","params":{"context":5}}"#
        )),
        Some(-32602)
    );
    assert_eq!(
        code(&raw(rpc(
            "execute",
            &ctx,
            "set",
            json!({"key": 1, "value": []})
        )
        .to_string()
        .as_bytes())),
        Some(-32602)
    );
    assert_eq!(
        code(&raw(rpc("execute", &ctx, "nope", json!({}))
            .to_string()
            .as_bytes())),
        Some(-32002)
    );
    assert_eq!(
        code(&raw(rpc(
            "query",
            &ctx,
            "set",
            json!({"key": "a", "value": "b"})
        )
        .to_string()
        .as_bytes())),
        Some(-32005)
    );
    assert_eq!(
        code(&raw(rpc(
            "query",
            &"1".repeat(32),
            "get",
            json!({"key": "a"})
        )
        .to_string()
        .as_bytes())),
        Some(-32001)
    );
    let big = vec![b' '; (1 << 20) + 1];
    let r = raw(&big);
    assert_eq!((r.status, code(&r)), (413, Some(-32600)));
    // Admin REST: malformed and oversized bodies.
    let r = admin(&node, "POST", "/admin/contexts", Some(json!({"app": 5})));
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    let r = http(
        "POST",
        &format!("{}/admin/tokens", node.url),
        &[("Authorization", &bearer(&node.token))],
        Some(b"{{{"),
    );
    assert_eq!((r.status, r.code()), (400, "bad_request"));
    let r = admin(
        &node,
        "POST",
        "/admin/tokens",
        Some(json!({"context": ctx, "ttlSecs": 0})),
    );
    assert_eq!(r.status, 400);
    let r = admin(&node, "GET", "/admin/contexts/not-hex", None);
    assert_eq!(r.status, 400);
    let r = admin(&node, "DELETE", "/admin/tokens/short", None);
    assert_eq!(r.status, 400);
    let r = call(
        &node,
        "POST",
        "/auth/refresh",
        None,
        Some(json!({"refreshToken": "a.b.c"})),
    );
    assert_eq!((r.status, r.code()), (401, "invalid_token"));
    let r = http(
        "GET",
        &format!("{}/events?context={ctx}", node.url),
        &[
            ("Authorization", &bearer(&node.token)),
            ("Last-Event-ID", "yesterday"),
        ],
        None,
    );
    assert_eq!(r.status, 400);
    // Nothing changed.
    assert_eq!(
        node.query(&ctx, "entries", json!({})),
        json!([["keep", "1"]])
    );
    assert_eq!(
        admin(&node, "GET", &format!("/admin/contexts/{ctx}"), None).body["deltas"],
        1
    );
}

/// Reads a WebSocket until the node closes it; the close code.
fn close_code(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

#[test]
fn open_streams_end_when_their_token_expires_or_is_revoked_and_a_reused_refresh_revokes_the_family()
{
    let dir = tempfile::tempdir().unwrap();
    let (node, _app, ctx) = kv_node(dir.path());
    let ws_of = |token: &str| {
        let url = format!(
            "{}/ws?context={ctx}&token={token}",
            node.url.replace("http://", "ws://")
        );
        let (ws, _) = tungstenite::connect(url.as_str()).expect("websocket connects");
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        }
        ws
    };
    // A WebSocket whose token expires is closed with 1008.
    let short = issue(&node, json!({"context": ctx, "ttlSecs": 2}))["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = std::time::Instant::now();
    let mut ws = ws_of(&short);
    assert_eq!(close_code(&mut ws), Some(1008));
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    // Revoking the grant closes an open WebSocket.
    let grant = issue(&node, json!({"context": ctx}));
    let mut ws = ws_of(grant["accessToken"].as_str().unwrap());
    let id = grant["tokenId"].as_str().unwrap();
    let r = admin(&node, "DELETE", &format!("/admin/tokens/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let revoked_at = std::time::Instant::now();
    assert_eq!(close_code(&mut ws), Some(1008));
    assert!(revoked_at.elapsed() < Duration::from_secs(4));
    // An SSE stream whose token expires ends with an `error` message.
    let short = issue(&node, json!({"context": ctx, "ttlSecs": 2}))["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let resp = agent
        .get(format!("{}/events?context={ctx}&token={short}", node.url))
        .call()
        .expect("SSE connects");
    let mut lines = BufReader::new(resp.into_body().into_reader()).lines();
    let mut saw_error = false;
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if line == "event: error" {
            saw_error = true;
        }
        if saw_error && line.starts_with("data:") {
            assert!(line.contains("token_expired"), "{line}");
            break;
        }
    }
    assert!(saw_error, "the stream says why it ends");
    // A refresh token used twice revokes its whole family.
    let grant = issue(&node, json!({"context": ctx}));
    let refresh = grant["refreshToken"].as_str().unwrap();
    let refresh_with = |t: &str| {
        call(
            &node,
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refreshToken": t})),
        )
    };
    let first = refresh_with(refresh);
    assert_eq!(first.status, 200, "{}", first.body);
    let access2 = first.body["accessToken"].as_str().unwrap().to_owned();
    let again = refresh_with(refresh);
    assert_eq!((again.status, again.code()), (401, "token_revoked"));
    let r = query_with(&node, &access2, &ctx);
    assert_eq!(
        (r.status, r.code()),
        (401, "token_revoked"),
        "the pair the first refresh made is revoked too"
    );
}
