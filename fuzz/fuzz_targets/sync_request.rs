//! A catch-up request from any peer: postcard `Request`, answered by
//! `protocol::answer` from a small history, and the answer encoded as the
//! node sends it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mero_fuzz::History;
use mero_sync::protocol::{Request, Response, answer};

thread_local! {
    static HISTORY: History = History::build();
}

fuzz_target!(init: mero_fuzz::abort_on_panics_but_caught_crdt_ones(), |data: &[u8]| {
    let Ok(req) = postcard::from_bytes::<Request>(data) else {
        return;
    };
    let resp = HISTORY.with(|h| answer(h.node.replica.dag(), &h.source(), &req).0);
    let bytes = postcard::to_allocvec(&resp).expect("answers serialize");
    assert_eq!(postcard::from_bytes::<Response>(&bytes).ok(), Some(resp));
});
