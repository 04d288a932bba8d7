//! Meeting the other members of a context at well-known nodes, without
//! telling those nodes which context.
//!
//! A member posts a sealed [`Record`] (its peer id and the addresses it is
//! reachable at) under a [`tag`] at every meet server it knows; another
//! member, or a joiner holding the invitation's epoch key, looks the tag up
//! and dials what it finds. Tag and record key derive from the context's
//! gossip [`Topic`] key, which derives from the current epoch key: only
//! holders of that key can compute the tag or open a record, and both change
//! with every key rotation (a removed member loses them with its key).
//!
//! A meet server keeps a [`Board`]: opaque `tag → sealed records`, keyed by
//! the poster's peer id, bounded in records per tag, tags per poster and
//! records in all, each with an expiry. It has no operation that lists tags;
//! a lookup of a tag nobody posted answers empty.
//!
//! What a meet server learns: each poster's peer id and connection address,
//! the 32-byte tags it posts (their number is about the number of its
//! contexts), which peers post or look up the same tag (they share some
//! context), and when. Not the context id, member keys, or the addresses in
//! the records.
//!
//! ```
//! use mero_sync::ContextKey;
//! use mero_sync::gate::Topic;
//! use mero_sync::ids::ContextId;
//! use mero_sync::meet::{Board, BoardLimits, Record, open, seal, tag};
//!
//! let topic = Topic::of(&ContextId([7; 32]), &ContextKey::generate());
//! let record = Record { peer: b"peer A".to_vec(), addrs: vec![b"/ip4/192.0.2.1/tcp/1".to_vec()], at_ms: 5 };
//! let mut board = Board::new(BoardLimits::default());
//! let refused = board.post(b"peer A", vec![(tag(&topic), seal(&topic, &record))], 600, 0);
//! assert_eq!(refused, 0);
//! let found = board.lookup(&[tag(&topic)], 1_000);
//! assert_eq!(open(&topic, &found[0][0]), Some(record));
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::crypto::ContextKey;
use crate::gate::Topic;
use crate::ids::sha256;

/// The request-response protocol of meet servers.
pub const PROTOCOL: &str = "/mero/meet/1";
/// Addresses in one record.
pub const MAX_ADDRS: usize = 8;
/// Bytes of one address in a record.
pub const MAX_ADDR_BYTES: usize = 256;
/// Bytes of one sealed record a board keeps.
pub const MAX_SEALED: usize = 1024;
/// Records posted, or tags withdrawn or looked up, in one request.
pub const MAX_ITEMS: usize = 256;
/// Records a lookup answers per tag.
pub const MAX_FOUND_PER_TAG: usize = 16;
/// Bytes of sealed records one lookup answers in all.
pub const MAX_FOUND_BYTES: usize = 512 << 10;

/// Where a context's members meet in the epoch of `topic`.
pub fn tag(topic: &Topic) -> [u8; 32] {
    derive(b"mero/meet/v1", topic)
}

fn record_key(topic: &Topic) -> ContextKey {
    ContextKey(derive(b"mero/meet-key/v1", topic))
}

fn derive(domain: &[u8], topic: &Topic) -> [u8; 32] {
    let mut m = domain.to_vec();
    m.extend_from_slice(&topic.key.0);
    sha256(&m)
}

/// Where one member can be reached: what a sealed record holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The member node's libp2p peer id (bytes).
    pub peer: Vec<u8>,
    /// Multiaddrs (bytes) it is reachable at, best first; at most
    /// [`MAX_ADDRS`] of at most [`MAX_ADDR_BYTES`] each.
    pub addrs: Vec<Vec<u8>>,
    /// When it was posted, by the poster's clock (newer replaces older).
    pub at_ms: u64,
}

impl Record {
    fn in_bounds(&self) -> bool {
        self.peer.len() <= MAX_ADDR_BYTES
            && self.addrs.len() <= MAX_ADDRS
            && self.addrs.iter().all(|a| a.len() <= MAX_ADDR_BYTES)
    }
}

/// Seals `record` for the members of `topic`'s epoch; the tag is bound in,
/// so a record cannot be replayed under another tag. Addresses past the
/// bounds are left out, the last ones first until the sealed record fits
/// in [`MAX_SEALED`] (a board refuses a larger one).
pub fn seal(topic: &Topic, record: &Record) -> Vec<u8> {
    let mut r = record.clone();
    r.addrs.truncate(MAX_ADDRS);
    r.addrs.retain(|a| a.len() <= MAX_ADDR_BYTES);
    let key = record_key(topic);
    loop {
        let plain = postcard::to_allocvec(&r).expect("records serialize");
        let sealed = key.seal(&plain, &tag(topic));
        if sealed.len() <= MAX_SEALED || r.addrs.pop().is_none() {
            return sealed;
        }
    }
}

/// Opens a record sealed for `topic`; `None` if it was not, or if it
/// breaks a bound.
pub fn open(topic: &Topic, sealed: &[u8]) -> Option<Record> {
    if sealed.len() > MAX_SEALED {
        return None;
    }
    let plain = record_key(topic).open(sealed, &tag(topic))?;
    let r: Record = postcard::from_bytes(&plain).ok()?;
    r.in_bounds().then_some(r)
}

/// A request to a meet server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeetRequest {
    /// Keep these sealed records under their tags for `ttl_secs` (capped by
    /// the server), replacing the sender's earlier ones there.
    Post {
        /// (tag, sealed record), at most [`MAX_ITEMS`].
        items: Vec<([u8; 32], Vec<u8>)>,
        /// How long to keep them, in seconds.
        ttl_secs: u32,
    },
    /// Drop the sender's records under these tags (at most [`MAX_ITEMS`]).
    Withdraw {
        /// The tags.
        tags: Vec<[u8; 32]>,
    },
    /// The records under these tags (at most [`MAX_ITEMS`]).
    Lookup {
        /// The tags.
        tags: Vec<[u8; 32]>,
    },
}

/// A meet server's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeetResponse {
    /// Posted or withdrawn; `refused` records were not kept (a bound).
    Posted {
        /// Records not kept.
        refused: u32,
    },
    /// The records under each looked-up tag, in the request's order.
    Found {
        /// Sealed records per tag.
        per_tag: Vec<Vec<Vec<u8>>>,
    },
    /// The request was refused: why.
    Refused {
        /// Why.
        message: String,
    },
}

/// A board's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardLimits {
    /// Records kept in all.
    pub max_records: usize,
    /// Records kept under one tag (from distinct posters).
    pub max_per_tag: usize,
    /// Tags one poster may hold records under.
    pub max_tags_per_poster: usize,
    /// Longest time a record is kept, in seconds.
    pub max_ttl_secs: u32,
}

impl Default for BoardLimits {
    fn default() -> Self {
        Self {
            max_records: 50_000,
            max_per_tag: 64,
            max_tags_per_poster: 4_096,
            max_ttl_secs: 3_600,
        }
    }
}

struct Posted {
    poster: Vec<u8>,
    sealed: Vec<u8>,
    posted_ms: u64,
    expires_ms: u64,
}

/// A meet server's records: opaque, bounded, expiring. Time is the
/// caller's (`now_ms`).
pub struct Board {
    limits: BoardLimits,
    tags: HashMap<[u8; 32], Vec<Posted>>,
    per_poster: HashMap<Vec<u8>, usize>,
    records: usize,
    /// When a full board last swept expired records: at most once a
    /// second, so posts to a full board do not each scan it.
    swept_ms: Option<u64>,
}

impl Board {
    /// An empty board.
    pub fn new(limits: BoardLimits) -> Self {
        Self {
            limits,
            tags: HashMap::new(),
            per_poster: HashMap::new(),
            records: 0,
            swept_ms: None,
        }
    }

    /// Records kept now (expired ones included until the next
    /// [`Board::expire`]).
    pub fn len(&self) -> usize {
        self.records
    }

    /// Whether the board keeps nothing.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Answers `req` from `poster` (its peer id).
    pub fn answer(&mut self, poster: &[u8], req: MeetRequest, now_ms: u64) -> MeetResponse {
        match req {
            MeetRequest::Post { items, ttl_secs } => {
                if items.len() > MAX_ITEMS {
                    return too_many();
                }
                MeetResponse::Posted {
                    refused: self.post(poster, items, ttl_secs, now_ms),
                }
            }
            MeetRequest::Withdraw { tags } => {
                if tags.len() > MAX_ITEMS {
                    return too_many();
                }
                self.withdraw(poster, &tags);
                MeetResponse::Posted { refused: 0 }
            }
            MeetRequest::Lookup { tags } => {
                if tags.len() > MAX_ITEMS {
                    return too_many();
                }
                MeetResponse::Found {
                    per_tag: self.lookup(&tags, now_ms),
                }
            }
        }
    }

    /// Keeps `items` from `poster` for `ttl_secs` (at most the limit),
    /// each replacing the poster's earlier record under its tag. Returns
    /// how many were refused: too large, or past a bound.
    pub fn post(
        &mut self,
        poster: &[u8],
        items: Vec<([u8; 32], Vec<u8>)>,
        ttl_secs: u32,
        now_ms: u64,
    ) -> u32 {
        let ttl = u64::from(ttl_secs.min(self.limits.max_ttl_secs));
        let expires_ms = now_ms.saturating_add(ttl * 1000);
        let mut refused = 0;
        if self.records + items.len() > self.limits.max_records
            && self
                .swept_ms
                .is_none_or(|t| now_ms >= t.saturating_add(1_000))
        {
            self.swept_ms = Some(now_ms);
            self.expire(now_ms);
        }
        for (tag, sealed) in items.into_iter().take(MAX_ITEMS) {
            if sealed.len() > MAX_SEALED {
                refused += 1;
                continue;
            }
            let list = self.tags.entry(tag).or_default();
            if let Some(p) = list.iter_mut().find(|p| p.poster == poster) {
                p.sealed = sealed;
                p.posted_ms = now_ms;
                p.expires_ms = expires_ms;
                continue;
            }
            let held = self.per_poster.get(poster).copied().unwrap_or(0);
            if list.len() >= self.limits.max_per_tag
                || held >= self.limits.max_tags_per_poster
                || self.records >= self.limits.max_records
            {
                if list.is_empty() {
                    self.tags.remove(&tag);
                }
                refused += 1;
                continue;
            }
            list.push(Posted {
                poster: poster.to_vec(),
                sealed,
                posted_ms: now_ms,
                expires_ms,
            });
            *self.per_poster.entry(poster.to_vec()).or_default() += 1;
            self.records += 1;
        }
        refused
    }

    /// Drops `poster`'s records under `tags`.
    pub fn withdraw(&mut self, poster: &[u8], tags: &[[u8; 32]]) {
        for tag in tags.iter().take(MAX_ITEMS) {
            let Some(list) = self.tags.get_mut(tag) else {
                continue;
            };
            let before = list.len();
            list.retain(|p| p.poster != poster);
            let dropped = list.len() < before;
            if list.is_empty() {
                self.tags.remove(tag);
            }
            if dropped {
                self.records -= 1;
                self.forget_one(poster);
            }
        }
    }

    /// The live records under each of `tags` (at most
    /// [`MAX_FOUND_PER_TAG`] each, last posted first, and
    /// [`MAX_FOUND_BYTES`] in all).
    pub fn lookup(&self, tags: &[[u8; 32]], now_ms: u64) -> Vec<Vec<Vec<u8>>> {
        let mut budget = MAX_FOUND_BYTES;
        tags.iter()
            .take(MAX_ITEMS)
            .map(|t| {
                let Some(list) = self.tags.get(t) else {
                    return Vec::new();
                };
                let mut live: Vec<&Posted> =
                    list.iter().filter(|p| p.expires_ms > now_ms).collect();
                // Freshest first: a poster that asked for a long TTL does
                // not outrank those who post again.
                live.sort_by_key(|p| std::cmp::Reverse(p.posted_ms));
                let mut out = Vec::new();
                for p in live.into_iter().take(MAX_FOUND_PER_TAG) {
                    if p.sealed.len() > budget {
                        break;
                    }
                    budget -= p.sealed.len();
                    out.push(p.sealed.clone());
                }
                out
            })
            .collect()
    }

    /// Drops every record expired at `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        let mut gone = Vec::new();
        self.tags.retain(|_, list| {
            list.retain(|p| {
                let live = p.expires_ms > now_ms;
                if !live {
                    gone.push(p.poster.clone());
                }
                live
            });
            !list.is_empty()
        });
        self.records -= gone.len();
        for poster in gone {
            self.forget_one(&poster);
        }
    }

    fn forget_one(&mut self, poster: &[u8]) {
        if let Some(n) = self.per_poster.get_mut(poster) {
            *n -= 1;
            if *n == 0 {
                self.per_poster.remove(poster);
            }
        }
    }
}

fn too_many() -> MeetResponse {
    MeetResponse::Refused {
        message: format!("more than {MAX_ITEMS} items in one request"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ContextId;

    fn topic(n: u8) -> Topic {
        Topic::of(&ContextId([n; 32]), &ContextKey([n; 32]))
    }

    fn record(peer: &[u8]) -> Record {
        Record {
            peer: peer.to_vec(),
            addrs: vec![b"/ip4/192.0.2.1/tcp/4001".to_vec()],
            at_ms: 1,
        }
    }

    #[test]
    fn only_the_epoch_opens_a_record_and_tags_differ_per_epoch() {
        let (a, b) = (topic(1), topic(2));
        assert_ne!(tag(&a), tag(&b));
        let sealed = seal(&a, &record(b"p"));
        assert_eq!(open(&a, &sealed), Some(record(b"p")));
        assert_eq!(open(&b, &sealed), None);
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(open(&a, &flipped), None);
        // The tag is not the record key: posting it reveals nothing that opens.
        assert_ne!(tag(&a), record_key(&a).0);
    }

    #[test]
    fn a_record_past_its_bounds_is_not_opened() {
        let t = topic(1);
        let mut r = record(b"p");
        r.addrs = vec![vec![0; 10]; MAX_ADDRS + 1];
        let plain = postcard::to_allocvec(&r).unwrap();
        let sealed = record_key(&t).seal(&plain, &tag(&t));
        assert_eq!(open(&t, &sealed), None);
        // `seal` itself keeps within them.
        assert_eq!(open(&t, &seal(&t, &r)).unwrap().addrs.len(), MAX_ADDRS);
        // Long addresses: the last ones are left out until it fits a board.
        r.addrs = vec![vec![7; MAX_ADDR_BYTES]; MAX_ADDRS];
        let sealed = seal(&t, &r);
        assert!(sealed.len() <= MAX_SEALED, "{}", sealed.len());
        let opened = open(&t, &sealed).unwrap();
        assert!(
            (1..MAX_ADDRS).contains(&opened.addrs.len()),
            "{}",
            opened.addrs.len()
        );
        assert_eq!(opened.addrs[..], r.addrs[..opened.addrs.len()]);
    }

    #[test]
    fn posts_replace_expire_withdraw_and_stay_bounded() {
        let limits = BoardLimits {
            max_records: 5,
            max_per_tag: 2,
            max_tags_per_poster: 3,
            max_ttl_secs: 10,
        };
        let mut b = Board::new(limits);
        let t = [1; 32];
        assert_eq!(b.post(b"x", vec![(t, vec![1])], 100, 0), 0);
        // The same poster replaces its record.
        assert_eq!(b.post(b"x", vec![(t, vec![2])], 100, 0), 0);
        assert_eq!(b.lookup(&[t], 1), vec![vec![vec![2]]]);
        assert_eq!(b.post(b"y", vec![(t, vec![3])], 100, 0), 0);
        // A third poster under a full tag is refused, not the first two.
        assert_eq!(b.post(b"z", vec![(t, vec![4])], 100, 0), 1);
        assert_eq!(b.lookup(&[t], 1)[0].len(), 2);
        // Tags per poster.
        let more = vec![([2; 32], vec![0]), ([3; 32], vec![0]), ([4; 32], vec![0])];
        assert_eq!(b.post(b"x", more, 100, 0), 1);
        assert_eq!(b.len(), 4);
        // Records in all.
        assert_eq!(
            b.post(b"w", vec![([5; 32], vec![0]), ([6; 32], vec![0])], 100, 0),
            1
        );
        assert_eq!(b.len(), 5);
        // Too large.
        assert_eq!(
            b.post(b"v", vec![([7; 32], vec![0; MAX_SEALED + 1])], 100, 0),
            1
        );
        // The ttl is capped at 10 s: all gone at 10 s, and room again.
        assert_eq!(b.lookup(&[t], 10_000), vec![Vec::<Vec<u8>>::new()]);
        b.expire(10_000);
        assert!(b.is_empty());
        assert_eq!(b.post(b"z", vec![(t, vec![4])], 100, 10_000), 0);
        b.withdraw(b"z", &[t]);
        assert!(b.is_empty());
        assert_eq!(b.lookup(&[[9; 32]], 0), vec![Vec::<Vec<u8>>::new()]);
    }

    #[test]
    fn lookups_answer_the_last_posted_first_whatever_their_ttl() {
        let mut b = Board::new(BoardLimits::default());
        let t = [1; 32];
        b.post(b"long", vec![(t, vec![1])], 3_600, 0);
        b.post(b"short", vec![(t, vec![2])], 180, 1_000);
        assert_eq!(b.lookup(&[t], 2_000), vec![vec![vec![2], vec![1]]]);
    }

    #[test]
    fn requests_over_the_item_limit_are_refused() {
        let mut b = Board::new(BoardLimits::default());
        let tags = vec![[0; 32]; MAX_ITEMS + 1];
        assert!(matches!(
            b.answer(b"x", MeetRequest::Lookup { tags }, 0),
            MeetResponse::Refused { .. }
        ));
        let items = vec![([0; 32], vec![0]); MAX_ITEMS + 1];
        assert!(matches!(
            b.answer(b"x", MeetRequest::Post { items, ttl_secs: 1 }, 0),
            MeetResponse::Refused { .. }
        ));
        assert!(b.is_empty());
    }
}
