//! A catch-up answer from any peer: postcard `Response`; what the node
//! asks next (`after_digest`, `next_page`), and the deltas of a page
//! received by a node's replica that lacks some of the history.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mero_fuzz::{Node, context, receiver};
use mero_sync::protocol::{Response, after_digest, next_page};

fuzz_target!(init: mero_fuzz::abort_on_panics_but_caught_crdt_ones(), |data: &[u8]| {
    let Ok(resp) = postcard::from_bytes::<Response>(data) else {
        return;
    };
    let mut node = Node::new(&receiver());
    let _ = after_digest(node.replica.dag(), context(), &resp);
    if let Response::Deltas { deltas, more } = resp {
        node.receive(deltas);
        let _ = next_page(node.replica.dag(), context(), more);
    }
});
