//! The dev session's control plane: the one `ControlRequest` every front
//! end sends (terminal lines, `cargo mero net`, the dashboard), what the
//! session answers and publishes, and the loopback HTTP server that carries
//! them (`/session`, `/session/events`, `/control`, plus the dashboard's
//! static files).
//!
//! The server only relays: it never touches nodes or processes itself. A
//! request becomes a [`DevEvent::Control`] handled by the session thread,
//! which owns the nodes and the one fault plan. Every request must name
//! this server as its `Host` (no DNS rebinding); `/session` and `/control`
//! need the per-session key as a Bearer token, the event stream as `?key=`
//! (an `EventSource` cannot send headers), and `/control` refuses a
//! foreign `Origin`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mero_testnet::faults::Plan;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot, watch};

use super::{DevError, DevEvent};

/// Largest `POST /control` body.
pub const MAX_BODY: usize = 16 * 1024;
/// How long `POST /control` waits for the session's answer (a restart or
/// an added node can take a while on a busy machine).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(180);

/// What a front end asks the session to do. Nodes are numbered from 1, as
/// `cargo mero dev` prints them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum ControlRequest {
    /// Split the network: these nodes against all others (both ways).
    Partition {
        /// One side.
        nodes: Vec<usize>,
    },
    /// Clear every fault; the session then reports the convergence time.
    Heal,
    /// SIGKILL a node (its home stays, for `restart`).
    Kill {
        /// The node.
        node: usize,
    },
    /// Start a node again from its home (same ports when free).
    Restart {
        /// The node.
        node: usize,
    },
    /// Every link of a node gets this much more delay, one way (0 removes).
    Delay {
        /// The node.
        node: usize,
        /// Milliseconds.
        ms: u32,
    },
    /// Every link of a node loses this share of its gossip (0 removes).
    Loss {
        /// The node.
        node: usize,
        /// Percent, 0 to 100.
        percent: f64,
    },
    /// One more node, joined by invitation.
    AddNode,
    /// Just the nodes and the faults.
    Status,
}

/// The session's answer to a [`ControlRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlAnswer {
    /// Whether it was done.
    pub ok: bool,
    /// What happened, or why not, in one line.
    pub message: String,
    /// Every node after the command.
    pub nodes: Vec<NodeView>,
}

/// One node, as the dashboard and `cargo mero net` see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// 1-based number.
    pub index: usize,
    /// HTTP API base URL.
    pub url: String,
    /// Admin token.
    pub admin_token: String,
    /// A client token of the dev context (for `/events`), when issued.
    pub client_token: String,
    /// libp2p peer id.
    pub peer_id: String,
    /// Whether its process runs.
    pub alive: bool,
}

/// The faults in effect, by node number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultsView {
    /// The sides cut off from the rest (at most one today).
    pub partition: Vec<Vec<usize>>,
    /// Extra one-way delay per node, in ms.
    pub delays: BTreeMap<usize, u32>,
    /// Gossip loss per node, in percent.
    pub losses: BTreeMap<usize, f64>,
}

impl FaultsView {
    /// What `plan` holds.
    pub fn of(plan: &Plan) -> Self {
        let side: Vec<usize> = plan.side().collect();
        Self {
            partition: if side.is_empty() { vec![] } else { vec![side] },
            delays: plan.delays().clone(),
            losses: plan.losses().clone(),
        }
    }
}

/// How long the nodes took to agree after a heal (the nodes' own clocks:
/// the last heads change minus the heal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Converged {
    /// When the heal was sent (ms since the epoch).
    pub healed_at_ms: u64,
    /// The last heads change of any node (ms since the epoch).
    pub converged_at_ms: u64,
    /// The difference.
    pub took_ms: u64,
}

/// One reload of the app (or a refused one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadRecord {
    /// When it finished (ms since the epoch).
    pub at_ms: u64,
    /// Whether the nodes run the new code.
    pub ok: bool,
    /// The new app hash, when built.
    pub app: Option<String>,
    /// Build time.
    pub build_ms: u64,
    /// Install time.
    pub install_ms: u64,
    /// From the upgrade to every reachable node agreeing.
    pub agree_ms: u64,
    /// ABI changes, one per line.
    pub abi_diff: Vec<String>,
    /// State schema changes, one per line.
    pub schema_diff: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What happened in the session (`GET /session/events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum SessionEvent {
    /// A node started (or restarted: its URL may be new).
    NodeUp {
        /// The node.
        node: NodeView,
    },
    /// A node stopped.
    NodeDown {
        /// Its number.
        index: usize,
        /// `killed` (on purpose) or how it exited.
        why: String,
    },
    /// The fault plan changed.
    Faults {
        /// The new plan.
        faults: FaultsView,
    },
    /// Every fault was cleared.
    Healed {
        /// When (ms since the epoch).
        at_ms: u64,
    },
    /// The nodes agree again after a heal.
    Converged(Converged),
    /// A reload finished or was refused.
    Reload {
        /// What happened.
        reload: ReloadRecord,
    },
}

/// The whole session (`GET /session`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The shared context.
    pub context: String,
    /// The app hash it runs.
    pub app: String,
    /// When the session started (ms since the epoch).
    pub started_at_ms: u64,
    /// Every node, killed ones included.
    pub nodes: Vec<NodeView>,
    /// The faults in effect.
    pub faults: FaultsView,
    /// Reloads so far, oldest first.
    pub reloads: Vec<ReloadRecord>,
    /// The last heal's convergence.
    pub last_converged: Option<Converged>,
}

/// Where the session's answer goes.
pub type Reply = oneshot::Sender<ControlAnswer>;

/// The running control server: what the session publishes through it.
pub struct ControlServer {
    origin: String,
    key: String,
    view: watch::Sender<SessionView>,
    events: broadcast::Sender<SessionEvent>,
}

#[derive(Clone)]
struct Shared {
    key: Arc<str>,
    origin: Arc<str>,
    hosts: Arc<[String; 2]>,
    view: watch::Receiver<SessionView>,
    events: broadcast::Sender<SessionEvent>,
    tx: mpsc::Sender<DevEvent>,
}

impl Shared {
    fn bearer(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|k| same(k.trim(), &self.key))
    }
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

fn unauthorized() -> Response {
    refuse(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "pass the session key (the #key= part of the dashboard URL, or network.json's control.key)",
    )
}

async fn host_check(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if host.is_some_and(|h| s.hosts.iter().any(|ours| ours == h)) {
        next.run(req).await
    } else {
        refuse(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            "this server answers only to its own loopback address",
        )
    }
}

async fn session(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !s.bearer(&headers) {
        return unauthorized();
    }
    let view = s.view.borrow().clone();
    Json(view).into_response()
}

async fn events(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    if !q.get("key").is_some_and(|k| same(k, &s.key)) {
        return unauthorized();
    }
    let rx = s.events.subscribe();
    // A reader that fell behind (`Lagged`) has missed events: the stream
    // ends, so the page reconnects and reloads the whole view, as after any
    // broken stream.
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let ev = rx.recv().await.ok()?;
        let data = serde_json::to_string(&ev).unwrap_or_default();
        Some((Ok::<_, Infallible>(Event::default().data(data)), rx))
    });
    Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("ping"),
        )
        .into_response()
}

async fn control(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Json<ControlRequest>, JsonRejection>,
) -> Response {
    if !s.bearer(&headers) {
        return unauthorized();
    }
    if let Some(origin) = headers.get(header::ORIGIN)
        && origin.as_bytes() != s.origin.as_bytes()
    {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "commands are taken only from this server's own page",
        );
    }
    let Json(request) = match body {
        Ok(b) => b,
        Err(e) => return refuse(e.status(), "bad_request", &e.body_text()),
    };
    let (reply, answer) = oneshot::channel();
    if s.tx.send(DevEvent::Control(request, reply)).is_err() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "ended",
            "the session ended",
        );
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
        Ok(Ok(a)) => Json(a).into_response(),
        Ok(Err(_)) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "ended",
            "the session ended",
        ),
        Err(_) => refuse(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "the session did not answer in time; see its console",
        ),
    }
}

fn router(shared: Shared) -> Router {
    let api = Router::new()
        .route("/session", get(session))
        .route("/session/events", get(events))
        .route("/control", post(control))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared.clone());
    api.merge(super::dashboard::router())
        .layer(middleware::from_fn_with_state(shared, host_check))
}

fn random_key() -> Result<String, DevError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| DevError::Node(format!("no randomness for the session key: {e}")))?;
    Ok(hex::encode(bytes))
}

impl ControlServer {
    /// Binds `127.0.0.1:0` and serves in a thread of its own; requests go
    /// to the session through `tx`.
    pub fn start(tx: mpsc::Sender<DevEvent>) -> Result<Self, DevError> {
        let fail = |e: std::io::Error| DevError::Node(format!("starting the control server: {e}"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(fail)?;
        listener.set_nonblocking(true).map_err(fail)?;
        let port = listener.local_addr().map_err(fail)?.port();
        let key = random_key()?;
        let origin = format!("http://127.0.0.1:{port}");
        let (view, view_rx) = watch::channel(SessionView::default());
        let (events, _) = broadcast::channel(256);
        let shared = Shared {
            key: key.as_str().into(),
            origin: origin.as_str().into(),
            hosts: Arc::new([format!("127.0.0.1:{port}"), format!("localhost:{port}")]),
            view: view_rx,
            events: events.clone(),
            tx,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(fail)?;
        let listener = {
            let _ctx = rt.enter();
            tokio::net::TcpListener::from_std(listener).map_err(fail)?
        };
        let app = router(shared);
        std::thread::Builder::new()
            .name("mero-control".into())
            .spawn(move || {
                // Serving ends only with the process.
                let _ = rt.block_on(async move { axum::serve(listener, app).await });
            })
            .map_err(fail)?;
        Ok(Self {
            origin,
            key,
            view,
            events,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The session key (hex).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The dashboard URL, with the key in the fragment (never sent).
    pub fn dashboard_url(&self) -> String {
        format!("{}/#key={}", self.origin, self.key)
    }

    /// Sends `ev` to every event stream open now.
    pub fn publish(&self, ev: SessionEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(ev);
    }

    /// Replaces what `/session` answers.
    pub fn set_view(&self, view: SessionView) {
        self.view.send_replace(view);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;

    use super::*;

    #[test]
    fn wire_format_is_the_contract() {
        let j = |r: &ControlRequest| serde_json::to_value(r).unwrap();
        assert_eq!(
            j(&ControlRequest::Partition { nodes: vec![3] }),
            serde_json::json!({"command": "partition", "nodes": [3]})
        );
        assert_eq!(
            j(&ControlRequest::AddNode),
            serde_json::json!({"command": "add-node"})
        );
        let loss: ControlRequest =
            serde_json::from_str(r#"{"command":"loss","node":2,"percent":10}"#).unwrap();
        assert_eq!(
            loss,
            ControlRequest::Loss {
                node: 2,
                percent: 10.0
            }
        );
        let ev = SessionEvent::Converged(Converged {
            healed_at_ms: 1,
            converged_at_ms: 3,
            took_ms: 2,
        });
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            serde_json::json!({"type": "converged", "healedAtMs": 1, "convergedAtMs": 3, "tookMs": 2})
        );
        let down = SessionEvent::NodeDown {
            index: 3,
            why: "killed".into(),
        };
        assert_eq!(
            serde_json::to_value(&down).unwrap(),
            serde_json::json!({"type": "nodeDown", "index": 3, "why": "killed"})
        );
        let mut plan = Plan::new();
        plan.partition(&[3]);
        plan.delay(2, 200).unwrap();
        plan.loss(2, 10.0).unwrap();
        assert_eq!(
            serde_json::to_value(SessionEvent::Faults {
                faults: FaultsView::of(&plan)
            })
            .unwrap(),
            serde_json::json!({"type": "faults", "faults":
                {"partition": [[3]], "delays": {"2": 200}, "losses": {"2": 10.0}}})
        );
    }

    /// One HTTP/1.1 exchange on a fresh connection: status and body.
    fn exchange(port: u16, head: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = format!(
            "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        // A refusal may come before the whole body is read.
        let _ = s.write_all(req.as_bytes());
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
        (status, body.unwrap_or_default())
    }

    #[test]
    fn the_server_refuses_what_it_must() {
        let (tx, rx) = mpsc::channel();
        let server = ControlServer::start(tx).unwrap();
        std::thread::spawn(move || {
            while let Ok(ev) = rx.recv() {
                if let DevEvent::Control(req, reply) = ev {
                    let _ = reply.send(ControlAnswer {
                        ok: true,
                        message: format!("{req:?}"),
                        nodes: vec![],
                    });
                }
            }
        });
        server.set_view(SessionView {
            context: "ctx1".into(),
            ..SessionView::default()
        });
        let port: u16 = server.origin().rsplit(':').next().unwrap().parse().unwrap();
        let host = format!("Host: 127.0.0.1:{port}");
        let key = server.key().to_owned();
        let auth = format!("Authorization: Bearer {key}");
        let get = |path: &str, extra: &str| {
            exchange(port, &format!("GET {path} HTTP/1.1\r\n{host}{extra}"), "")
        };
        assert_eq!(get("/session", "").0, 401);
        assert_eq!(get("/session", "\r\nAuthorization: Bearer 00").0, 401);
        let (status, body) = get("/session", &format!("\r\n{auth}"));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#""context":"ctx1""#), "{body}");
        // DNS rebinding: a foreign Host is refused, even with the key.
        let foreign = exchange(
            port,
            &format!("GET /session HTTP/1.1\r\nHost: evil.example:{port}\r\n{auth}"),
            "",
        );
        assert_eq!(foreign.0, 403);
        let localhost = exchange(
            port,
            &format!("GET /session HTTP/1.1\r\nHost: localhost:{port}\r\n{auth}"),
            "",
        );
        assert_eq!(localhost.0, 200);

        let post = |extra: &str, body: &str| {
            exchange(
                port,
                &format!(
                    "POST /control HTTP/1.1\r\n{host}\r\nContent-Type: application/json{extra}"
                ),
                body,
            )
        };
        let heal = r#"{"command":"heal"}"#;
        assert_eq!(post("", heal).0, 401);
        let evil = format!("\r\n{auth}\r\nOrigin: http://evil.example");
        assert_eq!(post(&evil, heal).0, 403);
        let own = format!("\r\n{auth}\r\nOrigin: {}", server.origin());
        let (status, body) = post(&own, heal);
        assert_eq!(status, 200, "{body}");
        let answer: ControlAnswer = serde_json::from_str(&body).unwrap();
        assert!(answer.ok && answer.message == "Heal", "{answer:?}");
        // No Origin (a CLI) is fine; a body over 16 KiB and bad JSON are not.
        assert_eq!(post(&format!("\r\n{auth}"), heal).0, 200);
        let big = format!(
            r#"{{"command":"partition","nodes":[{}1]}}"#,
            "1,".repeat(MAX_BODY / 2 + 512)
        );
        assert_eq!(post(&format!("\r\n{auth}"), &big).0, 413);
        assert!(post(&format!("\r\n{auth}"), r#"{"command":"zap"}"#).0 >= 400);

        // The event stream wants the key in the query.
        assert_eq!(get("/session/events", "").0, 401);
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /session/events?key={key} HTTP/1.1\r\n{host}\r\n\r\n"
        )
        .unwrap();
        let mut lines = BufReader::new(s).lines();
        let status = lines.next().unwrap().unwrap();
        assert!(status.contains(" 200 "), "{status}");
        // Published until the stream picks it up (it subscribes on connect).
        let publisher = std::thread::spawn(move || {
            for _ in 0..100 {
                server.publish(SessionEvent::Healed { at_ms: 7 });
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let data = lines
            .map_while(Result::ok)
            .find(|l| l.starts_with("data:"))
            .unwrap();
        assert_eq!(data, r#"data: {"type":"healed","atMs":7}"#);
        publisher.join().unwrap();
    }
}
