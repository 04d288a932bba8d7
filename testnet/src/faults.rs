//! The fault plan of a network and what it means for each node: the one
//! place that turns "partition 3", "delay 2 by 200 ms", "loss 2 10 %" into
//! the `SetFaults` each node's `PUT /admin/dev/faults` takes.
//!
//! - `partition S`: every node of S blocks every node outside S, and every
//!   node outside blocks every node of S (a new partition replaces the old).
//! - `delay n d`: each link of n is one way d slower; a receiver r holds
//!   what s sends for `d_s + d_r` (capped at the node's 10 s limit).
//! - `loss n p`: likewise, a message from s to r is lost with
//!   `1 - (1 - p_s)(1 - p_r)`.
//! - `heal`: nothing of the above.

use std::collections::{BTreeMap, BTreeSet};

use mero_api::{LinkFault, MAX_DELAY_MS, SetFaults};

use crate::TestnetError;

/// The faults of a whole network, by 1-based node number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// One side of the partition (the other side is everyone else).
    side: BTreeSet<usize>,
    delay_ms: BTreeMap<usize, u32>,
    loss_percent: BTreeMap<usize, f64>,
}

impl Plan {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the plan has no fault at all.
    pub fn is_empty(&self) -> bool {
        self.side.is_empty() && self.delay_ms.is_empty() && self.loss_percent.is_empty()
    }

    /// Splits the network into `side` and the rest (an empty side ends
    /// the partition; delays and loss stay).
    pub fn partition(&mut self, side: &[usize]) {
        self.side = side.iter().copied().collect();
    }

    /// One side of the partition (empty: no partition), for display.
    pub fn side(&self) -> impl Iterator<Item = usize> + '_ {
        self.side.iter().copied()
    }

    /// The delay of each node that has one (ms), for display.
    pub fn delays(&self) -> &BTreeMap<usize, u32> {
        &self.delay_ms
    }

    /// The loss of each node that has one (percent), for display.
    pub fn losses(&self) -> &BTreeMap<usize, f64> {
        &self.loss_percent
    }

    /// Whether `a` and `b` are on different sides of the partition.
    pub fn split(&self, a: usize, b: usize) -> bool {
        !self.side.is_empty() && self.side.contains(&a) != self.side.contains(&b)
    }

    /// Puts node `new` on the side of `like` (a node added while a
    /// partition holds joins through `like`).
    pub fn join_side_of(&mut self, new: usize, like: usize) {
        if self.side.contains(&like) {
            self.side.insert(new);
        }
    }

    /// Every link of `node` gets `ms` one way (0 removes it).
    pub fn delay(&mut self, node: usize, ms: u32) -> Result<(), TestnetError> {
        if ms > MAX_DELAY_MS {
            return Err(TestnetError::BadFault(format!(
                "a delay of {ms} ms is over the node's limit of {MAX_DELAY_MS} ms"
            )));
        }
        if ms == 0 {
            self.delay_ms.remove(&node);
        } else {
            self.delay_ms.insert(node, ms);
        }
        Ok(())
    }

    /// Every link of `node` loses `percent` % of its gossip (0 removes it).
    pub fn loss(&mut self, node: usize, percent: f64) -> Result<(), TestnetError> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(TestnetError::BadFault(format!(
                "a loss of {percent} % is not between 0 and 100"
            )));
        }
        if percent == 0.0 {
            self.loss_percent.remove(&node);
        } else {
            self.loss_percent.insert(node, percent);
        }
        Ok(())
    }

    /// Clears every fault.
    pub fn heal(&mut self) {
        *self = Self::default();
    }

    /// What node `me` must apply, given every node's peer id (nodes
    /// killed for now included: they keep their id when they restart).
    pub fn faults_for(&self, me: usize, peers: &BTreeMap<usize, String>) -> SetFaults {
        let mut out = SetFaults {
            seed: Some(me as u64),
            ..SetFaults::default()
        };
        let my_delay = self.delay_ms.get(&me).copied().unwrap_or(0);
        let my_loss = self.loss_percent.get(&me).copied().unwrap_or(0.0) / 100.0;
        for (&other, peer) in peers {
            if other == me {
                continue;
            }
            if self.split(me, other) {
                out.blocked.push(peer.clone());
                continue;
            }
            let delay = my_delay
                .saturating_add(self.delay_ms.get(&other).copied().unwrap_or(0))
                .min(MAX_DELAY_MS);
            let their_loss = self.loss_percent.get(&other).copied().unwrap_or(0.0) / 100.0;
            let loss = (1.0 - (1.0 - my_loss) * (1.0 - their_loss)) * 100.0;
            if delay > 0 || loss > 0.0 {
                out.links.push(LinkFault {
                    peer: Some(peer.clone()),
                    delay_ms: delay,
                    loss_percent: loss.clamp(0.0, 100.0),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: usize) -> BTreeMap<usize, String> {
        (1..=n).map(|i| (i, format!("peer{i}"))).collect()
    }

    #[test]
    fn a_partition_blocks_both_ways_and_nothing_else() {
        let mut plan = Plan::new();
        plan.partition(&[3]);
        let p = peers(3);
        assert_eq!(plan.faults_for(1, &p).blocked, ["peer3"]);
        assert_eq!(plan.faults_for(2, &p).blocked, ["peer3"]);
        assert_eq!(plan.faults_for(3, &p).blocked, ["peer1", "peer2"]);
        assert!(plan.faults_for(3, &p).links.is_empty());
        // A node added through node 1 is on node 1's side.
        plan.join_side_of(4, 1);
        assert_eq!(plan.faults_for(4, &peers(4)).blocked, ["peer3"]);
        plan.partition(&[1, 2]);
        plan.join_side_of(4, 1);
        assert_eq!(plan.faults_for(4, &peers(4)).blocked, ["peer3"]);
        assert_eq!(
            plan.faults_for(3, &peers(4)).blocked,
            ["peer1", "peer2", "peer4"]
        );
        plan.heal();
        assert!(plan.is_empty());
        let healed = plan.faults_for(3, &peers(4));
        assert!(healed.blocked.is_empty() && healed.links.is_empty() && !healed.isolated);
    }

    #[test]
    fn delays_add_up_and_losses_combine_per_link() {
        let mut plan = Plan::new();
        plan.delay(2, 200).unwrap();
        plan.delay(3, 50).unwrap();
        plan.loss(2, 10.0).unwrap();
        plan.loss(3, 50.0).unwrap();
        let p = peers(3);
        let on1 = plan.faults_for(1, &p);
        assert_eq!(on1.links.len(), 2);
        assert_eq!(on1.links[0].peer.as_deref(), Some("peer2"));
        assert_eq!(on1.links[0].delay_ms, 200);
        assert!((on1.links[0].loss_percent - 10.0).abs() < 1e-9);
        let on2 = plan.faults_for(2, &p);
        // From 1: only 2's own delay; from 3: both.
        assert_eq!(on2.links[0].delay_ms, 200);
        assert_eq!(on2.links[1].delay_ms, 250);
        assert!((on2.links[1].loss_percent - 55.0).abs() < 1e-9);
        // Sums stay within the node's limit; bad values are refused.
        plan.delay(1, MAX_DELAY_MS).unwrap();
        assert_eq!(plan.faults_for(1, &p).links[0].delay_ms, MAX_DELAY_MS);
        assert!(plan.delay(1, MAX_DELAY_MS + 1).is_err());
        assert!(plan.loss(1, 100.5).is_err());
        assert!(plan.loss(1, f64::NAN).is_err());
        // 0 removes a node's fault.
        plan.delay(1, 0).unwrap();
        plan.delay(2, 0).unwrap();
        plan.delay(3, 0).unwrap();
        plan.loss(2, 0.0).unwrap();
        plan.loss(3, 0.0).unwrap();
        assert!(plan.is_empty());
    }
}
