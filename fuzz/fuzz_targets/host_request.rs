//! What a WASM app can make its host do: a sequence of postcard
//! `HostRequest`s (each after a length byte, see `split_requests`; the
//! first byte picks view or mutate and whether the call traps), each
//! decoded with `decode_request` and run by `Session::dispatch` on a state
//! holding every collection kind, then `finish`. A failed call or a view
//! must leave the state as it was; a successful call's update must hold
//! only this replica's ops and import on another replica.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mero_abi::host::decode_request;
use mero_abi::{CallError, CallErrorKind};
use mero_engine::{CallMode, ContextState, update_span};
use mero_fuzz::{base_snapshot, call_env, split_requests};

static SNAPSHOT: LazyLock<Vec<u8>> = LazyLock::new(base_snapshot);
const PEER: u64 = 11;

fuzz_target!(init: mero_fuzz::abort_on_panics_but_caught_crdt_ones(), |data: &[u8]| {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let mode = if config & 1 == 0 {
        CallMode::Mutate
    } else {
        CallMode::View
    };
    let trap = (config & 2 != 0).then(|| CallError::new(CallErrorKind::Trap, "unreachable"));

    let mut state = ContextState::from_snapshot(&SNAPSHOT, PEER).expect("the base snapshot loads");
    let before = (state.version(), state.to_json());
    let mut session = state.begin(call_env(mode, b"{\"key\":\"a\"}"));
    for req in split_requests(rest) {
        if let Ok(req) = decode_request(req) {
            let _ = session.dispatch(req);
        }
    }
    let out = state.finish(session, trap);
    if out.result.is_err() || mode == CallMode::View {
        assert!(out.delta.is_none());
        assert!(out.private_writes.is_empty(), "a failed call or a view wrote");
        // A failed call may leave ops that revert it (they go out with the
        // replica's next delta), but not a different state; a view, no ops.
        if mode == CallMode::View {
            assert_eq!(state.version(), before.0, "a view left ops");
        }
        assert_eq!(state.to_json(), before.1, "a failed call or a view changed the state");
        return;
    }
    let Some(delta) = out.delta else {
        return;
    };
    if delta.update.is_empty() {
        return;
    }
    let span = update_span(&delta.update).expect("a call's update is an update");
    assert!(
        matches!(span.as_slice(), [(p, _, _)] if *p == PEER),
        "a call's update holds only this replica's ops: {span:?}"
    );
    let mut other = ContextState::from_snapshot(&SNAPSHOT, PEER + 1).expect("loads");
    other.import(&delta.update).expect("a call's update imports");
    assert_eq!(other.to_json(), state.to_json(), "replicas diverge");
});
