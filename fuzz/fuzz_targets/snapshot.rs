//! A snapshot a member offers a joiner: postcard `Snapshot` bytes, cut and
//! signed as the creator would, installed by a node holding the first
//! epoch's key (`mero_sync::snapshot::install`: the checkpoint, every
//! control delta, the frontier and the state are checked).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mero_sync::snapshot::Snapshot;

fuzz_target!(init: mero_fuzz::abort_on_panics_but_caught_crdt_ones(), |data: &[u8]| {
    let Ok(s) = postcard::from_bytes::<Snapshot>(data) else {
        return;
    };
    if let Ok(installed) = mero_fuzz::install_signed(&s) {
        // What installs is a replica as good as any: it checkpoints again.
        let again = installed.replica.checkpoint();
        assert_eq!(again.entries.len(), s.checkpoint.entries.len());
    }
});
