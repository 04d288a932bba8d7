//! What a failed call costs, by history length: a call that writes and
//! then fails must leave no trace, and should cost what it touched, not
//! what the context has accumulated.
//!
//! `cargo bench -p mero-engine --bench rollback` prints, for states of
//! 1,000 / 10,000 / 100,000 committed calls, the median time of a
//! successful call, of a failing call that wrote, and of a batch of 1,000
//! failing calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mero_abi::host::{ContainerKind, HostRequest as R, HostResponse as A, SlotIn};
use mero_abi::{CallError, CallErrorKind};
use mero_engine::{CallEnv, CallLimits, CallMode, ContextState, NoPrivateStorage};

fn env() -> CallEnv {
    CallEnv {
        context_id: [1; 32],
        executor: [2; 32],
        time_nanos: 42,
        input: b"{}".to_vec(),
        mode: CallMode::Mutate,
        limits: CallLimits::default(),
        private: Arc::new(NoPrivateStorage),
        blobs: Arc::new(mero_engine::NoBlobs),
        xcall: Arc::new(mero_engine::NoCrossContext::default()),
        random: Box::new(|b| b.fill(7)),
    }
}

/// One call writing `key`; fails (after writing) when `fail`.
fn call(state: &mut ContextState, key: &str, fail: bool) -> Duration {
    let t = Instant::now();
    let mut s = state.begin(env());
    let A::Handle(m) = s
        .dispatch(R::Root {
            name: "items",
            kind: ContainerKind::Map,
        })
        .unwrap()
    else {
        panic!("no handle")
    };
    s.dispatch(R::MapInsert {
        map: m,
        key,
        value: SlotIn::Value(b"\"value\""),
    })
    .unwrap();
    let trap = if fail {
        Some(CallError::new(CallErrorKind::Trap, "unreachable"))
    } else {
        s.dispatch(R::Return {
            ok: true,
            data: b"null",
        })
        .unwrap();
        None
    };
    let out = state.finish(s, trap);
    assert_eq!(out.result.is_err(), fail);
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    for n in [1_000usize, 10_000, 100_000] {
        let mut state = ContextState::new(1);
        for i in 0..n {
            call(&mut state, &format!("k{i}"), false);
        }
        let ok = median(
            (0..50)
                .map(|i| call(&mut state, &format!("ok{i}"), false))
                .collect(),
        );
        let failed = median((0..20).map(|_| call(&mut state, "bad", true)).collect());
        let t = Instant::now();
        for _ in 0..1_000 {
            call(&mut state, "bad", true);
        }
        let batch = t.elapsed();
        println!(
            "history {n:>7} calls: ok call {:>9.1} µs   failing call {:>9.1} µs   1,000 failing calls {:>8.1} ms",
            ok.as_secs_f64() * 1e6,
            failed.as_secs_f64() * 1e6,
            batch.as_secs_f64() * 1e3
        );
    }
}
