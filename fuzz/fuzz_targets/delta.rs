//! One delta's wire form (postcard `SignedDelta`, as stored and sent in
//! catch-up pages): decode, id, signature checks, the proof of its header,
//! opening its payload; the payload taken as a decrypted `Op` (what a
//! member may put there) checked against a context's access; and
//! `update_span` over the raw bytes (importing them is `loro_update`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mero_engine::update_span;
use mero_fuzz::epoch_key;
use mero_sync::delta::{Evidence, SignedHeader};
use mero_sync::{Access, Op, SignedDelta};

fuzz_target!(init: mero_fuzz::abort_on_panics_but_caught_crdt_ones(), |data: &[u8]| {
    if let Ok(d) = SignedDelta::from_bytes(data) {
        let id = d.id();
        let ok = d.verify_id(&id);
        assert_eq!(ok, d.verify());
        assert_eq!(SignedDelta::verify_many(&[(&d, &id)]), [ok]);
        assert_eq!(SignedDelta::verify_many(&[(&d, &id), (&d, &id)]), [ok, ok]);
        assert_eq!(SignedDelta::from_bytes(&d.to_bytes()).ok().as_ref(), Some(&d));
        let proof = SignedHeader::of(&d);
        assert_eq!(proof.id(), id);
        assert_eq!(proof.verify(), ok);
        let same = Evidence {
            a: proof.clone(),
            b: proof,
        };
        assert_eq!(same.forker(&d.header().context), None, "one delta is no fork");
        let _ = d.open(&epoch_key());

        let h = d.header();
        if let Ok(op) = postcard::from_bytes::<Op>(&d.body.payload) {
            let mut access = Access::genesis(h.context, h.author);
            if access.check(h, &op).is_ok() {
                access.apply(id, h, &op);
            }
            match &op {
                Op::Call(p) => {
                    let _ = update_span(&p.update);
                }
                Op::Evidence(e) => {
                    let _ = e.forker(&h.context);
                }
                _ => {}
            }
        }
    }
    if let Ok(span) = update_span(data) {
        assert!(span.iter().all(|(_, start, end)| start <= end));
    }
});
