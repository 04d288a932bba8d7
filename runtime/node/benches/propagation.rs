//! Replication across three real `merod` processes on loopback:
//!
//! - propagation latency: from the moment `execute` returns on A until the
//!   delta is applied on B and on C (observed as its event on each node's
//!   WebSocket, which is pushed after the delta is persisted);
//! - sustained throughput: clients writing to one context on A, until B and
//!   C have applied every delta; over HTTP with one call per request (1, 8
//!   and 32 clients), with JSON-RPC batches, and over WebSockets with calls
//!   pipelined one per message.
//!
//! Budgets: p50 <= 5 ms, p99 <= 25 ms; >= 5,000 deltas/s.
//! Run: `cargo bench --workspace --bench propagation`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::events::{Socket, await_key, connect, percentile, ws_url};
use support::{NodeProc, build_app, cluster, wait_converged};

/// A WebSocket to `node`, subscribed to `ctx` unless it is empty.
fn subscribe(node: &NodeProc, ctx: &str) -> Socket {
    connect(&ws_url(node, ctx), Duration::from_secs(10))
}

fn rpc_body(ctx: &str, key: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
        "params": {"context": ctx, "method": "set", "args": {"key": key, "value": "v"}}})
    .to_string()
}

fn agent() -> ureq::Agent {
    // Keep one connection per client thread alive: ureq keeps only 3 per
    // host by default, so most requests from 8 or 32 threads would pay for
    // a new TCP connection.
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .max_idle_connections(64)
        .max_idle_connections_per_host(64)
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

    for (clients, batch) in [(1, 1), (8, 1), (32, 1), (4, 50)] {
        let label = if batch == 1 {
            format!("HTTP, 1 call/request, {clients} clients")
        } else {
            format!("HTTP, batches of {batch}, {clients} clients")
        };
        sustained(&label, 24_000, clients, &ctx, [a, b, c], |t, keys| {
            http_calls(&http, a, &ctx, t, keys, batch)
        });
    }
    sustained(
        "WebSocket, 32 in flight, 4 sockets",
        40_000,
        4,
        &ctx,
        [a, b, c],
        |_, keys| ws_calls(a, &ctx, keys, 32),
    );
    wait_converged(&[a, b, c], &ctx, Duration::from_secs(60));
}

/// Sends `set` calls for `keys` to A over HTTP, `batch` per request.
fn http_calls(
    http: &ureq::Agent,
    a: &NodeProc,
    ctx: &str,
    _t: usize,
    keys: Vec<String>,
    batch: usize,
) {
    let auth = format!("Bearer {}", a.token);
    for chunk in keys.chunks(batch) {
        let reqs: Vec<Value> = chunk
            .iter()
            .map(|key| serde_json::from_str(&rpc_body(ctx, key)).unwrap())
            .collect();
        let body = if batch == 1 {
            reqs[0].clone()
        } else {
            Value::Array(reqs)
        };
        let r = http
            .post(format!("{}/jsonrpc", a.url))
            .header("Authorization", &auth)
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
}

/// Sends `set` calls for `keys` to A over one WebSocket, one call per
/// message, keeping up to `window` unanswered.
fn ws_calls(a: &NodeProc, ctx: &str, keys: Vec<String>, window: usize) {
    let mut socket = subscribe(a, "");
    for chunk in keys.chunks(window) {
        for key in chunk {
            socket
                .send(tungstenite::Message::Text(rpc_body(ctx, key).into()))
                .unwrap();
        }
        let mut answered = 0;
        while answered < chunk.len() {
            if let tungstenite::Message::Text(t) = socket.read().expect("an answer") {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert!(v.get("result").is_some(), "{v}");
                answered += 1;
            }
        }
    }
}

/// Runs `send` on `clients` threads, each with its share of `total` fresh
/// keys, and reports calls/s answered on A and deltas/s applied on all
/// three nodes.
fn sustained(
    label: &str,
    total: usize,
    clients: usize,
    ctx: &str,
    [_, b, c]: [&NodeProc; 3],
    send: impl Fn(usize, Vec<String>) + Sync,
) {
    let before = b.sync(ctx)["deltas"].as_u64().unwrap();
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..clients {
            let send = &send;
            s.spawn(move || {
                let keys = (0..total / clients)
                    .map(|k| format!("{label}-{t}-{k}"))
                    .collect();
                send(t, keys);
            });
        }
    });
    let written = start.elapsed();
    let total = (total / clients * clients) as u64;
    let target = before + total;
    let applied_everywhere = support::wait_for(Duration::from_secs(120), || {
        let done = [b, c]
            .iter()
            .all(|n| n.sync(ctx)["deltas"].as_u64().unwrap() >= target);
        done.then(Instant::now)
    })
    .expect("B and C apply every delta");
    let all = applied_everywhere - start;
    println!(
        "sustained, {label:<36} n={total:<6} {:>6.0} calls/s answered on A, {:>6.0} deltas/s applied on A,B,C (budget >= 5000/s)",
        total as f64 / written.as_secs_f64(),
        total as f64 / all.as_secs_f64(),
    );
}
