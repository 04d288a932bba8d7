//! Replication among three nodes across NATs (`scripts/netns/nat`): relay R
//! on the public host, A and B each behind its own NAT router; all three
//! are members of one context, B reached A through R and then directly.
//! Every node holds what it receives from each peer for 50 ms and drops 1 %
//! of gossip (`merod run --dev` link faults: this kernel has no netem, so
//! the delay and loss are per message, inside each node, not per packet).
//!
//! Prints propagation p50/p99 from a write on A until R and B applied it
//! (each observed as its event on a WebSocket opened inside the node's
//! namespace), and how long B takes to converge after a 30-second
//! partition (B isolated while A writes, then healed).
//!
//! Needs root. Run: `cargo bench --workspace --bench nat`

#[path = "../tests/support/mod.rs"]
mod support;

use std::str::FromStr;
use std::time::{Duration, Instant};

use mero_sync::InvitationToken;
use serde_json::json;
use support::events::{Socket, await_key, connect, percentile, ws_url};
use support::netns::{Net, PUBLIC_IP};
use support::{NodeProc, build_app, init_home, wait_converged};

const N: usize = 300;
const PARTITION: Duration = Duration::from_secs(30);

/// A WebSocket to `node` (inside `host`'s namespace) subscribed to `ctx`.
fn subscribe(net: &Net, host: &str, node: &NodeProc, ctx: &str) -> Socket {
    let url = ws_url(node, ctx);
    net.inside(host, move || connect(&url, Duration::from_secs(60)))
}

fn main() {
    let Some(net) = Net::up() else { return };
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &dirs {
        init_home(d.path());
    }
    let r = net.start(
        "pub",
        dirs[0].path(),
        PUBLIC_IP,
        &["--serve-relay", "--public", "--dev"],
    );
    let relay = format!("/ip4/{PUBLIC_IP}/tcp/4001/p2p/{}", r.peer_id());
    let a = net.start(
        "a",
        dirs[1].path(),
        "0.0.0.0",
        &["--relay", &relay, "--dev"],
    );
    let b = net.start(
        "b",
        dirs[2].path(),
        "0.0.0.0",
        &["--relay", &relay, "--dev"],
    );
    let circuit = a.wait_circuit();
    let app = a.install(&wasm);
    let ctx = a.create_context(&app);
    for n in [&r, &b] {
        let mut token = InvitationToken::from_str(&a.invite(&ctx)).unwrap();
        token.addrs = vec![circuit.clone()];
        n.join(&token.to_string());
    }
    wait_converged(&[&a, &r, &b], &ctx, Duration::from_secs(60));
    for n in [&r, &b] {
        n.wait_app(&app);
    }
    let link = json!({"links": [{"delayMs": 50, "lossPercent": 1.0}]});
    for n in [&a, &r, &b] {
        n.set_faults(link.clone());
    }
    let mut sr = subscribe(&net, "pub", &r, &ctx);
    let mut sb = subscribe(&net, "b", &b, &ctx);

    let mut lat = Vec::with_capacity(N);
    for i in 0..N {
        let key = format!("lat{i}");
        a.execute(&ctx, "set", json!({"key": key, "value": "v"}));
        let returned = Instant::now();
        let (tr, tb) = (await_key(&mut sr, &key), await_key(&mut sb, &key));
        lat.push(tr.max(tb).saturating_duration_since(returned));
    }
    lat.sort();
    println!(
        "propagation A->R,B, 50 ms + 1 % loss per link  n={N} p50={:.1?} p90={:.1?} p99={:.1?} max={:.1?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );

    let mut isolated = link.clone();
    isolated["isolated"] = json!(true);
    b.set_faults(isolated);
    let cut = Instant::now();
    let mut k = 0;
    while cut.elapsed() < PARTITION {
        a.execute(&ctx, "set", json!({"key": format!("cut{k}"), "value": "v"}));
        k += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    let last = format!("cut{}", k - 1);
    b.set_faults(link);
    let healed = Instant::now();
    let seen = await_key(&mut sb, &last);
    wait_converged(&[&a, &r, &b], &ctx, Duration::from_secs(120));
    println!(
        "after a {PARTITION:?} partition ({k} writes on A): B has A's last write {:.2?} after the heal, all converged {:.2?} after",
        seen.saturating_duration_since(healed),
        healed.elapsed()
    );
}
