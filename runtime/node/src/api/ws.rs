//! The WebSocket at `/ws`: JSON-RPC 2.0 in both directions.
//!
//! Client requests: `execute` and `query` (as over HTTP), `subscribe` and
//! `unsubscribe` (`{"contexts": [...]}`, `mero_api::SubscribeParams`),
//! `ping` (answers `"pong"`; for browsers, which cannot send ping frames;
//! ping frames are answered too). `?context=a,b` subscribes at connect.
//! Server notifications: `{"jsonrpc": "2.0", "method": "event" | "state" |
//! "gap", "params": <stream item>}`.
//!
//! Resuming: `subscribe` with `"after": {"<context>": n}` first sends every
//! persisted item after `n`, in order, then live items; the answer's `last`
//! says where a subscription without `after` starts. Per context the
//! session remembers the last id it sent and skips live items up to it,
//! so nothing is sent twice (items are persisted before they are
//! broadcast, so the replay may hold items the live channel still brings).
//!
//! Backpressure: each socket has a queue of `[events] subscriber_buffer`
//! messages. A subscriber that lets it fill is sent close code 1008 with the
//! reason and dropped, so a stalled client costs a bounded amount of
//! memory. A write that does not complete in [`WRITE_TIMEOUT`] ends the
//! connection. Node shutdown closes sockets with 1001.

use std::collections::{BTreeMap, HashMap, HashSet};
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
use super::{ApiError, blocking, parse_id, wire};
use crate::events::StreamItem;
use crate::ids::ContextId;
use crate::node::{CallKind, Node};

/// How long one write to a client may take before the connection is cut.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests one socket may have running at once.
const MAX_IN_FLIGHT: usize = 64;

/// Items read from the log per page while replaying.
const REPLAY_PAGE: usize = 512;

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

/// A close frame; its reason cut to what a control frame holds (125 bytes
/// with the code), on a character boundary.
fn close(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code,
        reason: reason[..end].into(),
    }
}

fn notification(item: &StreamItem) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","method":"{}","params":{}}}"#,
        item.kind.as_str(),
        item.json
    )
}

/// What a session knows of its subscriptions: the contexts, and per
/// context the id of the last item sent (live items up to it are skipped).
#[derive(Default)]
struct Subscriptions {
    contexts: HashSet<ContextId>,
    sent: HashMap<ContextId, u64>,
}

impl Subscriptions {
    /// Whether `item` goes out: subscribed, and not sent already.
    fn take(&mut self, item: &StreamItem) -> bool {
        if !self.contexts.contains(&item.context) {
            return false;
        }
        let last = self.sent.entry(item.context).or_default();
        if item.id <= *last {
            return false;
        }
        *last = item.id;
        true
    }
}

async fn session(socket: WebSocket, node: Arc<Node>, who: Principal, initial: HashSet<ContextId>) {
    let (sink, mut stream) = socket.split();
    let buffer = node.config().events.subscriber_buffer;
    let (out, out_rx) = mpsc::channel::<Message>(buffer);
    let (close_tx, close_rx) = oneshot::channel();
    let writer = tokio::spawn(write_loop(sink, out_rx, close_rx));
    let mut events = node.subscribe();
    let mut closing = node.closing();
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut subs = Subscriptions {
        contexts: initial,
        sent: HashMap::new(),
    };
    node.metrics().subscriber(1);
    let too_slow = || {
        close(
            CLOSE_TOO_SLOW,
            &format!(
                "subscriber too slow: more than {buffer} messages queued; reconnect, subscribe with `after` to replay"
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
                    let reply = match request(&node, &who, &in_flight, &out, text.as_str()) {
                        Reply::Later => continue,
                        Reply::Now(reply) => reply,
                        Reply::Subscribe(sub) => match subscribe(&node, &mut subs, sub, &out).await {
                            Ok(()) => continue,
                            Err(Slow) => {
                                node.metrics().dropped_subscriber();
                                break Some(too_slow());
                            }
                        },
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
                Ok(item) if subs.take(&item) => {
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

/// What to do about a client message.
enum Reply {
    /// Send this now.
    Now(Value),
    /// Nothing now: a call answers from its own task.
    Later,
    /// A checked `subscribe`/`unsubscribe`, which may replay from the log.
    Subscribe(Subscribe),
}

/// A checked `subscribe` or `unsubscribe` request.
struct Subscribe {
    id: Value,
    add: bool,
    contexts: Vec<ContextId>,
    after: BTreeMap<ContextId, u64>,
}

/// The client reads too slowly for what it asked for.
struct Slow;

/// Handles one client message.
fn request(
    node: &Arc<Node>,
    who: &Principal,
    in_flight: &Arc<Semaphore>,
    out: &mpsc::Sender<Message>,
    text: &str,
) -> Reply {
    let req: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Reply::Now(rpc_error(
                Value::Null,
                -32700,
                format!("parse error: {e}"),
                None,
            ));
        }
    };
    let (id, method, params) = match rpc::envelope(req) {
        Ok(x) => x,
        Err(e) => return Reply::Now(e),
    };
    let kind = match method.as_str() {
        "ping" => return Reply::Now(json!({"jsonrpc": "2.0", "id": id, "result": "pong"})),
        "subscribe" | "unsubscribe" => {
            return match subscription(node, who, id, method == "subscribe", params) {
                Ok(sub) => Reply::Subscribe(sub),
                Err(e) => Reply::Now(e),
            };
        }
        "execute" => CallKind::Execute,
        "query" => CallKind::Query,
        other => {
            return Reply::Now(rpc_error(
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
        Err(e) => return Reply::Now(e),
    };
    if let Err(e) = rpc::check_scope(node, who, &call) {
        return Reply::Now(e);
    }
    let Ok(permit) = in_flight.clone().try_acquire_owned() else {
        return Reply::Now(rpc_error(
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
    Reply::Later
}

/// Checks a `subscribe`/`unsubscribe` request: ids, scope, contexts held.
fn subscription(
    node: &Node,
    who: &Principal,
    id: Value,
    add: bool,
    params: Option<Value>,
) -> Result<Subscribe, Value> {
    let p: mero_api::SubscribeParams = match params.map(serde_json::from_value) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return Err(rpc_error(
                id,
                -32602,
                format!(
                    "invalid params: {e}; expected {{\"contexts\": [\"<context id>\", ...], \"after\"?: {{\"<context id>\": <item id>}}}}"
                ),
                None,
            ));
        }
        None => return Err(rpc_error(id, -32602, "missing `params`", None)),
    };
    let parse = |c: &str| {
        c.parse::<ContextId>()
            .map_err(|e| rpc_error(id.clone(), -32602, e, None))
    };
    let mut contexts = Vec::with_capacity(p.contexts.len());
    for c in &p.contexts {
        let ctx = parse(c.as_str())?;
        if add {
            if let Err(d) = who.check_context(&ctx) {
                return Err(rpc_error(id, rpc::FORBIDDEN, d.0, None));
            }
            if let Err(e) = node.has_context(&ctx) {
                return Err(rpc_error(id, -32001, e.to_string(), None));
            }
        }
        contexts.push(ctx);
    }
    let mut after = BTreeMap::new();
    for (c, n) in p.after.unwrap_or_default() {
        let ctx = parse(&c)?;
        if !add || !contexts.contains(&ctx) {
            return Err(rpc_error(
                id,
                -32602,
                format!("`after` names {c}, which this `subscribe` does not list in `contexts`"),
                None,
            ));
        }
        after.insert(ctx, n);
    }
    Ok(Subscribe {
        id,
        add,
        contexts,
        after,
    })
}

/// Carries out a checked request: answers it, then replays what `after`
/// asked for.
async fn subscribe(
    node: &Arc<Node>,
    subs: &mut Subscriptions,
    sub: Subscribe,
    out: &mpsc::Sender<Message>,
) -> Result<(), Slow> {
    let mut last = BTreeMap::new();
    for ctx in &sub.contexts {
        if !sub.add {
            subs.contexts.remove(ctx);
            subs.sent.remove(ctx);
            continue;
        }
        let n = node.clone();
        let c = *ctx;
        // 0 if the context went away meanwhile: it has no items to skip.
        let newest = blocking(move || n.stream_last(&c)).await.unwrap_or(0);
        subs.contexts.insert(*ctx);
        // Live items up to `newest` are persisted ones from before: skip
        // them, unless the replay below sends them.
        subs.sent
            .insert(*ctx, sub.after.get(ctx).copied().unwrap_or(newest));
        last.insert(ctx.to_string(), newest);
    }
    let mut now: Vec<_> = subs.contexts.iter().map(wire::id).collect();
    now.sort();
    let result = mero_api::SubscribeResult {
        subscribed: now,
        last,
    };
    let reply = json!({"jsonrpc": "2.0", "id": sub.id, "result": result});
    out.try_send(Message::Text(reply.to_string().into()))
        .map_err(|_| Slow)?;
    for (ctx, after) in sub.after {
        let sent = replay(node, ctx, after, out).await?;
        let last = subs.sent.entry(ctx).or_default();
        *last = (*last).max(sent);
    }
    Ok(())
}

/// Sends the persisted items of `ctx` after `after` (a `gap` first if
/// retention pruned some of them); the last id sent, or `after`.
async fn replay(
    node: &Arc<Node>,
    ctx: ContextId,
    after: u64,
    out: &mpsc::Sender<Message>,
) -> Result<u64, Slow> {
    let send = |text: String| async move {
        match tokio::time::timeout(WRITE_TIMEOUT, out.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Slow),
        }
    };
    let mut last = after;
    loop {
        let n = node.clone();
        // The context may be gone (deleted, left): nothing more to send.
        let Ok(page) = blocking(move || n.stream_after(&ctx, last, REPLAY_PAGE)).await else {
            return Ok(last);
        };
        if last == after
            && let Some(first) = page.first()
            && first.id > after + 1
        {
            let gap = mero_api::Gap {
                context: Some(wire::id(&ctx)),
                requested: after + 1,
                replay_from: first.id,
            };
            let params = wire::json(&gap);
            send(json!({"jsonrpc": "2.0", "method": "gap", "params": params}).to_string()).await?;
        }
        for item in &page {
            send(notification(item)).await?;
            last = item.id;
        }
        if page.len() < REPLAY_PAGE {
            return Ok(last);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_control_frame() {
        // Two bytes of code plus the reason: at most 125 bytes.
        let long = close(1008, &"é".repeat(100));
        assert!(long.reason.len() <= 123, "{}", long.reason.len());
        assert!(long.reason.chars().all(|c| c == 'é'));
        assert_eq!(close(1000, "bye").reason.as_str(), "bye");
    }
}
