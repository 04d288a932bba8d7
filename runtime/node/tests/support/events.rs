//! A node's WebSocket event stream, as the benchmarks watch it.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;

use super::NodeProc;

/// A WebSocket to a node.
pub type Socket = tungstenite::WebSocket<MaybeTlsStream<TcpStream>>;

/// The `/ws` URL of `node`, subscribed to `ctx` unless it is empty.
pub fn ws_url(node: &NodeProc, ctx: &str) -> String {
    let mut url = format!(
        "{}/ws?token={}",
        node.url.replace("http://", "ws://"),
        node.token
    );
    if !ctx.is_empty() {
        url.push_str(&format!("&context={ctx}"));
    }
    url
}

/// Connects to `url`; reads give up after `read_timeout`.
pub fn connect(url: &str, read_timeout: Duration) -> Socket {
    let (socket, _) = tungstenite::connect(url).expect("websocket connects");
    if let MaybeTlsStream::Plain(s) = socket.get_ref() {
        s.set_read_timeout(Some(read_timeout)).unwrap();
        s.set_nodelay(true).unwrap();
    }
    socket
}

/// Reads events until one for `key` arrives; returns when it did.
pub fn await_key(socket: &mut Socket, key: &str) -> Instant {
    loop {
        let msg = socket.read().expect("the event arrives");
        if let tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["params"]["data"]["key"] == json!(key) {
                return Instant::now();
            }
        }
    }
}

/// The `p` quantile (0 to 1) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
