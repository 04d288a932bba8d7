//! Engine tests driven through raw host requests, as a WASM guest would.

use std::sync::Arc;

use mero_abi::host::{ContainerKind, HostRequest as R, HostResponse as A, SlotIn, SlotOut};
use mero_abi::{CallError, CallErrorKind};

use crate::*;

pub(crate) fn env(mode: CallMode) -> CallEnv {
    CallEnv {
        context_id: [1; 32],
        executor: [2; 32],
        time_nanos: 42,
        input: b"{}".to_vec(),
        mode,
        limits: CallLimits::default(),
        private: Arc::new(NoPrivateStorage),
        blobs: Arc::new(crate::NoBlobs),
        xcall: Arc::new(crate::NoCrossContext::default()),
        random: Box::new(|b| b.fill(7)),
    }
}

pub(crate) fn handle(r: A) -> u32 {
    match r {
        A::Handle(h) => h,
        other => panic!("expected a handle, got {other:?}"),
    }
}

pub(crate) fn root(s: &mut Session, name: &str, kind: ContainerKind) -> u32 {
    handle(s.dispatch(R::Root { name, kind }).unwrap())
}

fn ok_return(s: &mut Session) {
    s.dispatch(R::Return {
        ok: true,
        data: b"null",
    })
    .unwrap();
}

fn set(state: &mut ContextState, key: &str, value: &str) -> Option<DeltaPayload> {
    let mut s = state.begin(env(CallMode::Mutate));
    let m = root(&mut s, "items", ContainerKind::Map);
    let json = serde_json::to_vec(value).unwrap();
    s.dispatch(R::MapInsert {
        map: m,
        key,
        value: SlotIn::Value(&json),
    })
    .unwrap();
    ok_return(&mut s);
    let out = state.finish(s, None);
    out.result.unwrap();
    out.delta
}

#[test]
fn successful_call_yields_a_delta_that_replicates() {
    let mut a = ContextState::new(1);
    let mut b = ContextState::new(2);
    let delta = set(&mut a, "k", "v").expect("a change makes a delta");
    b.import(&delta.update).unwrap();
    assert_eq!(a.to_json(), serde_json::json!({"items": {"k": "v"}}));
    assert_eq!(a.to_json(), b.to_json());
}

#[test]
fn failed_call_leaves_no_trace() {
    let mut a = ContextState::new(1);
    let first = set(&mut a, "k", "v").unwrap();
    let before = a.to_json();
    for trap in [
        None,
        Some(CallError::new(CallErrorKind::Trap, "unreachable")),
        Some(CallError::new(CallErrorKind::Timeout, "deadline")),
    ] {
        let mut s = a.begin(env(CallMode::Mutate));
        let m = root(&mut s, "items", ContainerKind::Map);
        s.dispatch(R::MapInsert {
            map: m,
            key: "x",
            value: SlotIn::Value(b"1"),
        })
        .unwrap();
        s.dispatch(R::Emit {
            kind: "E",
            data: b"{}",
            handler: None,
        })
        .unwrap();
        if trap.is_none() {
            let err = serde_json::to_vec(&CallError::new(CallErrorKind::App, "nope")).unwrap();
            s.dispatch(R::Return {
                ok: false,
                data: &err,
            })
            .unwrap();
        }
        let out = a.finish(s, trap);
        assert!(out.result.is_err());
        assert!(out.delta.is_none());
        assert_eq!(a.to_json(), before);
    }
    // The replica keeps working. Its next delta continues its previous
    // one: it carries the failed ops and their reversal, which cancel out.
    let d = set(&mut a, "k2", "v2").unwrap();
    let span = update_span(&d.update).unwrap();
    assert_eq!(span[0].1, update_span(&first.update).unwrap()[0].2);
    let mut b = ContextState::new(2);
    b.import(&first.update).unwrap();
    assert_eq!(b.to_json(), before);
    b.import(&d.update).unwrap();
    assert_eq!(b.to_json(), a.to_json());
    assert_eq!(b.version(), a.version());
    assert_eq!(
        a.to_json(),
        serde_json::json!({"items": {"k": "v", "k2": "v2"}})
    );
}

#[test]
fn a_restored_state_sends_the_reverted_ops_it_holds() {
    let mut a = ContextState::new(1);
    let first = set(&mut a, "k", "v").unwrap();
    let mut s = a.begin(env(CallMode::Mutate));
    let m = root(&mut s, "items", ContainerKind::Map);
    s.dispatch(R::MapInsert {
        map: m,
        key: "x",
        value: SlotIn::Value(b"1"),
    })
    .unwrap();
    let out = a.finish(s, Some(CallError::new(CallErrorKind::Trap, "no")));
    assert!(out.result.is_err());
    // A snapshot caught the failed ops and their reversal; the restart
    // learns from the replica where its published ops end.
    let mut r = ContextState::from_snapshot(&a.snapshot().unwrap(), 1).unwrap();
    r.set_published(update_span(&first.update).unwrap()[0].2);
    let d = set(&mut r, "k2", "v2").unwrap();
    let mut b = ContextState::new(2);
    b.import(&first.update).unwrap();
    b.import(&d.update).unwrap();
    assert_eq!(b.to_json(), r.to_json());
    assert_eq!(b.version(), r.version());
}

#[test]
fn views_cannot_write() {
    let mut a = ContextState::new(1);
    let mut s = a.begin(env(CallMode::View));
    let m = root(&mut s, "items", ContainerKind::Map);
    let err = s
        .dispatch(R::MapInsert {
            map: m,
            key: "x",
            value: SlotIn::Value(b"1"),
        })
        .unwrap_err();
    assert_eq!(err.kind, CallErrorKind::Mutability);
    ok_return(&mut s);
    let version = a.version();
    let out = a.finish(s, None);
    assert!(out.delta.is_none());
    assert_eq!(a.to_json(), serde_json::json!({}));
    assert_eq!(a.version(), version);
}

#[test]
fn concurrent_nested_creation_merges() {
    let mut a = ContextState::new(1);
    let mut b = ContextState::new(2);
    let mut deltas = Vec::new();
    for (state, item) in [(&mut a, "from-a"), (&mut b, "from-b")] {
        let mut s = state.begin(env(CallMode::Mutate));
        let root = root(&mut s, "tags", ContainerKind::Map);
        let set = handle(
            s.dispatch(R::New {
                kind: ContainerKind::Map,
            })
            .unwrap(),
        );
        s.dispatch(R::MapInsert {
            map: set,
            key: item,
            value: SlotIn::Value(b"true"),
        })
        .unwrap();
        s.dispatch(R::MapInsert {
            map: root,
            key: "k",
            value: SlotIn::Container(set),
        })
        .unwrap();
        ok_return(&mut s);
        deltas.push(state.finish(s, None).delta.unwrap());
    }
    a.import(&deltas[1].update).unwrap();
    b.import(&deltas[0].update).unwrap();
    let expected = serde_json::json!({"tags": {"k": {"from-a": true, "from-b": true}}});
    assert_eq!(a.to_json(), expected);
    assert_eq!(b.to_json(), expected);
    // Reading the nested child back yields a container handle.
    let mut s = a.begin(env(CallMode::View));
    let root = root(&mut s, "tags", ContainerKind::Map);
    match s
        .dispatch(R::MapGet {
            map: root,
            key: "k",
        })
        .unwrap()
    {
        A::OptSlot(Some(SlotOut::Container(_, ContainerKind::Map))) => {}
        other => panic!("expected a nested map, got {other:?}"),
    }
}

#[test]
fn lists_text_counters() {
    let mut a = ContextState::new(1);
    let mut s = a.begin(env(CallMode::Mutate));
    let l = root(&mut s, "list", ContainerKind::List);
    for (i, v) in [(0, "b"), (0, "a"), (2, "c")] {
        let json = serde_json::to_vec(v).unwrap();
        s.dispatch(R::ListInsert {
            list: l,
            index: i,
            value: SlotIn::Value(&json),
        })
        .unwrap();
    }
    s.dispatch(R::ListMove {
        list: l,
        from: 2,
        to: 0,
    })
    .unwrap();
    s.dispatch(R::ListDelete {
        list: l,
        index: 1,
        len: 1,
    })
    .unwrap();
    assert!(
        s.dispatch(R::ListDelete {
            list: l,
            index: 5,
            len: 1
        })
        .is_err()
    );
    let t = root(&mut s, "doc", ContainerKind::Text);
    s.dispatch(R::TextInsert {
        text: t,
        pos: 0,
        s: "héllo",
    })
    .unwrap();
    s.dispatch(R::TextDelete {
        text: t,
        pos: 1,
        len: 1,
    })
    .unwrap();
    let c = root(&mut s, "n", ContainerKind::Counter);
    s.dispatch(R::CounterAdd { counter: c, by: 5 }).unwrap();
    s.dispatch(R::CounterAdd { counter: c, by: -2 }).unwrap();
    ok_return(&mut s);
    a.finish(s, None).result.unwrap();
    assert_eq!(
        a.to_json(),
        serde_json::json!({"list": ["c", "b"], "doc": "hllo", "n": [{"peer": "1", "total": 3}]})
    );
}

#[test]
fn update_span_agrees_with_loro() {
    use loro::{ExportMode, LoroDoc};
    let a = LoroDoc::new();
    a.set_peer_id(1).unwrap();
    let b = LoroDoc::new();
    b.set_peer_id(u64::MAX >> 2).unwrap();
    let mut updates = Vec::new();
    for round in 0..20 {
        for (i, doc) in [&a, &b].into_iter().enumerate() {
            let before = doc.oplog_vv();
            for k in 0..(round * 7 + i) % 40 {
                doc.get_map("m")
                    .insert(&format!("k{k}"), round as i64)
                    .unwrap();
                doc.get_text("t").insert(0, "ab").unwrap();
                if k % 5 == 0 {
                    doc.commit();
                }
            }
            doc.commit();
            updates.push(doc.export(ExportMode::updates(&before)).unwrap());
            updates.push(doc.export(ExportMode::all_updates()).unwrap());
        }
        let (ua, ub) = (
            a.export(ExportMode::all_updates()).unwrap(),
            b.export(ExportMode::all_updates()).unwrap(),
        );
        a.import(&ub).unwrap();
        b.import(&ua).unwrap();
        updates.push(a.export(ExportMode::all_updates()).unwrap());
    }
    crate::state::UNREAD_HEADERS.with(|n| n.set(0));
    for u in &updates {
        let meta = LoroDoc::decode_import_blob_meta(u, true).unwrap();
        let mut slow: Vec<(u64, u32, u32)> = meta
            .partial_end_vv
            .iter()
            .map(|(p, e)| {
                (
                    *p,
                    *meta.partial_start_vv.get(p).unwrap_or(&0) as u32,
                    *e as u32,
                )
            })
            .collect();
        slow.sort_unstable();
        assert_eq!(crate::update_span(u).unwrap(), slow);
    }
    assert_eq!(
        crate::state::UNREAD_HEADERS.with(|n| n.get()),
        0,
        "every real change header is read, so its counts are bounded"
    );
    let snapshot = a.export(ExportMode::Snapshot).unwrap();
    assert!(crate::update_span(&snapshot).is_err());
    let mut truncated = updates[0].clone();
    truncated.truncate(truncated.len() - 3);
    assert!(crate::update_span(&truncated).is_err() || truncated.len() <= 22);
}

/// Found by `fuzz/fuzz_targets/delta.rs`: an update of 88 bytes (valid
/// checksum) whose change header claims some 3·10^10 dependencies made
/// Loro reserve 250 GB up front and abort the process. A member could send
/// it in a call delta: receivers run `update_span` before importing.
#[test]
fn updates_claiming_more_than_their_bytes_hold_are_refused_unread() {
    let blob: [u8; 88] = [
        0x6c, 0x6f, 0x72, 0x6f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x20, 0x2d, 0xa3, 0xd5, 0x3c, 0x00, 0x04, 0x41, 0x00, 0x01, 0x00, 0x01, 0x01, 0x10, 0x01,
        0x8a, 0x88, 0xe3, 0xdd, 0x74, 0x09, 0xf1, 0x15, 0x01, 0x01, 0xfc, 0x88, 0xe3, 0xdd, 0x74,
        0x09, 0xf1, 0x15, 0x01, 0x01, 0xfc, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01,
        0x00, 0x06, 0x01, 0x04, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x41, 0x00, 0x01, 0x00,
        0x01, 0x01, 0xf0, 0xcb, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xf7, 0x05, 0x01, 0x31,
    ];
    let err = crate::update_span(&blob).unwrap_err().to_string();
    assert!(err.contains("more dependencies"), "{err}");
    assert!(ContextState::new(1).import(&blob).is_err());
    // The same block claiming 127 changes in a 16-byte header.
    let mut more = blob;
    more[27] = 0x7f;
    let err = crate::update_span(&more).unwrap_err().to_string();
    assert!(err.contains("more changes"), "{err}");
}

/// Found by `fuzz/fuzz_targets/host_request.rs`: root collections are
/// named by name *and* kind, and Loro keys its deep value by name only. A
/// call that merely fetched `Root { name: "list", kind: Counter }` (which
/// writes nothing, so even a view or a failed call may do it) made this
/// replica's exported state lose the list `list`, unlike every other
/// replica's.
#[test]
fn fetching_a_root_under_another_kind_leaves_the_export_alone() {
    let mut state = ContextState::new(1);
    let mut s = state.begin(env(CallMode::Mutate));
    let list = root(&mut s, "list", ContainerKind::List);
    s.dispatch(R::ListInsert {
        list,
        index: 0,
        value: SlotIn::Value(b"1"),
    })
    .unwrap();
    ok_return(&mut s);
    state.finish(s, None).result.unwrap();
    let before = state.to_json();
    assert_eq!(before, serde_json::json!({"list": [1]}));
    for kind in [
        ContainerKind::Counter,
        ContainerKind::Map,
        ContainerKind::Text,
        ContainerKind::Tree,
    ] {
        let mut s = state.begin(env(CallMode::View));
        root(&mut s, "list", kind);
        ok_return(&mut s);
        state.finish(s, None).result.unwrap();
        assert_eq!(state.to_json(), before, "after fetching `list` as {kind:?}");
    }
}

/// Found by `fuzz/fuzz_targets/delta.rs` (and through a member's call
/// delta by `gossip.rs`): updates on which Loro's decoder panics (here an
/// index out of bounds in a column decoder) are refused with an error.
#[test]
fn updates_loro_panics_on_are_refused() {
    let blob: [u8; 88] = [
        0x6c, 0x6f, 0x72, 0x6f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xc9, 0xf2, 0xd4, 0xe7, 0x00, 0x04, 0x41, 0x2d, 0x00, 0x00, 0x00, 0x01, 0x10, 0x01,
        0x8a, 0x88, 0xe3, 0xdd, 0x74, 0x09, 0xf1, 0x15, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x05, 0x00, 0xff, 0xfe, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x58, 0x01,
        0x61, 0x05, 0x69, 0x74, 0x65, 0x6d, 0x73, 0x00, 0x0e, 0x01, 0x04, 0xfa, 0xfe, 0xff, 0xfd,
        0x01, 0x00, 0x02, 0x01, 0x0b, 0x02, 0x01, 0x01, 0x00, 0x03, 0x05, 0x01, 0x30,
    ];
    let mut state = ContextState::new(1);
    set(&mut state, "k", "v");
    let before = (state.to_json(), state.version());
    let err = state.import(&blob).unwrap_err().to_string();
    assert!(err.contains("does not decode"), "{err}");
    assert_eq!((state.to_json(), state.version()), before);
    // The state keeps working.
    set(&mut state, "k2", "v2").unwrap();
}

/// Found by `fuzz/fuzz_targets/host_request.rs`: storing a collection
/// under a key of its own (or of a collection inside it) copied it into
/// itself forever. It is refused, for attached and detached collections.
#[test]
fn a_collection_cannot_be_stored_inside_itself() {
    let mut state = ContextState::new(1);
    let mut s = state.begin(env(CallMode::Mutate));
    let items = root(&mut s, "items", ContainerKind::Map);
    let inner = handle(
        s.dispatch(R::MapEnsure {
            map: items,
            key: "inner",
            kind: ContainerKind::Map,
        })
        .unwrap(),
    );
    let detached = handle(
        s.dispatch(R::New {
            kind: ContainerKind::List,
        })
        .unwrap(),
    );
    for (target, src) in [(items, items), (inner, items)] {
        let err = s
            .dispatch(R::MapInsert {
                map: target,
                key: "self",
                value: SlotIn::Container(src),
            })
            .unwrap_err();
        assert!(err.message.contains("inside itself"), "{}", err.message);
    }
    // A detached collection has no identity to check: the copy into
    // itself stops at the nesting limit.
    let err = s
        .dispatch(R::ListInsert {
            list: detached,
            index: 0,
            value: SlotIn::Container(detached),
        })
        .unwrap_err();
    assert!(err.message.contains("inside itself"), "{}", err.message);
    // Detached collections nest into each other as before.
    let outer = handle(
        s.dispatch(R::New {
            kind: ContainerKind::Map,
        })
        .unwrap(),
    );
    let nested = handle(
        s.dispatch(R::New {
            kind: ContainerKind::Map,
        })
        .unwrap(),
    );
    s.dispatch(R::MapInsert {
        map: nested,
        key: "v",
        value: SlotIn::Value(b"2"),
    })
    .unwrap();
    s.dispatch(R::MapInsert {
        map: outer,
        key: "nested",
        value: SlotIn::Container(nested),
    })
    .unwrap();
    s.dispatch(R::BindRoot {
        name: "outer",
        src: outer,
    })
    .unwrap();
    // Storing one collection under another still copies it.
    s.dispatch(R::MapInsert {
        map: items,
        key: "copy",
        value: SlotIn::Container(inner),
    })
    .unwrap();
    ok_return(&mut s);
    state.finish(s, None).result.unwrap();
    assert_eq!(
        state.to_json()["outer"],
        serde_json::json!({"nested": {"v": 2}})
    );
}

/// Loro panics on root names it does not accept (`/`, NUL, its own
/// namespace); an app asking for one gets an error.
#[test]
fn root_names_loro_refuses_are_errors() {
    let state = ContextState::new(1);
    let mut s = state.begin(env(CallMode::View));
    for name in ["a/b", "nul\0", "🤝:x", ""] {
        let err = s
            .dispatch(R::Root {
                name,
                kind: ContainerKind::Map,
            })
            .unwrap_err();
        assert!(
            err.message.contains("not a valid state field name"),
            "{name:?}"
        );
    }
}

#[test]
fn a_failed_call_too_big_to_carry_is_rolled_back_without_a_trace() {
    let mut a = ContextState::new(1);
    set(&mut a, "k", "v");
    let before = (a.to_json(), a.version());
    let big = serde_json::to_vec(&"x".repeat(600 << 10)).unwrap();
    let mut s = a.begin(env(CallMode::Mutate));
    let m = root(&mut s, "items", ContainerKind::Map);
    s.dispatch(R::MapInsert {
        map: m,
        key: "big",
        value: SlotIn::Value(&big),
    })
    .unwrap();
    let out = a.finish(s, Some(CallError::new(CallErrorKind::Trap, "no")));
    assert!(out.result.is_err());
    // Over the bytes the next delta may carry: the slow path, exact.
    assert_eq!((a.to_json(), a.version()), before);
}

#[test]
fn a_call_that_writes_past_its_budget_fails_without_a_trace() {
    let mut a = ContextState::new(1);
    set(&mut a, "k", "v");
    let before = a.to_json();
    let mut e = env(CallMode::Mutate);
    e.limits.max_write_bytes = 1_000;
    let mut s = a.begin(e);
    let m = root(&mut s, "items", ContainerKind::Map);
    let mut refused = None;
    for i in 0..100 {
        let key = format!("key-{i}");
        if let Err(err) = s.dispatch(R::MapInsert {
            map: m,
            key: &key,
            value: SlotIn::Value(b"\"twenty bytes of data\""),
        }) {
            refused = Some((i, err));
            break;
        }
    }
    let (i, err) = refused.expect("the budget runs out");
    assert!(i > 5 && i < 30, "refused at write {i}");
    assert_eq!(err.kind, CallErrorKind::Limit);
    let out = a.finish(s, Some(CallError::new(err.kind, err.message)));
    assert!(out.result.is_err());
    assert_eq!(a.to_json(), before);
}
