//! Blobs between real `merod` processes: upload and streamed download with
//! ranges, a 100 MiB blob fetched from two peers while one is killed, a
//! downloader restarted mid-fetch, members only (over libp2p and HTTP),
//! garbage collection after the grace period, and an app reading a blob.
//!
//! Run with `--nocapture` to see the transfer rate between two nodes.

mod support;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, noise, tcp, yamux};
use mero_node::net::codec::{Codec, Frame, PROTOCOL};
use mero_sync::MemberSecret;
use mero_sync::blob::{BlobId, BlobKeys, id_of, open_chunk, open_manifest};
use mero_sync::gate::Proof;
use mero_sync::ids::{ContextId, DeltaId, sha256};
use mero_sync::protocol::{Envelope, Request, Response};
use serde_json::{Value, json};
use support::member::Member;
use support::{NodeProc, build_app, init_home, merod_config, wait_converged, wait_for};

const APP: &str = "runtime/fixtures/blob-app/Cargo.toml";
const MIB: usize = 1 << 20;

/// Inits a home, applies `config` (`key`, `value`) and starts a node
/// dialing `bootstrap`.
fn start(dir: &Path, bootstrap: &[&str], config: &[(&str, &str)]) -> NodeProc {
    init_home(dir);
    for (k, v) in config {
        let (ok, out) = merod_config(dir, &["set", k, v]);
        assert!(ok, "merod config set {k} {v}: {out}");
    }
    NodeProc::start_with(dir, bootstrap)
}

/// `n` bytes that do not compress or repeat.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    fastrand::Rng::with_seed(seed).fill(&mut v);
    v
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// `POST /contexts/{ctx}/blobs` with `token`; (status, JSON body).
fn upload(node: &NodeProc, ctx: &str, body: &[u8], token: &str) -> (u16, Value) {
    let resp = agent()
        .post(&format!("{}/contexts/{ctx}/blobs", node.url))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/octet-stream")
        .send(body)
        .expect("the node answers");
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Uploads as the admin, expecting success; the blob id.
fn put(node: &NodeProc, ctx: &str, body: &[u8]) -> String {
    let (status, v) = upload(node, ctx, body, &node.token);
    assert_eq!(status, 201, "upload: {v}");
    assert_eq!(v["size"], json!(body.len()));
    v["id"].as_str().unwrap().to_owned()
}

struct Got {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

/// `GET /contexts/{ctx}/blobs/{id}` with extra headers, reading the body
/// to its end (or to where the node cut it).
fn get(url: &str, token: &str, ctx: &str, id: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = agent()
        .get(&format!("{url}/contexts/{ctx}/blobs/{id}"))
        .header("Authorization", &format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.call().expect("the node answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    let _ = resp.into_body().into_reader().read_to_end(&mut body);
    Got {
        status,
        headers,
        body,
    }
}

fn header<'a>(g: &'a Got, name: &str) -> &'a str {
    g.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn metric(node: &NodeProc, name: &str) -> f64 {
    node.metric_lines(|l| l.starts_with(name))
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn fetched(node: &NodeProc) -> f64 {
    metric(node, "mero_blob_chunks_fetched_total")
}

/// A context of the blob app on `first`, joined by each of `others`.
fn share(first: &NodeProc, others: &[&NodeProc]) -> (String, String) {
    let app = first.install(&build_app(APP));
    let ctx = first.create_context(&app);
    for n in others {
        n.join(&first.invite(&ctx));
    }
    let mut all = vec![first];
    all.extend_from_slice(others);
    wait_converged(&all, &ctx, Duration::from_secs(60));
    for n in others {
        wait_for(Duration::from_secs(30), || {
            (n.send("GET", &format!("/admin/apps/{app}"), None, true).0 == 200).then_some(())
        })
        .expect("the app reaches every member");
    }
    (ctx, app)
}

#[test]
fn a_100_mib_blob_crosses_three_nodes_despite_a_killed_peer_and_a_restart() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = start(dirs[0].path(), &[], &[]);
    let n2 = start(dirs[1].path(), &[&n1.p2p], &[]);
    let n3 = start(dirs[2].path(), &[&n1.p2p, &n2.p2p], &[]);
    let (ctx, _) = share(&n1, &[&n2, &n3]);

    let data = bytes(100 * MIB, 1);
    let want = sha256(&data);
    let started = Instant::now();
    let id = put(&n1, &ctx, &data);
    let up = started.elapsed();
    assert_eq!(id, id_of(&data).to_string(), "the id is the content's");
    n1.execute(&ctx, "attach", json!({"name": "big", "blob": id}));
    wait_converged(&[&n1, &n2, &n3], &ctx, Duration::from_secs(30));

    // Node 2 fetches it from node 1 alone (node 3 has nothing yet).
    let started = Instant::now();
    let g = get(&n2.url, &n2.token, &ctx, &id, &[]);
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(g.status, 200);
    assert_eq!(g.body.len(), data.len());
    assert_eq!(sha256(&g.body), want, "byte-identical on node 2");
    println!(
        "blob transfer: 100 MiB uploaded to node 1 in {:.2} s ({:.0} MiB/s); node 2 fetched and streamed it from node 1 in {secs:.2} s = {:.0} MiB/s",
        up.as_secs_f64(),
        100.0 / up.as_secs_f64(),
        100.0 / secs
    );

    // Node 3 fetches from nodes 1 and 2; node 2 is killed midway.
    let (url, token, c, i) = (n3.url.clone(), n3.token.clone(), ctx.clone(), id.clone());
    let download = std::thread::spawn(move || get(&url, &token, &c, &i, &[]));
    let at_kill = wait_for(Duration::from_secs(60), || {
        let n = fetched(&n3);
        (n >= 10.0).then_some(n)
    })
    .expect("node 3 starts fetching");
    let served_by_2 = metric(&n2, "mero_blob_chunks_served_total");
    n2.kill();
    let g = download.join().unwrap();
    println!(
        "node 3 had {at_kill} of 100 chunks when node 2 (which served {served_by_2}) was killed"
    );
    assert!(at_kill < 100.0, "node 2 was killed mid-fetch");
    assert!(served_by_2 > 0.0, "node 3 fetched from node 2 too");
    assert_eq!(g.status, 200);
    assert_eq!(g.body.len(), data.len());
    assert_eq!(sha256(&g.body), want, "byte-identical on node 3");
    assert!(
        metric(&n3, "mero_blob_peer_failures_total") >= 1.0,
        "the requests to the dead peer failed and were asked again"
    );
    assert_eq!(fetched(&n3), 100.0, "each chunk stored once");

    // A second blob; node 3 is killed mid-fetch, restarts and resumes.
    let second = bytes(48 * MIB, 2);
    let id2 = put(&n1, &ctx, &second);
    n1.execute(&ctx, "attach", json!({"name": "second", "blob": id2}));
    wait_converged(&[&n1, &n3], &ctx, Duration::from_secs(30));
    let (url, token, c, i) = (n3.url.clone(), n3.token.clone(), ctx.clone(), id2.clone());
    let cut = std::thread::spawn(move || get(&url, &token, &c, &i, &[]));
    let before = wait_for(Duration::from_secs(60), || {
        let n = fetched(&n3) - 100.0;
        (n >= 8.0).then_some(n)
    })
    .expect("node 3 fetches the second blob");
    n3.kill();
    assert!(cut.join().unwrap().body.len() < second.len());
    let n3 = NodeProc::start_with(dirs[2].path(), &[&n1.p2p]);
    let g = get(&n3.url, &n3.token, &ctx, &id2, &[]);
    assert_eq!(g.status, 200);
    assert_eq!(
        sha256(&g.body),
        sha256(&second),
        "byte-identical after the restart"
    );
    let after = fetched(&n3);
    println!("second blob: {before} chunks before the restart, {after} after, of 48");
    assert!(before < 48.0, "killed mid-fetch");
    assert!(
        after <= 48.0 - before,
        "the restarted node fetched only what it lacked ({after} chunks)"
    );
}

#[test]
fn ranges_limits_and_client_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(
        dir.path(),
        &[],
        &[
            ("blobs.max_blob_bytes", "4194304"),
            ("blobs.fetch_timeout_secs", "1"),
        ],
    );
    let (ctx, app) = share(&n, &[]);
    let data = bytes(3 * MIB + 5, 3);
    let id = put(&n, &ctx, &data);
    let g = get(&n.url, &n.token, &ctx, &id, &[]);
    assert_eq!((g.status, g.body.len()), (200, data.len()));
    assert_eq!(header(&g, "accept-ranges"), "bytes");
    assert_eq!(g.body, data);
    // Ranges, one across a chunk boundary.
    let cases: [(&str, usize, usize); 5] = [
        ("bytes=0-9", 0, 10),
        ("bytes=1048570-1048580", 1_048_570, 1_048_581),
        ("bytes=-5", data.len() - 5, data.len()),
        ("bytes=3145728-", 3_145_728, data.len()),
        ("bytes=10-99999999", 10, data.len()),
    ];
    for (range, a, b) in cases {
        let g = get(&n.url, &n.token, &ctx, &id, &[("Range", range)]);
        assert_eq!(g.status, 206, "{range}");
        assert_eq!(g.body, &data[a..b], "{range}");
        assert_eq!(
            header(&g, "content-range"),
            format!("bytes {a}-{}/{}", b - 1, data.len())
        );
    }
    for bad in ["bytes=99999999-", "bytes=5-2", "bytes=0-1,4-5", "chars=1-2"] {
        let g = get(&n.url, &n.token, &ctx, &id, &[("Range", bad)]);
        assert_eq!(g.status, 416, "{bad}");
        assert_eq!(
            header(&g, "content-range"),
            format!("bytes */{}", data.len())
        );
    }
    // The same bytes again: the same id.
    assert_eq!(put(&n, &ctx, &data), id);
    // Over the limit: refused before the body is read when its length is
    // declared (the client may see its write cut off rather than the 413),
    // and as soon as the limit is passed when it streams.
    let big = bytes(4 * MIB + 1, 4);
    let declared = agent()
        .post(&format!("{}/contexts/{ctx}/blobs", n.url))
        .header("Authorization", &format!("Bearer {}", n.token))
        .send(&big[..]);
    match declared {
        Ok(r) => assert_eq!(r.status().as_u16(), 413),
        Err(ureq::Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
        Err(e) => panic!("{e}"),
    }
    let streamed = agent()
        .post(&format!("{}/contexts/{ctx}/blobs", n.url))
        .header("Authorization", &format!("Bearer {}", n.token))
        .send(ureq::SendBody::from_reader(&mut &big[..]))
        .expect("the node answers");
    assert_eq!(streamed.status().as_u16(), 413);
    let v: Value = serde_json::from_str(&streamed.into_body().read_to_string().unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "blob_too_large", "{v}");
    let ctx_id: ContextId = ctx.parse().unwrap();
    let uploads = dir
        .path()
        .join("blobs")
        .join(hex::encode(ctx_id.0))
        .join(".upload");
    let left = std::fs::read_dir(&uploads).map_or(0, |d| d.count());
    assert_eq!(left, 0, "nothing of a refused upload is kept");
    // An id no node has: not found once the fetch gives up.
    let missing = BlobId([9; 32]).to_string();
    let g = get(&n.url, &n.token, &ctx, &missing, &[]);
    assert_eq!(g.status, 404);
    let g = get(&n.url, &n.token, &ctx, "not-an-id", &[]);
    assert_eq!(g.status, 400);

    // Client tokens: their own context, not another's.
    let other = n.create_context(&app);
    let token = |c: &str| {
        n.post("/admin/tokens", json!({"context": c}))["accessToken"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (mine, theirs) = (token(&ctx), token(&other));
    let g = get(&n.url, &mine, &ctx, &id, &[("Range", "bytes=0-3")]);
    assert_eq!((g.status, &g.body[..]), (206, &data[..4]));
    assert_eq!(upload(&n, &ctx, b"from a client", &mine).0, 201);
    assert_eq!(get(&n.url, &theirs, &ctx, &id, &[]).status, 403);
    assert_eq!(upload(&n, &ctx, b"x", &theirs).0, 403);
    assert_eq!(
        get(&n.url, "wrong-token-wrong-token", &ctx, &id, &[]).status,
        401
    );
    // The blob of one context is not a blob of another.
    assert_eq!(get(&n.url, &n.token, &other, &id, &[]).status, 404);
}

/// A peer of our own over libp2p: asks what it likes.
struct Peer {
    swarm: Swarm<request_response::Behaviour<Codec>>,
    target: PeerId,
}

impl Peer {
    async fn connect(addr: &str) -> Self {
        Self::connect_with(addr, ProtocolSupport::Outbound).await
    }

    /// A peer that also answers requests (`support` `Full`).
    async fn connect_with(addr: &str, support: ProtocolSupport) -> Self {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    Codec,
                    [(PROTOCOL, support)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(30)),
                )
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let addr: Multiaddr = addr.parse().unwrap();
        let target = addr
            .iter()
            .find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                _ => None,
            })
            .unwrap();
        swarm.dial(addr).unwrap();
        loop {
            if let SwarmEvent::ConnectionEstablished { .. } = swarm.select_next_some().await {
                break;
            }
        }
        Self { swarm, target }
    }

    fn id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    async fn ask(&mut self, request: Request, proof: &Proof) -> Option<Response> {
        let env = Envelope {
            request,
            proof: proof.clone(),
        };
        self.swarm
            .behaviour_mut()
            .send_request(&self.target, Frame::Request(env));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        loop {
            let ev = tokio::time::timeout_at(deadline, self.swarm.select_next_some())
                .await
                .ok()?;
            match ev {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                }) => return Some(response),
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure { .. }) => {
                    return None;
                }
                _ => {}
            }
        }
    }
}

fn manifest_req(ctx: ContextId, blob: BlobId, epoch: DeltaId) -> Request {
    Request::BlobManifest {
        context: ctx,
        blob,
        epoch,
    }
}

fn chunk_req(ctx: ContextId, blob: BlobId, index: u32, epoch: DeltaId) -> Request {
    Request::BlobChunk {
        context: ctx,
        blob,
        index,
        epoch,
    }
}

#[test]
fn only_members_get_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(dir.path(), &[], &[]);
    let (ctx_s, app) = share(&n, &[]);
    let ctx: ContextId = ctx_s.parse().unwrap();
    let data = bytes(MIB + 100, 5);
    let blob: BlobId = put(&n, &ctx_s, &data).parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // A stranger: refused, exactly as about a context that is not here.
        let mut s = Peer::connect(&n.p2p).await;
        let stranger = Proof::member(&MemberSecret::generate(), &ctx, &s.id().to_bytes());
        let unknown = ContextId([7; 32]);
        let elsewhere = Proof::member(&MemberSecret::generate(), &unknown, &s.id().to_bytes());
        for (req, control) in [
            (
                manifest_req(ctx, blob, DeltaId([0; 32])),
                manifest_req(unknown, blob, DeltaId([0; 32])),
            ),
            (
                chunk_req(ctx, blob, 0, DeltaId([0; 32])),
                chunk_req(unknown, blob, 0, DeltaId([0; 32])),
            ),
        ] {
            let got = s.ask(req, &stranger).await;
            let absent = s.ask(control, &elsewhere).await;
            assert!(
                matches!(&got, Some(Response::Error { message }) if message.contains("not a member")),
                "a non-member got {got:?}"
            );
            assert_eq!(got, absent, "the refusal reveals the context exists");
        }

        // A member (played by this test) gets the manifest and chunks, and
        // they open with its keys.
        let mut m = Member::join(&n, &ctx_s, &app);
        let mut p = Peer::connect(&n.p2p).await;
        let proof = Proof::member(&m.secret, &ctx, &p.id().to_bytes());
        let keys = BlobKeys::new(&ctx, m.replica.keys(), m.replica.access().epoch());
        let epoch = m.replica.access().epoch();
        let Some(Response::Blob { part: Some(part) }) =
            p.ask(manifest_req(ctx, blob, epoch), &proof).await
        else {
            panic!("a member gets the manifest");
        };
        let manifest = open_manifest(&keys, &blob, &part).expect("the manifest checks out");
        assert_eq!(manifest.size, data.len() as u64);
        let mut got = Vec::new();
        for i in 0..manifest.count() {
            let Some(Response::Blob { part: Some(part) }) =
                p.ask(chunk_req(ctx, blob, i, epoch), &proof).await
            else {
                panic!("a member gets chunk {i}");
            };
            got.extend(open_chunk(&keys, &manifest, i, &part).expect("the chunk checks out"));
        }
        assert_eq!(got, data);
        // Past the last chunk, or a blob the node lacks: nothing.
        assert_eq!(
            p.ask(chunk_req(ctx, blob, 2, epoch), &proof).await,
            Some(Response::Blob { part: None })
        );
        assert_eq!(
            p.ask(manifest_req(ctx, BlobId([3; 32]), epoch), &proof).await,
            Some(Response::Blob { part: None })
        );

        // Removed, the member gets nothing, old blob or new (a new one is
        // sealed in the epoch the removal started, whose key it lacks).
        let (status, body) = n.send(
            "DELETE",
            &format!("/admin/contexts/{ctx_s}/members/{}", m.secret.public()),
            None,
            true,
        );
        assert!((200..300).contains(&status), "remove: {body}");
        let fresh: BlobId = put(&n, &ctx_s, b"after the removal").parse().unwrap();
        for req in [
            manifest_req(ctx, blob, epoch),
            chunk_req(ctx, blob, 0, epoch),
            manifest_req(ctx, fresh, epoch),
            chunk_req(ctx, fresh, 0, epoch),
        ] {
            let got = p.ask(req, &proof).await;
            assert!(
                matches!(&got, Some(Response::Error { message }) if message.contains("not a member")),
                "a removed member got {got:?}"
            );
        }
        m.sync(&n);
        assert_ne!(m.replica.access().epoch(), epoch, "the removal rotated the key");
    });
}

#[test]
fn a_member_sending_bad_chunks_is_refused_scored_and_routed_around() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = start(dirs[0].path(), &[], &[]);
    let n2 = start(dirs[1].path(), &[&n1.p2p], &[]);
    let (ctx_s, app) = share(&n1, &[&n2]);
    let ctx: ContextId = ctx_s.parse().unwrap();
    let data = bytes(40 * MIB, 9);
    let id = put(&n1, &ctx_s, &data);
    n1.execute(&ctx_s, "attach", json!({"name": "x", "blob": id}));
    // A member of the context, played by this test, that answers every
    // blob request with bytes that do not check out.
    let m = Member::join(&n1, &ctx_s, &app);
    wait_converged(&[&n1, &n2], &ctx_s, Duration::from_secs(30));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (refused, banned) = rt.block_on(async {
        let mut liar = Peer::connect_with(&n2.p2p, ProtocolSupport::Full).await;
        let proof = Proof::member(&m.secret, &ctx, &liar.id().to_bytes());
        let epoch = m.replica.access().epoch();
        // Proving membership to node 2 makes it a peer to fetch from.
        let digest = Request::Digest {
            context: ctx,
            digest: [0; 32],
        };
        assert!(matches!(
            liar.ask(digest, &proof).await,
            Some(Response::Digest { .. })
        ));
        let (url, token, c, i) = (n2.url.clone(), n2.token.clone(), ctx_s.clone(), id.clone());
        let download = std::thread::spawn(move || get(&url, &token, &c, &i, &[]));
        let mut lies = 0;
        while !download.is_finished() {
            let ev = tokio::time::timeout(Duration::from_millis(50), liar.swarm.select_next_some());
            let Ok(SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            })) = ev.await
            else {
                continue;
            };
            let blob = matches!(
                request,
                Frame::Request(Envelope {
                    request: Request::BlobManifest { .. } | Request::BlobChunk { .. },
                    ..
                })
            );
            let answer = if blob {
                lies += 1;
                Response::Blob {
                    part: Some(mero_sync::blob::Sealed {
                        epoch,
                        bytes: bytes(4096, lies),
                    }),
                }
            } else {
                Response::Error {
                    message: "no".into(),
                }
            };
            let _ = liar.swarm.behaviour_mut().send_response(channel, answer);
        }
        let g = download.join().unwrap();
        assert_eq!(g.status, 200);
        assert_eq!(sha256(&g.body), sha256(&data), "the honest peer's bytes");
        let net = n2.get("/admin/network");
        let banned = net["banned"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == &json!(liar.id().to_string()));
        (lies, banned)
    });
    let garbage = metric(&n2, "mero_blob_parts_refused_total{reason=\"garbage\"}");
    println!(
        "the lying member sent {refused} bad parts; node 2 refused {garbage}; banned: {banned}"
    );
    assert!(refused >= 1, "node 2 asked the liar");
    assert!(garbage >= 1.0, "bad parts are refused and counted");
    assert!(
        banned || garbage < 10.0,
        "ten bad parts (garbage 10 each, limit 100) ban the sender"
    );
    assert_eq!(fetched(&n2), 40.0, "only checked chunks are stored");
}

#[test]
fn unreferenced_blobs_are_collected_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let n = start(
        dir.path(),
        &[],
        &[
            ("blobs.gc_grace_secs", "2"),
            ("blobs.gc_interval_secs", "1"),
            ("blobs.fetch_timeout_secs", "1"),
        ],
    );
    let (ctx, _) = share(&n, &[]);
    let kept = put(&n, &ctx, &bytes(MIB + 1, 6));
    let dropped = put(&n, &ctx, &bytes(1000, 7));
    n.execute(&ctx, "attach", json!({"name": "kept", "blob": kept}));
    let status = |id: &str| get(&n.url, &n.token, &ctx, id, &[("Range", "bytes=0-0")]).status;
    // Within the grace period both are there.
    assert_eq!((status(&kept), status(&dropped)), (206, 206));
    wait_for(Duration::from_secs(20), || {
        (status(&dropped) == 404).then_some(())
    })
    .expect("the unreferenced blob is collected");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(status(&kept), 206, "a blob in state stays");
    assert!(metric(&n, "mero_blobs_collected_total") >= 1.0);
    // Out of state, it goes too.
    n.execute(&ctx, "detach", json!({"name": "kept"}));
    wait_for(Duration::from_secs(20), || {
        (status(&kept) == 404).then_some(())
    })
    .expect("a detached blob is collected");
}

#[test]
fn an_app_reads_a_blob_another_node_uploaded() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = start(dirs[0].path(), &[], &[]);
    let n2 = start(dirs[1].path(), &[&n1.p2p], &[]);
    let (ctx, _) = share(&n1, &[&n2]);
    let data = bytes(9 * MIB + 7, 8);
    let id = put(&n1, &ctx, &data);
    n1.execute(&ctx, "attach", json!({"name": "doc", "blob": id}));
    wait_converged(&[&n1, &n2], &ctx, Duration::from_secs(30));
    assert_eq!(n2.query(&ctx, "get", json!({"name": "doc"})), json!(id));
    let fnv = |b: &[u8]| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for x in b {
            h ^= u64::from(*x);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        format!("{h:016x}")
    };
    let (offset, len) = (MIB - 10, 3 * MIB);
    let args = json!({"blob": id, "offset": offset, "len": len});
    // Node 2 lacks the blob: the first read says it is being fetched.
    let first = n2.rpc("query", &ctx, "checksum", args.clone());
    let msg = first["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(msg.contains("being fetched"), "{first}");
    let out = wait_for(Duration::from_secs(60), || {
        let r = n2.rpc("query", &ctx, "checksum", args.clone());
        r.get("error")
            .is_none()
            .then(|| r["result"]["output"].clone())
    })
    .expect("the read succeeds once the blob is fetched");
    assert_eq!(out, json!([data.len(), fnv(&data[offset..offset + len])]));
    // A blob over what the app accepts; more than 8 MiB of reads in one
    // call fails it; 8 MiB is fine.
    let whole = n1.rpc(
        "query",
        &ctx,
        "checksum_all",
        json!({"blob": id, "max": 8 * MIB}),
    );
    assert!(
        whole["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("over the"),
        "{whole}"
    );
    let many = n1.rpc(
        "query",
        &ctx,
        "read_many",
        json!({"blob": id, "len": MIB, "times": 9}),
    );
    assert!(
        many["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("blob bytes"),
        "{many}"
    );
    let eight = n1.query(
        &ctx,
        "read_many",
        json!({"blob": id, "len": MIB, "times": 8}),
    );
    assert_eq!(eight, json!(8 * MIB));
}
