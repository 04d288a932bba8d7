//! Replication across three real `merod` processes on loopback:
//!
//! - propagation latency: from the moment `execute` returns on A until the
//!   delta is applied on B and on C (observed as its event on each node's
//!   WebSocket, which is pushed after the delta is persisted);
//! - sustained throughput: concurrent clients writing to one context on A,
//!   until B and C have applied every delta.
//!
//! Budgets: p50 <= 5 ms, p99 <= 25 ms; >= 5,000 deltas/s.
//! Run: `cargo bench --workspace --bench propagation`

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{NodeProc, build_app, cluster, wait_converged};
use tungstenite::stream::MaybeTlsStream;

type Socket = tungstenite::WebSocket<MaybeTlsStream<TcpStream>>;

fn subscribe(node: &NodeProc, ctx: &str) -> Socket {
    let url = format!(
        "{}/ws?context={ctx}&token={}",
        node.url.replace("http://", "ws://"),
        node.token
    );
    let (socket, _) = tungstenite::connect(&url).expect("websocket connects");
    if let MaybeTlsStream::Plain(s) = socket.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
    }
    socket
}

/// Reads events until one for `key` arrives; returns when it did.
fn await_key(socket: &mut Socket, key: &str) -> Instant {
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rpc_body(ctx: &str, key: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
        "params": {"context": ctx, "method": "set", "args": {"key": key, "value": "v"}}})
    .to_string()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (nodes, ctx, _) = cluster(&dirs, &wasm);
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let mut sb = subscribe(b, &ctx);
    let mut sc = subscribe(c, &ctx);
    let http = agent();
    let auth = format!("Bearer {}", a.token);
    let call = |key: &str| {
        let r = http
            .post(format!("{}/jsonrpc", a.url))
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(rpc_body(&ctx, key))
            .expect("execute");
        let body: Value = r.into_body().read_json().unwrap();
        assert!(body.get("result").is_some(), "{body}");
    };

    let n = 1000;
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n + 100 {
        let key = format!("lat{i}");
        call(&key);
        let returned = Instant::now();
        let tb = await_key(&mut sb, &key);
        let tc = await_key(&mut sc, &key);
        if i >= 100 {
            latencies.push(tb.max(tc).saturating_duration_since(returned));
        }
    }
    latencies.sort();
    println!(
        "propagation A->B,C          n={n:<6} p50={:>8.2?} p90={:>8.2?} p99={:>8.2?} max={:>8.2?}  (budget p50<=5ms p99<=25ms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
    drop((sb, sc));

    sustained("one call per request", 20_000, 8, 1, &ctx, a, b, c, &http);
    sustained(
        "JSON-RPC batches of 50",
        50_000,
        4,
        50,
        &ctx,
        a,
        b,
        c,
        &http,
    );
    wait_converged(&[a, b, c], &ctx, Duration::from_secs(60));
}

/// `clients` threads send `total` `set` calls to A, `batch` per HTTP request;
/// reports calls/s returned and deltas/s applied on all three nodes.
#[allow(clippy::too_many_arguments)]
fn sustained(
    label: &str,
    total: usize,
    clients: usize,
    batch: usize,
    ctx: &str,
    a: &NodeProc,
    b: &NodeProc,
    c: &NodeProc,
    http: &ureq::Agent,
) {
    let auth = format!("Bearer {}", a.token);
    let before = b.sync(ctx)["deltas"].as_u64().unwrap();
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..clients {
            let auth = &auth;
            s.spawn(move || {
                for chunk in 0..total / clients / batch {
                    let reqs: Vec<Value> = (0..batch)
                        .map(|k| {
                            let key = format!("{label}-{t}-{chunk}-{k}");
                            serde_json::from_str(&rpc_body(ctx, &key)).unwrap()
                        })
                        .collect();
                    let body = if batch == 1 {
                        reqs[0].clone()
                    } else {
                        Value::Array(reqs)
                    };
                    let r = http
                        .post(format!("{}/jsonrpc", a.url))
                        .header("Authorization", auth)
                        .header("Content-Type", "application/json")
                        .send(body.to_string())
                        .expect("execute");
                    let answer: Value = r.into_body().read_json().unwrap();
                    let answers = answer.as_array().cloned().unwrap_or_else(|| vec![answer]);
                    assert!(
                        answers.iter().all(|a| a.get("result").is_some()),
                        "{answers:?}"
                    );
                }
            });
        }
    });
    let written = start.elapsed();
    let target = before + total as u64;
    let applied_everywhere = support::wait_for(Duration::from_secs(120), || {
        let done = [b, c]
            .iter()
            .all(|n| n.sync(ctx)["deltas"].as_u64().unwrap() >= target);
        done.then(Instant::now)
    })
    .expect("B and C apply every delta");
    let all = applied_everywhere - start;
    println!(
        "sustained, {label:<24} n={total:<6} {:>7.0} calls/s returned on A, {:>7.0} deltas/s applied on A,B,C ({clients} clients; budget >= 5000/s)",
        total as f64 / written.as_secs_f64(),
        total as f64 / all.as_secs_f64(),
    );
}
