//! An invitation token as a joiner pastes it (`mero-inv-<base58>`): parse,
//! `check`, print and parse again, and what a joining node does with it
//! (a replica holding its key and secret, and the join's proof).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mero_sync::access::Join;
use mero_sync::{ContextKey, InvitationToken, MemberSecret, Replica};

fuzz_target!(init: mero_fuzz::abort_on_panics_but_caught_crdt_ones(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(token) = text.parse::<InvitationToken>() else {
        return;
    };
    for now in [0, token.expires_at_ms, token.expires_at_ms.saturating_add(1), u64::MAX] {
        let _ = token.check(now);
    }
    let again: InvitationToken = token.to_string().parse().expect("a printed token parses");
    assert_eq!(again, token);

    let mut replica = Replica::new(token.context, token.creator);
    replica.add_key(token.epoch, ContextKey(token.key));
    let invite = MemberSecret::from_bytes(&token.secret);
    replica.add_opener(invite.clone());
    let me = MemberSecret::from_bytes(&[9; 32]);
    let _ = Join::new(&token.context, &me.public(), token.invite, &invite, 0);
    let _ = replica.draft(&me.public(), token.app);
});
