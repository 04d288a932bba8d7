//! Joining by snapshot. A joiner with an empty replica asks its connected
//! peers, one at a time, to offer a snapshot of at least
//! `replica.snapshot_join_min` deltas; it fetches the first offer's parts
//! ([`WINDOW`] in flight), checks them as `mero_sync::snapshot::install` does,
//! and stores the result in one write. Catch-up rounds for the context
//! hold off meanwhile; whatever happens (no offer, a bad snapshot, a peer
//! gone) the join then goes on as before, paging deltas from the snapshot's
//! heads or from nothing.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use mero_engine::ContextState;
use mero_sync::protocol::{Request, Response};
use mero_sync::snapshot::{self, Manifest, Snapshot, SnapshotError, SnapshotLimits, Target};

use crate::context::Effects;
use crate::ids::ContextId;
use crate::net::NetHandle;
use crate::node::Node;

/// Part requests in flight: what a peer answers at once (`net.guard`'s
/// `inflight_per_peer`); a "busy" answer is asked again.
const WINDOW: usize = 2;
/// Times one part is asked again after "busy" answers.
const BUSY_RETRIES: u32 = 50;
/// How long a joiner waits for a first connected member.
const PEER_WAIT: Duration = Duration::from_secs(15);
/// How long one request may take (a large snapshot builds for a while).
const DEADLINE: Duration = Duration::from_secs(120);
/// Peers asked for an offer before the joiner pages instead.
const MAX_OFFERS: usize = 3;
/// Peers asked in all, non-members included.
const MAX_ASKED: usize = 32;

/// Starts fetching a snapshot for the joining context `ctx` on a thread;
/// catch-up for it starts when that is over.
pub(crate) fn start(node: &Arc<Node>, ctx: ContextId) {
    let (Some(net), min) = (node.net().cloned(), node.config().replica.snapshot_join_min) else {
        return;
    };
    if min == 0 || !node.snapshots().begin(ctx) {
        net.sync(ctx);
        return;
    }
    let weak = Arc::downgrade(node);
    let spawned = std::thread::Builder::new()
        .name("mero-snapshot".into())
        .spawn(move || {
            run(&weak, &net, ctx, min);
            if let Some(node) = weak.upgrade() {
                node.snapshots().end(&ctx);
            }
            net.sync(ctx);
        });
    if let Err(e) = spawned {
        tracing::warn!(context = %ctx, "cannot start a snapshot fetch, replaying instead: {e}");
        node.snapshots().end(&ctx);
        if let Some(n) = node.net() {
            n.sync(ctx);
        }
    }
}

/// How asking one peer ended, short of an error.
enum Fetched {
    /// Installed a snapshot of this many deltas.
    Installed(u64),
    /// Declined (a history shorter than asked), or no longer wanted.
    Declined,
    /// The peer is no member of the context (a bootstrap or meet server
    /// the joiner met first).
    NotMember,
    /// The peer answered what no member answers.
    NoOffer(String),
}

fn run(node: &Weak<Node>, net: &NetHandle, ctx: ContextId, min: u64) {
    let started = Instant::now();
    let mut asked = Vec::new();
    // Whether a member's offer failed: then catch-up is as good as waiting
    // for another member.
    let mut failed = false;
    // Peers that made no offer, members or not: they do not count as
    // offers tried.
    let mut passed = 0;
    while asked.len() - passed < MAX_OFFERS
        && asked.len() < MAX_ASKED
        && started.elapsed() < PEER_WAIT + DEADLINE
    {
        let Some(peer) = next_peer(net, ctx, &asked, failed, started) else {
            return;
        };
        asked.push(peer);
        let Some(n) = node.upgrade() else { return };
        match fetch_from(&n, net, ctx, peer, min) {
            Ok(Fetched::Installed(len)) => {
                tracing::info!(context = %ctx, %peer, deltas = len, ms = started.elapsed().as_millis() as u64, "joined from a snapshot");
                super::backfill::start(&n, ctx);
                return;
            }
            // A member declines a history shorter than asked: paging it is
            // as fast as a snapshot would be.
            Ok(Fetched::Declined) => {
                tracing::debug!(context = %ctx, %peer, "no snapshot offered; replaying");
                return;
            }
            Ok(Fetched::NotMember) => {
                passed += 1;
                tracing::debug!(context = %ctx, %peer, "asked a peer that is no member");
            }
            Ok(Fetched::NoOffer(why)) => {
                passed += 1;
                tracing::debug!(context = %ctx, %peer, "no offer: {why}");
            }
            Err(e) => {
                failed = true;
                tracing::warn!(context = %ctx, %peer, "snapshot refused: {e}");
            }
        }
    }
}

/// A connected peer not asked yet, waiting for one (up to [`PEER_WAIT`])
/// unless a member's offer `failed` already.
fn next_peer(
    net: &NetHandle,
    ctx: ContextId,
    asked: &[PeerId],
    failed: bool,
    since: Instant,
) -> Option<PeerId> {
    loop {
        let peers = net.peers_of_blocking(ctx)?;
        if let Some(p) = peers.into_iter().find(|p| !asked.contains(p)) {
            return Some(p);
        }
        if failed || since.elapsed() > PEER_WAIT {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ask(node: &Node, net: &NetHandle, peer: PeerId, request: Request) -> Result<Response, String> {
    let env = node.envelope(request).ok_or("the context is gone")?;
    net.ask_blocking(peer, env, DEADLINE)
}

/// Asks `peer` for a snapshot and installs it.
fn fetch_from(
    node: &Arc<Node>,
    net: &NetHandle,
    ctx: ContextId,
    peer: PeerId,
    min: u64,
) -> Result<Fetched, String> {
    let target = {
        let slot = node.context(&ctx).map_err(|e| e.to_string())?;
        let rt = slot.lock().map_err(|e| e.to_string())?;
        let Some(j) = &rt.meta.joining else {
            return Ok(Fetched::Declined);
        };
        if !rt.dag().is_empty() {
            return Ok(Fetched::Declined);
        }
        Target {
            context: ctx,
            creator: rt.meta.creator,
            heads: j.heads.clone(),
        }
    };
    let mut tries = 0;
    let manifest = loop {
        let request = Request::Snapshot {
            context: ctx,
            min_len: min,
        };
        match ask(node, net, peer, request)? {
            Response::Offer { manifest: Some(m) } => break m,
            Response::Offer { manifest: None } => return Ok(Fetched::Declined),
            Response::Error { message } if message == crate::sync::NOT_ADMITTED => {
                return Ok(Fetched::NotMember);
            }
            Response::Error { message } if message.starts_with("busy") && tries < BUSY_RETRIES => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Response::Error { message } if message.starts_with("busy") => return Err(message),
            // Not an answer a member gives (a peer that speaks the
            // protocol without holding contexts, or lies).
            other => return Ok(Fetched::NoOffer(format!("unexpected answer {other:?}"))),
        }
    };
    let limits = SnapshotLimits {
        max_bytes: node.config().replica.max_snapshot_bytes,
        replica: node.replica_limits(),
    };
    let count = snapshot::check_manifest(&target, &manifest, &limits).map_err(|e| e.to_string())?;
    let parts = fetch_parts(node, net, ctx, peer, &manifest, count)?;
    let snap = match snapshot::open(&target, &manifest, &parts, &limits) {
        Ok(s) => s,
        Err(e) => {
            // Parts that do not match what the sender signed.
            if matches!(e, SnapshotError::BadPart(_)) {
                net.garbage(peer);
            }
            return Err(e.to_string());
        }
    };
    drop(parts);
    install(node, ctx, &target, &manifest, snap, &limits)
}

/// Every part of `m`, [`WINDOW`] requests in flight; each is checked
/// against the manifest's hash as it arrives.
fn fetch_parts(
    node: &Node,
    net: &NetHandle,
    ctx: ContextId,
    peer: PeerId,
    m: &Manifest,
    count: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let env_of = |index: usize| {
        node.envelope(Request::SnapshotPart {
            context: ctx,
            manifest: m.id(),
            index: index as u32,
        })
        .ok_or("the context is gone")
    };
    let (tx, rx) = mpsc::channel();
    let send = |index: usize| -> Result<(), String> {
        let tx = tx.clone();
        net.ask(
            peer,
            env_of(index)?,
            Box::new(move |r| {
                let _ = tx.send((index, r));
            }),
        );
        Ok(())
    };
    let mut parts: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let mut next = 0;
    let mut busy = 0;
    while next < count.min(WINDOW) {
        send(next)?;
        next += 1;
    }
    while parts.len() < count {
        let (index, r) = rx
            .recv_timeout(DEADLINE)
            .map_err(|_| "a part did not come")?;
        let bytes = match r? {
            Response::Part { bytes: Some(b) } => b,
            Response::Error { message } if message.starts_with("busy") && busy < BUSY_RETRIES => {
                busy += 1;
                std::thread::sleep(Duration::from_millis(20));
                send(index)?;
                continue;
            }
            Response::Part { bytes: None } => {
                return Err("the peer no longer holds the snapshot".into());
            }
            other => return Err(format!("unexpected answer {other:?}")),
        };
        // Hashes are checked once, by `snapshot::open`.
        parts.insert(index, bytes);
        if next < count {
            send(next)?;
            next += 1;
        }
    }
    Ok(parts.into_values().collect())
}

/// Checks the snapshot and, if the replica is still an empty joiner's,
/// makes it the replica, then lets the join complete.
fn install(
    node: &Arc<Node>,
    ctx: ContextId,
    target: &Target,
    m: &Manifest,
    snap: Snapshot,
    limits: &SnapshotLimits,
) -> Result<Fetched, String> {
    let slot = node.context(&ctx).map_err(|e| e.to_string())?;
    let (keys, openers, peer) = {
        let rt = slot.lock().map_err(|e| e.to_string())?;
        let mut openers = vec![rt.secret.clone()];
        openers.extend(rt.invite.clone());
        let keys: Vec<_> = rt
            .replica
            .keys()
            .iter()
            .map(|(e, k)| (*e, k.clone()))
            .collect();
        (keys, openers, rt.state.peer())
    };
    // Checked without the lock (for a long history this takes a while),
    // the state loading on a second thread meanwhile: mero-sync runs no
    // threads, so the node does `snapshot::install`'s steps itself.
    let (checked, loaded) = std::thread::scope(|scope| {
        let loading = scope.spawn(|| {
            let mut state = ContextState::new(peer);
            snapshot::load_state(&snap, &mut state).map(|()| state)
        });
        let checked = snapshot::check(target, m, &snap, keys, openers, limits);
        let loaded = loading
            .join()
            .unwrap_or_else(|_| Err(SnapshotError::BadState("loading panicked".into())));
        (checked, loaded)
    });
    let (replica, learned) = checked.map_err(|e| e.to_string())?;
    let state = loaded.map_err(|e| e.to_string())?;
    snapshot::check_state(&replica, &state).map_err(|e| e.to_string())?;
    let installed = snapshot::Installed {
        replica,
        keys: learned,
        snapshot: snap,
    };
    let len = installed.replica.dag().len() as u64;
    let mut rt = slot.lock().map_err(|e| e.to_string())?;
    if rt.meta.joining.is_none() || !rt.dag().is_empty() {
        return Ok(Fetched::Declined);
    }
    let mut fx = Effects::default();
    rt.install(node.db(), installed, state, m, node.policy(), &mut fx)
        .map_err(|e| e.to_string())?;
    node.metrics().snapshot_joined();
    node.after_change(&mut rt, &mut fx);
    node.announce(ctx, &mut fx);
    drop(rt);
    node.finish(ctx, fx, None);
    Ok(Fetched::Installed(len))
}
