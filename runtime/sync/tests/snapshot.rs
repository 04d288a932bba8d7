//! Checkpoints and snapshot joins: a replica rebuilt from a checkpoint, or
//! a joiner installing a snapshot, decides exactly as the replica that
//! replayed every delta; and a snapshot a sender tampered with is refused.

mod common;

use common::{Doc, Peer};
use loro::ExportMode;
use mero_sync::checkpoint::Checkpoint;
use mero_sync::delta::SignedHeader;
use mero_sync::replica::Limits;
use mero_sync::snapshot::{
    self, Manifest, Snapshot, SnapshotError, SnapshotLimits, Target, frontier_ids,
};
use mero_sync::{InvitationToken, MemberSecret, Op, Replica, Role, SignedDelta};

const LIMITS: SnapshotLimits = SnapshotLimits {
    max_bytes: 1 << 30,
    replica: Limits {
        max_events: 256,
        max_payload: 16 << 20,
        max_pending: 10_000,
        max_pending_bytes: 64 << 20,
        max_pending_per_author: 2_500,
    },
};

fn put(p: &mut Peer, k: &str, v: i64) -> SignedDelta {
    p.write(|d| d.get_map("m").insert(k, v).unwrap()).unwrap()
}

/// A history with concurrent writers, a removal (a key rotation) and an
/// open invitation; returns the admin, a writer, the removed writer (who
/// has not seen its removal) and a token for a newcomer.
fn history() -> (Peer, Peer, Peer, InvitationToken) {
    let mut admin = Peer::create(1);
    let (_, t1) = admin.invite(Role::Writer, 1, u64::MAX);
    let mut w1 = Peer::invited(&t1);
    w1.sync_from(&admin);
    w1.join(&t1, 1).unwrap();
    let (_, t2) = admin.invite(Role::Writer, 1, u64::MAX);
    let mut w2 = Peer::invited(&t2);
    w2.sync_from(&admin);
    w2.join(&t2, 1).unwrap();
    admin.sync_from(&w1);
    admin.sync_from(&w2);
    w1.sync_from(&admin);
    w2.sync_from(&admin);
    for i in 0..40 {
        // Concurrent branches: each writes before seeing the others.
        put(&mut admin, &format!("a{i}"), i);
        put(&mut w1, &format!("b{i}"), i);
        put(&mut w2, &format!("c{i}"), i);
        if i % 3 == 0 {
            admin.sync_from(&w1);
            admin.sync_from(&w2);
            w1.sync_from(&admin);
            w2.sync_from(&admin);
        }
    }
    admin.sync_from(&w1);
    admin.sync_from(&w2);
    // w1 goes offline with what it has; the admin removes w2 (a rotation).
    let sealed = admin.replica.seal_new_epoch(Some(&w2.key()));
    admin
        .author(Op::Remove {
            member: w2.key(),
            keys: sealed,
        })
        .unwrap();
    w1.sync_from(&admin);
    for i in 0..10 {
        put(&mut admin, &format!("d{i}"), i);
    }
    let (_, token) = admin.invite(Role::Writer, 1, u64::MAX);
    (admin, w1, w2, token)
}

/// The snapshot `p` would serve.
fn snapshot_of(p: &Peer) -> Snapshot {
    let cp = p.replica.checkpoint();
    let control = cp
        .control
        .iter()
        .map(|pos| p.disk[*pos as usize].clone())
        .collect();
    let frontier = frontier_ids(p.replica.dag())
        .iter()
        .map(|id| SignedHeader::of(&p.disk[p.index[id]]))
        .collect();
    let state = p.doc.doc.export(ExportMode::Snapshot).unwrap();
    Snapshot {
        checkpoint: cp,
        control,
        frontier,
        state,
    }
}

fn target(t: &InvitationToken) -> Target {
    Target {
        context: t.context,
        creator: t.creator,
        heads: t.heads.clone(),
    }
}

/// Installs `s`, signed by `sender`, as a holder of `token` would.
fn install(
    token: &InvitationToken,
    s: &Snapshot,
    sender: &MemberSecret,
) -> Result<(Peer, snapshot::Installed), SnapshotError> {
    let (m, parts) = snapshot::build(s, sender);
    install_parts(token, &m, &parts)
}

fn install_parts(
    token: &InvitationToken,
    m: &Manifest,
    parts: &[Vec<u8>],
) -> Result<(Peer, snapshot::Installed), SnapshotError> {
    let mut joiner = Peer::invited(token);
    let mut openers = joiner.openers.clone();
    openers.push(joiner.secret.clone());
    let mut doc = Doc::default_for(&joiner.secret);
    let installed = snapshot::install(
        &target(token),
        m,
        parts,
        joiner.keys.clone(),
        openers,
        &LIMITS,
        &mut doc,
    )?;
    joiner.doc = doc;
    Ok((joiner, installed))
}

/// Equal in everything a decision about a new delta reads: heads, vector,
/// log, and per delta its height, clock and access view (view *indices*
/// are local: a replica that received in other batches numbers them
/// differently).
fn same_replica(a: &Replica, b: &Replica) {
    assert_eq!(a.dag().heads(), b.dag().heads());
    assert_eq!(a.dag().vector(), b.dag().vector());
    assert_eq!(a.dag().log(), b.dag().log());
    assert_eq!(a.access(), b.access());
    assert_eq!(a.dag().forks(), b.dag().forks());
    for id in a.dag().log() {
        assert_eq!(a.dag().height(id), b.dag().height(id));
        assert_eq!(
            a.dag().notes(id).map(|n| n.clock),
            b.dag().notes(id).map(|n| n.clock)
        );
        assert_eq!(a.access_of(id), b.access_of(id), "access after {id}");
    }
}

#[test]
fn a_replica_rebuilt_from_its_checkpoint_decides_as_the_original() {
    let (mut admin, mut w1, mut w2, _) = history();
    let cp: Checkpoint = admin.replica.checkpoint();
    let bytes = postcard::to_allocvec(&cp).unwrap();
    assert_eq!(postcard::from_bytes::<Checkpoint>(&bytes).unwrap(), cp);
    assert!(
        bytes.len() < 60 * cp.entries.len(),
        "{} bytes for {} entries",
        bytes.len(),
        cp.entries.len()
    );
    let controls: Vec<SignedDelta> = cp
        .control
        .iter()
        .map(|p| admin.disk[*p as usize].clone())
        .collect();
    assert!(controls.len() >= 6, "joins, invites and a removal");
    let mut openers = admin.openers.clone();
    openers.push(admin.secret.clone());
    let (rebuilt, _) = Replica::from_checkpoint(
        &cp,
        &controls,
        admin.creator,
        admin.keys.clone(),
        openers,
        Limits::default(),
    )
    .unwrap();
    same_replica(&admin.replica, &rebuilt);

    // Both judge the same new deltas alike: a writer's deltas concurrent
    // with the admin's newest, the removed writer's on parents from before
    // its removal, and the admin's.
    let mut doc = Doc::default_for(&admin.secret);
    mero_sync::Engine::load(
        &mut doc,
        &admin.doc.doc.export(ExportMode::Snapshot).unwrap(),
    )
    .unwrap();
    let mut copy = Peer {
        secret: admin.secret.clone(),
        creator: admin.creator,
        replica: rebuilt,
        doc,
        disk: admin.disk.clone(),
        index: admin.index.clone(),
        keys: admin.keys.clone(),
        openers: admin.openers.clone(),
    };
    let mut later = Vec::new();
    for i in 0..5 {
        later.push(put(&mut w1, &format!("late{i}"), i));
    }
    for i in 0..2 {
        later.push(put(&mut w2, &format!("removed{i}"), i));
    }
    let a = admin.receive(later.clone());
    let b = copy.receive(later);
    assert_eq!(common::reasons(&a), common::reasons(&b));
    assert_eq!(a.applied.len(), b.applied.len());
    assert!(a.applied.len() >= 5, "{:?}", common::reasons(&a));
    let own = put(&mut admin, "after", 1);
    assert_eq!(copy.receive(vec![own]).applied.len(), 1);
    same_replica(&admin.replica, &copy.replica);
    // Rebuilt from its own checkpoint, the replica lists the same views.
    assert_eq!(
        cp,
        Replica::from_checkpoint(
            &cp,
            &controls,
            admin.creator,
            admin.keys.clone(),
            vec![],
            Limits::default()
        )
        .unwrap()
        .0
        .checkpoint()
    );
}

#[test]
fn a_snapshot_joiner_equals_a_replaying_joiner() {
    let (mut admin, _, _, token) = history();
    let (mut by_snapshot, installed) =
        install(&token, &snapshot_of(&admin), &admin.secret).unwrap();
    by_snapshot.replica = installed.replica;
    let mut by_replay = Peer::invited(&token);
    by_replay.sync_from(&admin);
    same_replica(&by_replay.replica, &by_snapshot.replica);
    assert_eq!(by_replay.state(), by_snapshot.state());

    // The snapshot joiner joins and writes; the others apply it.
    let join = by_snapshot.join(&token, 2).unwrap();
    let w = put(&mut by_snapshot, "from-snapshot", 7);
    let out = admin.receive(vec![join.clone(), w.clone()]);
    assert_eq!(out.applied.len(), 2, "{:?}", common::reasons(&out));
    let out = by_replay.receive(vec![join, w]);
    assert_eq!(out.applied.len(), 2);
    // And it applies what the admin writes next.
    let d = put(&mut admin, "next", 8);
    assert_eq!(by_snapshot.receive(vec![d]).applied.len(), 1);
    assert_eq!(admin.state(), by_snapshot.state());
}

#[test]
fn a_tampered_snapshot_is_refused() {
    let (mut admin, _, _, token) = history();
    // A call on top, so the head is not a control delta.
    put(&mut admin, "tail", 1);
    let honest = snapshot_of(&admin);
    let refused = |s: Snapshot, sender: &MemberSecret| match install(&token, &s, sender) {
        Ok(_) => panic!("a tampered snapshot installed"),
        Err(e) => e,
    };

    // Signed by someone who is not a member.
    let e = refused(honest.clone(), &MemberSecret::generate());
    assert_eq!(e, SnapshotError::NotMember);

    // A part changed after signing.
    let (m, mut parts) = snapshot::build(&honest, &admin.secret);
    parts[0][10] ^= 1;
    assert!(matches!(
        install_parts(&token, &m, &parts),
        Err(SnapshotError::BadPart(0))
    ));

    // A control delta left out (the removal hidden).
    let mut s = honest.clone();
    s.control.pop();
    s.checkpoint.control.pop();
    assert!(matches!(
        refused(s, &admin.secret),
        SnapshotError::Checkpoint(_)
    ));

    // A call delta passed off as a control delta.
    let mut s = honest.clone();
    let call = s.checkpoint.entries.iter().position(|e| e.seq > 3).unwrap();
    let last = s.control.len() - 1;
    s.control[last] = admin.disk[call].clone();
    assert!(matches!(
        refused(s, &admin.secret),
        SnapshotError::Checkpoint(_)
    ));

    // An author's newest call claims more ops than its author signed.
    let mut s = honest.clone();
    let frontier = frontier_ids(admin.replica.dag());
    let control = s.checkpoint.control.clone();
    let (_, e) = s
        .checkpoint
        .entries
        .iter_mut()
        .enumerate()
        .find(|(pos, e)| frontier.contains(&e.id) && !control.contains(&(*pos as u64)))
        .unwrap();
    e.clock += 1;
    assert!(matches!(
        refused(s, &admin.secret),
        SnapshotError::BadFrontier(_)
    ));

    // The head's view set to one without the removal (the removed member
    // would be a member for every delta the joiner judges next).
    let mut s = honest.clone();
    let head = s.checkpoint.heads[0];
    let e = s
        .checkpoint
        .entries
        .iter_mut()
        .find(|e| e.id == head)
        .unwrap();
    assert!(e.view > 1);
    e.view = 1;
    let e = refused(s, &admin.secret);
    assert!(e.to_string().contains("leaves out a control delta"), "{e}");

    // A frontier header missing.
    let mut s = honest.clone();
    s.frontier.pop();
    assert!(matches!(
        refused(s, &admin.secret),
        SnapshotError::BadFrontier(_)
    ));

    // A state with an op nobody signed.
    let mut s = honest.clone();
    let doc = loro::LoroDoc::from_snapshot(&s.state).unwrap();
    doc.set_peer_id(12345).unwrap();
    doc.get_map("m").insert("forged", 1).unwrap();
    doc.commit();
    s.state = doc.export(ExportMode::Snapshot).unwrap();
    assert!(matches!(
        refused(s, &admin.secret),
        SnapshotError::BadState(_)
    ));

    // A state missing the newest delta's ops.
    let mut s = honest.clone();
    let doc = loro::LoroDoc::from_snapshot(&s.state).unwrap();
    let mut vv = doc.oplog_vv();
    let peer = mero_engine::ContextState::peer_id_for(&admin.key().0);
    let last = *vv.get(&peer).unwrap();
    vv.insert(peer, last - 1);
    let frontiers = doc.vv_to_frontiers(&vv);
    s.state = doc
        .export(ExportMode::SnapshotAt {
            version: std::borrow::Cow::Owned(frontiers),
        })
        .unwrap();
    assert!(matches!(
        refused(s, &admin.secret),
        SnapshotError::BadState(_)
    ));

    // A snapshot from before the invitation (it cannot reach its heads).
    let mut old = Peer::invited(&token);
    old.receive(admin.disk[..admin.disk.len() - 20].to_vec());
    let s = snapshot_of(&old);
    let e = refused(s, &admin.secret);
    assert!(
        matches!(e, SnapshotError::Short | SnapshotError::BadFrontier(_)),
        "{e}"
    );

    // Another context's snapshot.
    let other = Peer::create(9);
    let e = refused(snapshot_of(&other), &other.secret);
    assert!(matches!(e, SnapshotError::BadManifest(_)), "{e}");

    // The honest one installs.
    install(&token, &honest, &admin.secret).unwrap();
}
