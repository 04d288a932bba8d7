//! Seeded simulation of the sync protocol with honest and hostile actors,
//! all driving the same `Replica` code as the node.
//!
//! Honest replicas write concurrently while the network drops, duplicates
//! and reorders messages, partitions, and replicas restart losing
//! everything not persisted; the admin may remove a member mid-run. A
//! hostile member equivocates (two deltas, one seq, one to each half),
//! copies honest payloads under its own headers, writes ops under another
//! member's peer id and replays old deltas; an outsider forges and copies
//! joins. After healing, catch-up must bring every honest replica to the
//! same state, heads, and access (the equivocator flagged), and no hostile
//! delta may take effect.
//!
//! `MERO_SIM_SEEDS=N` runs seeds `0..N` (default 1000);
//! `MERO_SIM_SEED=S` replays one seed.

mod common;

use common::{APP, Peer};
use loro::ExportMode;
use mero_engine::{ContextState, DeltaPayload};
use mero_sync::delta::{Evidence, SignedHeader};
use mero_sync::ids::{DeltaId, MemberKey};
use mero_sync::protocol::{self, Request, Response};
use mero_sync::{InvitationToken, MemberSecret, Op, Reject, Role, SignedDelta};

const LATER: u64 = u64::MAX / 2;

struct World {
    rng: fastrand::Rng,
    /// Honest replicas; 0 is the creator (admin).
    peers: Vec<Peer>,
    tokens: Vec<Option<InvitationToken>>,
    /// Index of a removed member, once removed.
    removed: Option<usize>,
    /// The hostile member (a writer), and whether it equivocated.
    evil: Peer,
    forked: bool,
    /// Ids of hostile deltas that must never be applied anywhere.
    poison: Vec<DeltaId>,
    outsider: MemberSecret,
    queue: Vec<Msg>,
    cut: Vec<bool>,
    drop_rate: f64,
    dup_rate: f64,
}

#[derive(Clone)]
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

impl World {
    fn new(seed: u64, n: usize) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut admin = Peer::create(seed as u8);
        let mut tokens = vec![None];
        let mut peers = Vec::new();
        for i in 1..n {
            let role = if i == n - 1 && seed.is_multiple_of(5) {
                Role::Reader
            } else {
                Role::Writer
            };
            let (_, t) = admin.invite(role, 1, LATER);
            peers.push(Peer::invited(&t));
            tokens.push(Some(t));
        }
        let (_, et) = admin.invite(Role::Writer, 1, LATER);
        let mut evil = Peer::invited(&et);
        evil.sync_from(&admin);
        let ej = evil.join(&et, 1).unwrap();
        admin.receive(vec![ej]);
        for p in &mut peers {
            p.sync_from(&admin);
        }
        evil.sync_from(&admin);
        peers.insert(0, admin);
        let drop_rate = rng.f64() * 0.4;
        let dup_rate = rng.f64() * 0.3;
        Self {
            rng,
            peers,
            tokens,
            removed: None,
            evil,
            forked: false,
            poison: Vec::new(),
            outsider: MemberSecret::generate(),
            queue: Vec::new(),
            cut: vec![false; n],
            drop_rate,
            dup_rate,
        }
    }

    fn n(&self) -> usize {
        self.peers.len()
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        a != b && !self.cut[a] && !self.cut[b]
    }

    fn send(&mut self, msg: Msg) {
        if self.rng.f64() < self.dup_rate {
            self.queue.push(msg.clone());
        }
        self.queue.push(msg);
    }

    fn gossip(&mut self, from: usize, delta: &SignedDelta) {
        for to in 0..self.n() {
            if self.linked(from, to) {
                self.send(Msg::Gossip {
                    from,
                    to,
                    delta: delta.clone(),
                });
            }
        }
    }

    /// An honest write (or the first action of a member: its join).
    fn write(&mut self, i: usize) {
        if let Some(t) = self.tokens[i].take() {
            if let Ok(d) = self.peers[i].join(&t, 1) {
                self.gossip(i, &d);
            }
            return;
        }
        let k = format!("k{}", self.rng.u8(0..8));
        let v = self.rng.i64(..);
        let pos = self.rng.usize(0..=8);
        let choice = self.rng.u8(0..3);
        let r = self.peers[i].write(|d| match choice {
            0 => d.get_map("m").insert(&k, v).unwrap(),
            1 => d.get_counter("c").increment(1.0).unwrap(),
            _ => {
                let list = d.get_list("l");
                list.insert(pos.min(list.len()), v).unwrap()
            }
        });
        if let Ok(d) = r {
            self.gossip(i, &d);
        }
    }

    /// The admin removes the last member (once).
    fn remove(&mut self) {
        let victim = self.n() - 1;
        if self.removed.is_some() || self.tokens[victim].is_some() {
            return;
        }
        let key = self.peers[victim].key();
        if self.peers[0].replica.access().role(&key).is_none() {
            return;
        }
        let keys = self.peers[0].replica.seal_new_epoch(Some(&key));
        if let Ok(d) = self.peers[0].author(Op::Remove { member: key, keys }) {
            self.removed = Some(victim);
            self.gossip(0, &d);
        }
    }

    /// One hostile action.
    fn attack(&mut self) {
        let n = self.n();
        let to = self.rng.usize(0..n);
        let key = self.evil.replica.current_key().cloned();
        let victim_peer = ContextState::peer_id_for(&self.peers[0].key().0);
        let hostile = match self.rng.u8(0..6) {
            // Equivocate: two deltas with one seq, one to each half.
            0 if !self.forked && self.evil.replica.access().role(&self.evil.key()).is_some() => {
                let Some(key) = key else { return };
                let draft = self.evil.replica.draft(&self.evil.key(), APP);
                // Continue the evil peer's own counter: fresh ops on top of its doc.
                let start = draft.clock;
                let mut deltas = Vec::new();
                for (v, pad) in [(1, 1), (2, 2)] {
                    let doc = loro::LoroDoc::new();
                    doc.set_peer_id(ContextState::peer_id_for(&self.evil.key().0))
                        .unwrap();
                    doc.import(&self.evil.doc.doc.export(ExportMode::all_updates()).unwrap())
                        .unwrap();
                    let before = doc.oplog_vv();
                    for i in 0..pad {
                        doc.get_map("evil").insert(&format!("p{i}"), v).unwrap();
                    }
                    doc.commit();
                    let update = doc.export(ExportMode::updates(&before)).unwrap();
                    let mut d = draft.clone();
                    d.clock = start + pad as u32;
                    let op = Op::Call(DeltaPayload {
                        update,
                        events: vec![],
                    });
                    deltas.push(SignedDelta::create(&self.evil.secret, &key, d, &op));
                }
                self.forked = true;
                for (i, to) in (0..n).enumerate() {
                    self.send(Msg::Gossip {
                        from: usize::MAX,
                        to,
                        delta: deltas[i % 2].clone(),
                    });
                }
                return;
            }
            // Copy an honest payload under the evil member's own header.
            1 => {
                let src = &self.peers[self.rng.usize(0..n)].disk;
                let Some(real) = src.get(self.rng.usize(0..src.len().max(1))).cloned() else {
                    return;
                };
                let draft = self.evil.replica.draft(&self.evil.key(), APP);
                let Some(key) = key else { return };
                let mut d = SignedDelta::create(&self.evil.secret, &key, draft, &Op::Leave);
                d.body.header.kind = real.header().kind;
                d.body.payload = real.body.payload.clone();
                d.signature = self.evil.secret.sign(b"mero-delta-v2", &d.id().0);
                d
            }
            // Ops under the admin's peer id, ahead of its counter.
            2 => {
                let Some(key) = key else { return };
                let doc = loro::LoroDoc::new();
                doc.set_peer_id(victim_peer).unwrap();
                doc.import(&self.evil.doc.doc.export(ExportMode::all_updates()).unwrap())
                    .unwrap();
                let before = doc.oplog_vv();
                doc.get_map("m").insert("stolen", 1).unwrap();
                doc.get_map("m").insert("stolen2", 1).unwrap();
                doc.commit();
                let update = doc.export(ExportMode::updates(&before)).unwrap();
                let mut draft = self.evil.replica.draft(&self.evil.key(), APP);
                draft.clock += 2;
                let op = Op::Call(DeltaPayload {
                    update,
                    events: vec![],
                });
                SignedDelta::create(&self.evil.secret, &key, draft, &op)
            }
            // An outsider copies a join payload, or forges a member's delta.
            3 => {
                let Some(real) = self.peers[0]
                    .disk
                    .iter()
                    .find(|d| d.header().kind == mero_sync::OpKind::Join)
                    .cloned()
                else {
                    return;
                };
                let mut d = real.clone();
                d.body.header.author = self.outsider.public();
                d.signature = self.outsider.sign(b"mero-delta-v2", &d.id().0);
                d
            }
            // A writer acting as an admin: inviting.
            4 => {
                let Some(key) = key else { return };
                let draft = self.evil.replica.draft(&self.evil.key(), APP);
                let op = Op::Invite(mero_sync::access::Invite {
                    key: MemberSecret::generate().public(),
                    role: Role::Admin,
                    uses: 9,
                    expires_at_ms: LATER,
                });
                SignedDelta::create(&self.evil.secret, &key, draft, &op)
            }
            // Replay something old.
            _ => {
                let src = &self.peers[self.rng.usize(0..n)].disk;
                let Some(real) = src.get(self.rng.usize(0..src.len().max(1))).cloned() else {
                    return;
                };
                self.send(Msg::Gossip {
                    from: usize::MAX,
                    to,
                    delta: real,
                });
                return;
            }
        };
        self.poison.push(hostile.id());
        self.send(Msg::Gossip {
            from: usize::MAX,
            to,
            delta: hostile,
        });
    }

    fn start_round(&mut self, from: usize, to: usize) {
        let r = self.peers[from].replica.dag();
        let req = Request::Digest {
            context: r.context(),
            digest: r.digest(),
        };
        self.send(Msg::Req { from, to, req });
    }

    fn ask_missing(&mut self, me: usize, peer: usize) {
        let ids = self.peers[me].replica.dag().wanted();
        if !ids.is_empty() && peer != usize::MAX {
            let context = self.peers[me].ctx();
            self.send(Msg::Req {
                from: me,
                to: peer,
                req: Request::ById { context, ids },
            });
        }
    }

    /// Receives at `to`; an honest member that sees an equivocation
    /// publishes the evidence.
    fn receive(&mut self, to: usize, from: usize, deltas: Vec<SignedDelta>) -> Result<(), String> {
        let out = self.peers[to].receive(deltas);
        for (id, why) in &out.rejected {
            let hostile = self.poison.contains(id) || self.by_hostile(id);
            let harmless = matches!(
                why,
                Reject::Duplicate | Reject::BufferFull | Reject::Orphaned
            );
            if !hostile && !harmless && Some(to) != self.removed {
                return Err(format!("replica {to} refused an honest delta {id}: {why}"));
            }
        }
        for (id, _, _) in &out.applied {
            if self.poison.contains(id) {
                return Err(format!("replica {to} applied hostile delta {id}"));
            }
        }
        if out.rebuild || !out.forks.is_empty() {
            self.publish_evidence(to, &out.forks);
        }
        if out.buffered > 0 {
            self.ask_missing(to, from);
        }
        Ok(())
    }

    fn by_hostile(&self, id: &DeltaId) -> bool {
        // Deltas of the evil member are judged on their own; any refusal of
        // theirs is fine. Honest ones are in someone's disk.
        !self.peers.iter().any(|p| p.index.contains_key(id)) || self.evil.index.contains_key(id)
    }

    fn publish_evidence(&mut self, i: usize, forks: &[(DeltaId, DeltaId)]) {
        let p = &self.peers[i];
        let access = p.replica.access();
        if access.role(&p.key()).is_none() {
            return;
        }
        for fork in forks {
            let Some((forker, _)) = p.replica.dag().author_seq(&fork.0) else {
                continue;
            };
            if access.flagged().contains_key(&forker) {
                continue;
            }
            let (a, b) = (&p.disk[p.index[&fork.0]], &p.disk[p.index[&fork.1]]);
            let ev = Evidence {
                a: SignedHeader::of(a),
                b: SignedHeader::of(b),
            };
            if let Ok(d) = self.peers[i].author(Op::Evidence(Box::new(ev))) {
                self.gossip(i, &d);
            }
            return;
        }
    }

    fn deliver(&mut self, msg: Msg, lossy: bool) -> Result<(), String> {
        let (from, to) = match &msg {
            Msg::Gossip { from, to, .. }
            | Msg::Req { from, to, .. }
            | Msg::Resp { from, to, .. } => (*from, *to),
        };
        let hostile = from == usize::MAX;
        if (!hostile && !self.linked(from, to)) || (lossy && self.rng.f64() < self.drop_rate) {
            return Ok(());
        }
        match msg {
            Msg::Gossip { delta, .. } => self.receive(to, from, vec![delta])?,
            Msg::Req { req, .. } => {
                let p = &self.peers[to];
                let source = |id: &DeltaId| p.index.get(id).map(|i| p.disk[*i].clone());
                let (resp, differ) = protocol::answer(p.replica.dag(), &source, &req);
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
                let ctx = self.peers[to].ctx();
                let next = match &resp {
                    Response::Digest { .. } => {
                        protocol::after_digest(self.peers[to].replica.dag(), ctx, &resp)
                    }
                    Response::Deltas { deltas, more } => {
                        self.receive(to, from, deltas.clone())?;
                        protocol::next_page(self.peers[to].replica.dag(), ctx, *more)
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
        Ok(())
    }

    fn step_network(&mut self, lossy: bool) -> Result<bool, String> {
        if self.queue.is_empty() {
            return Ok(false);
        }
        let i = self.rng.usize(0..self.queue.len());
        let msg = self.queue.swap_remove(i);
        self.deliver(msg, lossy)?;
        Ok(true)
    }
}

/// What a run exercised, to show the hostile paths are taken.
#[derive(Default)]
struct Seen {
    flagged: bool,
    removed: bool,
    poison: usize,
}

fn run(seed: u64) -> Result<Seen, String> {
    let n = 3 + (seed % 3) as usize;
    let mut w = World::new(seed, n);
    let steps = 150 + w.rng.usize(0..150);
    for _ in 0..steps {
        match w.rng.u8(0..100) {
            0..=39 => {
                let i = w.rng.usize(0..n);
                w.write(i);
            }
            40..=76 => {
                w.step_network(true)?;
            }
            77..=82 => {
                let (a, b) = (w.rng.usize(0..n), w.rng.usize(0..n));
                if w.linked(a, b) {
                    w.start_round(a, b);
                }
            }
            83..=86 => {
                let i = w.rng.usize(0..n);
                w.cut[i] = !w.cut[i];
            }
            87..=93 => w.attack(),
            94..=95 if seed % 3 == 1 => w.remove(),
            _ => {
                let i = w.rng.usize(0..n);
                w.peers[i].restart();
            }
        }
    }
    for i in 0..n {
        if w.tokens[i].is_some() {
            w.write(i);
        }
    }
    // Heal, then let catch-up alone finish the job over a reliable network.
    // The removed member is out: non-members get nothing.
    w.cut = (0..n).map(|i| Some(i) == w.removed).collect();
    let honest: Vec<usize> = (0..n).filter(|i| Some(*i) != w.removed).collect();
    for _round in 0..30 {
        for &a in &honest {
            for &b in &honest {
                if a != b {
                    w.start_round(a, b);
                }
            }
        }
        let mut budget = 200_000;
        while w.step_network(false)? {
            budget -= 1;
            if budget == 0 {
                let lens: Vec<_> = w
                    .peers
                    .iter()
                    .map(|p| {
                        (
                            p.replica.dag().len(),
                            p.replica.dag().pending_len(),
                            p.replica.dag().wanted().len(),
                        )
                    })
                    .collect();
                return Err(format!(
                    "the network did not go quiet: (applied, pending, wanted) {lens:?}"
                ));
            }
        }
        let d0 = w.peers[0].replica.dag().digest();
        if honest
            .iter()
            .all(|&i| w.peers[i].replica.dag().digest() == d0)
        {
            break;
        }
    }
    let first = &w.peers[0];
    let json0 = first.state();
    let access0 = first.replica.access();
    for &i in &honest {
        let r = &w.peers[i];
        if r.replica.dag().heads() != first.replica.dag().heads() {
            return Err(format!("replica {i} has other heads than replica 0"));
        }
        if r.state() != json0 {
            return Err(format!(
                "replica {i} state {:?} != replica 0 state {json0:?}",
                r.state()
            ));
        }
        if r.replica.access() != access0 {
            return Err(format!("replica {i} has another access state"));
        }
    }
    let outsider: MemberKey = w.outsider.public();
    if access0.member(&outsider).is_some() {
        return Err("the outsider became a member".into());
    }
    let active = access0.members().filter(|(_, m)| m.active()).count();
    let expected = n + 1 - usize::from(w.removed.is_some());
    if active != expected {
        return Err(format!("{active} active members, expected {expected}"));
    }
    if w.forked
        && first.replica.forked().contains(&w.evil.key())
        && !access0.flagged().contains_key(&w.evil.key())
    {
        return Err("the equivocator was seen but not flagged".into());
    }
    Ok(Seen {
        flagged: access0.flagged().contains_key(&w.evil.key()),
        removed: w.removed.is_some(),
        poison: w.poison.len(),
    })
}

#[test]
fn seeded_simulation_converges_with_hostile_actors() {
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
    let (mut flagged, mut removed, mut poison) = (0, 0, 0);
    for seed in 0..seeds {
        match run(seed) {
            Ok(seen) => {
                flagged += usize::from(seen.flagged);
                removed += usize::from(seen.removed);
                poison += seen.poison;
            }
            Err(e) => panic!(
                "seed {seed} did not converge: {e}\nreplay: MERO_SIM_SEED={seed} cargo test --release --workspace --test sim"
            ),
        }
    }
    eprintln!(
        "{seeds} seeds: equivocator flagged in {flagged}, a member removed in {removed}, {poison} hostile deltas refused"
    );
    if seeds >= 100 {
        let s = seeds as usize;
        assert!(
            flagged * 5 >= s,
            "equivocation is exercised in too few seeds"
        );
        assert!(removed * 10 >= s, "removal is exercised in too few seeds");
        assert!(poison >= s, "too few hostile deltas");
    }
}
