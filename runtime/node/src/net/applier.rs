//! The applier: one thread that applies gossip in batches (one context
//! lock and one write batch per context per batch) and tells the swarm
//! task, per message, whether to forward it.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use libp2p::PeerId;
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use mero_sync::{DeltaBody, SignedDelta};
use tokio::sync::mpsc;

use super::Replication;
use super::handle::Command;
use crate::ids::{ContextId, DeltaId};

/// Deltas applied under one lock and write batch, about.
const BATCH_DELTAS: usize = 1024;

/// One gossip message waiting to be applied.
pub(super) struct Message {
    pub ctx: ContextId,
    pub peer: PeerId,
    pub id: MessageId,
    pub deltas: Vec<SignedDelta>,
}

/// The applier thread and its bounded queue.
pub(super) struct Applier {
    tx: SyncSender<Message>,
    thread: JoinHandle<()>,
}

impl Applier {
    /// Starts the thread; `capacity` messages may wait for it.
    pub fn spawn(
        node: Arc<dyn Replication>,
        back: mpsc::Sender<Command>,
        capacity: usize,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("mero-applier".into())
            .spawn(move || run(node, rx, back))?;
        Ok(Self { tx, thread })
    }

    /// Queues a message; if the queue is full, gives back its id.
    pub fn offer(&self, m: Message) -> Result<(), MessageId> {
        self.tx.try_send(m).map_err(|e| match e {
            TrySendError::Full(m) | TrySendError::Disconnected(m) => m.id,
        })
    }

    /// Closes the queue; the thread ends once it applied what it holds.
    pub fn close(self) -> JoinHandle<()> {
        drop(self.tx);
        self.thread
    }
}

fn run(node: Arc<dyn Replication>, rx: Receiver<Message>, back: mpsc::Sender<Command>) {
    while let Ok(first) = rx.recv() {
        let mut taken = first.deltas.len();
        let mut messages = vec![first];
        while taken < BATCH_DELTAS {
            match rx.try_recv() {
                Ok(m) => {
                    taken += m.deltas.len();
                    messages.push(m);
                }
                Err(_) => break,
            }
        }
        let mut by_ctx: Vec<(ContextId, Vec<Message>)> = Vec::new();
        for m in messages {
            match by_ctx.iter_mut().find(|(c, _)| *c == m.ctx) {
                Some((_, v)) => v.push(m),
                None => by_ctx.push((m.ctx, vec![m])),
            }
        }
        for (ctx, messages) in by_ctx {
            for (id, peer, verdict) in apply(node.as_ref(), &ctx, messages) {
                // The swarm task drains this queue all the time; waiting
                // here only slows the applier down, it cannot deadlock.
                if back
                    .blocking_send(Command::Validated(id, peer, verdict))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Applies one context's messages. A message with garbage is rejected
/// (not forwarded, and counted against its sender); one with a delta still
/// waiting for parents is ignored: a node that has them may judge it
/// garbage, so forwarding it would get this node scored. The others are
/// accepted (forwarded), each message judged by its own deltas: with many
/// writers, a batch of messages often holds one that waits, and ignoring
/// the whole batch left the rest to catch-up rounds, seconds later. A context that is gone or
/// quarantined, or a panic, ignores them all.
fn apply(
    node: &dyn Replication,
    ctx: &ContextId,
    messages: Vec<Message>,
) -> Vec<(MessageId, PeerId, MessageAcceptance)> {
    // Per message: each delta's id, and its header and signature alone,
    // to tell a forged copy from the honest delta with the same id.
    let marks: Vec<Vec<(DeltaId, SignedDelta)>> = messages
        .iter()
        .map(|m| {
            m.deltas
                .iter()
                .map(|d| {
                    let bare = SignedDelta {
                        body: DeltaBody {
                            header: d.body.header.clone(),
                            payload: Vec::new(),
                        },
                        signature: d.signature.clone(),
                    };
                    (d.id(), bare)
                })
                .collect()
        })
        .collect();
    let from = messages
        .last()
        .map(|m| m.peer.to_string())
        .unwrap_or_default();
    let mut deltas = Vec::with_capacity(marks.iter().map(Vec::len).sum());
    let mut heads = Vec::with_capacity(messages.len());
    for m in messages {
        deltas.extend(m.deltas);
        heads.push((m.id, m.peer));
    }
    let outcome: Option<(HashMap<DeltaId, bool>, HashSet<DeltaId>)> =
        match catch_unwind(AssertUnwindSafe(|| node.gossip(ctx, deltas, &from))) {
            Ok(Ok(report)) => Some((
                report.garbage.into_iter().collect(),
                report.waiting.into_iter().collect(),
            )),
            Ok(Err(e)) => {
                tracing::debug!(context = %ctx, "gossip not applied: {e}");
                None
            }
            Err(_) => {
                tracing::error!(context = %ctx, "applying gossip panicked");
                None
            }
        };
    heads
        .into_iter()
        .zip(marks)
        .map(|((id, peer), marks)| {
            let verdict = match &outcome {
                None => MessageAcceptance::Ignore,
                Some((garbage, waiting)) => {
                    let bad = marks.iter().any(|(i, bare)| match garbage.get(i) {
                        // Bad signature: garbage only if this copy's fails.
                        Some(true) => !bare.verify_id(i),
                        Some(false) => true,
                        None => false,
                    });
                    if bad {
                        MessageAcceptance::Reject
                    } else if marks.iter().any(|(i, _)| waiting.contains(i)) {
                        MessageAcceptance::Ignore
                    } else {
                        MessageAcceptance::Accept
                    }
                }
            };
            (id, peer, verdict)
        })
        .collect()
}
