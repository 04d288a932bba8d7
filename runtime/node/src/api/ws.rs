//! The WebSocket at `/ws`: JSON-RPC 2.0 in both directions.
//!
//! Client requests: `execute` and `query` (as over HTTP), `subscribe` and
//! `unsubscribe` (`{"contexts": [...]}`), `ping` (answers `"pong"`; for
//! browsers, which cannot send ping frames; ping frames are answered too).
//! `?context=a,b` subscribes at connect. Server notifications:
//! `{"jsonrpc": "2.0", "method": "event" | "state", "params": <stream item>}`.
//!
//! Backpressure: each socket has a queue of `[events] subscriber_buffer`
//! messages. A subscriber that lets it fill is sent close code 1008 with the
//! reason and dropped, so a stalled client costs a bounded amount of
//! memory. A write that does not complete in [`WRITE_TIMEOUT`] ends the
//! connection. Node shutdown closes sockets with 1001.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::auth::Principal;
use super::rpc::{self, rpc_error};
use super::{ApiError, parse_id};
use crate::events::StreamItem;
use crate::ids::ContextId;
use crate::node::{CallKind, Node};

/// How long one write to a client may take before the connection is cut.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests one socket may have running at once.
const MAX_IN_FLIGHT: usize = 64;

/// Close code for a subscriber dropped for reading too slowly (policy violation).
pub const CLOSE_TOO_SLOW: u16 = 1008;
/// Close code when the token expired or was revoked while connected.
pub const CLOSE_POLICY: u16 = 1008;

/// Query of `/ws`.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Contexts to subscribe to at connect, comma-separated. (`?token=`
    /// is read by auth.)
    context: Option<String>,
}

/// `GET /ws`: upgrades to the JSON-RPC WebSocket.
pub(crate) async fn websocket(
    State(node): State<Arc<Node>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let mut initial = HashSet::new();
    for c in q.context.iter().flat_map(|s| s.split(',')) {
        let ctx: ContextId = parse_id(c)?;
        who.check_context(&ctx)?;
        node.has_context(&ctx)?;
        initial.insert(ctx);
    }
    let max = node.config().limits.max_request_bytes;
    Ok(ws
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| session(socket, node, who, initial))
        .into_response())
}

fn close(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

fn notification(item: &StreamItem) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","method":"{}","params":{}}}"#,
        item.kind.as_str(),
        item.json
    )
}

async fn session(
    socket: WebSocket,
    node: Arc<Node>,
    who: Principal,
    mut subscribed: HashSet<ContextId>,
) {
    let (sink, mut stream) = socket.split();
    let buffer = node.config().events.subscriber_buffer;
    let (out, out_rx) = mpsc::channel::<Message>(buffer);
    let (close_tx, close_rx) = oneshot::channel();
    let writer = tokio::spawn(write_loop(sink, out_rx, close_rx));
    let mut events = node.subscribe();
    let mut closing = node.closing();
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    node.metrics().subscriber(1);
    let too_slow = || {
        close(
            CLOSE_TOO_SLOW,
            &format!(
                "subscriber too slow: more than {buffer} messages queued; reconnect (SSE with Last-Event-ID replays missed items)"
            ),
        )
    };
    let mut recheck = tokio::time::interval(super::auth::RECHECK);
    let frame = loop {
        tokio::select! {
            _ = recheck.tick() => {
                if let Err(e) = who.still_valid(node.tokens()) {
                    break Some(close(CLOSE_POLICY, &format!("{e}")));
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let Some(reply) =
                        request(&node, &who, &mut subscribed, &in_flight, &out, text.as_str())
                    else {
                        continue;
                    };
                    if out.try_send(Message::Text(reply.to_string().into())).is_err() {
                        node.metrics().dropped_subscriber();
                        break Some(too_slow());
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    break Some(close(1003, "send JSON-RPC requests as text messages"));
                }
                // Ping frames are answered by the WebSocket layer.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                // The WebSocket layer has queued the close reply; flush it.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
            },
            item = events.recv() => match item {
                Ok(item) if subscribed.contains(&item.context) => {
                    if out.try_send(Message::Text(notification(&item).into())).is_err() {
                        node.metrics().dropped_subscriber();
                        break Some(too_slow());
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    node.metrics().dropped_subscriber();
                    break Some(too_slow());
                }
                Err(RecvError::Closed) => break Some(close(1001, "node shutting down")),
            },
            _ = closing.changed() => break Some(close(1001, "node shutting down")),
        }
    };
    // Stop holding broadcast items before waiting on a possibly stalled writer.
    drop(events);
    let _ = close_tx.send(frame);
    let _ = writer.await;
    node.metrics().subscriber(-1);
}

/// Handles one client message; returns the reply to send now, if any
/// (calls answer later, from their own task).
fn request(
    node: &Arc<Node>,
    who: &Principal,
    subscribed: &mut HashSet<ContextId>,
    in_flight: &Arc<Semaphore>,
    out: &mpsc::Sender<Message>,
    text: &str,
) -> Option<Value> {
    let req: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Some(rpc_error(
                Value::Null,
                -32700,
                format!("parse error: {e}"),
                None,
            ));
        }
    };
    let (id, method, params) = match rpc::envelope(req) {
        Ok(x) => x,
        Err(e) => return Some(e),
    };
    let kind = match method.as_str() {
        "ping" => return Some(json!({"jsonrpc": "2.0", "id": id, "result": "pong"})),
        "subscribe" | "unsubscribe" => {
            return Some(subscription(
                node,
                who,
                subscribed,
                id,
                method == "subscribe",
                params,
            ));
        }
        "execute" => CallKind::Execute,
        "query" => CallKind::Query,
        other => {
            return Some(rpc_error(
                id,
                -32601,
                format!(
                    "unknown RPC method `{other}`; use execute, query, subscribe, unsubscribe or ping"
                ),
                None,
            ));
        }
    };
    let call = match rpc::parse_call(id.clone(), kind, params) {
        Ok(c) => c,
        Err(e) => return Some(e),
    };
    if let Err(e) = rpc::check_scope(node, who, &call) {
        return Some(e);
    }
    let Ok(permit) = in_flight.clone().try_acquire_owned() else {
        return Some(rpc_error(
            id,
            -32000,
            format!(
                "more than {MAX_IN_FLIGHT} requests in flight on this socket; wait for answers"
            ),
            None,
        ));
    };
    let node = node.clone();
    let out = out.clone();
    tokio::spawn(async move {
        let reply = rpc::execute(node, call).await;
        // A full queue means the session is closing the socket anyway.
        let _ = out.try_send(Message::Text(reply.to_string().into()));
        drop(permit);
    });
    None
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeParams {
    contexts: Vec<String>,
}

fn subscription(
    node: &Node,
    who: &Principal,
    subscribed: &mut HashSet<ContextId>,
    id: Value,
    add: bool,
    params: Option<Value>,
) -> Value {
    let p: SubscribeParams = match params.map(serde_json::from_value) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return rpc_error(
                id,
                -32602,
                format!("invalid params: {e}; expected {{\"contexts\": [\"<context id>\", ...]}}"),
                None,
            );
        }
        None => return rpc_error(id, -32602, "missing `params`", None),
    };
    let mut ids = Vec::with_capacity(p.contexts.len());
    for c in &p.contexts {
        let ctx: ContextId = match c.parse() {
            Ok(c) => c,
            Err(e) => return rpc_error(id, -32602, e, None),
        };
        if add {
            if let Err(d) = who.check_context(&ctx) {
                return rpc_error(id, rpc::FORBIDDEN, d.0, None);
            }
            if let Err(e) = node.has_context(&ctx) {
                return rpc_error(id, -32001, e.to_string(), None);
            }
        }
        ids.push(ctx);
    }
    for ctx in ids {
        if add {
            subscribed.insert(ctx);
        } else {
            subscribed.remove(&ctx);
        }
    }
    let mut now: Vec<_> = subscribed.iter().map(ToString::to_string).collect();
    now.sort();
    json!({"jsonrpc": "2.0", "id": id, "result": {"subscribed": now}})
}

async fn write_loop(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Message>,
    mut close_rx: oneshot::Receiver<Option<CloseFrame>>,
) {
    loop {
        tokio::select! {
            biased;
            frame = &mut close_rx => {
                let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
                    match frame {
                        Ok(Some(frame)) => sink.send(Message::Close(Some(frame))).await,
                        // The client closed first: flush the reply.
                        _ => sink.close().await,
                    }
                })
                .await;
                return;
            }
            msg = queue.recv() => {
                let Some(msg) = msg else { return };
                // Whatever else is queued goes out in the same flush.
                let write = async {
                    sink.feed(msg).await?;
                    while let Ok(more) = queue.try_recv() {
                        sink.feed(more).await?;
                    }
                    sink.flush().await
                };
                match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
        }
    }
}
