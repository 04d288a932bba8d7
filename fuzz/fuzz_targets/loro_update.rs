//! A call delta's Loro update as a hostile member can craft it (checksum
//! fixed): `update_span`, then `ContextState::import`, as
//! `Replica::judge` does. Not run by `scripts/fuzz` by default: it still
//! finds allocation bombs inside Loro's column decoder (docs/fuzzing.md,
//! `fuzz/regressions/loro_update-1.bin`); run it with
//! `scripts/fuzz 60 loro_update`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mero_engine::{ContextState, update_span};
use mero_fuzz::fix_loro_checksum;

fuzz_target!(init: mero_fuzz::abort_on_panics_but_caught_crdt_ones(), |data: &[u8]| {
    let mut update = data.to_vec();
    fix_loro_checksum(&mut update);
    let Ok(span) = update_span(&update) else {
        return;
    };
    if let [(peer, ..)] = span.as_slice() {
        let mut state = ContextState::new(peer.wrapping_add(1) & (u64::MAX >> 1));
        if state.import(&update).is_ok() {
            let _ = state.to_json();
        }
    }
});
