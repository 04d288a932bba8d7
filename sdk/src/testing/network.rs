//! Several replicas of one context, and the deltas that travel between them.

use mero_engine::{DeltaPayload, VersionVector};
use serde_json::Value;

use super::Replica;
use crate::__private::{AppLogic, AppState};

/// Most delivery rounds [`Network::deliver_shuffled`] runs: handlers whose
/// writes keep naming handlers would otherwise never settle.
const MAX_ROUNDS: usize = 64;

/// A delta one replica produced: its payload, its author and the state its
/// author was in after writing it.
#[derive(Debug, Clone)]
pub struct Delta {
    pub(super) author: u8,
    pub(super) seq: u64,
    /// Everything the author held once it wrote the delta: a receiver runs
    /// the delta's handlers only once it holds all of it, as a node applies
    /// a delta only after its parents.
    pub(super) after: VersionVector,
    pub(super) payload: DeltaPayload,
}

impl Delta {
    /// The index of the replica that wrote it.
    pub fn author(&self) -> usize {
        usize::from(self.author)
    }

    /// Its number among its author's deltas, from 1.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The Loro update and the events.
    pub fn payload(&self) -> &DeltaPayload {
        &self.payload
    }
}

/// Several replicas of one context, with explicit delivery of their deltas.
pub struct Network<S> {
    pub(super) replicas: Vec<Replica<S>>,
    /// Every delta ever produced, in the order it was collected.
    pub(super) log: Vec<Delta>,
    /// How much of `log` has been delivered.
    pub(super) delivered: usize,
}

impl<S: AppState + AppLogic> Network<S> {
    /// `n` replicas; replica 0 runs `init` with `{}` and the others receive it.
    pub fn new(n: usize) -> Self {
        Self::with_init(n, Value::Object(Default::default()))
    }

    /// `n` replicas; replica 0 runs `init` with `args` and the others
    /// receive it as joiners do: without running handlers.
    pub fn with_init(n: usize, args: Value) -> Self {
        assert!(n > 0 && n < 256, "a test network has 1 to 255 replicas");
        let mut replicas: Vec<Replica<S>> = (0..n).map(|i| Replica::new(i as u8)).collect();
        replicas[0].init(args).expect("init succeeds");
        let init = replicas[0].take_deltas();
        for r in &mut replicas[1..] {
            for d in &init {
                r.import(d);
                r.seen.insert((d.author, d.seq));
            }
        }
        Self {
            replicas,
            log: Vec::new(),
            delivered: 0,
        }
    }

    /// Replica `i`.
    pub fn replica(&mut self, i: usize) -> &mut Replica<S> {
        &mut self.replicas[i]
    }

    /// Number of replicas.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Whether the network has no replicas (never: kept for API symmetry).
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    pub(super) fn collect(&mut self) {
        for r in &mut self.replicas {
            self.log.extend(r.take_deltas());
        }
    }

    /// Delivers every delta produced so far to every other replica, in a
    /// random order per replica (seeded), with some duplicated; then what
    /// the handlers those deltas ran wrote, and so on until no replica
    /// writes anything new. Panics if that takes more than 64 rounds.
    pub fn deliver_shuffled(&mut self, seed: u64) {
        for round in 0..MAX_ROUNDS as u64 {
            if self.deliver_round(seed.wrapping_add(round)) == 0 {
                return;
            }
        }
        panic!(
            "deltas kept coming after {MAX_ROUNDS} delivery rounds: do handlers emit events whose handlers emit events?"
        );
    }

    /// Delivers what was produced since the last round to every other
    /// replica (shuffled, some duplicated, seeded), and nothing more: what
    /// handlers write meanwhile waits for the next round. Returns how many
    /// deltas the round carried.
    pub fn deliver_round(&mut self, seed: u64) -> usize {
        self.collect();
        let fresh = &self.log[self.delivered..];
        let mut rng = fastrand::Rng::with_seed(seed);
        for (i, r) in self.replicas.iter_mut().enumerate() {
            let mut inbox: Vec<&Delta> = fresh.iter().filter(|d| d.author() != i).collect();
            let dups: Vec<&Delta> = inbox.iter().filter(|_| rng.u8(..) < 32).copied().collect();
            inbox.extend(dups);
            rng.shuffle(&mut inbox);
            for d in inbox {
                r.apply(d);
            }
        }
        let carried = fresh.len();
        self.delivered = self.log.len();
        carried
    }

    /// Panics unless every replica has the same state and version.
    pub fn assert_converged(&self) {
        let first = &self.replicas[0];
        for (i, r) in self.replicas.iter().enumerate().skip(1) {
            assert_eq!(
                first.state_json(),
                r.state_json(),
                "replica {i} diverged from replica 0"
            );
            assert_eq!(
                first.engine().version(),
                r.engine().version(),
                "replica {i} holds different operations than replica 0"
            );
        }
    }
}
