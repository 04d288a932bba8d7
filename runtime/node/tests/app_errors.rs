//! Acceptance: typed app errors, private methods and views, through real
//! `merod` processes over HTTP JSON-RPC (and the WebSocket), with the
//! admin token and with client tokens. The rules are `mero_engine::policy`,
//! which the SDK's test host runs too (sdk/tests/policy.rs).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{NodeProc, build_app, cluster, wait_for};

const POLICY: &str = "runtime/fixtures/policy-app/Cargo.toml";

/// A node running policy-app in one context: (node, app hash, context).
fn ledger(dir: &std::path::Path) -> (NodeProc, String, String) {
    let node = NodeProc::init_and_start(dir);
    let app = node.install(&build_app(POLICY));
    let ctx = node.create_context(&app);
    (node, app, ctx)
}

/// A JSON-RPC call with `token` as bearer: (HTTP status, response).
fn rpc_as(node: &NodeProc, token: &str, body: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let resp = agent
        .post(&format!("{}/jsonrpc", node.url))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .expect("the node answers");
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

fn request(kind: &str, ctx: &str, method: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": kind,
        "params": {"context": ctx, "method": method, "args": args}})
}

/// The `error` of a failed call, asserting its JSON-RPC code.
fn error(r: &Value, code: i64) -> &Value {
    assert_eq!(r["error"]["code"], json!(code), "{r}");
    &r["error"]
}

fn code_of(variant: &str) -> u32 {
    mero_abi::error::derived_code(variant)
}

#[test]
fn typed_errors_reach_the_client_as_kind_code_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let (node, app, ctx) = ledger(dir.path());
    assert_eq!(
        node.execute(&ctx, "deposit", json!({"account": "ann", "amount": 5})),
        json!(5)
    );
    let before = node.state(&ctx);
    let deltas = node.sync(&ctx)["deltas"].clone();

    // A struct variant with an explicit code; its Display is the message.
    // `withdraw` took the money before it failed: nothing of it stays.
    let r = node.rpc(
        "execute",
        &ctx,
        "withdraw",
        json!({"account": "ann", "amount": 9}),
    );
    let e = error(&r, -32003);
    assert_eq!(e["message"], json!("ann holds 5, not 9"));
    assert_eq!(
        e["data"],
        json!({"kind": "Insufficient", "code": 1001,
            "data": {"account": "ann", "balance": 5, "wanted": 9}})
    );
    // Tuple variants: derived and explicit codes, the field as data.
    let r = node.rpc(
        "execute",
        &ctx,
        "withdraw",
        json!({"account": "bob", "amount": 1}),
    );
    assert_eq!(
        error(&r, -32003)["data"],
        json!({"kind": "NoAccount", "code": code_of("NoAccount"), "data": "bob"})
    );
    let r = node.rpc(
        "execute",
        &ctx,
        "deposit",
        json!({"account": "ann", "amount": -2}),
    );
    let e = error(&r, -32003);
    assert_eq!(
        e["data"],
        json!({"kind": "NotPositive", "code": 1003, "data": -2})
    );
    assert_eq!(e["message"], json!("amounts are positive, not -2"));
    // A unit variant of an enum without Display: data null, the name as message.
    let r = node.rpc(
        "execute",
        &ctx,
        "note",
        json!({"account": "ann", "text": ""}),
    );
    let e = error(&r, -32003);
    assert_eq!(
        e["data"],
        json!({"kind": "Empty", "code": code_of("Empty"), "data": null})
    );
    assert_eq!(e["message"], json!("Empty"));
    // An untyped app::Error keeps its payload, as kind `app`, code 0.
    let r = node.rpc("execute", &ctx, "refuse", json!({}));
    let e = error(&r, -32003);
    assert_eq!(e["message"], json!("refused on purpose"));
    assert_eq!(
        e["data"],
        json!({"kind": "app", "code": 0, "data": {"why": "test"}})
    );
    // The WebSocket answers alike.
    let ws_url = format!(
        "{}/ws?token={}",
        node.url.replace("http://", "ws://"),
        node.token
    );
    let (mut socket, _) = tungstenite::connect(&ws_url).expect("websocket connects");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    let req = request(
        "execute",
        &ctx,
        "note",
        json!({"account": "a", "text": "x".repeat(40)}),
    );
    socket
        .send(tungstenite::Message::Text(req.to_string().into()))
        .unwrap();
    let answer: Value = loop {
        if let tungstenite::Message::Text(t) = socket.read().expect("an answer") {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v.get("id").is_some() {
                break v;
            }
        }
    };
    assert_eq!(
        error(&answer, -32003)["data"],
        json!({"kind": "TooLong", "code": code_of("TooLong"), "data": {"max": 32}})
    );
    // None of the failures left a trace.
    assert_eq!(node.state(&ctx), before);
    assert_eq!(node.sync(&ctx)["deltas"], deltas);

    // The ABI lists the errors, and which method returns which.
    let abi: mero_abi::AppAbi =
        serde_json::from_value(node.get(&format!("/admin/apps/{app}"))).unwrap();
    let ledger = abi.errors.iter().find(|e| e.name == "LedgerError").unwrap();
    let codes: Vec<(&str, u32)> = ledger
        .variants
        .iter()
        .map(|v| (v.name.as_str(), v.code))
        .collect();
    assert_eq!(
        codes,
        [
            ("Insufficient", 1001),
            ("NoAccount", code_of("NoAccount")),
            ("NotPositive", 1003),
            ("Frozen", code_of("Frozen"))
        ]
    );
    assert_eq!(ledger.variants[0].fields[1].ty, "i64");
    for (method, err) in [
        ("deposit", Some("LedgerError")),
        ("withdraw", Some("LedgerError")),
        ("note", Some("NoteError")),
        ("refuse", None),
        ("balance", None),
    ] {
        assert_eq!(
            abi.method(method).unwrap().error.as_deref(),
            err,
            "{method}"
        );
    }
}

#[test]
fn views_cannot_write_and_init_runs_only_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _, ctx) = ledger(dir.path());
    node.execute(&ctx, "note", json!({"account": "ann", "text": "hi"}));
    let before = node.state(&ctx);
    let deltas = node.sync(&ctx)["deltas"].clone();
    // A view that writes through a nested handle fails, however it is called.
    for kind in ["execute", "query"] {
        let r = node.rpc(kind, &ctx, "poke", json!({"account": "ann"}));
        error(&r, -32005);
    }
    // A view runs under `execute` too, and writes no delta.
    let r = node.rpc("execute", &ctx, "balance", json!({"account": "ann"}));
    assert_eq!(r["result"]["output"], json!(0), "{r}");
    assert!(r["result"].get("delta").is_none(), "{r}");
    // A mutating method cannot be queried.
    let r = node.rpc(
        "query",
        &ctx,
        "deposit",
        json!({"account": "ann", "amount": 1}),
    );
    let msg = error(&r, -32005)["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("call it with `execute`"), "{msg}");
    // `init` is not callable once the context exists.
    let r = node.rpc("execute", &ctx, "init", json!({}));
    let msg = error(&r, -32002)["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("constructor"), "{msg}");
    assert_eq!(node.state(&ctx), before);
    assert_eq!(node.sync(&ctx)["deltas"], deltas);
    assert_eq!(
        node.query(&ctx, "notes", json!({"account": "ann"})),
        json!(["hi"])
    );
}

#[test]
fn private_methods_are_refused_to_clients_and_run_as_handlers() {
    let wasm = build_app(POLICY);
    let d: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, _) = cluster(&d, &wasm);

    // Admin token, both RPC methods: private methods and handlers are
    // refused, with a reason.
    for kind in ["execute", "query"] {
        let r = nodes[0].rpc(kind, &ctx, "freeze", json!({}));
        let msg = error(&r, -32002)["message"].as_str().unwrap().to_owned();
        assert!(msg.contains("private"), "{msg}");
        let args = json!({"account": "x", "amount": 1});
        let r = nodes[1].rpc(kind, &ctx, "on_deposited", args);
        let msg = error(&r, -32002)["message"].as_str().unwrap().to_owned();
        assert!(msg.contains("handler of event `Deposited`"), "{msg}");
    }
    // A client token: the same refusals, in a batch too, and no token is
    // scoped to a method no client may call.
    let grant = nodes[0].post("/admin/tokens", json!({"context": ctx}));
    let client = grant["accessToken"].as_str().unwrap();
    let (status, r) = rpc_as(
        &nodes[0],
        client,
        &request("execute", &ctx, "freeze", json!({})),
    );
    assert_eq!(status, 200);
    error(&r, -32002);
    let batch = json!([
        request(
            "execute",
            &ctx,
            "deposit",
            json!({"account": "ann", "amount": 3})
        ),
        request(
            "execute",
            &ctx,
            "on_deposited",
            json!({"account": "ann", "amount": 3})
        ),
    ]);
    let (_, r) = rpc_as(&nodes[0], client, &batch);
    assert_eq!(r[0]["result"]["output"], json!(3), "{r}");
    error(&r[1], -32002);
    for method in ["freeze", "on_deposited", "init"] {
        let body = json!({"context": ctx, "methods": [method]}).to_string();
        let (status, r) = nodes[0].send("POST", "/admin/tokens", Some(body.as_bytes()), true);
        assert_eq!(status, 400, "{method}: {r}");
    }

    // The deposit's handler (private) ran on the receiving node only.
    let hex = |n: &NodeProc| {
        let info = n.get(&format!("/admin/contexts/{ctx}"));
        let key: mero_node::ids::MemberKey = info["member"].as_str().unwrap().parse().unwrap();
        key.0.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let expected = json!([[hex(&nodes[1]), 1]]);
    wait_for(Duration::from_secs(30), || {
        nodes
            .iter()
            .all(|n| n.query(&ctx, "receipts", json!({})) == expected)
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "receipts: {} / {}",
            nodes[0].query(&ctx, "receipts", json!({})),
            nodes[1].query(&ctx, "receipts", json!({}))
        )
    });
    // Nobody froze the ledger: the refused calls did nothing.
    let r = nodes[1].rpc(
        "execute",
        &ctx,
        "deposit",
        json!({"account": "bo", "amount": 1}),
    );
    assert_eq!(r["result"]["output"], json!(1), "{r}");
}
