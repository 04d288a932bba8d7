//! The files generated from this crate's types are up to date:
//! `runtime/node/openapi.json` (its `components.schemas`) and
//! `clients/js/src/api.ts`. `MERO_BLESS=1` rewrites them instead of failing.
//!
//! Also: what these types say a client sends is what the node's parser
//! (`mero-rpc`) accepts.

use std::path::{Path, PathBuf};

use mero_api::{RpcMethod, RpcRequest, schema, typescript};
use serde_json::{Value, json};

const BLESS: &str = "MERO_BLESS=1 cargo test --release --workspace --test generated";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bless() -> bool {
    std::env::var_os("MERO_BLESS").is_some_and(|v| v == "1")
}

#[test]
fn openapi_schemas_are_the_types() {
    let path = repo().join("runtime/node/openapi.json");
    let text = std::fs::read_to_string(&path).expect("runtime/node/openapi.json is readable");
    let doc: Value = serde_json::from_str(&text).expect("openapi.json is JSON");
    let fresh = schema::with_components(doc.clone());
    let dangling = schema::dangling_refs(&fresh);
    assert!(
        dangling.is_empty(),
        "openapi.json refers to schemas no mero-api type has: {dangling:?}; fix the `$ref`s in its paths"
    );
    if fresh == doc {
        return;
    }
    if bless() {
        let out = serde_json::to_string_pretty(&fresh).unwrap() + "\n";
        std::fs::write(&path, out).expect("writing openapi.json");
        eprintln!("rewrote {}", path.display());
        return;
    }
    let stale: std::collections::BTreeSet<&String> = {
        let old = doc["components"]["schemas"].as_object();
        let new = fresh["components"]["schemas"].as_object().unwrap();
        new.keys()
            .chain(old.into_iter().flat_map(|o| o.keys()))
            .filter(|k| old.and_then(|o| o.get(*k)) != new.get(*k))
            .collect()
    };
    panic!(
        "runtime/node/openapi.json is stale: components.schemas {stale:?} differ from mero-api's types; regenerate with `{BLESS}`"
    );
}

#[test]
fn typescript_declarations_are_the_types() {
    let path = repo().join("clients/js/src/api.ts");
    let fresh = typescript::declarations();
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == fresh {
        return;
    }
    if bless() {
        std::fs::write(&path, &fresh).expect("writing clients/js/src/api.ts");
        eprintln!("rewrote {}", path.display());
        return;
    }
    panic!(
        "clients/js/src/api.ts is stale: it is not what mero-api's types generate; regenerate with `{BLESS}`"
    );
}

#[test]
fn the_node_parses_what_the_types_send() {
    let args = json!({"key": "a"}).as_object().cloned().unwrap();
    let req = RpcRequest::call(json!(3), RpcMethod::Execute, "ctx", "set", args);
    let body = serde_json::to_vec(&req).unwrap();
    let Ok(mero_rpc::Body::Single(Ok((method, call)))) = mero_rpc::parse_body::<String>(&body)
    else {
        panic!("mero-rpc refused {req:?}");
    };
    assert_eq!(method, mero_rpc::Method::Execute);
    assert_eq!(
        (call.context.as_str(), call.method.as_str()),
        ("ctx", "set")
    );
    assert_eq!(call.args, br#"{"key":"a"}"#);
    assert_eq!(call.id, json!(3));
}

#[test]
fn schemas_do_not_conflict_and_name_every_type() {
    let schemas = schema::components();
    for name in [
        "ContextInfo",
        "SyncStatus",
        "Tokens",
        "RpcRequest",
        "RpcResponse",
        "StreamItem",
        "SubscribeParams",
        "ErrorBody",
        "AppErrorData",
        "CallFailure",
    ] {
        assert!(schemas.contains_key(name), "no schema {name}");
    }
    // Request bodies refuse unknown fields, as the node does.
    assert_eq!(
        schemas["IssueTokenRequest"]["additionalProperties"],
        json!(false)
    );
    // A field the node may leave out is optional; one it always sends is not.
    let required = schemas["ContextInfo"]["required"].as_array().unwrap();
    assert!(required.contains(&json!("joining")));
    assert!(!required.contains(&json!("pendingApp")));
}
