//! A malicious libp2p peer — a real swarm in this process — against real
//! `merod` processes. It asks for a context it is not a member of, opens
//! hundreds of streams, sends malformed frames, and (holding a stolen but
//! unused invitation, the strongest outsider there is) floods gossip with
//! forged, non-member, oversized and 100,000-parent deltas. For each: the
//! honest node refuses it, bans the peer where the attack is garbage,
//! forwards nothing, keeps answering calls on another context, and keeps
//! its memory bounded; the outsider learns nothing.
//!
//! Latency, RSS and CPU per phase are printed (`--nocapture`) against a
//! no-attack control run.

mod support;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, gossipsub, noise, tcp, yamux};
use mero_node::net::codec::{Codec, Frame, PROTOCOL};
use mero_sync::delta::Draft;
use mero_sync::gate::{Proof, Topic};
use mero_sync::ids::{ContextId, DeltaId};
use mero_sync::protocol::{Envelope, Request, Response, encode_gossip};
use mero_sync::{ContextKey, InvitationToken, MemberSecret, Op, SignedDelta};
use serde_json::json;
use support::{NodeProc, build_app, cluster, wait_for};

/// Bytes on the sync protocol, unframed: for malformed frames.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl request_response::Codec for Raw {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut b = Vec::new();
        io.take(1 << 20).read_to_end(&mut b).await?;
        Ok(b)
    }
    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut b = Vec::new();
        io.take(64 << 20).read_to_end(&mut b).await?;
        Ok(b)
    }
    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&req).await?;
        io.close().await
    }
    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&res).await?;
        io.close().await
    }
}

#[derive(NetworkBehaviour)]
struct Evil {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<Codec>,
    raw: request_response::Behaviour<Raw>,
}

/// The attacker: a fresh libp2p identity connected to `target`.
struct Attacker {
    swarm: Swarm<Evil>,
    target: PeerId,
}

impl Attacker {
    async fn connect(addr: &str) -> Self {
        let gossip = gossipsub::ConfigBuilder::default()
            .flood_publish(true)
            .max_transmit_size(64 << 20)
            .validation_mode(gossipsub::ValidationMode::None)
            .heartbeat_initial_delay(Duration::from_millis(100))
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::from(mero_sync::ids::sha256(&m.data).to_vec())
            })
            .build()
            .unwrap();
        let timeout = request_response::Config::default()
            .with_request_timeout(Duration::from_secs(30))
            .with_max_concurrent_streams(1_000);
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| Evil {
                gossipsub: gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Anonymous,
                    gossip,
                )
                .unwrap(),
                sync: request_response::Behaviour::with_codec(
                    Codec,
                    [(PROTOCOL, ProtocolSupport::Outbound)],
                    timeout.clone(),
                ),
                raw: request_response::Behaviour::with_codec(
                    Raw,
                    [(PROTOCOL, ProtocolSupport::Outbound)],
                    timeout,
                ),
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
        let mut a = Self { swarm, target };
        a.until(Duration::from_secs(20), |ev| {
            matches!(ev, SwarmEvent::ConnectionEstablished { .. })
        })
        .await
        .expect("the attacker connects");
        a
    }

    fn peer(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Drives the swarm until `f` holds for an event; `None` on timeout.
    async fn until(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&SwarmEvent<EvilEvent>) -> bool,
    ) -> Option<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.swarm.select_next_some())
                .await
                .ok()?;
            if f(&ev) {
                return Some(());
            }
        }
    }

    /// Sends requests at once; collects what comes back (a response, or
    /// `None` for a failure such as the connection being cut).
    async fn ask(&mut self, requests: Vec<Envelope>) -> Vec<Option<Response>> {
        let n = requests.len();
        for r in requests {
            self.swarm
                .behaviour_mut()
                .sync
                .send_request(&self.target, Frame::Request(r));
        }
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        while out.len() < n {
            let Ok(ev) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await
            else {
                break;
            };
            match ev {
                SwarmEvent::Behaviour(EvilEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. },
                    ..
                })) => out.push(Some(response)),
                SwarmEvent::Behaviour(EvilEvent::Sync(
                    request_response::Event::OutboundFailure { .. },
                )) => out.push(None),
                _ => {}
            }
        }
        out
    }

    /// Sends raw frames; returns how many failed (rather than being answered).
    async fn garbage_frames(&mut self, frames: Vec<Vec<u8>>) -> usize {
        let n = frames.len();
        for f in frames {
            self.swarm.behaviour_mut().raw.send_request(&self.target, f);
        }
        let (mut done, mut failed) = (0, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        while done < n {
            let Ok(ev) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await
            else {
                break;
            };
            match ev {
                SwarmEvent::Behaviour(EvilEvent::Raw(request_response::Event::Message {
                    message: request_response::Message::Response { .. },
                    ..
                })) => done += 1,
                SwarmEvent::Behaviour(EvilEvent::Raw(
                    request_response::Event::OutboundFailure { .. },
                )) => {
                    done += 1;
                    failed += 1;
                }
                _ => {}
            }
        }
        failed
    }

    /// Whether the node cut the connection (and refuses new ones) within `t`.
    async fn cut_off(&mut self, t: Duration) -> bool {
        if !self.swarm.is_connected(&self.target) {
            return true;
        }
        self.until(t, |ev| {
            matches!(
                ev,
                SwarmEvent::ConnectionClosed {
                    num_established: 0,
                    ..
                }
            )
        })
        .await
        .is_some()
    }
}

fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Calls on a context the attack is not about, timed, while `work` runs;
/// with the node's peak RSS and CPU seconds over the same window.
struct Probe {
    stop: Arc<AtomicBool>,
    latencies: Arc<Mutex<Vec<Duration>>>,
    peak_rss: Arc<Mutex<u64>>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    cpu_at_start: f64,
    pid: u32,
    /// Where the last phase ended: (CPU seconds, calls made, instant).
    last: Mutex<(f64, usize, Instant)>,
    /// Peak RSS since the last phase ended.
    phase_rss: Arc<Mutex<u64>>,
}

impl Probe {
    fn start(node: &NodeProc, ctx: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let peak_rss = Arc::new(Mutex::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let pid = node.pid();
        let (url, token, ctx) = (node.url.clone(), node.token.clone(), ctx.to_owned());
        let calls = {
            let (stop, lat, failures) = (stop.clone(), latencies.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let body = json!({"jsonrpc": "2.0", "id": i, "method": "execute",
                        "params": {"context": ctx, "method": "set",
                            "args": {"key": format!("k{}", i % 50), "value": "v"}}});
                    let t = Instant::now();
                    let r = support::http(
                        "POST",
                        &format!("{url}/jsonrpc"),
                        &[
                            ("authorization", &format!("Bearer {token}")),
                            ("content-type", "application/json"),
                        ],
                        Some(body.to_string().as_bytes()),
                    );
                    let took = t.elapsed();
                    if r.status != 200 || r.body.get("error").is_some() {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{} {}", r.status, r.body));
                    }
                    lat.lock().unwrap().push(took);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let phase_rss = Arc::new(Mutex::new(0));
        let sampler = {
            let (stop, peak, phase) = (stop.clone(), peak_rss.clone(), phase_rss.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = support::rss_kib(pid);
                    for p in [&peak, &phase] {
                        let mut p = p.lock().unwrap();
                        *p = (*p).max(r);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self {
            stop,
            latencies,
            peak_rss,
            failures,
            threads: vec![calls, sampler],
            cpu_at_start: cpu_secs(pid),
            pid,
            last: Mutex::new((cpu_secs(pid), 0, Instant::now())),
            phase_rss,
        }
    }

    /// Prints what the node spent since the last phase: CPU, peak RSS, and
    /// the calls on the other context meanwhile.
    fn phase(&self, label: &str) {
        let cpu = cpu_secs(self.pid);
        let calls = self.latencies.lock().unwrap().len();
        let mut last = self.last.lock().unwrap();
        let rss = std::mem::take(&mut *self.phase_rss.lock().unwrap());
        let secs = last.2.elapsed().as_secs_f64();
        println!(
            "{label:>34}: {secs:>5.2} s  node CPU {:>5.2} s ({:>3.0}%)  peak RSS {:>4} MiB  calls meanwhile {}",
            cpu - last.0,
            (cpu - last.0) / secs * 100.0,
            rss / 1024,
            calls - last.1
        );
        *last = (cpu, calls, Instant::now());
    }

    /// Stops; returns (p50, p99, calls, peak RSS KiB, CPU s) and asserts
    /// every call succeeded.
    fn stop(self, label: &str) -> (Duration, Duration, usize, u64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let failures = self.failures.lock().unwrap();
        assert!(failures.is_empty(), "{label}: calls failed: {failures:?}");
        let mut l = self.latencies.lock().unwrap().clone();
        l.sort();
        assert!(!l.is_empty(), "{label}: no calls ran");
        let p = |q: f64| l[((l.len() - 1) as f64 * q) as usize];
        let cpu = cpu_secs(self.pid) - self.cpu_at_start;
        let rss = *self.peak_rss.lock().unwrap();
        println!(
            "{label:>22}: calls {:>4}  p50 {:>7.2} ms  p99 {:>7.2} ms  peak RSS {:>6} MiB  node CPU {:>5.2} s",
            l.len(),
            p(0.5).as_secs_f64() * 1e3,
            p(0.99).as_secs_f64() * 1e3,
            rss / 1024,
            cpu
        );
        (p(0.5), p(0.99), l.len(), rss, cpu)
    }
}

fn stranger_proof(ctx: ContextId, me: PeerId) -> Proof {
    Proof::member(&MemberSecret::generate(), &ctx, &me.to_bytes())
}

fn asks(ctx: ContextId, proof: &Proof) -> Vec<Envelope> {
    let app = mero_sync::ids::AppHash([0; 32]);
    [
        Request::Digest {
            context: ctx,
            digest: [0; 32],
        },
        Request::Page {
            context: ctx,
            since: Default::default(),
            limit: 500,
        },
        Request::ById {
            context: ctx,
            ids: vec![DeltaId([1; 32])],
        },
        Request::App {
            context: ctx,
            hash: app,
        },
    ]
    .into_iter()
    .map(|request| Envelope {
        request,
        proof: proof.clone(),
    })
    .collect()
}

fn banned(node: &NodeProc, peer: PeerId) -> bool {
    let net = node.get("/admin/network");
    net["banned"]
        .as_array()
        .is_some_and(|b| b.iter().any(|p| p == &json!(peer.to_string())))
}

fn metric_total(node: &NodeProc, name: &str) -> f64 {
    node.metric_lines(|l| l.starts_with(name))
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A delta of `ctx` signed by `author`, sealed with `key`.
fn delta(
    author: &MemberSecret,
    key: &ContextKey,
    ctx: ContextId,
    epoch: DeltaId,
    parents: Vec<DeltaId>,
) -> SignedDelta {
    let draft = Draft {
        context: ctx,
        seq: 1,
        parents,
        app: mero_sync::ids::AppHash([0; 32]),
        epoch,
        clock: 0,
    };
    SignedDelta::create(author, key, draft, &Op::Leave)
}

#[test]
fn a_malicious_peer_is_refused_banned_and_costs_the_node_little() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let wasm = build_app("examples/kv-store/Cargo.toml");
    let (nodes, shared, app) = cluster(&dirs, &wasm);
    let (a, b) = (&nodes[0], &nodes[1]);
    let ctx: ContextId = shared.parse().unwrap();
    // Calls are timed on a context of A's alone.
    let other = a.create_context(&app);
    a.execute(
        &shared,
        "set",
        json!({"key": "secret", "value": "members only"}),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Control: the same calls, nobody attacking.
    let probe = Probe::start(a, &other);
    std::thread::sleep(Duration::from_secs(4));
    let control = probe.stop("control");

    let probe = Probe::start(a, &other);
    rt.block_on(async {
        // 1. A stranger asks for the digest, a page from nothing, deltas by
        // id and the app: refused, in words that do not tell whether the
        // context is even here.
        let mut s = Attacker::connect(&a.p2p).await;
        let proof = stranger_proof(ctx, s.peer());
        let answers = s.ask(asks(ctx, &proof)).await;
        let unknown = ContextId([7; 32]);
        let control_answers = s
            .ask(asks(unknown, &stranger_proof(unknown, s.peer())))
            .await;
        assert_eq!(answers.len(), 4);
        for (got, absent) in answers.iter().zip(&control_answers) {
            let Some(Response::Error { message }) = got else {
                panic!("a non-member got an answer: {got:?}");
            };
            assert_eq!(got, absent, "the refusal reveals the context exists");
            assert!(message.contains("not a member"), "{message}");
        }
        // The old public topic carries nothing; the real one is unguessable.
        let public = gossipsub::IdentTopic::new(format!("mero/ctx/{ctx}"));
        s.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&public)
            .unwrap();
        probe.phase("1 non-member requests");

        // 2. Hundreds of streams at once from another stranger, wave after
        // wave: each answered (refused, or "busy" past the in-flight cap)
        // or cut when the peer is banned; never served.
        let mut s2 = Attacker::connect(&a.p2p).await;
        let proof = stranger_proof(ctx, s2.peer());
        let mut answered = 0;
        for _ in 0..20 {
            let flood: Vec<Envelope> = (0..100).flat_map(|_| asks(ctx, &proof)).take(400).collect();
            let answers = s2.ask(flood).await;
            assert!(
                answers
                    .iter()
                    .all(|r| matches!(r, None | Some(Response::Error { .. })))
            );
            answered += answers.iter().flatten().count();
            if !s2.swarm.is_connected(&s2.target) {
                break;
            }
        }
        assert!(
            s2.cut_off(Duration::from_secs(10)).await,
            "a peer that keeps asking without a proof is banned"
        );
        probe.phase(&format!("2 streams ({answered} answered, ban)"));

        // 3. Malformed frames: not even a request.
        let mut s3 = Attacker::connect(&a.p2p).await;
        let frames: Vec<Vec<u8>> = (0..30u8).map(|i| vec![0xff, i, 0xfe, 0x00, 0x13]).collect();
        s3.garbage_frames(frames).await;
        assert!(
            s3.cut_off(Duration::from_secs(10)).await,
            "malformed frames ban the peer"
        );
        probe.phase("3 malformed frames (ban)");

        // gossipsub announces every subscription to every connected peer,
        // so the stranger can subscribe to the node's real topics; what it
        // then receives is sealed with a key only members can derive.
        let announced: Vec<String> = s
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(p, _)| **p == s.target)
            .flat_map(|(_, topics)| topics.into_iter().map(|t| t.as_str().to_owned()))
            .collect();
        assert!(!announced.is_empty(), "the node announces its topics");
        for t in &announced {
            s.swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(&gossipsub::IdentTopic::new(t.clone()))
                .unwrap();
        }
        let _ = s.until(Duration::from_millis(500), |_| false).await;
        let (url, token, ctx_s) = (a.url.clone(), a.token.clone(), shared.clone());
        let writer = std::thread::spawn(move || {
            for i in 0..5 {
                let body = json!({"jsonrpc": "2.0", "id": i, "method": "execute",
                    "params": {"context": ctx_s, "method": "set",
                        "args": {"key": "secret", "value": format!("members only {i}")}}});
                support::http(
                    "POST",
                    &format!("{url}/jsonrpc"),
                    &[
                        ("authorization", &format!("Bearer {token}")),
                        ("content-type", "application/json"),
                    ],
                    Some(body.to_string().as_bytes()),
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let mut seen = Vec::new();
        let _ = s
            .until(Duration::from_secs(2), |ev| {
                if let SwarmEvent::Behaviour(EvilEvent::Gossipsub(gossipsub::Event::Message {
                    message,
                    ..
                })) = ev
                {
                    seen.push(message.data.clone());
                }
                false
            })
            .await;
        writer.join().unwrap();
        assert!(!seen.is_empty(), "the stranger got the sealed messages");
        for data in &seen {
            // Random bytes may read as an empty list, never as deltas.
            let read = mero_sync::protocol::decode_gossip(data).unwrap_or_default();
            assert!(read.is_empty(), "a non-member read gossip");
            assert!(!data.windows(6).any(|w| w == b"secret"), "plaintext leaked");
        }
    });
    // Peers banned for garbage are listed.
    wait_for(Duration::from_secs(10), || {
        (metric_total(a, "mero_peers_banned_total") >= 2.0).then_some(())
    })
    .expect("two peers banned");

    // 4. An outsider holding an open invitation (it never joins) knows the
    // topic and is admitted to catch up, so its gossip reaches the checks.
    let token: InvitationToken = a.invite(&shared).parse().unwrap();
    let key = ContextKey(token.key);
    let sealer = Topic::of(&ctx, &key);
    let topic = gossipsub::IdentTopic::new(sealer.name.clone());
    let forged_seen_by_b = || {
        b.sync(&shared)["rejected"]
            .as_object()
            .map_or(0, |r| r.len())
    };
    let b_rejections_before = forged_seen_by_b();
    let evil_peer = rt.block_on(async {
        let mut e = Attacker::connect(&a.p2p).await;
        let invite = MemberSecret::from_bytes(&token.secret);
        let proof = Proof::invite(&invite, token.invite, &ctx, &e.peer().to_bytes());
        let digest = Envelope {
            request: Request::Digest {
                context: ctx,
                digest: [0; 32],
            },
            proof,
        };
        let answer = e.ask(vec![digest]).await;
        assert!(
            matches!(answer[0], Some(Response::Digest { .. })),
            "an open invitation is admitted: {answer:?}"
        );
        e.swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
        let hash = topic.hash();
        let mut announced = false;
        for _ in 0..200 {
            announced = e
                .swarm
                .behaviour()
                .gossipsub
                .all_peers()
                .any(|(p, topics)| *p == e.target && topics.contains(&&hash));
            if announced {
                break;
            }
            let _ = e.until(Duration::from_millis(50), |_| false).await;
        }
        assert!(
            announced,
            "the node's subscription to the topic is announced"
        );
        let stranger = MemberSecret::generate();
        let many: Vec<DeltaId> = (0..100_000u32)
            .map(|i| DeltaId(mero_sync::ids::sha256(&i.to_le_bytes())))
            .collect();
        let mut sent = 0;
        for i in 0..200u32 {
            let batch: Vec<SignedDelta> = match i % 3 {
                // Valid signatures by a key that is not a member.
                0 => (0..50)
                    .map(|_| delta(&stranger, &key, ctx, token.epoch, vec![]))
                    .collect(),
                // Forged signatures.
                1 => (0..50)
                    .map(|_| {
                        let mut d = delta(&stranger, &key, ctx, token.epoch, vec![]);
                        d.signature = vec![7; 64];
                        d
                    })
                    .collect(),
                // 100,000 parents (3.2 MB of ids).
                _ => vec![delta(&stranger, &key, ctx, token.epoch, many.clone())],
            };
            match e
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic.clone(), sealer.seal(&encode_gossip(&batch)))
            {
                Ok(_) => sent += 1,
                Err(err) => println!("publish {i}: {err}"),
            }
            // Let the swarm flush.
            let _ = e.until(Duration::from_millis(20), |_| false).await;
            if !e.swarm.is_connected(&e.target) {
                break;
            }
        }
        probe.phase(&format!("4 gossip flood ({sent} msgs, ban)"));
        assert!(
            e.cut_off(Duration::from_secs(20)).await,
            "the flooder is banned"
        );

        // 5. A message over the node's largest gossip message (8 MiB) is
        // dropped unread by gossipsub itself.
        let mut o = Attacker::connect(&a.p2p).await;
        let proof = Proof::invite(&invite, token.invite, &ctx, &o.peer().to_bytes());
        let digest = Envelope {
            request: Request::Digest {
                context: ctx,
                digest: [0; 32],
            },
            proof,
        };
        o.ask(vec![digest]).await;
        o.swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
        let _ = o.until(Duration::from_millis(500), |_| false).await;
        let mut d = delta(&stranger, &key, ctx, token.epoch, vec![]);
        d.body.payload = vec![0; 9 << 20];
        let _ = o
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic.clone(), sealer.seal(&encode_gossip(&[d])));
        let _ = o.until(Duration::from_secs(2), |_| false).await;
        probe.phase("5 oversized gossip");

        // 6. Sustained: ever new identities, each staying under the ban,
        // ask for three seconds without a proof.
        let until = Instant::now() + Duration::from_secs(3);
        let mut asked = 0;
        while Instant::now() < until {
            let mut s = Attacker::connect(&a.p2p).await;
            let proof = stranger_proof(ctx, s.peer());
            let wave: Vec<Envelope> = (0..20).flat_map(|_| asks(ctx, &proof)).take(60).collect();
            asked += s.ask(wave).await.len();
        }
        probe.phase(&format!("6 sybil requests ({asked} in 3 s)"));

        // 7. Sustained: ever new invitation holders, each sending nine
        // messages of 50 forged deltas (one short of the ban), for 3 s.
        let until = Instant::now() + Duration::from_secs(3);
        let mut forged = 0;
        while Instant::now() < until {
            let mut f = Attacker::connect(&a.p2p).await;
            let proof = Proof::invite(&invite, token.invite, &ctx, &f.peer().to_bytes());
            let digest = Envelope {
                request: Request::Digest {
                    context: ctx,
                    digest: [0; 32],
                },
                proof,
            };
            f.ask(vec![digest]).await;
            f.swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
            let _ = f.until(Duration::from_millis(300), |_| false).await;
            for _ in 0..9 {
                let batch: Vec<SignedDelta> = (0..50)
                    .map(|_| {
                        let mut d = delta(&stranger, &key, ctx, token.epoch, vec![]);
                        d.signature = vec![7; 64];
                        d
                    })
                    .collect();
                if f.swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic.clone(), sealer.seal(&encode_gossip(&batch)))
                    .is_ok()
                {
                    forged += 50;
                }
                let _ = f.until(Duration::from_millis(10), |_| false).await;
            }
        }
        probe.phase(&format!("7 sybil gossip ({forged} forged deltas)"));
        e.peer()
    });
    let attack = probe.stop("under attack");
    assert!(banned(a, evil_peer), "the flooder is listed as banned");
    assert!(metric_total(a, "mero_gossip_invalid_total") >= 10.0);
    let rejected = &a.sync(&shared)["rejected"];
    for reason in ["not_member", "bad_signature", "invalid"] {
        assert!(rejected[reason].as_u64() >= Some(1), "{reason}: {rejected}");
    }
    // Nothing was forwarded: B never saw a forged or foreign delta.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        forged_seen_by_b(),
        b_rejections_before,
        "{}",
        b.sync(&shared)
    );
    // The members go on, and still agree.
    a.execute(&shared, "set", json!({"key": "after", "value": "1"}));
    support::wait_converged(&[a, b], &shared, Duration::from_secs(30));

    // Generous bounds: the point is "keeps serving, memory bounded", not a
    // benchmark on a shared 2-core machine.
    let (c50, c99, _, c_rss, _) = control;
    let (a50, a99, _, a_rss, _) = attack;
    assert!(
        a50 < c50 * 20 + Duration::from_millis(200),
        "p50 {a50:?} vs {c50:?}"
    );
    assert!(
        a99 < c99 * 20 + Duration::from_secs(2),
        "p99 {a99:?} vs {c99:?}"
    );
    assert!(a_rss < c_rss + 400 * 1024, "RSS {a_rss} KiB vs {c_rss} KiB");
}
