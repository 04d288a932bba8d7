//! Event subscriptions over WebSocket: `GET /ws?context=<id>` streams every
//! event of that context (all contexts without the parameter) as JSON text
//! messages, whether the call ran here or on a peer.
//!
//! Browsers cannot set headers on a WebSocket, so the token may also come as
//! `?token=`.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::ids::ContextId;
use crate::node::Node;
use crate::server::{ApiError, authorize, parse_id};

/// Query of `/ws`.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    context: Option<String>,
    token: Option<String>,
}

/// `GET /ws`: upgrades to a WebSocket of events.
pub(crate) async fn websocket(
    State(node): State<Arc<Node>>,
    Query(q): Query<WsQuery>,
    mut headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if let Some(t) = &q.token
        && let Ok(v) = format!("Bearer {t}").parse()
    {
        headers.insert(axum::http::header::AUTHORIZATION, v);
    }
    authorize(&node, &headers)?;
    let ctx: Option<ContextId> = q.context.as_deref().map(parse_id).transpose()?;
    if let Some(c) = &ctx {
        node.context_info(c)?;
    }
    let rx = node.subscribe();
    Ok(ws
        .on_upgrade(move |socket| stream(socket, rx, ctx))
        .into_response())
}

async fn stream(
    mut socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<crate::context::NodeEvent>,
    ctx: Option<ContextId>,
) {
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if ctx.is_some_and(|c| c != ev.context) {
                        continue;
                    }
                    let text = serde_json::to_string(&ev).expect("events serialize");
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    let text = format!(r#"{{"lagged":{n}}}"#);
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                _ => {}
            },
        }
    }
}
