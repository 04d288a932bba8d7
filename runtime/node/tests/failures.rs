//! Acceptance: a call that errors, panics, loops forever or exhausts memory
//! leaves no trace (state, delta log, private storage, events), and the node
//! keeps serving. Runs the node in-process to inspect its internals.

mod support;

use mero_abi::CallErrorKind;
use mero_node::config::NodeConfig;
use mero_node::ids::ContextId;
use mero_node::{CallKind, Node, NodeError};
use serde_json::{Value, json};

const FAULTY: &str = "runtime/fixtures/faulty-app/Cargo.toml";

fn node(dir: &std::path::Path) -> std::sync::Arc<Node> {
    let mut cfg = NodeConfig::generate("127.0.0.1:0".parse().unwrap());
    cfg.limits.call_timeout_ms = 300;
    cfg.limits.call_memory_mib = 32;
    cfg.limits.max_return_bytes = 64 << 10;
    Node::open(dir, cfg).unwrap()
}

fn call(
    node: &Node,
    ctx: &ContextId,
    method: &str,
    args: Value,
    kind: CallKind,
) -> Result<Value, NodeError> {
    node.call(ctx, method, args.to_string().as_bytes(), kind)
        .map(|o| o.output)
}

fn kind_of(r: Result<Value, NodeError>) -> CallErrorKind {
    match r {
        Err(NodeError::Call(e)) => e.kind,
        other => panic!("expected a call error, got {other:?}"),
    }
}

#[test]
fn failed_calls_leave_no_trace_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let ctx = support::context_of(&node, FAULTY);
    call(
        &node,
        &ctx,
        "set",
        json!({"key": "keep", "value": "me"}),
        CallKind::Execute,
    )
    .unwrap();

    let snapshot = |node: &Node| {
        (
            node.state_json(&ctx).unwrap(),
            node.context_info(&ctx).unwrap().seq,
        )
    };
    let before = snapshot(&node);

    let cases = [
        ("fail", CallErrorKind::App),
        ("boom", CallErrorKind::Panic),
        ("spin", CallErrorKind::Timeout),
        ("hog", CallErrorKind::OutOfMemory),
        ("deep", CallErrorKind::Trap),
    ];
    for (method, expected) in cases {
        let args = if method == "deep" {
            json!({"n": 100_000_000u64})
        } else {
            json!({})
        };
        let err = call(&node, &ctx, method, args, CallKind::Execute);
        assert_eq!(kind_of(err), expected, "{method}");
        assert_eq!(
            snapshot(&node),
            before,
            "{method} left a trace in state or the delta log"
        );
        // The private write it made before failing is gone too.
        let private = call(
            &node,
            &ctx,
            "private_get",
            json!({"key": method}),
            CallKind::Query,
        )
        .unwrap();
        assert_eq!(
            private,
            Value::Null,
            "{method} left a private-storage write"
        );
    }
    // A view that tries to write through a nested handle is refused.
    let err = call(&node, &ctx, "sneaky", json!({}), CallKind::Execute);
    assert_eq!(kind_of(err), CallErrorKind::Mutability);
    // A mutating method cannot be queried.
    let err = call(
        &node,
        &ctx,
        "set",
        json!({"key": "q", "value": "v"}),
        CallKind::Query,
    );
    assert_eq!(kind_of(err), CallErrorKind::Mutability);
    // Return values over the limit are refused.
    let err = call(&node, &ctx, "big", json!({"n": 100_000}), CallKind::Query);
    assert_eq!(kind_of(err), CallErrorKind::Limit);
    assert_eq!(snapshot(&node), before);

    // Later calls are unaffected.
    call(
        &node,
        &ctx,
        "set",
        json!({"key": "after", "value": "ok"}),
        CallKind::Execute,
    )
    .unwrap();
    assert_eq!(
        call(&node, &ctx, "get", json!({"key": "after"}), CallKind::Query).unwrap(),
        json!("ok")
    );
    assert_eq!(
        call(&node, &ctx, "get", json!({"key": "fail"}), CallKind::Query).unwrap(),
        Value::Null
    );
    assert_eq!(node.context_info(&ctx).unwrap().seq, before.1 + 1);

    // And a restart sees exactly the successful calls.
    let state = node.state_json(&ctx).unwrap();
    drop(node);
    let node = self::node(dir.path());
    assert_eq!(node.state_json(&ctx).unwrap(), state);
}

fn private_get(node: &Node, ctx: &ContextId) -> Value {
    call(
        node,
        ctx,
        "private_get",
        json!({"key": "k"}),
        CallKind::Query,
    )
    .unwrap()
}

#[test]
fn env_and_private_storage() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let info = node
        .context_info(&support::context_of(&node, FAULTY))
        .unwrap();
    let who = call(&node, &info.id, "whoami", json!({}), CallKind::Query).unwrap();
    let hex = |b: [u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(who[0], json!(hex(info.id.0)));
    assert_eq!(who[1], json!(hex(info.member.0)));
    assert!(who[2].as_u64().unwrap() > 1_600_000_000_000_000_000);
    assert!(who[3].as_u64().unwrap() > 8, "random bytes look random");

    let seq = node.context_info(&info.id).unwrap().seq;
    call(
        &node,
        &info.id,
        "private_set",
        json!({"key": "k", "value": "secret"}),
        CallKind::Execute,
    )
    .unwrap();
    assert_eq!(private_get(&node, &info.id), json!("secret"));
    // Private storage never becomes a delta or part of the replicated state.
    assert_eq!(node.context_info(&info.id).unwrap().seq, seq);
    assert!(
        !node
            .state_json(&info.id)
            .unwrap()
            .to_string()
            .contains("secret")
    );
    drop(node);
    let node = self::node(dir.path());
    assert_eq!(private_get(&node, &info.id), json!("secret"));
}

/// Deleting a context while calls keep arriving for it leaves nothing
/// behind that would stop the next start; the node opens with its other
/// contexts intact.
#[test]
fn deleting_a_busy_context_leaves_a_node_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let busy = support::context_of(&node, FAULTY);
    let kept = support::context_of(&node, FAULTY);
    call(
        &node,
        &kept,
        "set",
        json!({"key": "k", "value": "v"}),
        CallKind::Execute,
    )
    .unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let node = node.clone();
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let args = json!({"key": format!("{w}-{i}"), "value": "x"});
                    match call(&node, &busy, "set", args, CallKind::Execute) {
                        Ok(_) => {}
                        Err(NodeError::UnknownContext(_)) => return i,
                        Err(e) => panic!("unexpected: {e}"),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    node.delete_context(&busy).unwrap();
    let done: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(done > 0, "the writers were busy");
    drop(node);
    let node = self::node(dir.path());
    assert!(matches!(
        node.context_info(&busy),
        Err(NodeError::UnknownContext(_))
    ));
    assert_eq!(
        call(&node, &kept, "get", json!({"key": "k"}), CallKind::Query).unwrap(),
        json!("v")
    );
}
