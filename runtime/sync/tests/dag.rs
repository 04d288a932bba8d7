//! The DAG's decisions, one rule at a time.

use mero_engine::DeltaPayload;
use mero_sync::dag::Notes;
use mero_sync::delta::{Draft, GENESIS_EPOCH};
use mero_sync::ids::{AppHash, ContextId, DeltaId};
use mero_sync::{ContextKey, Dag, MemberSecret, Op, Reject, SignedDelta};

const CTX: ContextId = ContextId([1; 32]);
const APP: AppHash = AppHash([2; 32]);

fn op(n: u8) -> Op {
    Op::Call(DeltaPayload {
        update: vec![n],
        events: vec![],
    })
}

fn draft(seq: u64, parents: Vec<DeltaId>) -> Draft {
    Draft {
        context: CTX,
        seq,
        parents,
        app: APP,
        epoch: GENESIS_EPOCH,
        clock: 0,
    }
}

fn delta(who: &MemberSecret, seq: u64, parents: Vec<DeltaId>) -> SignedDelta {
    SignedDelta::create(
        who,
        &ContextKey([9; 32]),
        draft(seq, parents),
        &op(seq as u8),
    )
}

fn accept_all(dag: &mut Dag, d: SignedDelta) -> mero_sync::dag::Received {
    dag.receive(d, |_, _, _| Ok(Notes::default()))
}

#[test]
fn out_of_order_deltas_wait_for_parents_and_apply_in_causal_order() {
    let a = MemberSecret::generate();
    let d1 = delta(&a, 1, vec![]);
    let d2 = delta(&a, 2, vec![d1.id()]);
    let d3 = delta(&a, 3, vec![d2.id()]);
    let mut dag = Dag::new(CTX);
    assert!(accept_all(&mut dag, d3.clone()).buffered);
    assert!(accept_all(&mut dag, d2.clone()).buffered);
    assert_eq!(dag.wanted(), vec![d1.id()]);
    let r = accept_all(&mut dag, d1.clone());
    assert_eq!(r.applied, vec![d1.id(), d2.id(), d3.id()]);
    assert_eq!(dag.heads(), vec![d3.id()]);
    assert_eq!(dag.vector()[&a.public()], 3);
    assert_eq!(dag.pending_len(), 0);
}

#[test]
fn duplicates_forgeries_and_gaps_are_refused_and_equivocations_recorded() {
    let a = MemberSecret::generate();
    let d1 = delta(&a, 1, vec![]);
    let mut dag = Dag::new(CTX);
    accept_all(&mut dag, d1.clone());
    let refused = |dag: &mut Dag, d: SignedDelta| accept_all(dag, d).rejected[0].1.clone();
    assert_eq!(refused(&mut dag, d1.clone()), Reject::Duplicate);
    let mut forged = delta(&a, 2, vec![d1.id()]);
    forged.body.payload.push(0);
    assert_eq!(refused(&mut dag, forged), Reject::BadSignature);
    let mut foreign = delta(&a, 2, vec![d1.id()]);
    foreign.body.header.context = ContextId([3; 32]);
    assert_eq!(refused(&mut dag, foreign), Reject::WrongContext);
    // Skipping a seq is refused once the parents are in.
    let gap = delta(&a, 5, vec![d1.id()]);
    assert_eq!(refused(&mut dag, gap), Reject::SeqGap);
    // A seq 2 that does not name the author's seq 1 as a parent: a silent
    // branch of its chain, refused.
    let branch = delta(&a, 2, vec![]);
    assert_eq!(refused(&mut dag, branch), Reject::SeqGap);
    assert_eq!(dag.len(), 1);
    // Same seq, other content: an equivocation. Recorded (so nothing that
    // builds on it is stuck), and listed as a fork.
    let other = SignedDelta::create(&a, &ContextKey([9; 32]), draft(1, vec![]), &op(7));
    assert_eq!(
        accept_all(&mut dag, other.clone()).applied,
        vec![other.id()]
    );
    assert_eq!(dag.forks(), &[(d1.id(), other.id())]);
    assert_eq!(dag.vector()[&a.public()], 1);
}

#[test]
fn a_refused_delta_drops_its_waiting_descendants() {
    let a = MemberSecret::generate();
    let d1 = delta(&a, 1, vec![]);
    let d2 = delta(&a, 2, vec![d1.id()]);
    let mut dag = Dag::new(CTX);
    accept_all(&mut dag, d2);
    let r = dag.receive(d1, |_, _, _| Err(Reject::NotMember("test".into())));
    assert_eq!(r.rejected.len(), 2);
    assert_eq!(r.rejected[1].1, Reject::Orphaned);
    assert_eq!(dag.pending_len(), 0);
    assert!(dag.is_empty());
}

#[test]
fn the_buffer_is_bounded() {
    let a = MemberSecret::generate();
    let mut dag = Dag::new(CTX).with_max_pending(2);
    let missing = DeltaId([7; 32]);
    for seq in 2..4 {
        assert!(accept_all(&mut dag, delta(&a, seq, vec![missing])).buffered);
    }
    let r = accept_all(&mut dag, delta(&a, 3, vec![DeltaId([8; 32])]));
    assert_eq!(r.rejected[0].1, Reject::BufferFull);
}

#[test]
fn missing_for_pages_exactly_what_a_vector_lacks_parents_first() {
    let (a, b) = (MemberSecret::generate(), MemberSecret::generate());
    let mut dag = Dag::new(CTX);
    let mut heads = vec![];
    let mut all: Vec<DeltaId> = vec![];
    for i in 0..10u64 {
        let who = if i % 2 == 0 { &a } else { &b };
        let mut parents = heads.clone();
        if i >= 2 {
            parents.push(all[i as usize - 2]);
        }
        let d = delta(who, i / 2 + 1, parents);
        heads = vec![d.id()];
        all.push(d.id());
        accept_all(&mut dag, d);
    }
    let mut since = dag.vector();
    since.insert(a.public(), 2);
    since.insert(b.public(), 1);
    let (page, more) = dag.missing_for(&since, 3);
    assert!(more);
    assert_eq!(page, all[3..6].to_vec());
    let (rest, more) = dag.missing_for(&since, 100);
    assert!(!more);
    assert_eq!(rest, all[3..].to_vec());
    assert!(dag.missing_for(&dag.vector(), 100).0.is_empty());
}

#[test]
fn parents_are_bounded_and_the_buffer_is_bounded_in_bytes() {
    let a = MemberSecret::generate();
    let mut dag = Dag::new(CTX).with_max_pending_bytes(4096);
    let many: Vec<DeltaId> = (0..=mero_sync::dag::MAX_PARENTS as u32)
        .map(|i| {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_le_bytes());
            DeltaId(id)
        })
        .collect();
    let r = accept_all(&mut dag, delta(&a, 2, many));
    assert_eq!(
        r.rejected[0].1,
        Reject::Invalid("more parents than a delta may name")
    );
    assert_eq!(dag.pending_len(), 0);
    // Deltas waiting for a missing parent fill the byte budget, then are refused.
    let missing = DeltaId([7; 32]);
    let big = |seq| {
        let op = Op::Call(DeltaPayload {
            update: vec![0; 1500],
            events: vec![],
        });
        SignedDelta::create(&a, &ContextKey([9; 32]), draft(seq, vec![missing]), &op)
    };
    assert!(accept_all(&mut dag, big(2)).buffered);
    assert!(accept_all(&mut dag, big(3)).buffered);
    assert_eq!(
        accept_all(&mut dag, big(4)).rejected[0].1,
        Reject::BufferFull
    );
    assert!(dag.pending_bytes() <= 4096);
}
