//! NAT traversal between real `merod` processes in a network of Linux
//! namespaces (`scripts/netns/nat`): nodes A and B each behind its own NAT
//! router (nftables masquerade: nothing reaches them unasked), relay R on
//! the public side, serving relay and meet. A holds a slot on R and posts
//! its circuit address in R's meet board; B is told only of R (the
//! invitation's address), finds A there, joins A's context through the
//! relay, the two punch a hole (DCUtR) to a direct connection, the relayed
//! one is closed, and with R stopped they still replicate.
//!
//! Needs root (`ip netns`); skipped with a note otherwise. The kernel here
//! has no netem, so the links have no emulated delay or loss.

mod support;

use std::str::FromStr;
use std::time::{Duration, Instant};

use mero_sync::InvitationToken;
use serde_json::json;
use support::netns::{Net, PUBLIC_IP, ROUTER_A_IP};
use support::{build_app, init_home, replicates_both_ways, wait_converged, wait_for};

const KV: &str = "examples/kv-store/Cargo.toml";

#[test]
fn two_nodes_behind_nats_meet_through_a_public_node_and_go_direct() {
    let Some(net) = Net::up() else { return };
    let wasm = build_app(KV);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &dirs {
        init_home(d.path());
    }
    let relay = net.start(
        "pub",
        dirs[0].path(),
        PUBLIC_IP,
        &["--serve-relay", "--serve-meet", "--public"],
    );
    let relay_addr = format!("/ip4/{PUBLIC_IP}/tcp/4001/p2p/{}", relay.peer_id());
    let a = net.start("a", dirs[1].path(), "0.0.0.0", &["--relay", &relay_addr]);
    let b = net.start("b", dirs[2].path(), "0.0.0.0", &["--relay", &relay_addr]);
    let circuit = a.wait_circuit();
    // B has met R too (identify: the address its NAT maps it to, which the
    // hole punch sends A) before its circuit to A opens.
    b.wait_circuit();

    let app = a.install(&wasm);
    let ctx = a.create_context(&app);
    a.execute(&ctx, "set", json!({"key": "before", "value": "1"}));
    let mut token = InvitationToken::from_str(&a.invite(&ctx)).unwrap();
    assert!(
        token.addrs.contains(&circuit),
        "invitations carry the circuit"
    );
    // B is told only of R: it finds A's circuit in R's meet board.
    token.addrs = vec![relay_addr.clone()];
    let t0 = Instant::now();
    b.join(&token.to_string());
    wait_converged(&[&a, &b], &ctx, Duration::from_secs(60));
    b.wait_app(&app);
    let joined = t0.elapsed();

    let row = wait_for(Duration::from_secs(60), || {
        let row = b.peer_row(&a.peer_id())?;
        let relayed = row["connections"]
            .as_array()?
            .iter()
            .any(|c| c["relayed"] == json!(true));
        (row["path"]["kind"] == json!("direct") && !relayed).then_some(row)
    })
    .unwrap_or_else(|| panic!("no direct path from B to A: {:#}", b.network()));
    let direct = t0.elapsed();
    // The direct connection came from the hole punch, to A's NAT router
    // (not into A's LAN).
    let conn = row["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["holePunched"] == json!(true))
        .unwrap_or_else(|| panic!("no hole-punched connection: {row:#}"));
    let addr = conn["address"].as_str().unwrap();
    assert!(addr.contains(ROUTER_A_IP), "{row:#}");
    println!(
        "joined through the relay in {joined:?}, direct after {direct:?} over {} ({addr})",
        row["path"]["transport"]
    );

    relay.kill();
    replicates_both_ways(&a, &b, &ctx);
}
