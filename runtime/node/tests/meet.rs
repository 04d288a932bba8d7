//! Members finding each other at a meet server, on real `merod` processes
//! on loopback. M serves meet and is no member. B's invitation, made after
//! a key rotation, names only M, so B reaches A only through what M's board
//! holds (sealed records under opaque tags); C joins from A's whole token after A went offline,
//! and finds B the same way.

mod support;

use std::str::FromStr;
use std::time::Duration;

use mero_sync::InvitationToken;
use serde_json::{Value, json};
use support::{NodeProc, build_app, init_homes, replicates_both_ways, wait_converged, wait_for};

const KV: &str = "examples/kv-store/Cargo.toml";

/// `token`, naming only `addr` to dial.
fn only(token: &str, addr: &str) -> String {
    let mut t = InvitationToken::from_str(token).expect("a token");
    t.addrs = vec![addr.to_owned()];
    t.to_string()
}

fn meet_of(n: &NodeProc) -> Value {
    n.network()["meet"].clone()
}

#[test]
fn members_known_to_nobody_meet_through_a_meet_server() {
    let wasm = build_app(KV);
    let dirs = init_homes(4);
    let m = NodeProc::start_args(dirs[0].path(), &[], &["--serve-meet"]);
    let a = NodeProc::start_args(dirs[1].path(), &[&m.p2p], &[]);
    let app = a.install(&wasm);
    let ctx = a.create_context(&app);
    a.execute(&ctx, "set", json!({"key": "before", "value": "1"}));
    // A posts its record under the context's tag.
    let posted = wait_for(Duration::from_secs(30), || {
        let s = meet_of(&m);
        (s["servingRecords"] == json!(1)).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "A posted nothing at M: {:#} / {:#}",
            meet_of(&m),
            meet_of(&a)
        )
    });
    assert_eq!(meet_of(&a)["servers"], json!([m.peer_id()]), "{posted}");

    // A revoked invitation makes A rotate the key: members meet under the
    // new epoch's tag, and a joiner must look it up there, not under the
    // tag of the context's first key.
    let revoked = InvitationToken::from_str(&a.invite(&ctx)).unwrap().invite;
    let (status, body) = a.send(
        "DELETE",
        &format!("/admin/contexts/{ctx}/invitations/{revoked}"),
        None,
        true,
    );
    assert_eq!(status, 200, "{body}");

    // Invitations name the meet servers the inviter uses.
    let token = a.invite(&ctx);
    assert!(
        !InvitationToken::from_str(&token).unwrap().past.is_empty(),
        "the revocation rotated the key"
    );
    let addrs = InvitationToken::from_str(&token).unwrap().addrs;
    assert!(addrs.contains(&m.p2p), "{addrs:?}");
    let b = NodeProc::start_args(dirs[2].path(), &[&m.p2p], &[]);
    let t0 = std::time::Instant::now();
    b.join(&only(&token, &m.p2p));
    wait_converged(&[&a, &b], &ctx, Duration::from_secs(60));
    b.wait_app(&app);
    println!("B joined through M in {:?}", t0.elapsed());
    assert_eq!(b.query(&ctx, "get", json!({"key": "before"})), json!("1"));
    assert!(
        meet_of(&b)["found"].as_u64().unwrap() >= 1,
        "{}",
        meet_of(&b)
    );

    // C is invited by A, which then goes offline: C knows only the token
    // (A's dead addresses and M's), and finds B at M.
    let token = a.invite(&ctx);
    // The invitation (a delta) must reach B first: C's join waits for it.
    wait_converged(&[&a, &b], &ctx, Duration::from_secs(30));
    a.kill();
    let c = NodeProc::start_args(dirs[3].path(), &[], &[]);
    let t0 = std::time::Instant::now();
    c.join(&token);
    wait_converged(&[&b, &c], &ctx, Duration::from_secs(60));
    c.wait_app(&app);
    println!("C joined without its inviter in {:?}", t0.elapsed());
    replicates_both_ways(&b, &c, &ctx);
    // A's record stays until it expires; B's and C's are there too.
    wait_for(Duration::from_secs(30), || {
        (meet_of(&m)["servingRecords"] == json!(3)).then_some(())
    })
    .unwrap_or_else(|| panic!("every member posts: {:#}", meet_of(&m)));

    // M never joined: it holds records, not the context, and no joiner
    // asked it about the context (which would have named it).
    let (status, _) = m.send("GET", &format!("/admin/contexts/{ctx}"), None, true);
    assert_eq!(status, 404);
    assert_eq!(
        m.metric_lines(|l| l.starts_with("mero_requests_unknown_context_total")),
        vec!["mero_requests_unknown_context_total 0".to_owned()]
    );
}

#[test]
fn a_node_that_does_not_serve_meet_is_no_meet_server() {
    let dirs = init_homes(2);
    let plain = NodeProc::start_args(dirs[0].path(), &[], &[]);
    let a = NodeProc::start_args(dirs[1].path(), &[&plain.p2p], &[]);
    wait_for(Duration::from_secs(10), || a.peer_row(&plain.peer_id())).expect("connected");
    // Identify has run by the time a ping round trip is known.
    wait_for(Duration::from_secs(10), || {
        a.peer_row(&plain.peer_id())?["rttMs"].as_f64()
    })
    .expect("a ping");
    assert_eq!(meet_of(&a)["servers"], json!([]));
    assert!(meet_of(&plain).get("servingRecords").is_none());
}

/// A public node that serves meet and is the context's only other member:
/// a joiner does not ask a meet server about a context until it finds it
/// under the context's tag, so the server keeps its own record on its own
/// board.
#[test]
fn a_meet_server_that_is_the_only_member_is_joined() {
    let wasm = build_app(KV);
    let dirs = init_homes(2);
    let m = NodeProc::start_args(dirs[0].path(), &[], &["--serve-meet"]);
    let app = m.install(&wasm);
    let ctx = m.create_context(&app);
    m.execute(&ctx, "set", json!({"key": "k", "value": "v"}));
    wait_for(Duration::from_secs(30), || {
        (meet_of(&m)["servingRecords"] == json!(1)).then_some(())
    })
    .unwrap_or_else(|| panic!("M keeps its own record: {:#}", meet_of(&m)));
    let b = NodeProc::start_args(dirs[1].path(), &[], &[]);
    let t0 = std::time::Instant::now();
    b.join(&m.invite(&ctx));
    wait_converged(&[&m, &b], &ctx, Duration::from_secs(60));
    b.wait_app(&app);
    println!("B joined the meet server's context in {:?}", t0.elapsed());
    assert_eq!(b.query(&ctx, "get", json!({"key": "k"})), json!("v"));
    // Its own record and B's.
    wait_for(Duration::from_secs(30), || {
        (meet_of(&m)["servingRecords"] == json!(2)).then_some(())
    })
    .unwrap_or_else(|| panic!("both records: {:#}", meet_of(&m)));
}
