//! Engine tests driven through raw host requests, as a WASM guest would.

use std::sync::Arc;

use mero_abi::host::{ContainerKind, HostRequest as R, HostResponse as A, SlotIn, SlotOut};
use mero_abi::{CallError, CallErrorKind};

use crate::*;

fn env(mode: CallMode) -> CallEnv {
    CallEnv {
        context_id: [1; 32],
        executor: [2; 32],
        time_nanos: 42,
        input: b"{}".to_vec(),
        mode,
        limits: CallLimits::default(),
        private: Arc::new(NoPrivateStorage),
        random: Box::new(|b| b.fill(7)),
    }
}

fn handle(r: A) -> u32 {
    match r {
        A::Handle(h) => h,
        other => panic!("expected a handle, got {other:?}"),
    }
}

fn root(s: &mut Session, name: &str, kind: ContainerKind) -> u32 {
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
    set(&mut a, "k", "v");
    let before = (a.to_json(), a.version());
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
        assert_eq!((a.to_json(), a.version()), before);
    }
    // The replica keeps working and its next delta applies elsewhere.
    let d = set(&mut a, "k2", "v2").unwrap();
    let mut b = ContextState::new(2);
    b.import(&a.snapshot().unwrap()).unwrap();
    b.import(&d.update).unwrap();
    assert_eq!(b.to_json(), a.to_json());
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
        serde_json::json!({"list": ["c", "b"], "doc": "hllo", "n": 3.0})
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
    let snapshot = a.export(ExportMode::Snapshot).unwrap();
    assert!(crate::update_span(&snapshot).is_err());
    let mut truncated = updates[0].clone();
    truncated.truncate(truncated.len() - 3);
    assert!(crate::update_span(&truncated).is_err() || truncated.len() <= 22);
}
