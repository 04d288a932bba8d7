//! Seeded simulation of the sync protocol: several replicas write
//! concurrently while the network drops, duplicates and reorders messages,
//! partitions, and replicas restart losing everything not persisted. After
//! healing, catch-up must bring every replica to the same state and heads.
//!
//! `MERO_SIM_SEEDS=N` runs seeds `0..N` (default 1000);
//! `MERO_SIM_SEED=S` replays one seed.

use std::collections::HashMap;

use loro::{ExportMode, LoroDoc};
use mero_engine::{ContextState, DeltaPayload};
use mero_sync::ids::{AppHash, DeltaId};
use mero_sync::members::{InvitationBody, context_id};
use mero_sync::protocol::{self, Request, Response};
use mero_sync::{ContextKey, Dag, Invitation, MemberSecret, Members, Op, Reject, SignedDelta};

const APP: AppHash = AppHash([7; 32]);

struct Replica {
    secret: MemberSecret,
    dag: Dag,
    doc: LoroDoc,
    members: Members,
    /// What survives a restart: every applied delta, in log order.
    disk: Vec<SignedDelta>,
    /// Position of each delta in `disk`.
    index: HashMap<DeltaId, usize>,
    joined: bool,
}

struct World {
    rng: fastrand::Rng,
    key: ContextKey,
    invitation: Invitation,
    creator: mero_sync::ids::MemberKey,
    replicas: Vec<Replica>,
    queue: Vec<Msg>,
    /// `cut[i]`: replica i is partitioned away from all others.
    cut: Vec<bool>,
    drop_rate: f64,
    dup_rate: f64,
}

enum Msg {
    Gossip {
        from: usize,
        to: usize,
        delta: SignedDelta,
    },
    Req {
        from: usize,
        to: usize,
        req: Request,
    },
    Resp {
        from: usize,
        to: usize,
        resp: Response,
    },
}

fn apply(
    doc: &LoroDoc,
    members: &mut Members,
    key: &ContextKey,
    d: &SignedDelta,
) -> Result<(), Reject> {
    let op = d.open(key).map_err(|e| Reject::BadPayload(e.to_string()))?;
    let b = &d.body;
    match op {
        Op::Join {
            invitation,
            joined_at_ms,
        } => members
            .join(
                &b.context,
                &key.commitment(),
                b.author,
                b.seq,
                &invitation,
                joined_at_ms,
            )
            .map_err(|e| Reject::NotMember(e.to_string())),
        op => {
            if !members.can_write(&b.author, b.seq) {
                return Err(Reject::NotMember("not a member".into()));
            }
            match op {
                Op::Call(p) => doc
                    .import(&p.update)
                    .map(|_| ())
                    .map_err(|e| Reject::Apply(e.to_string())),
                Op::Leave => {
                    members.leave(&b.author, b.seq);
                    Ok(())
                }
                _ => Ok(()),
            }
        }
    }
}

impl Replica {
    fn new(
        secret: MemberSecret,
        creator: mero_sync::ids::MemberKey,
        ctx: mero_sync::ids::ContextId,
    ) -> Self {
        let doc = LoroDoc::new();
        doc.set_peer_id(ContextState::peer_id_for(&secret.public().0))
            .unwrap();
        Self {
            secret,
            dag: Dag::new(ctx).with_max_pending(64),
            doc,
            members: Members::new(creator),
            disk: Vec::new(),
            index: HashMap::new(),
            joined: false,
        }
    }

    fn receive(&mut self, key: &ContextKey, d: SignedDelta) -> bool {
        let Self {
            dag,
            doc,
            members,
            disk,
            index,
            ..
        } = self;
        let r = dag.receive(d, |id, d, _| {
            apply(doc, members, key, d)?;
            index.insert(*id, disk.len());
            disk.push(d.clone());
            Ok(())
        });
        for (_, why) in &r.rejected {
            assert!(
                matches!(
                    why,
                    Reject::Duplicate | Reject::BufferFull | Reject::Replay(_)
                ),
                "honest delta refused: {why}"
            );
        }
        r.buffered
    }

    fn author(&mut self, key: &ContextKey, op: &Op) -> SignedDelta {
        let d = SignedDelta::create(
            &self.secret,
            key,
            self.dag.context(),
            self.dag.seq_of(&self.secret.public()) + 1,
            self.dag.heads(),
            APP,
            op,
        );
        let id = d.id();
        assert!(self.dag.record(id, &d.body).is_empty());
        self.index.insert(id, self.disk.len());
        self.disk.push(d.clone());
        d
    }

    fn restart(&mut self, key: &ContextKey) {
        let ctx = self.dag.context();
        let disk = std::mem::take(&mut self.disk);
        let creator = *self
            .members
            .iter()
            .find(|(_, m)| m.invited_by.is_none())
            .unwrap()
            .0;
        *self = Replica {
            joined: self.joined,
            ..Replica::new(self.secret.clone(), creator, ctx)
        };
        for d in disk {
            let r = self.dag.receive(d.clone(), |_, d, _| {
                apply(&self.doc, &mut self.members, key, d)
            });
            assert_eq!(
                r.applied.len(),
                1,
                "replaying the disk log applies each delta"
            );
            self.index.insert(r.applied[0], self.disk.len());
            self.disk.push(d);
        }
    }
}

impl World {
    fn new(seed: u64, n: usize) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let key = ContextKey::generate();
        let secrets: Vec<_> = (0..n).map(|_| MemberSecret::generate()).collect();
        let creator = secrets[0].public();
        let salt = [seed as u8; 32];
        let ctx = context_id(&creator, &salt);
        let mut replicas: Vec<_> = secrets
            .into_iter()
            .map(|s| Replica::new(s, creator, ctx))
            .collect();
        // Genesis: the creator's init delta, known to everyone at the start.
        let doc = &replicas[0].doc;
        doc.get_map("m").insert("created", true).unwrap();
        doc.commit();
        let update = doc.export(ExportMode::all_updates()).unwrap();
        let genesis = replicas[0].author(
            &key,
            &Op::Call(DeltaPayload {
                update,
                events: vec![],
            }),
        );
        replicas[0].joined = true;
        for r in &mut replicas[1..] {
            r.receive(&key, genesis.clone());
        }
        let invitation = Invitation::sign(
            &replicas[0].secret,
            InvitationBody {
                context: ctx,
                creator,
                salt,
                app: APP,
                inviter: creator,
                can_invite: false,
                expires_at_ms: 1_000,
                key_commitment: key.commitment(),
                heads: vec![genesis.id()],
                addrs: vec![],
                nonce: [0; 16],
            },
        );
        let drop_rate = rng.f64() * 0.4;
        let dup_rate = rng.f64() * 0.3;
        Self {
            rng,
            key,
            invitation,
            creator,
            replicas,
            queue: Vec::new(),
            cut: vec![false; n],
            drop_rate,
            dup_rate,
        }
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        a != b && !self.cut[a] && !self.cut[b]
    }

    fn send(&mut self, msg: Msg) {
        let copies = if self.rng.f64() < self.dup_rate { 2 } else { 1 };
        for _ in 0..copies {
            let m = match &msg {
                Msg::Gossip { from, to, delta } => Msg::Gossip {
                    from: *from,
                    to: *to,
                    delta: delta.clone(),
                },
                Msg::Req { from, to, req } => Msg::Req {
                    from: *from,
                    to: *to,
                    req: req.clone(),
                },
                Msg::Resp { from, to, resp } => Msg::Resp {
                    from: *from,
                    to: *to,
                    resp: resp.clone(),
                },
            };
            self.queue.push(m);
        }
    }

    fn write(&mut self, i: usize) {
        let key = self.key.clone();
        let r = &mut self.replicas[i];
        let op = if !r.joined {
            r.joined = true;
            Op::Join {
                invitation: self.invitation.clone(),
                joined_at_ms: 500,
            }
        } else {
            let before = r.doc.oplog_vv();
            match self.rng.u8(0..3) {
                0 => r
                    .doc
                    .get_map("m")
                    .insert(&format!("k{}", self.rng.u8(0..8)), self.rng.i64(..))
                    .unwrap(),
                1 => r.doc.get_counter("c").increment(1.0).unwrap(),
                _ => {
                    let list = r.doc.get_list("l");
                    list.insert(self.rng.usize(0..=list.len()), i as i64)
                        .unwrap()
                }
            }
            r.doc.commit();
            Op::Call(DeltaPayload {
                update: r.doc.export(ExportMode::updates(&before)).unwrap(),
                events: vec![],
            })
        };
        let d = r.author(&key, &op);
        if let Op::Join { .. } = op {
            // The author applies its own join as every receiver will.
            apply(&r.doc, &mut r.members, &key, &d).expect("a valid join");
        }
        for to in 0..self.replicas.len() {
            if self.linked(i, to) {
                self.send(Msg::Gossip {
                    from: i,
                    to,
                    delta: d.clone(),
                });
            }
        }
    }

    fn start_round(&mut self, from: usize, to: usize) {
        let req = Request::Digest {
            context: self.replicas[from].dag.context(),
            digest: self.replicas[from].dag.digest(),
        };
        self.send(Msg::Req { from, to, req });
    }

    fn ask_missing(&mut self, me: usize, peer: usize) {
        let ids = self.replicas[me].dag.wanted();
        if !ids.is_empty() {
            let context = self.replicas[me].dag.context();
            self.send(Msg::Req {
                from: me,
                to: peer,
                req: Request::ById { context, ids },
            });
        }
    }

    fn deliver(&mut self, msg: Msg, lossy: bool) {
        let (from, to) = match &msg {
            Msg::Gossip { from, to, .. }
            | Msg::Req { from, to, .. }
            | Msg::Resp { from, to, .. } => (*from, *to),
        };
        if !self.linked(from, to) || (lossy && self.rng.f64() < self.drop_rate) {
            return;
        }
        let key = self.key.clone();
        match msg {
            Msg::Gossip { delta, .. } => {
                if self.replicas[to].receive(&key, delta) {
                    self.ask_missing(to, from);
                }
            }
            Msg::Req { req, .. } => {
                let r = &self.replicas[to];
                let source = |id: &DeltaId| r.index.get(id).map(|i| r.disk[*i].clone());
                let (resp, differ) = protocol::answer(&r.dag, &source, &req);
                self.send(Msg::Resp {
                    from: to,
                    to: from,
                    resp,
                });
                if differ {
                    self.start_round(to, from);
                }
            }
            Msg::Resp { resp, .. } => {
                let ctx = self.replicas[to].dag.context();
                let next = match &resp {
                    Response::Digest { .. } => {
                        protocol::after_digest(&self.replicas[to].dag, ctx, &resp)
                    }
                    Response::Deltas { deltas, more } => {
                        for d in deltas {
                            self.replicas[to].receive(&key, d.clone());
                        }
                        self.ask_missing(to, from);
                        protocol::next_page(&self.replicas[to].dag, ctx, *more)
                    }
                    _ => None,
                };
                if let Some(req) = next {
                    self.send(Msg::Req {
                        from: to,
                        to: from,
                        req,
                    });
                }
            }
        }
    }

    fn step_network(&mut self, lossy: bool) -> bool {
        if self.queue.is_empty() {
            return false;
        }
        let i = self.rng.usize(0..self.queue.len());
        let msg = self.queue.swap_remove(i);
        self.deliver(msg, lossy);
        true
    }
}

fn run(seed: u64) -> Result<(), String> {
    let n = 3 + (seed % 3) as usize;
    let mut w = World::new(seed, n);
    let steps = 150 + w.rng.usize(0..150);
    for _ in 0..steps {
        match w.rng.u8(0..100) {
            0..=44 => {
                let i = w.rng.usize(0..n);
                w.write(i);
            }
            45..=84 => {
                w.step_network(true);
            }
            85..=91 => {
                let (a, b) = (w.rng.usize(0..n), w.rng.usize(0..n));
                if w.linked(a, b) {
                    w.start_round(a, b);
                }
            }
            92..=95 => {
                let i = w.rng.usize(0..n);
                w.cut[i] = !w.cut[i];
            }
            _ => {
                let i = w.rng.usize(0..n);
                let key = w.key.clone();
                w.replicas[i].restart(&key);
            }
        }
    }
    // Everyone joins (a replica that never wrote has not yet).
    for i in 0..n {
        if !w.replicas[i].joined {
            w.write(i);
        }
    }
    // Heal, then let catch-up alone finish the job over a reliable network.
    w.cut = vec![false; n];
    for _round in 0..20 {
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    w.start_round(a, b);
                }
            }
        }
        let mut budget = 100_000;
        while w.step_network(false) {
            budget -= 1;
            if budget == 0 {
                return Err("the network did not go quiet".into());
            }
        }
        let d0 = w.replicas[0].dag.digest();
        if w.replicas.iter().all(|r| r.dag.digest() == d0) {
            break;
        }
    }
    let first = &w.replicas[0];
    let json0 = first.doc.get_deep_value();
    for (i, r) in w.replicas.iter().enumerate() {
        if r.dag.heads() != first.dag.heads() {
            return Err(format!("replica {i} has other heads than replica 0"));
        }
        if r.dag.vector() != first.dag.vector() {
            return Err(format!("replica {i} has another seq vector"));
        }
        let json = r.doc.get_deep_value();
        if json != json0 {
            return Err(format!(
                "replica {i} state {json:?} != replica 0 state {json0:?}"
            ));
        }
        if r.members.iter().count() != n {
            return Err(format!(
                "replica {i} knows {} members, not {n}",
                r.members.iter().count()
            ));
        }
    }
    assert_eq!(w.creator, first.secret.public());
    Ok(())
}

#[test]
fn seeded_simulation_converges() {
    if let Ok(seed) = std::env::var("MERO_SIM_SEED") {
        let seed: u64 = seed.parse().expect("MERO_SIM_SEED is a number");
        if let Err(e) = run(seed) {
            panic!("seed {seed}: {e}");
        }
        return;
    }
    let seeds: u64 = std::env::var("MERO_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    for seed in 0..seeds {
        if let Err(e) = run(seed) {
            panic!(
                "seed {seed} did not converge: {e}\nreplay: MERO_SIM_SEED={seed} cargo test --release --workspace --test sim"
            );
        }
    }
}
