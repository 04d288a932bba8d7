//! NAT traversal between real `merod` processes in a network of Linux
//! namespaces (`scripts/netns/nat`): nodes A and B each behind its own NAT
//! router (nftables masquerade: nothing reaches them unasked), relay R on
//! the public side. A holds a slot on R; B knows A only by its circuit
//! address through R (the invitation's address). B joins A's context
//! through the relay, the two punch a hole (DCUtR) to a direct connection,
//! the relayed one is closed, and with R stopped they still replicate.
//!
//! Needs root (`ip netns`); skipped with a note otherwise. The kernel here
//! has no netem, so the links have no emulated delay or loss.

mod support;

use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use mero_sync::InvitationToken;
use serde_json::json;
use support::{
    NodeProc, build_app, init_home, replicates_both_ways, wait_converged, wait_for, workspace,
};

const KV: &str = "examples/kv-store/Cargo.toml";

/// The namespaces of one test; removed when dropped, even on a failure.
struct Net {
    prefix: String,
}

impl Net {
    fn up() -> Option<Self> {
        let root = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&root.stdout).trim() != "0" {
            eprintln!("skipped: network namespaces need root");
            return None;
        }
        let net = Net {
            prefix: format!("mn{}", std::process::id() % 100_000),
        };
        let ok = net
            .script("up")
            .status()
            .expect("scripts/netns/nat")
            .success();
        assert!(ok, "scripts/netns/nat up failed");
        Some(net)
    }

    fn script(&self, cmd: &str) -> Command {
        let mut c = Command::new(workspace().join("scripts/netns/nat"));
        c.args([cmd, &self.prefix]);
        c
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = self.script("down").status();
    }
}

fn start(net: &Net, host: &str, dir: &Path, ip: &str, extra: &[&str]) -> NodeProc {
    let tcp = format!("/ip4/{ip}/tcp/4001");
    let quic = format!("/ip4/{ip}/udp/4001/quic-v1");
    let mut args = vec!["--p2p-listen", &tcp, "--p2p-listen", &quic];
    args.extend_from_slice(extra);
    NodeProc::start_in(&net.ns(host), dir, &args)
}

#[test]
fn two_nodes_behind_nats_meet_through_a_relay_and_go_direct() {
    let Some(net) = Net::up() else { return };
    let wasm = build_app(KV);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &dirs {
        init_home(d.path());
    }
    let relay = start(
        &net,
        "pub",
        dirs[0].path(),
        "198.51.100.1",
        &["--serve-relay", "--public"],
    );
    let relay_addr = format!("/ip4/198.51.100.1/tcp/4001/p2p/{}", relay.peer_id());
    // Behind NATs, nodes listen on every interface: libp2p reuses a listen
    // port for dials only from a listener of the same kind, and a hole
    // punch needs the port the NAT mapped.
    let a = start(
        &net,
        "a",
        dirs[1].path(),
        "0.0.0.0",
        &["--relay", &relay_addr],
    );
    let b = start(
        &net,
        "b",
        dirs[2].path(),
        "0.0.0.0",
        &["--relay", &relay_addr],
    );
    let circuit = a.wait_circuit();

    let app = a.install(&wasm);
    let ctx = a.create_context(&app);
    a.execute(&ctx, "set", json!({"key": "before", "value": "1"}));
    let mut token = InvitationToken::from_str(&a.invite(&ctx)).unwrap();
    assert!(
        token.addrs.contains(&circuit),
        "invitations carry the circuit"
    );
    token.addrs = vec![circuit];
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
    let conn = &row["connections"][0];
    assert_eq!(conn["holePunched"], json!(true), "{row:#}");
    // The direct connection goes to A's NAT router, not into A's LAN.
    let addr = conn["address"].as_str().unwrap();
    assert!(addr.contains("198.51.100.11"), "{row:#}");
    println!(
        "joined through the relay in {joined:?}, direct after {direct:?} over {} ({addr})",
        row["path"]["transport"]
    );

    relay.kill();
    replicates_both_ways(&a, &b, &ctx);
}
