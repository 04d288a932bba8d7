//! What peers send a meet server, and what a member opens from its answer:
//! a sequence of `(poster, clock step, postcard MeetRequest)`, each
//! answered by one small [`Board`] (its bounds must hold after every
//! request), every record it returns opened under the fixture context's
//! tag as a member does, and the whole input opened as a sealed record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mero_sync::gate::Topic;
use mero_sync::meet::{self, Board, BoardLimits, MAX_FOUND_PER_TAG, MeetRequest, MeetResponse};

const LIMITS: BoardLimits = BoardLimits {
    max_records: 8,
    max_per_tag: 3,
    max_tags_per_poster: 4,
    max_ttl_secs: 10,
};

fuzz_target!(init: mero_fuzz::abort_on_panics_but_caught_crdt_ones(), |data: &[u8]| {
    let topic = Topic::of(&mero_fuzz::context(), &mero_fuzz::epoch_key());
    let _ = meet::open(&topic, data);
    let mut board = Board::new(LIMITS);
    let mut now_ms = 0u64;
    let mut rest = data;
    while let [poster, step, more @ ..] = rest {
        now_ms += u64::from(*step) * 100;
        let Ok((req, tail)) = postcard::take_from_bytes::<MeetRequest>(more) else {
            return;
        };
        rest = tail;
        let asked = match &req {
            MeetRequest::Lookup { tags } => tags.len(),
            _ => 0,
        };
        match board.answer(&[*poster % 5], req, now_ms) {
            MeetResponse::Found { per_tag } => {
                assert_eq!(per_tag.len(), asked.min(meet::MAX_ITEMS));
                for sealed in per_tag.iter().flatten() {
                    assert!(sealed.len() <= meet::MAX_SEALED);
                    let _ = meet::open(&topic, sealed);
                }
                assert!(per_tag.iter().all(|f| f.len() <= MAX_FOUND_PER_TAG));
            }
            MeetResponse::Posted { .. } | MeetResponse::Refused { .. } => {}
        }
        assert!(board.len() <= LIMITS.max_records);
        board.expire(now_ms);
    }
});
