//! Acceptance: each kind of bad input gets an error that says what was wrong,
//! and none changes state. Talks HTTP to a real `merod`.

mod support;

use serde_json::{Value, json};
use support::{NodeProc, build_app};

fn rpc_raw(node: &NodeProc, body: &[u8]) -> (u16, Value) {
    node.send("POST", "/jsonrpc", Some(body), true)
}

/// Status of a JSON-RPC request with a `len`-byte body, or `None` if the node
/// closed the connection while the body was still being uploaded (it rejects
/// once the limit is read, and a slow client can see that as a broken pipe).
fn oversized_status(node: &NodeProc, len: usize) -> Option<u16> {
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(len));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .post(&format!("{}/jsonrpc", node.url))
        .header("Authorization", &format!("Bearer {}", node.token))
        .send(body.as_bytes())
        .ok()
        .map(|r| r.status().as_u16())
}

fn error_code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected a JSON-RPC error, got {v}"))
}

#[test]
fn bad_inputs_get_clear_errors_and_change_nothing() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::init_and_start(dir.path());
    let app = node.install(&wasm);
    let ctx = node.create_context(&app);
    node.execute(&ctx, "set", json!({"key": "a", "value": "1"}));
    let before = node.state(&ctx);

    // Unknown app method.
    let r = node.rpc("execute", &ctx, "frobnicate", json!({}));
    assert_eq!(error_code(&r), -32002);
    assert!(
        r["error"]["message"].as_str().unwrap().contains("set"),
        "lists the methods: {r}"
    );
    // Unknown RPC method.
    let (_, r) = rpc_raw(
        &node,
        br#"{"jsonrpc":"2.0","id":1,"method":"run","params":{}}"#,
    );
    assert_eq!(error_code(&r), -32601);
    // Malformed JSON.
    let (_, r) = rpc_raw(&node, b"{\"jsonrpc\": \"2.0\", ");
    assert_eq!(error_code(&r), -32700);
    // Wrong JSON-RPC version.
    let (_, r) = rpc_raw(
        &node,
        br#"{"jsonrpc":"1.0","id":1,"method":"execute","params":{}}"#,
    );
    assert_eq!(error_code(&r), -32600);
    // Missing argument.
    let r = node.rpc("execute", &ctx, "set", json!({"key": "b"}));
    assert_eq!(error_code(&r), -32602);
    assert!(
        r["error"]["message"].as_str().unwrap().contains("value"),
        "{r}"
    );
    // Mistyped argument.
    let r = node.rpc("execute", &ctx, "set", json!({"key": "b", "value": 7}));
    assert_eq!(error_code(&r), -32602);
    // Args not an object.
    let r = node.rpc("execute", &ctx, "set", json!(["b", "2"]));
    assert_eq!(error_code(&r), -32602);
    // Unknown context (well-formed id) and malformed context id.
    let r = node.rpc(
        "execute",
        "11111111111111111111111111111111",
        "set",
        json!({"key": "b", "value": "2"}),
    );
    assert_eq!(error_code(&r), -32001);
    let r = node.rpc(
        "execute",
        "not-an-id",
        "set",
        json!({"key": "b", "value": "2"}),
    );
    assert_eq!(error_code(&r), -32602);
    // App error.
    let r = node.rpc("execute", &ctx, "remove", json!({"key": "zzz"}));
    assert_eq!(error_code(&r), -32003);
    assert_eq!(r["error"]["message"], json!("no such key: zzz"));
    assert_eq!(
        r["error"]["data"],
        json!({"kind": "app", "code": 0, "data": null})
    );
    // Oversized request: refused with 413 (or a closed connection mid-upload).
    let status = oversized_status(&node, 2 << 20);
    assert!(
        matches!(status, Some(413) | None),
        "oversized body got {status:?}"
    );
    // Missing or wrong token.
    let (status, _) = node.send("POST", "/jsonrpc", Some(b"{}"), false);
    assert_eq!(status, 401);
    let (status, _) = node.send("GET", "/admin/apps", None, false);
    assert_eq!(status, 401);

    // Invalid WASM upload.
    let (status, r) = node.send("POST", "/admin/apps", Some(b"definitely not wasm"), true);
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["error"]["code"], json!("invalid_app"));
    // Valid WASM without the mero ABI or exports.
    // (module (memory (export "memory") 1))
    let empty: &[u8] = b"\0asm\x01\0\0\0\x05\x03\x01\x00\x01\x07\x0a\x01\x06memory\x02\x00";
    let (status, r) = node.send("POST", "/admin/apps", Some(empty), true);
    assert_eq!(status, 400, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cargo mero build"),
        "{r}"
    );
    // An ABI naming a method the module does not export.
    let mut abi = mero_abi::wasm::read_abi(&wasm).unwrap();
    abi.methods.push(mero_abi::MethodAbi {
        name: "ghost".into(),
        mutability: mero_abi::Mutability::View,
        init: false,
        params: vec![],
        returns: "()".into(),
        fallible: false,
        private: false,
        xcall: false,
        error: None,
    });
    abi.methods.sort_by(|a, b| a.name.cmp(&b.name));
    let forged = mero_abi::wasm::replace_custom_section(
        &wasm,
        &[],
        mero_abi::ABI_SECTION,
        &serde_json::to_vec(&abi).unwrap(),
    )
    .unwrap();
    let (status, r) = node.send("POST", "/admin/apps", Some(&forged), true);
    assert_eq!(status, 400, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("ghost"),
        "{r}"
    );
    // Empty upload, unknown app, bad context body.
    assert_eq!(node.send("POST", "/admin/apps", Some(b""), true).0, 400);
    let (status, _) = node.send(
        "POST",
        "/admin/contexts",
        Some(br#"{"app":"11111111111111111111111111111111"}"#),
        true,
    );
    assert_eq!(status, 404);
    let (status, _) = node.send("POST", "/admin/contexts", Some(b"{nope"), true);
    assert_eq!(status, 400);
    let (status, _) = node.send(
        "GET",
        "/admin/contexts/11111111111111111111111111111111/state",
        None,
        true,
    );
    assert_eq!(status, 404);

    assert_eq!(node.state(&ctx), before, "bad input changed state");
    let (_, apps) = node.send("GET", "/admin/apps", None, true);
    assert_eq!(
        apps.as_array().unwrap().len(),
        1,
        "a rejected upload was installed: {apps}"
    );
}

#[test]
fn jsonrpc_batches_run_in_order_and_fail_per_call() {
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::init_and_start(dir.path());
    let ctx = node.create_context(&node.install(&wasm));
    let call = |id: u64, method: &str, m: &str, args: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": method,
            "params": {"context": ctx, "method": m, "args": args}})
    };
    let batch = json!([
        call(1, "execute", "set", json!({"key": "a", "value": "1"})),
        call(2, "execute", "set", json!({"key": "", "value": "x"})),
        call(3, "query", "get", json!({"key": "a"})),
    ]);
    let (status, out) = rpc_raw(&node, batch.to_string().as_bytes());
    assert_eq!(status, 200);
    let out = out.as_array().expect("a batch answers with an array");
    assert_eq!(out.len(), 3);
    assert!(out[0].get("result").is_some(), "{out:?}");
    assert_eq!(error_code(&out[1]), -32003);
    assert_eq!(out[2]["result"]["output"], json!("1"));
    let (_, empty) = rpc_raw(&node, b"[]");
    assert_eq!(error_code(&empty), -32600);
    assert_eq!(node.query(&ctx, "writes", json!({})), json!(1));
}
