//! Group commit: `execute`s queued together are persisted in one write, but
//! each call keeps its own delta, its own answer and its own failure; later
//! calls see earlier ones (state and node-private storage), and everything
//! answered survives a restart. Runs the node in-process.

mod support;

use std::collections::HashSet;

use mero_abi::CallErrorKind;
use mero_node::config::NodeConfig;
use mero_node::ids::ContextId;
use mero_node::{CallKind, CallRequest, Node, NodeError};
use serde_json::{Value, json};

const FAULTY: &str = "runtime/fixtures/faulty-app/Cargo.toml";

fn open(dir: &std::path::Path) -> std::sync::Arc<Node> {
    Node::open(dir, NodeConfig::generate("127.0.0.1:0".parse().unwrap())).unwrap()
}

fn req(ctx: &ContextId, kind: CallKind, method: &str, args: Value) -> CallRequest {
    CallRequest {
        context: *ctx,
        method: method.into(),
        args: args.to_string().into_bytes(),
        kind,
    }
}

fn set(ctx: &ContextId, key: &str) -> CallRequest {
    req(
        ctx,
        CallKind::Execute,
        "set",
        json!({"key": key, "value": "v"}),
    )
}

#[test]
fn a_group_keeps_each_calls_answer_and_order_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path());
    let ctx = support::context_of(&node, FAULTY);
    let seq_before = node.context_info(&ctx).unwrap().seq;

    use CallKind::{Execute, Query};
    let answers = node.call_many(vec![
        set(&ctx, "k1"),
        req(&ctx, Execute, "fail", json!({})),
        req(
            &ctx,
            Execute,
            "private_set",
            json!({"key": "p", "value": "1"}),
        ),
        // A view run with `execute` in the same group sees the private
        // write before it.
        req(&ctx, Execute, "private_get", json!({"key": "p"})),
        set(&ctx, "k2"),
        req(&ctx, Execute, "boom", json!({})),
        // A query in the batch sees the writes before it.
        req(&ctx, Query, "get", json!({"key": "k2"})),
        req(&ctx, Execute, "no_such_method", json!({})),
        set(&ctx, "k3"),
    ]);
    assert_eq!(answers.len(), 9);
    let kind = |i: usize| match &answers[i] {
        Err(NodeError::Call(e)) => e.kind,
        other => panic!("call {i}: expected a call error, got {other:?}"),
    };
    let output = |i: usize| answers[i].as_ref().unwrap().output.clone();
    let delta = |i: usize| answers[i].as_ref().unwrap().delta;
    assert_eq!(kind(1), CallErrorKind::App);
    assert_eq!(kind(5), CallErrorKind::Panic);
    assert_eq!(kind(7), CallErrorKind::UnknownMethod);
    assert_eq!(output(3), json!("1"));
    assert_eq!(output(6), json!("v"));
    let deltas: HashSet<_> = [0, 4, 8].map(|i| delta(i).expect("a delta")).into();
    assert_eq!(deltas.len(), 3, "each write has its own delta");
    assert_eq!(delta(2), None, "private writes are not replicated");

    let state = node.state_json(&ctx).unwrap();
    let items = state["items"].as_object().unwrap();
    let keys: Vec<_> = items.keys().map(String::as_str).collect();
    assert_eq!(keys, ["k1", "k2", "k3"], "failed calls left nothing");
    assert_eq!(node.context_info(&ctx).unwrap().seq, seq_before + 3);
    // One `state` item per commit: the creation; k1 with the private write,
    // committed before the next call reads private storage; k2, committed
    // before the query; k3 at the end.
    let stream = node.stream_after(&ctx, 0, 100).unwrap();
    let kinds: Vec<_> = stream.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "state", "event", "state", "event", "state", "event", "state"
        ]
    );

    drop(node);
    let node = open(dir.path());
    assert_eq!(node.state_json(&ctx).unwrap(), state);
    assert_eq!(node.context_info(&ctx).unwrap().seq, seq_before + 3);
    let p = node.call(&ctx, "private_get", br#"{"key":"p"}"#, Query);
    assert_eq!(p.unwrap().output, json!("1"));
}

#[test]
fn concurrent_callers_each_get_their_own_persisted_delta() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path());
    let ctx = support::context_of(&node, FAULTY);
    let seq_before = node.context_info(&ctx).unwrap().seq as usize;
    let (threads, each) = (8, 150);
    let ids: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let node = &node;
                s.spawn(move || {
                    (0..each)
                        .map(|i| {
                            let args = json!({"key": format!("t{t}-{i}"), "value": "v"});
                            let out = node
                                .call(&ctx, "set", args.to_string().as_bytes(), CallKind::Execute)
                                .unwrap();
                            out.delta.expect("a write has a delta")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), threads * each);
    let info = node.context_info(&ctx).unwrap();
    assert_eq!(info.seq as usize, seq_before + threads * each);
    let events = node
        .stream_after(&ctx, 0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|i| i.kind.as_str() == "event")
        .count();
    assert_eq!(events, threads * each);

    drop(node);
    let node = open(dir.path());
    let state = node.state_json(&ctx).unwrap();
    assert_eq!(state["items"].as_object().unwrap().len(), threads * each);
    assert_eq!(node.context_info(&ctx).unwrap().heads, info.heads);
}
