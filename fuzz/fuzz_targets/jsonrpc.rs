//! A JSON-RPC body as a client posts it to `/jsonrpc` (or sends it on the
//! WebSocket): `mero_rpc::parse_body` with the node's context id type, a
//! batch's answers joined again, and the WebSocket path (`envelope`, then
//! `parse_call`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mero_rpc::{Body, MAX_BATCH, parse_body};
use mero_sync::ids::ContextId;
use serde_json::{Value, json};

fn check_call(call: &mero_rpc::Call<ContextId>) {
    let args: Value = serde_json::from_slice(&call.args).expect("args are JSON");
    assert!(args.is_object(), "args are an object");
}

fuzz_target!(init: mero_fuzz::abort_on_panics_but_caught_crdt_ones(), |data: &[u8]| {
    match parse_body::<ContextId>(data) {
        Err(e) | Ok(Body::Single(Err(e))) => {
            assert!(e["error"]["code"].is_i64());
        }
        Ok(Body::Single(Ok((_, call)))) => check_call(&call),
        Ok(Body::Batch(batch)) => {
            let n = batch.calls.len();
            assert!(n <= MAX_BATCH);
            for (_, c) in &batch.calls {
                check_call(c);
            }
            // Fewer answers than calls must not panic either.
            let given = data.len() % (n + 1);
            let out = batch.answers.join((0..given).map(|i| json!(i)));
            assert!(matches!(&out, Value::Array(a) if !a.is_empty() && a.len() <= MAX_BATCH));
        }
    }
    // The WebSocket reads a text message the same way, one request each.
    if let Ok(req) = serde_json::from_slice::<Value>(data)
        && let Ok((id, _method, params)) = mero_rpc::envelope(req)
        && let Ok(call) = mero_rpc::parse_call::<ContextId>(id, params)
    {
        check_call(&call);
    }
});
