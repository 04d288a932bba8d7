//! Reaching peers that cannot be dialled, on real `merod` processes on
//! loopback: node A holds a slot on relay R and is known to B only by its
//! circuit address; B joins A's context through R, the two upgrade to a
//! direct connection (hole punching), the relayed one is closed, and they
//! still replicate with R gone. Also QUIC alone carrying a join.
//!
//! Loopback has no NAT: the direct dial always works here, so this checks
//! the relay, the upgrade and the bookkeeping, not NAT traversal itself
//! (`scripts/netns` does that).

mod support;

use std::str::FromStr;
use std::time::Duration;

use mero_sync::InvitationToken;
use serde_json::{Value, json};
use support::{NodeProc, build_app, init_homes, replicates_both_ways, wait_converged, wait_for};

const KV: &str = "examples/kv-store/Cargo.toml";

/// The token, with only `addrs` for the joiner to dial.
fn token_with_addrs(token: &str, addrs: Vec<String>) -> String {
    let mut t = InvitationToken::from_str(token).expect("a token");
    t.addrs = addrs;
    t.to_string()
}

#[test]
fn a_peer_known_only_through_a_relay_is_reached_directly_and_without_it() {
    let wasm = build_app(KV);
    let dirs = init_homes(3);
    let relay = NodeProc::start_args(dirs[0].path(), &[], &["--serve-relay", "--public"]);
    let a = NodeProc::start_args(dirs[1].path(), &[], &["--relay", &relay.p2p]);
    let circuit = a.wait_circuit();
    assert!(circuit.ends_with(&format!("/p2p-circuit/p2p/{}", a.peer_id())));
    let service = &relay.network()["relayService"];
    assert_eq!(service["reservations"], json!(1), "{service}");

    let app = a.install(&wasm);
    let ctx = a.create_context(&app);
    a.execute(&ctx, "set", json!({"key": "before", "value": "1"}));
    // B holds a slot too: it has met R (identify) before its circuit to A
    // opens, so the hole punch has an address of B's to offer A.
    let b = NodeProc::start_args(dirs[2].path(), &[], &["--relay", &relay.p2p]);
    b.wait_circuit();
    b.join(&token_with_addrs(&a.invite(&ctx), vec![circuit.clone()]));
    wait_converged(&[&a, &b], &ctx, Duration::from_secs(60));
    b.wait_app(&app);

    // The relayed connection gave way to a direct one.
    let row = wait_for(Duration::from_secs(30), || {
        let row = b.peer_row(&a.peer_id())?;
        let conns = row["connections"].as_array()?;
        let relayed = conns.iter().any(|c| c["relayed"] == json!(true));
        (row["path"]["kind"] == json!("direct") && !relayed).then_some(row)
    })
    .unwrap_or_else(|| panic!("no direct path from B to A: {:#}", b.network()));
    assert_eq!(row["path"]["transport"], json!("tcp"), "{row:#}");
    assert!(
        row["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["holePunched"] == json!(true)),
        "the direct connection came from the hole punch: {row:#}"
    );

    relay.kill();
    replicates_both_ways(&a, &b, &ctx);
    // A lost its slot and says so; it keeps trying.
    let slot = wait_for(Duration::from_secs(30), || {
        let s = a.network()["relays"][0].clone();
        (s["accepted"] == json!(false)).then_some(s)
    })
    .expect("A notices the relay is gone");
    assert!(slot["error"].is_string(), "{slot}");
}

#[test]
fn a_join_over_quic_alone() {
    let wasm = build_app(KV);
    let dirs = init_homes(2);
    let quic = ["--p2p-listen", "/ip4/127.0.0.1/udp/0/quic-v1"];
    let a = NodeProc::start_args(dirs[0].path(), &[], &quic);
    let b = NodeProc::start_args(dirs[1].path(), &[], &quic);
    let quic_addrs: Vec<String> = a.network()["listenAddrs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|s| s.contains("/quic-v1/"))
        .map(str::to_owned)
        .collect();
    assert!(!quic_addrs.is_empty(), "{:#}", a.network());
    let app = a.install(&wasm);
    let ctx = a.create_context(&app);
    a.execute(&ctx, "set", json!({"key": "k", "value": "v"}));
    b.join(&token_with_addrs(&a.invite(&ctx), quic_addrs));
    wait_converged(&[&a, &b], &ctx, Duration::from_secs(60));
    b.wait_app(&app);
    let row = b.peer_row(&a.peer_id()).expect("B is connected to A");
    assert_eq!(row["path"]["kind"], json!("direct"), "{row:#}");
    assert_eq!(row["path"]["transport"], json!("quic"), "{row:#}");
    assert!(
        row["rttMs"].is_number() || row["rttMs"].is_null(),
        "{row:#}"
    );
}
