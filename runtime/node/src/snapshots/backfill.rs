//! After a snapshot join: fetching the call deltas below the checkpoint.
//!
//! A joiner serves and decides from its snapshot at once, but holds only
//! the control deltas of the history below it. A background thread asks
//! connected peers for the others by id ([`mero_sync::protocol::Request::ById`],
//! [`BATCH`] at a time), keeps each delta whose id and signature are the
//! checkpoint entry's (ids are content hashes, so nothing else can pass),
//! and stores it at its log position. Progress is stored, so a restart goes
//! on where it stopped. Once done, the node holds the whole history as a
//! replaying joiner would: it serves pages below the checkpoint and can
//! rebuild its state canonically after an equivocation.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use mero_sync::SignedDelta;
use mero_sync::protocol::{BY_ID_LIMIT, Envelope, Request, Response};

use crate::ids::{ContextId, DeltaId};
use crate::net::NetHandle;
use crate::node::Node;

/// Ids asked at once.
const BATCH: usize = BY_ID_LIMIT;
/// How long one request may take.
const DEADLINE: Duration = Duration::from_secs(60);
/// Pause when no peer has what is missing (or none is connected).
const REST: Duration = Duration::from_secs(2);

/// Starts fetching the history below `ctx`'s checkpoint, if it lacks some.
pub(crate) fn start(node: &Arc<Node>, ctx: ContextId) {
    let Some(net) = node.net().cloned() else {
        return;
    };
    let weak = Arc::downgrade(node);
    let spawned = std::thread::Builder::new()
        .name("mero-backfill".into())
        .spawn(move || {
            if let Err(e) = run(&weak, &net, ctx) {
                tracing::warn!(context = %ctx, "fetching the history below the snapshot stopped: {e}");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(context = %ctx, "cannot start fetching the history below the snapshot: {e}");
    }
}

fn run(node: &Weak<Node>, net: &NetHandle, ctx: ContextId) -> Result<(), String> {
    let (ids, mut next) = {
        let n = node.upgrade().ok_or("node gone")?;
        let db = n.db();
        let Some(joined) = db.received(&ctx).map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let next = db.backfilled(&ctx).map_err(|e| e.to_string())?;
        if next >= joined.len {
            return Ok(());
        }
        let Some(stored) = db.checkpoint(&ctx).map_err(|e| e.to_string())? else {
            return Ok(());
        };
        // Later checkpoints list more, all stored above the join's.
        let ids: Vec<DeltaId> = stored
            .checkpoint
            .entries
            .iter()
            .take(joined.len as usize)
            .map(|e| e.id)
            .collect();
        (ids, next)
    };
    let started = Instant::now();
    let total = ids.len() as u64;
    while next < total {
        let Some(n) = node.upgrade() else {
            return Ok(());
        };
        if n.has_context(&ctx).is_err() {
            return Ok(());
        }
        // The positions from `next` on that are not stored yet.
        let mut wanted = Vec::with_capacity(BATCH);
        let mut pos = next;
        while pos < total && wanted.len() < BATCH {
            if n.db()
                .delta(&ctx, pos)
                .map_err(|e| e.to_string())?
                .is_none()
            {
                wanted.push(pos);
            }
            pos += 1;
        }
        if wanted.is_empty() {
            next = pos;
            n.db()
                .write_backfilled(&ctx, next)
                .map_err(|e| e.to_string())?;
            continue;
        }
        let Some(peer) = peer(net, ctx) else {
            drop(n);
            std::thread::sleep(REST);
            continue;
        };
        let request = Request::ById {
            context: ctx,
            ids: wanted.iter().map(|p| ids[*p as usize]).collect(),
        };
        let Some(proof) = n.proof_for(&ctx) else {
            return Ok(());
        };
        let answer = net.ask_blocking(peer, Envelope { request, proof }, DEADLINE);
        let deltas = match answer {
            Ok(Response::Deltas { deltas, .. }) if !deltas.is_empty() => deltas,
            Ok(_) | Err(_) => {
                drop(n);
                std::thread::sleep(REST);
                continue;
            }
        };
        let by_id: HashMap<DeltaId, SignedDelta> =
            deltas.into_iter().map(|d| (d.id(), d)).collect();
        let mut batch = n.db().batch();
        let mut got = 0;
        // Progress moves to the first position still missing.
        let mut first_missing = None;
        for p in &wanted {
            let id = ids[*p as usize];
            match by_id.get(&id) {
                Some(d) if d.verify_id(&id) => {
                    batch.put_delta(n.db(), *p, d);
                    got += 1;
                }
                _ => {
                    first_missing.get_or_insert(*p);
                }
            }
        }
        if got < by_id.len() {
            // Deltas nobody asked for, or forged copies of the ones asked.
            net.garbage(peer);
        }
        next = first_missing.unwrap_or(pos);
        batch.put_backfilled(n.db(), &ctx, next);
        n.db().write(batch).map_err(|e| e.to_string())?;
    }
    tracing::info!(context = %ctx, deltas = total, secs = started.elapsed().as_secs_f64(), "fetched the history below the snapshot");
    Ok(())
}

fn peer(net: &NetHandle, ctx: ContextId) -> Option<PeerId> {
    let peers = net.peers_of_blocking(ctx)?;
    // A different peer each time spreads the load and gets past one that
    // lacks the history itself.
    let i = (crate::node::now_nanos() as usize) % peers.len().max(1);
    peers.get(i).copied()
}
