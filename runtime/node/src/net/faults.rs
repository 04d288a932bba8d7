//! Dev-mode faults (`merod run --dev` only): the swarm task's state for
//! partitions, delay and loss, without IO, driven by the caller's clock.
//!
//! Partitions are the swarm's block list (the task applies [`Faults::blocked`]);
//! this module holds what arrives from a delayed link until it is due, and
//! decides loss. Applied at the receiver, per sending peer:
//!
//! - delay: gossip, requests and responses from the peer wait `delay_ms`;
//! - loss: its gossip is dropped with the link's probability (not
//!   forwarded, no strike: catch-up repairs); request-response frames ride
//!   on TCP and are not lost but, with that probability, wait one
//!   retransmission timeout, `max(200 ms, 2 × delay)`, more.
//!
//! Bounds: at most [`MAX_HELD`] items and [`MAX_HELD_BYTES`] held; beyond,
//! an item counts as lost (`dropped`) and the caller drops it (gossip
//! ignored, a request answered busy, a response failed).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::gossipsub::{self, MessageId};
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use mero_sync::protocol::Response;

use super::codec::Frame;

/// Most items held at once.
pub const MAX_HELD: usize = 10_000;
/// Most bytes held at once.
pub const MAX_HELD_BYTES: usize = 64 << 20;
/// The least extra wait of a "lost" request-response frame.
const RETRANSMIT_MIN: Duration = Duration::from_millis(200);

/// Delay and loss on what one peer sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Milliseconds its messages are held.
    pub delay_ms: u32,
    /// Percent of its gossip dropped (0 to 100).
    pub loss_percent: f64,
}

/// Checked faults, as `PUT /admin/dev/faults` asks for them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    /// Cut off from every peer.
    pub isolated: bool,
    /// Peers refused both ways.
    pub blocked: HashSet<PeerId>,
    /// Per peer (`None`: every other peer).
    pub links: HashMap<Option<PeerId>, Link>,
    /// Seed of the loss decisions.
    pub seed: Option<u64>,
}

/// Something a peer sent, as the swarm got it.
pub(crate) enum Inbound {
    Gossip(PeerId, MessageId, gossipsub::Message),
    Request(PeerId, Frame, ResponseChannel<Response>),
    Response(PeerId, OutboundRequestId, Response),
}

impl Inbound {
    fn peer(&self) -> PeerId {
        match self {
            Inbound::Gossip(p, ..) | Inbound::Request(p, ..) | Inbound::Response(p, ..) => *p,
        }
    }

    /// What it counts against the held bytes.
    fn bytes(&self) -> usize {
        match self {
            Inbound::Gossip(_, _, m) => m.data.len(),
            Inbound::Request(..) => 256,
            Inbound::Response(_, _, r) => response_bytes(r),
        }
    }
}

/// Payload bytes of a response (deltas and blobs dominate).
pub(crate) fn response_bytes(r: &Response) -> usize {
    match r {
        Response::Deltas { deltas, .. } => deltas.iter().map(|d| d.body.payload.len() + 256).sum(),
        Response::App { wasm } => wasm.as_ref().map_or(64, Vec::len),
        Response::Blob { part } => part.as_ref().map_or(64, |p| p.bytes.len()),
        Response::Digest { heads, .. } => 64 + 32 * heads.len(),
        Response::Error { message } => message.len(),
        Response::Offer { manifest } => manifest.as_ref().map_or(64, |m| 256 + 32 * m.parts.len()),
        Response::Part { bytes } => bytes.as_ref().map_or(64, Vec::len),
    }
}

/// What [`Faults::admit`] did with an item.
pub(crate) enum Admit {
    /// Handle it now.
    Pass(Inbound),
    /// Held until due.
    Held,
    /// Lost (by the link, or over the bounds): the caller drops it.
    Dropped(Inbound),
}

struct Held {
    due: Instant,
    order: u64,
    bytes: usize,
    item: Inbound,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// Reversed: the heap's top is the earliest due (ties: first in).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.order).cmp(&(self.due, self.order))
    }
}

/// The swarm task's fault state (present only in dev mode).
pub(crate) struct Faults {
    spec: FaultSpec,
    held: BinaryHeap<Held>,
    held_bytes: usize,
    order: u64,
    dropped: u64,
    rng: fastrand::Rng,
    changed_at_ms: u64,
}

impl Default for Faults {
    /// No faults yet.
    fn default() -> Self {
        Self {
            spec: FaultSpec::default(),
            held: BinaryHeap::new(),
            held_bytes: 0,
            order: 0,
            dropped: 0,
            rng: fastrand::Rng::new(),
            changed_at_ms: 0,
        }
    }
}

impl Faults {
    /// The faults in force.
    pub fn spec(&self) -> &FaultSpec {
        &self.spec
    }

    /// Replaces the faults; returns every held item (the caller handles
    /// them now: a changed link no longer holds them).
    pub fn set(&mut self, spec: FaultSpec, now_ms: u64) -> Vec<Inbound> {
        if let Some(seed) = spec.seed {
            self.rng = fastrand::Rng::with_seed(seed);
        }
        self.spec = spec;
        self.changed_at_ms = now_ms;
        self.release_all()
    }

    /// Whether `peer` is cut off.
    pub fn blocks(&self, peer: &PeerId) -> bool {
        self.spec.isolated || self.spec.blocked.contains(peer)
    }

    /// The link fault on what `peer` sends, if any.
    pub fn link(&self, peer: &PeerId) -> Option<Link> {
        self.spec
            .links
            .get(&Some(*peer))
            .or_else(|| self.spec.links.get(&None))
            .copied()
    }

    /// Lets `item` through, holds it for its link's delay, or loses it.
    pub fn admit(&mut self, item: Inbound, now: Instant) -> Admit {
        let Some(link) = self.link(&item.peer()) else {
            return Admit::Pass(item);
        };
        let unlucky =
            link.loss_percent > 0.0 && self.rng.f64() * 100.0 < link.loss_percent.min(100.0);
        let mut delay = Duration::from_millis(u64::from(link.delay_ms));
        if unlucky {
            if matches!(item, Inbound::Gossip(..)) {
                self.dropped += 1;
                return Admit::Dropped(item);
            }
            delay += RETRANSMIT_MIN.max(2 * delay);
        }
        if delay.is_zero() {
            return Admit::Pass(item);
        }
        let bytes = item.bytes();
        if self.held.len() >= MAX_HELD || self.held_bytes.saturating_add(bytes) > MAX_HELD_BYTES {
            self.dropped += 1;
            return Admit::Dropped(item);
        }
        self.order += 1;
        self.held_bytes += bytes;
        self.held.push(Held {
            due: now + delay,
            order: self.order,
            bytes,
            item,
        });
        Admit::Held
    }

    /// When the next held item is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.peek().map(|h| h.due)
    }

    /// The held items due by `now`, earliest first.
    pub fn due(&mut self, now: Instant) -> Vec<Inbound> {
        let mut out = Vec::new();
        while self.held.peek().is_some_and(|h| h.due <= now) {
            if let Some(h) = self.held.pop() {
                self.held_bytes -= h.bytes;
                out.push(h.item);
            }
        }
        out
    }

    fn release_all(&mut self) -> Vec<Inbound> {
        let mut all: Vec<Held> = std::mem::take(&mut self.held).into_vec();
        all.sort_by(|a, b| b.cmp(a));
        self.held_bytes = 0;
        all.into_iter().map(|h| h.item).collect()
    }

    /// The faults as `/admin/dev/faults` shows them.
    pub fn view(&self) -> mero_api::Faults {
        let mut blocked: Vec<String> = self.spec.blocked.iter().map(PeerId::to_string).collect();
        blocked.sort();
        let mut links: Vec<mero_api::Link> = self
            .spec
            .links
            .iter()
            .map(|(p, l)| mero_api::Link {
                peer: p.map(|p| p.to_string()),
                delay_ms: l.delay_ms,
                loss_percent: l.loss_percent,
            })
            .collect();
        links.sort_by(|a, b| a.peer.cmp(&b.peer));
        mero_api::Faults {
            isolated: self.spec.isolated,
            blocked,
            links,
            changed_at_ms: self.changed_at_ms,
            held: self.held.len() as u64,
            held_bytes: self.held_bytes as u64,
            dropped: self.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gossip(peer: PeerId, n: usize) -> Inbound {
        let topic = gossipsub::IdentTopic::new("t").hash();
        let message = gossipsub::Message {
            source: None,
            data: vec![0; n],
            sequence_number: None,
            topic,
        };
        Inbound::Gossip(peer, MessageId::from(vec![n as u8]), message)
    }

    fn with_link(peer: Option<PeerId>, delay_ms: u32, loss_percent: f64) -> Faults {
        let mut f = Faults::default();
        let mut spec = FaultSpec {
            seed: Some(1),
            ..FaultSpec::default()
        };
        spec.links.insert(
            peer,
            Link {
                delay_ms,
                loss_percent,
            },
        );
        assert!(f.set(spec, 5).is_empty());
        f
    }

    #[test]
    fn a_delayed_link_holds_until_due_in_order_and_others_pass() {
        let (slow, fast) = (PeerId::random(), PeerId::random());
        let mut f = with_link(Some(slow), 300, 0.0);
        let t0 = Instant::now();
        assert!(matches!(f.admit(gossip(fast, 1), t0), Admit::Pass(_)));
        assert!(matches!(f.admit(gossip(slow, 2), t0), Admit::Held));
        assert!(matches!(
            f.admit(gossip(slow, 3), t0 + Duration::from_millis(10)),
            Admit::Held
        ));
        assert_eq!(f.next_due(), Some(t0 + Duration::from_millis(300)));
        assert!(f.due(t0 + Duration::from_millis(299)).is_empty());
        let out = f.due(t0 + Duration::from_millis(310));
        let sizes: Vec<usize> = out
            .iter()
            .map(|i| match i {
                Inbound::Gossip(_, _, m) => m.data.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, vec![2, 3]);
        assert_eq!(f.view().held, 0);
        assert_eq!(f.view().held_bytes, 0);
    }

    #[test]
    fn full_loss_drops_all_gossip_and_the_default_link_applies_to_every_peer() {
        let mut f = with_link(None, 0, 100.0);
        let t0 = Instant::now();
        for _ in 0..50 {
            assert!(matches!(
                f.admit(gossip(PeerId::random(), 4), t0),
                Admit::Dropped(_)
            ));
        }
        assert_eq!(f.view().dropped, 50);
    }

    #[test]
    fn loss_is_reproducible_with_a_seed() {
        let peer = PeerId::random();
        let run = || {
            let mut f = with_link(Some(peer), 0, 30.0);
            (0..200)
                .map(|_| matches!(f.admit(gossip(peer, 1), Instant::now()), Admit::Dropped(_)))
                .collect::<Vec<bool>>()
        };
        let a = run();
        assert_eq!(a, run());
        let lost = a.iter().filter(|l| **l).count();
        assert!((30..90).contains(&lost), "{lost} of 200 lost at 30 %");
    }

    #[test]
    fn holding_is_bounded_by_count_and_bytes() {
        let peer = PeerId::random();
        let mut f = with_link(Some(peer), 10_000, 0.0);
        let t0 = Instant::now();
        for _ in 0..MAX_HELD {
            assert!(matches!(f.admit(gossip(peer, 1), t0), Admit::Held));
        }
        assert!(matches!(f.admit(gossip(peer, 1), t0), Admit::Dropped(_)));
        assert_eq!((f.view().held, f.view().dropped), (MAX_HELD as u64, 1));
        // Clearing the faults hands everything back, earliest first.
        let released = f.set(FaultSpec::default(), 9);
        assert_eq!(released.len(), MAX_HELD);
        assert_eq!(f.view().held, 0);

        let mut f = with_link(Some(peer), 10_000, 0.0);
        assert!(matches!(
            f.admit(gossip(peer, MAX_HELD_BYTES), t0),
            Admit::Held
        ));
        assert!(matches!(f.admit(gossip(peer, 1), t0), Admit::Dropped(_)));
    }

    #[test]
    fn isolation_and_blocks() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut f = Faults::default();
        let mut spec = FaultSpec::default();
        spec.blocked.insert(a);
        f.set(spec, 1);
        assert!(f.blocks(&a) && !f.blocks(&b));
        f.set(
            FaultSpec {
                isolated: true,
                ..FaultSpec::default()
            },
            2,
        );
        assert!(f.blocks(&a) && f.blocks(&b));
        assert_eq!(f.view().changed_at_ms, 2);
    }
}
