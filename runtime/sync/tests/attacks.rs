//! Each attack on the trust model, against the same `Replica` code the
//! node runs: refused, and without effect.

mod common;

use common::{APP, Peer, reasons};
use loro::ExportMode;
use mero_engine::{ContextState, DeltaPayload};
use mero_sync::access::{Invite, Join};
use mero_sync::delta::{Draft, Evidence, SignedHeader};
use mero_sync::ids::AppHash;
use mero_sync::{ContextKey, MemberSecret, Op, Role, SignedDelta};

const LATER: u64 = u64::MAX / 2;

/// A context of `a` (admin) with members joined with the given roles.
fn context(roles: &[Role]) -> (Peer, Vec<Peer>) {
    let mut a = Peer::create(1);
    let mut members = Vec::new();
    for role in roles {
        let (_, token) = a.invite(*role, 1, LATER);
        let mut m = Peer::invited(&token);
        m.sync_from(&a);
        let join = m.join(&token, 1).unwrap();
        assert!(reasons(&a.receive(vec![join])).is_empty());
        members.push(m);
    }
    for m in &mut members {
        m.sync_from(&a);
    }
    (a, members)
}

/// A delta by `author` whose header is the honest next one and whose op is `op`.
fn crafted(
    p: &Peer,
    author: &MemberSecret,
    key: &ContextKey,
    op: &Op,
    app: AppHash,
) -> SignedDelta {
    let draft = p.replica.draft(&author.public(), app);
    SignedDelta::create(author, key, draft, op)
}

#[test]
fn a_copied_join_payload_admits_nobody() {
    let mut a = Peer::create(1);
    let (_, token) = a.invite(Role::Writer, 5, LATER);
    let mut b = Peer::invited(&token);
    b.sync_from(&a);
    let join = b.join(&token, 1).unwrap();
    a.receive(vec![join.clone()]);
    // The payload moved under an outsider's header does not open.
    let outsider = MemberSecret::generate();
    let mut moved = crafted(&a, &outsider, &ContextKey::generate(), &Op::Leave, APP);
    moved.body.header.kind = join.header().kind;
    moved.body.payload = join.body.payload.clone();
    let moved = resign(&outsider, moved);
    // Even holding the key, re-sealing the same join under its own header
    // fails: the proof admits only the joiner's key.
    let op = join.open(&ContextKey(token.key)).unwrap();
    let resealed = crafted(&a, &outsider, &ContextKey(token.key), &op, APP);
    let out = a.receive(vec![moved, resealed]);
    assert_eq!(reasons(&out), ["bad_payload", "not_member"]);
    assert!(a.replica.access().role(&outsider.public()).is_none());
}

fn resign(author: &MemberSecret, mut d: SignedDelta) -> SignedDelta {
    d.body.header.author = author.public();
    d.signature = author.sign(b"mero-delta-v2", &d.id().0);
    d
}

#[test]
fn a_copied_upgrade_switches_nothing() {
    let (mut a, mut m) = context(&[Role::Writer]);
    let upgrade = a
        .author(Op::Upgrade {
            app: AppHash([9; 32]),
        })
        .unwrap();
    m[0].receive(vec![upgrade.clone()]);
    // Under another app hash the same payload does not open...
    let mut moved = upgrade.clone();
    moved.body.header.app = AppHash([66; 32]);
    moved.body.header.seq += 1;
    moved.body.header.parents = vec![upgrade.id()];
    // ...and a writer may not upgrade, even with a well-formed delta.
    let key = m[0].replica.current_key().unwrap().clone();
    let w = m[0].secret.clone();
    let op = Op::Upgrade {
        app: AppHash([66; 32]),
    };
    let by_writer = crafted(&m[0], &w, &key, &op, AppHash([66; 32]));
    let out = m[0].receive(vec![moved, by_writer]);
    assert_eq!(reasons(&out), ["bad_signature", "forbidden"]);
    assert_eq!(m[0].replica.access().app(), Some(AppHash([9; 32])));
    assert!(m[0].author(op).is_err(), "the node refuses to make it too");
}

/// A migration rewrites state for everyone: a writer's well-formed
/// `Op::Migrate` (with real ops of its own) is refused like any upgrade
/// it makes, and changes nothing.
#[test]
fn a_migration_by_a_writer_is_refused_everywhere() {
    let (mut a, mut m) = context(&[Role::Writer, Role::Writer]);
    let before = a.doc.doc.get_deep_value();
    let app = a.replica.access().app();
    let w = m[0].secret.clone();
    let doc = loro::LoroDoc::new();
    doc.set_peer_id(ContextState::peer_id_for(&w.public().0))
        .unwrap();
    doc.get_map("items").insert("taken", "over").unwrap();
    doc.commit();
    let op = Op::Migrate {
        app: AppHash([66; 32]),
        update: doc.export(ExportMode::all_updates()).unwrap(),
    };
    let key = m[0].replica.current_key().unwrap().clone();
    let forged = crafted(&m[0], &w, &key, &op, AppHash([66; 32]));
    assert!(
        m[0].author(op).is_err(),
        "the writer's own node refuses to make it"
    );
    let out = a.receive(vec![forged.clone()]);
    assert_eq!(reasons(&out), ["forbidden"]);
    let out = m[1].receive(vec![forged]);
    assert_eq!(reasons(&out), ["forbidden"]);
    assert_eq!(a.doc.doc.get_deep_value(), before);
    assert_eq!(a.replica.access().app(), app);
    assert_eq!(m[1].replica.access().app(), app);
}

#[test]
fn ops_under_another_members_peer_id_are_refused() {
    let (mut a, mut m) = context(&[Role::Writer]);
    let victim = ContextState::peer_id_for(&a.key().0);
    // The writer makes ops as the admin's Loro peer, two counters ahead.
    let doc = loro::LoroDoc::new();
    doc.set_peer_id(victim).unwrap();
    doc.import(&a.doc.doc.export(ExportMode::all_updates()).unwrap())
        .unwrap();
    let before = doc.oplog_vv();
    doc.get_map("m").insert("x", 1).unwrap();
    doc.get_map("m").insert("y", 2).unwrap();
    doc.commit();
    let update = doc.export(ExportMode::updates(&before)).unwrap();
    let key = a.replica.current_key().unwrap().clone();
    let w = m[0].secret.clone();
    let mut draft = m[0].replica.draft(&w.public(), APP);
    draft.clock = 2;
    let op = Op::Call(DeltaPayload {
        update,
        events: vec![],
    });
    let forged = SignedDelta::create(&w, &key, draft, &op);
    let before_state = a.state();
    assert_eq!(reasons(&a.receive(vec![forged])), ["bad_update"]);
    assert_eq!(a.state(), before_state);
    // The victim's next real write still reaches the writer.
    let real = a
        .write(|d| d.get_map("m").insert("x", 10).unwrap())
        .unwrap();
    assert!(reasons(&m[0].receive(vec![real])).is_empty());
    assert_eq!(m[0].state(), a.state());
}

/// A context and two holders of one single-use invitation, caught up.
fn two_invited() -> (Peer, mero_sync::InvitationToken, Peer, Peer) {
    let mut a = Peer::create(1);
    let (_, once) = a.invite(Role::Writer, 1, LATER);
    let (mut b, mut c) = (Peer::invited(&once), Peer::invited(&once));
    b.sync_from(&a);
    c.sync_from(&a);
    (a, once, b, c)
}

#[test]
fn invitations_are_single_use_expire_and_can_be_revoked() {
    let (mut a, once, mut b, mut c) = two_invited();
    let jb = b.join(&once, 1).unwrap();
    assert!(reasons(&a.receive(vec![jb])).is_empty());
    c.sync_from(&a);
    // C has B's join in its causal past: the invitation is used up. Its own
    // replica refuses to make the join, and a crafted one is refused.
    assert!(c.join(&once, 1).is_err());
    let invite = MemberSecret::from_bytes(&once.secret);
    let op = Op::Join(Join::new(&c.ctx(), &c.key(), once.invite, &invite, 1));
    let key = ContextKey(once.key);
    let cj = crafted(&a, &c.secret, &key, &op, APP);
    assert_eq!(reasons(&a.receive(vec![cj])), ["not_member"]);

    let (_, expiring) = a.invite(Role::Writer, 1, 1_000);
    let mut d = Peer::invited(&expiring);
    d.sync_from(&a);
    assert!(d.join(&expiring, 1_001).is_err(), "past its expiry");

    let (inv, revoked) = a.invite(Role::Writer, 1, LATER);
    a.author(Op::Revoke { invite: inv.id() }).unwrap();
    let mut e = Peer::invited(&revoked);
    e.sync_from(&a);
    assert!(e.join(&revoked, 1).is_err(), "revoked");
    assert_eq!(a.replica.access().members().count(), 2);
}

#[test]
fn concurrent_joins_with_a_single_use_invitation_are_decided_alike() {
    let (mut a, once, mut b, mut c) = two_invited();
    let jb = b.join(&once, 1).unwrap();
    let jc = c.join(&once, 1).unwrap();
    // Two other members see them in opposite orders.
    let mut x = a_copy(&a);
    a.receive(vec![jb.clone()]);
    a.receive(vec![jc.clone()]);
    x.receive(vec![jc]);
    x.receive(vec![jb]);
    let members = |p: &Peer| {
        p.replica
            .access()
            .members()
            .filter(|(_, m)| m.active())
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
    };
    assert_eq!(members(&a), members(&x));
    assert_eq!(members(&a).len(), 2, "the creator and one of the two");
}

/// The creator's replica on another node (same member key: a second device
/// that only receives).
fn a_copy(a: &Peer) -> Peer {
    let mut p = Peer {
        secret: a.secret.clone(),
        creator: a.creator,
        replica: mero_sync::Replica::new(a.ctx(), a.creator),
        doc: common::Doc::default_for(&a.secret),
        disk: vec![],
        index: Default::default(),
        keys: a.keys.clone(),
        openers: vec![],
    };
    for (e, k) in &a.keys {
        p.replica.add_key(*e, k.clone());
    }
    p.replica.add_opener(a.secret.clone());
    p.sync_from(a);
    p
}

#[test]
fn readers_may_not_write_and_writers_may_not_administer() {
    let (mut a, mut m) = context(&[Role::Reader, Role::Writer]);
    assert!(
        m[0].write(|d| d.get_map("m").insert("r", 1).unwrap())
            .is_err()
    );
    // A crafted write by the reader is refused by everyone.
    let reader = m[0].secret.clone();
    let key = a.replica.current_key().unwrap().clone();
    let op = Op::Call(DeltaPayload {
        update: vec![],
        events: vec![],
    });
    let w = crafted(&a, &reader, &key, &op, APP);
    assert_eq!(reasons(&a.receive(vec![w])), ["forbidden"]);
    // The writer may not invite or upgrade.
    let invite = Op::Invite(Invite {
        key: MemberSecret::generate().public(),
        role: Role::Admin,
        uses: 1,
        expires_at_ms: LATER,
    });
    assert!(m[1].author(invite).is_err());
    assert!(
        m[1].author(Op::Upgrade {
            app: AppHash([3; 32])
        })
        .is_err()
    );
    assert!(
        m[1].write(|d| d.get_map("m").insert("w", 1).unwrap())
            .is_ok()
    );
}

#[test]
fn a_removed_member_cannot_read_or_write_what_follows() {
    let (mut a, mut m) = context(&[Role::Writer, Role::Writer]);
    let old_keys: Vec<ContextKey> = m[0].replica.keys().values().cloned().collect();
    let sealed = a.replica.seal_new_epoch(Some(&m[0].key()));
    let removed = m[0].key();
    let remove = a
        .author(Op::Remove {
            member: removed,
            keys: sealed,
        })
        .unwrap();
    let after = a
        .write(|d| d.get_map("m").insert("secret", 1).unwrap())
        .unwrap();
    // With every key it ever had, the removed member cannot open it.
    assert!(old_keys.iter().all(|k| after.open(k).is_err()));
    m[0].receive(vec![remove.clone(), after.clone()]);
    assert!(m[0].replica.key(&remove.id()).is_none());
    // Its writes with the removal in their causal past are refused: sealed
    // with the only key it has, they name an epoch that is over.
    let w = m[0].secret.clone();
    let op = Op::Call(DeltaPayload {
        update: vec![],
        events: vec![],
    });
    let mut draft = a.replica.draft(&w.public(), APP);
    draft.epoch = mero_sync::delta::GENESIS_EPOCH;
    let late = SignedDelta::create(&w, &old_keys[0], draft, &op);
    assert_eq!(reasons(&a.receive(vec![late])), ["wrong_epoch"]);
    // The member who stays reads everything.
    assert!(reasons(&m[1].receive(vec![remove, after])).is_empty());
    assert_eq!(m[1].state(), a.state());
}

#[test]
fn an_offline_member_catches_up_across_two_rotations() {
    let (mut a, mut m) = context(&[Role::Writer, Role::Writer, Role::Writer]);
    for i in [1, 2] {
        let k = m[i].key();
        let keys = a.replica.seal_new_epoch(Some(&k));
        a.author(Op::Remove { member: k, keys }).unwrap();
        a.write(|d| d.get_map("m").insert(&format!("after{i}"), 1).unwrap())
            .unwrap();
    }
    let out = m[0].sync_from(&a);
    assert!(reasons(&out).is_empty(), "{:?}", out.rejected);
    assert_eq!(out.keys.len(), 2);
    assert_eq!(m[0].state(), a.state());
    assert_eq!(m[0].replica.dag().heads(), a.replica.dag().heads());
    // And writes in the new epoch.
    let w = m[0]
        .write(|d| d.get_map("m").insert("back", 1).unwrap())
        .unwrap();
    assert!(reasons(&a.receive(vec![w])).is_empty());
}

#[test]
fn equivocation_neither_splits_nor_stalls_and_gets_the_author_flagged() {
    let (mut a, mut m) = context(&[Role::Writer, Role::Writer]);
    let mut e = m.pop().unwrap();
    let mut b = m.pop().unwrap();
    // E signs two different deltas with one seq, one for each side.
    let key = e.replica.current_key().unwrap().clone();
    let fork = |value: i64| {
        let doc = loro::LoroDoc::new();
        doc.set_peer_id(ContextState::peer_id_for(&e.key().0))
            .unwrap();
        doc.get_map("m").insert("fork", value).unwrap();
        doc.get_map("m").insert("pad", value).unwrap();
        doc.commit();
        let update = doc.export(ExportMode::all_updates()).unwrap();
        let mut draft: Draft = e.replica.draft(&e.key(), APP);
        draft.clock = 2;
        let op = Op::Call(DeltaPayload {
            update,
            events: vec![],
        });
        SignedDelta::create(&e.secret, &key, draft, &op)
    };
    let (d1, d2) = (fork(1), fork(2));
    assert!(reasons(&a.receive(vec![d1.clone()])).is_empty());
    assert!(reasons(&b.receive(vec![d2.clone()])).is_empty());
    // Honest writes on both sides, on top of each side's fork.
    let wa = a.write(|d| d.get_map("m").insert("a", 1).unwrap()).unwrap();
    let wb = b.write(|d| d.get_map("m").insert("b", 1).unwrap()).unwrap();
    // They meet: each gets the other's side.
    let out_a = a.receive(vec![d2.clone(), wb]);
    let out_b = b.receive(vec![d1.clone(), wa]);
    assert!(reasons(&out_a).is_empty() && reasons(&out_b).is_empty());
    assert_eq!(out_a.forks.len(), 1);
    assert_eq!(out_b.forks.len(), 1);
    assert_eq!(a.state(), b.state());
    assert_eq!(a.replica.dag().heads(), b.replica.dag().heads());
    let state = serde_json::to_value(a.state()).unwrap();
    assert_eq!(state["m"]["a"], 1);
    assert_eq!(state["m"]["b"], 1);
    // A publishes the evidence; after it, E's deltas are refused.
    let evidence = Evidence {
        a: SignedHeader::of(&d1),
        b: SignedHeader::of(&d2),
    };
    let ev = a.author(Op::Evidence(Box::new(evidence))).unwrap();
    assert!(reasons(&b.receive(vec![ev])).is_empty());
    assert!(a.replica.access().flagged().contains_key(&e.key()));
    assert_eq!(a.replica.access().flagged(), b.replica.access().flagged());
    e.sync_from(&a);
    assert!(
        e.write(|d| d.get_map("m").insert("more", 1).unwrap())
            .is_err()
    );
    // Honest writes keep flowing, and a restart gives the same state.
    let wa2 = a
        .write(|d| d.get_map("m").insert("a2", 1).unwrap())
        .unwrap();
    assert!(reasons(&b.receive(vec![wa2])).is_empty());
    assert_eq!(a.state(), b.state());
    let before = b.state();
    b.restart();
    assert_eq!(b.state(), before);
}

#[test]
fn a_payload_of_another_kind_does_not_open() {
    let (mut a, m) = context(&[Role::Writer]);
    let key = a.replica.current_key().unwrap().clone();
    let w = m[0].secret.clone();
    let mut d = crafted(&a, &w, &key, &Op::Leave, APP);
    d.body.header.kind = mero_sync::OpKind::Call;
    let d = resign(&w, d);
    assert_eq!(reasons(&a.receive(vec![d])), ["bad_payload"]);
    assert!(a.replica.access().role(&w.public()).is_some());
}

#[test]
fn a_leave_makes_an_admin_rotate_and_the_leaver_reads_nothing_after() {
    let (mut a, mut m) = context(&[Role::Writer, Role::Writer]);
    let old_keys: Vec<ContextKey> = m[0].replica.keys().values().cloned().collect();
    let leave = m[0].author(Op::Leave).unwrap();
    assert!(reasons(&a.receive(vec![leave])).is_empty());
    // The leaver still holds the current key: the admin's replica says so.
    assert!(a.replica.access().rotation_due());
    let keys = a.replica.seal_new_epoch(None);
    a.author(Op::Rotate { keys }).unwrap();
    assert!(!a.replica.access().rotation_due());
    let after = a
        .write(|d| d.get_map("m").insert("after", 1).unwrap())
        .unwrap();
    assert!(old_keys.iter().all(|k| after.open(k).is_err()));
    // The member who stays gets the new key from the rotation.
    let out = m[1].sync_from(&a);
    assert!(reasons(&out).is_empty());
    assert_eq!(out.keys.len(), 1);
    assert_eq!(m[1].state(), a.state());
    // A revoked invitation's key held the current epoch key too.
    let (inv, _) = a.invite(Role::Writer, 1, LATER);
    a.author(Op::Revoke { invite: inv.id() }).unwrap();
    assert!(a.replica.access().rotation_due());
}

#[test]
fn pages_are_bounded_in_bytes_so_any_delta_size_pages() {
    use mero_sync::protocol::{PAGE_BYTES, Request, Response, answer};
    let mut a = Peer::create(1);
    let big = "x".repeat(700 << 10);
    for i in 0..12 {
        a.write(|d| {
            d.get_map("m")
                .insert(&format!("k{i}"), big.as_str())
                .unwrap()
        })
        .unwrap();
    }
    let source = |id: &mero_sync::ids::DeltaId| a.index.get(id).map(|i| a.disk[*i].clone());
    let mut since = Default::default();
    let mut pages = 0;
    let mut got = 0;
    loop {
        let req = Request::Page {
            context: a.ctx(),
            since,
            limit: 500,
        };
        let (Response::Deltas { deltas, more }, _) = answer(a.replica.dag(), &source, &req) else {
            panic!("a page");
        };
        let bytes: usize = deltas.iter().map(|d| d.body.payload.len()).sum();
        assert!(!deltas.is_empty());
        assert!(
            bytes <= PAGE_BYTES || deltas.len() == 1,
            "{bytes} bytes in a page"
        );
        pages += 1;
        got += deltas.len();
        // The requester's vector after applying the page.
        let mut v = mero_sync::dag::SeqVector::new();
        v.insert(a.key(), got as u64);
        since = v;
        if !more {
            break;
        }
    }
    assert_eq!(got, 13, "the init delta and twelve big ones");
    assert!(pages >= 3, "{pages} pages");
}

/// A writer forges ops on another member's owned entry (its node skips the
/// local check): every receiver refuses the delta as garbage from the
/// delta alone, whatever it applied before, and keeps the owner's value.
#[test]
fn a_write_of_another_members_owned_entry_is_refused_everywhere() {
    let (mut a, mut members) = context(&[Role::Writer, Role::Writer]);
    let owner = mero_engine::owned::owner_key(&a.key().0);
    let own = a
        .write(|d| {
            let entry = d
                .get_map("$owned:profiles")
                .ensure_mergeable_map(&owner)
                .unwrap();
            entry.insert("name", "ada").unwrap();
        })
        .unwrap();
    let (b, c) = members.split_at_mut(1);
    let (b, c) = (&mut b[0], &mut c[0]);
    b.receive(vec![own.clone()]);
    let forged = b
        .write(|d| {
            let entry = d
                .get_map("$owned:profiles")
                .ensure_mergeable_map(&owner)
                .unwrap();
            entry.insert("name", "mallory").unwrap();
        })
        .unwrap_or_else(|r| panic!("the forger's own replica runs no owned check: {r}"));
    // c gets the forgery before its parent, in one batch; a has the parent.
    for (receiver, batch) in [(&mut *c, vec![forged.clone(), own]), (&mut a, vec![forged])] {
        let out = receiver.receive(batch);
        assert_eq!(reasons(&out), ["not_owner"]);
        assert!(out.rejected[0].1.is_garbage());
    }
    assert_eq!(a.state(), c.state());
    let profiles = a.state();
    assert!(!format!("{profiles:?}").contains("mallory"), "{profiles:?}");
}

/// A member invited after a key rotation reads the whole history, from
/// before the rotation too: what it joins with must open every epoch its
/// causal past holds, not only the current one.
#[test]
fn a_member_invited_after_a_rotation_reads_the_history_before_it() {
    let (mut a, mut m) = context(&[Role::Writer, Role::Writer]);
    a.write(|d| d.get_map("m").insert("before", 1).unwrap())
        .unwrap();
    let early = m[0]
        .write(|d| d.get_map("m").insert("early", 1).unwrap())
        .unwrap();
    assert!(reasons(&a.receive(vec![early])).is_empty());
    // m[1] leaves: a rotates, so the epoch key changes.
    let leave = m[1].author(Op::Leave).unwrap();
    assert!(reasons(&a.receive(vec![leave])).is_empty());
    let keys = a.replica.seal_new_epoch(None);
    a.author(Op::Rotate { keys }).unwrap();
    a.write(|d| d.get_map("m").insert("after", 1).unwrap())
        .unwrap();
    // A newcomer, invited now, catches up from genesis.
    let (_, token) = a.invite(Role::Writer, 1, LATER);
    let mut late = Peer::invited(&token);
    let out = late.sync_from(&a);
    assert!(reasons(&out).is_empty(), "{:?}", reasons(&out));
    let join = late.join(&token, 1).unwrap();
    assert!(reasons(&a.receive(vec![join])).is_empty());
    late.sync_from(&a);
    assert_eq!(late.replica.dag().heads(), a.replica.dag().heads());
    let state = serde_json::to_value(late.state()).unwrap();
    for key in ["before", "early", "after"] {
        assert_eq!(state["m"][key], 1, "{key}: {state}");
    }
}
