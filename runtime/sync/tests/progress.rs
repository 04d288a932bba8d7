//! Peer views from catch-up messages: the arithmetic, each view from
//! crafted DAGs (a fork included), agreement with `after_digest`, and
//! every pair in sync after a partition heals.

use mero_engine::DeltaPayload;
use mero_sync::dag::{Notes, SeqVector};
use mero_sync::delta::{Draft, GENESIS_EPOCH};
use mero_sync::ids::{AppHash, ContextId, DeltaId, MemberKey};
use mero_sync::progress::{PeerView, lag, view_of_digest, view_of_request};
use mero_sync::protocol::{Request, Response, after_digest, answer};
use mero_sync::{ContextKey, Dag, MemberSecret, Op, SignedDelta};

const CTX: ContextId = ContextId([1; 32]);

fn delta(who: &MemberSecret, seq: u64, parents: Vec<DeltaId>, n: u8) -> SignedDelta {
    let draft = Draft {
        context: CTX,
        seq,
        parents,
        app: AppHash([2; 32]),
        epoch: GENESIS_EPOCH,
        clock: 0,
    };
    let op = Op::Call(DeltaPayload {
        update: vec![n],
        events: vec![],
    });
    SignedDelta::create(who, &ContextKey([9; 32]), draft, &op)
}

/// A replica: its DAG and the deltas it stores (to answer pages).
#[derive(Default)]
struct Rep {
    dag: Option<Dag>,
    store: Vec<SignedDelta>,
}

impl Rep {
    fn new() -> Self {
        Rep {
            dag: Some(Dag::new(CTX)),
            store: Vec::new(),
        }
    }
    fn dag(&self) -> &Dag {
        self.dag.as_ref().expect("dag")
    }
    fn take(&mut self, d: SignedDelta) {
        let dag = self.dag.as_mut().expect("dag");
        let r = dag.receive(d.clone(), |_, _, _| Ok(Notes::default()));
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        self.store.push(d);
    }
    /// Writes this author's next delta on its current heads.
    fn write(&mut self, who: &MemberSecret, n: u8) -> SignedDelta {
        let seq = self.dag().seq_of(&who.public()) + 1;
        // Parents: the heads, and the author's previous delta (required).
        let mut parents = self.dag().heads();
        if let Some(prev) = self.dag().by_seq(&who.public(), seq - 1)
            && !parents.contains(&prev)
        {
            parents.push(prev);
        }
        let d = delta(who, seq, parents, n);
        self.take(d.clone());
        d
    }
    /// The digest exchange `self` opens towards `peer`: `self`'s view of
    /// the answer, and `peer`'s view of the request.
    fn ask(&self, peer: &Rep) -> (PeerView, Option<PeerView>) {
        let req = Request::Digest {
            context: CTX,
            digest: self.dag().digest(),
        };
        let source = |id: &DeltaId| peer.store.iter().find(|d| d.id() == *id).cloned();
        let (resp, _) = answer(peer.dag(), &source, &req);
        let mine = view_of_digest(self.dag(), &resp).expect("a digest answer");
        assert_agrees(self.dag(), &resp, mine);
        (mine, view_of_request(peer.dag(), &req))
    }
    /// Pulls everything `peer` has that `self` lacks, as catch-up does.
    fn pull(&mut self, peer: &Rep) {
        loop {
            let req = Request::Digest {
                context: CTX,
                digest: self.dag().digest(),
            };
            let source = |id: &DeltaId| peer.store.iter().find(|d| d.id() == *id).cloned();
            let (resp, _) = answer(peer.dag(), &source, &req);
            let Some(next) = after_digest(self.dag(), CTX, &resp) else {
                return;
            };
            if let Request::Page { .. } = next {
                assert!(matches!(
                    view_of_request(peer.dag(), &next),
                    Some(PeerView::Ahead { .. } | PeerView::Diverged { .. })
                ));
            }
            let (Response::Deltas { deltas, .. }, _) = answer(peer.dag(), &source, &next) else {
                panic!("deltas expected");
            };
            assert!(!deltas.is_empty(), "a round that asks gets something");
            for d in deltas {
                if !self.dag().contains(&d.id()) {
                    self.take(d);
                }
            }
        }
    }
}

/// `after_digest` asks for a page iff the view says the peer has more,
/// for heads iff it is a fork, and nothing otherwise.
fn assert_agrees(dag: &Dag, resp: &Response, view: PeerView) {
    match (after_digest(dag, CTX, resp), view) {
        (Some(Request::Page { .. }), PeerView::Behind { .. } | PeerView::Diverged { .. }) => {}
        (Some(Request::ById { .. }), PeerView::Forked { .. }) => {}
        (None, PeerView::InSync | PeerView::Ahead { .. }) => {}
        (next, view) => panic!("after_digest {next:?} disagrees with {view:?}"),
    }
}

fn key(n: u8) -> MemberKey {
    MemberKey([n; 32])
}

fn vector(pairs: &[(u8, u64)]) -> SeqVector {
    pairs.iter().map(|(k, n)| (key(*k), *n)).collect()
}

#[test]
fn lag_sums_each_direction_over_disjoint_authors_and_saturates() {
    assert_eq!(lag(&vector(&[]), &vector(&[])), (0, 0));
    assert_eq!(lag(&vector(&[(1, 3)]), &vector(&[(1, 5)])), (2, 0));
    assert_eq!(lag(&vector(&[(1, 5)]), &vector(&[(1, 3)])), (0, 2));
    // Authors only one side knows count in full.
    assert_eq!(
        lag(&vector(&[(1, 4), (2, 1)]), &vector(&[(3, 7), (2, 2)])),
        (8, 4)
    );
    let huge = vector(&[(1, u64::MAX), (2, u64::MAX)]);
    assert_eq!(lag(&vector(&[]), &huge), (u64::MAX, 0));
    assert_eq!(lag(&huge, &vector(&[])), (0, u64::MAX));
}

#[test]
fn each_view_from_crafted_dags() {
    let (a, b) = (MemberSecret::generate(), MemberSecret::generate());
    let (mut x, mut y) = (Rep::new(), Rep::new());
    // Both empty: in sync both ways.
    assert_eq!(x.ask(&y), (PeerView::InSync, Some(PeerView::InSync)));

    // x writes twice: y is behind x by 2, x ahead of y by 2.
    x.write(&a, 1);
    x.write(&a, 2);
    assert_eq!(y.ask(&x), (PeerView::Behind { lacking: 2 }, None));
    assert_eq!(x.ask(&y).0, PeerView::Ahead { extra: 2 });
    y.pull(&x);
    assert_eq!(y.ask(&x), (PeerView::InSync, Some(PeerView::InSync)));

    // Concurrent writes: diverged, with each side's count.
    x.write(&a, 3);
    y.write(&b, 4);
    y.write(&b, 5);
    assert_eq!(
        x.ask(&y).0,
        PeerView::Diverged {
            lacking: 2,
            extra: 1
        }
    );
    // A page request from y carries y's vector: x sees the same split.
    let page = Request::Page {
        context: CTX,
        since: y.dag().vector(),
        limit: 500,
    };
    assert_eq!(
        view_of_request(x.dag(), &page),
        Some(PeerView::Diverged {
            lacking: 2,
            extra: 1
        })
    );
    x.pull(&y);
    y.pull(&x);
    assert_eq!(x.ask(&y).0, PeerView::InSync);

    // Other messages carry no position.
    let other = Response::Deltas {
        deltas: vec![],
        more: false,
    };
    assert_eq!(view_of_digest(x.dag(), &other), None);
    let by_id = Request::ById {
        context: CTX,
        ids: vec![],
    };
    assert_eq!(view_of_request(x.dag(), &by_id), None);
}

#[test]
fn an_equivocation_is_a_fork_until_the_heads_are_fetched() {
    let (a, cheat) = (MemberSecret::generate(), MemberSecret::generate());
    let (mut x, mut y) = (Rep::new(), Rep::new());
    let base = x.write(&a, 1);
    y.take(base.clone());
    // The same seq, two contents, one to each side.
    x.take(delta(&cheat, 1, vec![base.id()], 10));
    y.take(delta(&cheat, 1, vec![base.id()], 11));
    assert_eq!(x.dag().vector(), y.dag().vector());
    assert_eq!(x.ask(&y), (PeerView::Forked { heads: 1 }, None));
    assert_eq!(y.ask(&x).0, PeerView::Forked { heads: 1 });
    x.pull(&y);
    y.pull(&x);
    assert_eq!(x.ask(&y), (PeerView::InSync, Some(PeerView::InSync)));
}

#[test]
fn caught_up_between_asking_and_the_answer_is_in_sync() {
    let a = MemberSecret::generate();
    let (mut x, y) = (Rep::new(), Rep::new());
    x.write(&a, 1);
    // y answered a stale digest of x's: differing, with y's (equal by now)
    // vector and no head x lacks.
    let resp = Response::Digest {
        in_sync: false,
        vector: Some(x.dag().vector()),
        heads: x.dag().heads(),
    };
    let view = view_of_digest(x.dag(), &resp).expect("view");
    assert_eq!(view, PeerView::InSync);
    assert_agrees(x.dag(), &resp, view);
    assert_eq!(y.dag().len(), 0);
}

/// `reps[me]` pulls from `reps[from]`.
fn pull_pair(reps: &mut [Rep], me: usize, from: usize) {
    let mut r = std::mem::take(&mut reps[me]);
    r.pull(&reps[from]);
    reps[me] = r;
}

#[test]
fn after_a_partition_heals_every_pair_is_in_sync() {
    let authors: Vec<MemberSecret> = (0..3).map(|_| MemberSecret::generate()).collect();
    let mut reps: Vec<Rep> = (0..3).map(|_| Rep::new()).collect();
    let first = reps[0].write(&authors[0], 0);
    for r in reps.iter_mut().skip(1) {
        r.take(first.clone());
    }
    // Partition {0, 1} | {2}: both sides write, the majority side syncs.
    let mut rng = fastrand::Rng::with_seed(7);
    for n in 0..30u8 {
        let i = rng.usize(0..3);
        reps[i].write(&authors[i], n + 1);
        if i < 2 {
            pull_pair(&mut reps, 1 - i, i);
        }
    }
    reps[0].write(&authors[0], 100);
    reps[2].write(&authors[2], 101);
    pull_pair(&mut reps, 1, 0);
    assert!(matches!(reps[2].ask(&reps[0]).0, PeerView::Diverged { .. }));
    assert!(matches!(reps[0].ask(&reps[2]).0, PeerView::Diverged { .. }));
    assert_eq!(reps[0].ask(&reps[1]).0, PeerView::InSync);
    // Heal: every pair exchanges, both ways, as both sides' rounds do.
    for me in 0..3 {
        for from in 0..3 {
            if me != from {
                pull_pair(&mut reps, me, from);
            }
        }
    }
    for i in 0..3 {
        for j in 0..3 {
            if i != j {
                assert_eq!(
                    reps[i].ask(&reps[j]),
                    (PeerView::InSync, Some(PeerView::InSync))
                );
            }
        }
    }
}
