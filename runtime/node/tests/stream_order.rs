//! Stream items reach subscribers in the order their context numbered them,
//! however many peers' deltas a node applies at once. A WebSocket session
//! skips any item numbered below one it already sent, so two changes
//! announced out of order used to lose the first one's events for live
//! subscribers (found by the 20-node `scale` benchmark, 20 writers).

mod support;

use std::sync::Arc;
use std::time::Duration;

use mero_node::config::NodeConfig;
use mero_node::{CallKind, CallRequest, Node};
use mero_sync::Role;

fn open(dir: &std::path::Path) -> Arc<Node> {
    Node::open(dir, NodeConfig::generate("127.0.0.1:0".parse().unwrap())).unwrap()
}

#[test]
fn concurrent_receives_announce_in_order() {
    let da = tempfile::tempdir().unwrap();
    let a = open(da.path());
    let ctx = support::context_of(&a, "examples/kv-store/Cargo.toml");
    let calls: Vec<CallRequest> = (0..1000)
        .map(|k| CallRequest {
            context: ctx,
            method: "set".into(),
            args: format!(r#"{{"key":"k{k}","value":"v"}}"#).into_bytes(),
            kind: CallKind::Execute,
        })
        .collect();
    for chunk in calls.chunks(10) {
        for answer in a.call_many(chunk.to_vec()) {
            answer.unwrap();
        }
    }
    // The race needs a preemption at the wrong moment: a few joiners.
    let tokens: Vec<String> = (0..3)
        .map(|_| {
            let invitation = a.invite(&ctx, Duration::from_secs(600), Role::Writer, 1);
            invitation.unwrap().token.to_string()
        })
        .collect();
    let (deltas, _) = a.export_deltas(&ctx, 0, 10_000).unwrap();
    for token in &tokens {
        let db = tempfile::tempdir().unwrap();
        join_concurrently(&open(db.path()), token, &deltas);
    }
}

/// `b` joins with `token` and receives `deltas` from many threads at once;
/// its subscribers see every item, in order.
fn join_concurrently(b: &Node, token: &str, deltas: &[mero_sync::SignedDelta]) {
    let ctx = token.parse::<mero_sync::InvitationToken>().unwrap().context;
    b.join(token).unwrap();
    let mut items = b.subscribe();
    // Sixteen "peers" (more threads than cores, so one is often preempted
    // between its change and its announcement) hand B the log at once, one
    // delta at a time: B applies what it can and buffers the rest.
    let pieces: Vec<_> = deltas.chunks(1).map(<[_]>::to_vec).collect();
    const PEERS: usize = 16;
    std::thread::scope(|s| {
        for t in 0..PEERS {
            let pieces = &pieces;
            s.spawn(move || {
                for piece in pieces.iter().skip(t).step_by(PEERS) {
                    b.receive(&ctx, piece.clone(), Some(format!("peer-{t}")))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(
        b.sync_status(&ctx).unwrap().deltas,
        deltas.len() as u64 + 1,
        "B applied every delta (and wrote its join)"
    );
    let mut last = 0;
    let mut seen = 0;
    loop {
        let item = match items.try_recv() {
            Ok(item) => item,
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => break,
            Err(e) => panic!("reading the stream: {e}"),
        };
        if item.context != ctx {
            continue;
        }
        assert!(
            item.id > last,
            "item {} announced after item {last}",
            item.id
        );
        last = item.id;
        seen += 1;
    }
    assert!(seen > 1000, "every event was announced: {seen}");
}
