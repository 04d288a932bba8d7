//! A gossip message from any peer: `decode_gossip`, the ids and signature
//! checks (batch and single must agree, ZIP-215), then a node's replica
//! receives the deltas; then the same deltas again as a hostile *member*
//! would send them (sealed with the epoch key and signed by the creator),
//! which reaches every check past the signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mero_fuzz::{Node, as_member, creator, receiver};
use mero_sync::SignedDelta;
use mero_sync::ids::DeltaId;
use mero_sync::protocol::{decode_gossip, encode_gossip};

fuzz_target!(init: mero_fuzz::abort_on_panics_but_caught_crdt_ones(), |data: &[u8]| {
    let Ok(deltas) = decode_gossip(data) else {
        return;
    };
    let ids: Vec<DeltaId> = deltas.iter().map(SignedDelta::id).collect();
    let pairs: Vec<(&SignedDelta, &DeltaId)> = deltas.iter().zip(&ids).collect();
    let batch = SignedDelta::verify_many(&pairs);
    for ((d, id), ok) in pairs.iter().zip(&batch) {
        assert_eq!(d.verify_id(id), *ok, "batch and single checks disagree");
    }
    assert_eq!(decode_gossip(&encode_gossip(&deltas)).ok().as_ref(), Some(&deltas));

    let mut node = Node::new(&receiver());
    node.receive(deltas.clone());
    node.receive(as_member(&creator(), &deltas));
});
