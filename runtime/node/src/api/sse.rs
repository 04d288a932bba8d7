//! Server-Sent Events at `/events?context=<id>`: one context's stream, each
//! message with `id:` (the item's position in the context's stream),
//! `event:` (`event` or `state`) and `data:` (the item as JSON).
//!
//! A client reconnecting with `Last-Event-ID: n` (browsers do this by
//! themselves) first gets every persisted item after `n`, in order, then the
//! live ones. `?lastEventId=n` does the same for clients that cannot set
//! headers (`0`: everything still retained). If items after `n` have been
//! pruned by retention, a `gap` message says from which id the replay starts.
//!
//! A client that reads too slowly (more than `[events] subscriber_buffer`
//! messages queued) is disconnected; it reconnects and replays what it missed.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::auth::Principal;
use super::{ApiError, bad_request, blocking, parse_id};
use crate::events::StreamItem;
use crate::ids::ContextId;
use crate::node::Node;

/// Items read from the log per page while replaying.
const REPLAY_PAGE: usize = 512;

/// Query of `/events`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    context: Option<String>,
    last_event_id: Option<u64>,
}

fn message(item: &StreamItem) -> Event {
    Event::default()
        .id(item.id.to_string())
        .event(item.kind.as_str())
        .data(&*item.json)
}

/// `GET /events`.
pub(crate) async fn events(
    State(node): State<Arc<Node>>,
    Extension(who): Extension<Principal>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx: ContextId = parse_id(
        q.context
            .as_deref()
            .ok_or_else(|| bad_request("`?context=<context id>` is required"))?,
    )?;
    who.check_context(&ctx)?;
    node.has_context(&ctx)?;
    let header_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| bad_request("Last-Event-ID must be an event id (a number)"))
        })
        .transpose()?;
    let after = header_id.or(q.last_event_id);
    // Subscribe before reading the log so nothing falls between the two.
    let live = node.subscribe();
    let (tx, mut rx) = mpsc::channel::<Event>(node.config().events.subscriber_buffer);
    tokio::spawn(produce(node, who, ctx, after, live, tx));
    let stream =
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(Ok::<_, Infallible>)));
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

async fn produce(
    node: Arc<Node>,
    who: Principal,
    ctx: ContextId,
    after: Option<u64>,
    live: tokio::sync::broadcast::Receiver<Arc<StreamItem>>,
    tx: mpsc::Sender<Event>,
) {
    node.metrics().subscriber(1);
    forward(&node, &who, ctx, after, live, &tx).await;
    node.metrics().subscriber(-1);
}

/// Replays after `after` (if given), then forwards live items until the
/// client goes away, falls behind or the node stops.
async fn forward(
    node: &Arc<Node>,
    who: &Principal,
    ctx: ContextId,
    after: Option<u64>,
    mut live: tokio::sync::broadcast::Receiver<Arc<StreamItem>>,
    tx: &mpsc::Sender<Event>,
) {
    let mut closing = node.closing();
    // Item ids start at 1, so 0 lets every live item through.
    let mut last = 0;
    if let Some(after) = after {
        match replay(node, ctx, after, tx).await {
            Some(l) => last = l,
            None => return,
        }
    }
    let mut recheck = tokio::time::interval(super::auth::RECHECK);
    loop {
        tokio::select! {
            _ = recheck.tick() => {
                // An expired or revoked token ends the stream, with a last
                // `error` message saying why.
                if let Err(e) = who.still_valid(node.tokens()) {
                    let why = mero_api::ErrorDetail {
                        code: super::auth::token_code(&e).into(),
                        message: e.to_string(),
                        data: None,
                    };
                    let why = super::wire::json(&why).to_string();
                    let _ = tx.try_send(Event::default().event("error").data(why));
                    return;
                }
            }
            item = live.recv() => match item {
                Ok(item) if item.context == ctx && item.id > last => {
                    last = item.id;
                    if tx.try_send(message(&item)).is_err() {
                        if !tx.is_closed() {
                            node.metrics().dropped_subscriber();
                        }
                        return;
                    }
                }
                Ok(_) => {}
                // The client reconnects with Last-Event-ID and replays.
                Err(RecvError::Lagged(_)) => {
                    node.metrics().dropped_subscriber();
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            _ = closing.changed() => return,
            _ = tx.closed() => return,
        }
    }
}

/// Sends the persisted items after `after`; returns the last id sent (or
/// `after`), `None` if the client went away.
async fn replay(
    node: &Arc<Node>,
    ctx: ContextId,
    after: u64,
    tx: &mpsc::Sender<Event>,
) -> Option<u64> {
    let mut last = after;
    let mut first_page = true;
    loop {
        let n = node.clone();
        let page = blocking(move || n.stream_after(&ctx, last, REPLAY_PAGE))
            .await
            .ok()?;
        if first_page
            && let Some(first) = page.first()
            && first.id > last + 1
        {
            let gap = mero_api::Gap {
                context: None,
                requested: last + 1,
                replay_from: first.id,
            };
            let gap = Event::default()
                .event("gap")
                .data(super::wire::json(&gap).to_string());
            tx.send(gap).await.ok()?;
        }
        first_page = false;
        for item in &page {
            tx.send(message(item)).await.ok()?;
            last = item.id;
        }
        if page.len() < REPLAY_PAGE {
            return Some(last);
        }
    }
}
