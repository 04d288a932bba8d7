//! Fetching a blob from member peers.
//!
//! One thread per blob (at most `[blobs] max_fetches`). It asks every
//! connected member peer for the manifest and keeps the first one that
//! opens and hashes to the blob id; then it keeps up to `fetch_window`
//! chunk requests in flight to each peer, lowest missing chunk first (so a
//! download streaming the blob gets its next bytes soonest). Each chunk is
//! checked against the manifest before it is stored; a peer that sends a
//! bad one is scored as for garbage, and one that fails (killed, timed
//! out) is dropped until it is connected again, its chunks asked of the
//! others. The chunks stored survive a restart: a fetch started again
//! re-checks them and asks only for the rest.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use mero_sync::blob::{BlobId, BlobKeys, Manifest, PartFault, Sealed, open_chunk, open_manifest};
use mero_sync::gate::Proof;
use mero_sync::ids::DeltaId;
use mero_sync::protocol::{Envelope, Request, Response};

pub(crate) use super::progress::Fetch;
use super::store::{self, MANIFEST, Stage};
use super::{BlobError, InUse};
use crate::error::NodeError;
use crate::ids::ContextId;
use crate::net::NetHandle;
use crate::node::Node;

/// How often a fetch asks the network which member peers are connected.
const PEER_REFRESH: Duration = Duration::from_secs(2);
/// How long a peer that answered "busy" is left alone.
const BUSY_REST: Duration = Duration::from_millis(500);
/// A request with no answer after this long counts as failed (the
/// transport's own timeout normally fires first).
const REQUEST_DEADLINE: Duration = Duration::from_secs(60);
/// Most chunk requests one fetch has in flight over all its peers: bounds
/// the answers (a chunk each) that can be waiting for it in memory.
const MAX_INFLIGHT: usize = 32;

/// Starts fetching blob `id` of `ctx`, or returns the fetch already running
/// (or, if the node holds the blob, one that is over).
pub(crate) fn start(node: &Arc<Node>, ctx: ContextId, id: BlobId) -> Result<Arc<Fetch>, BlobError> {
    node.has_context(&ctx)?;
    let blobs = node.blobs();
    let mut fetches = blobs.fetches.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(f) = fetches.get(&(ctx, id)) {
        return Ok(f.clone());
    }
    let fetch = Arc::new(Fetch::new(ctx, id));
    if let Some((_, Stage::Complete)) = blobs.store.locate(&ctx, &id) {
        fetch.update(|p| {
            p.manifest = true;
            p.ended = Some(Ok(()));
        });
        return Ok(fetch);
    }
    if node.net().is_none() {
        return Err(BlobError::NotFound(
            id,
            "this node has no network to fetch it from".into(),
        ));
    }
    let max = blobs.config.max_fetches;
    if fetches.len() >= max {
        return Err(BlobError::Busy(format!(
            "{max} blob fetches are running ([blobs] max_fetches); retry shortly"
        )));
    }
    fetches.insert((ctx, id), fetch.clone());
    drop(fetches);
    let (n, f) = (node.clone(), fetch.clone());
    let spawned = std::thread::Builder::new()
        .name("mero-blob-fetch".into())
        .spawn(move || run(n, f));
    if let Err(e) = spawned {
        blobs
            .fetches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(ctx, id));
        return Err(BlobError::io(e));
    }
    Ok(fetch)
}

fn run(node: Arc<Node>, fetch: Arc<Fetch>) {
    let (ctx, id) = (fetch.ctx, fetch.id);
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        Fetcher::new(&node, &fetch).and_then(Fetcher::run)
    }));
    let outcome = match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the fetch failed unexpectedly (see the node's log)".to_owned()),
    };
    match &outcome {
        Ok(()) => {
            tracing::info!(context = %ctx, blob = %id, secs = started.elapsed().as_secs_f64(), "blob fetched")
        }
        Err(why) => tracing::warn!(context = %ctx, blob = %id, "blob fetch stopped: {why}"),
    }
    node.blobs()
        .fetches
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&(ctx, id));
    fetch.update(|p| p.ended = Some(outcome));
}

/// A peer, as one fetch sees it.
#[derive(Default)]
struct Peer {
    inflight: usize,
    /// Chunks it answered it does not have (or cannot seal for us).
    lacks: HashSet<u32>,
    /// Failed or no longer connected: asked again once listed again.
    gone: bool,
    rest_until: Option<Instant>,
}

type Reply = (u64, PeerId, Result<Response, String>);

struct Fetcher<'a> {
    node: &'a Node,
    fetch: &'a Fetch,
    net: NetHandle,
    keys: BlobKeys,
    epoch: DeltaId,
    proof: Proof,
    dir: PathBuf,
    _held: InUse,
    tx: mpsc::Sender<Reply>,
    rx: mpsc::Receiver<Reply>,
    tag: u64,
    peers: HashMap<PeerId, Peer>,
    closing: tokio::sync::watch::Receiver<bool>,
}

impl<'a> Fetcher<'a> {
    fn new(node: &'a Node, fetch: &'a Fetch) -> Result<Self, BlobError> {
        let net = node
            .net()
            .cloned()
            .ok_or_else(|| BlobError::NotFound(fetch.id, "this node has no network".into()))?;
        let (keys, proof) = node.blob_access(&fetch.ctx)?;
        let epoch = keys
            .current()
            .map(|(e, _)| e)
            .ok_or(NodeError::Joining(fetch.ctx))?;
        let blobs = node.blobs();
        let dir = blobs.store.dir(&fetch.ctx, &fetch.id, Stage::Partial);
        let held = blobs.hold(dir.clone());
        let (tx, rx) = mpsc::channel();
        Ok(Self {
            node,
            fetch,
            net,
            keys,
            epoch,
            proof,
            dir,
            _held: held,
            tx,
            rx,
            tag: 0,
            peers: HashMap::new(),
            closing: node.closing(),
        })
    }

    fn run(mut self) -> Result<(), BlobError> {
        let manifest = self.manifest()?;
        let max = self.node.blobs().config.max_blob_bytes;
        if manifest.size > max {
            return Err(BlobError::TooLarge {
                size: manifest.size,
                max,
            });
        }
        let pending: BTreeSet<u32> = (0..manifest.count())
            .filter(|i| !self.stored(&manifest, *i))
            .collect();
        let count = manifest.count();
        self.fetch.update(|p| {
            p.manifest = true;
            p.have = (0..count).map(|i| !pending.contains(&i)).collect();
        });
        if !pending.is_empty() {
            tracing::info!(context = %self.fetch.ctx, blob = %self.fetch.id, missing = pending.len(), chunks = count, "fetching blob chunks");
        }
        self.chunks(&manifest, pending)?;
        let blobs = self.node.blobs();
        blobs
            .store
            .complete(&self.fetch.ctx, &self.fetch.id, &self.dir)
            .map_err(BlobError::io)
    }

    /// Whether chunk `index` is stored and checks out (a damaged one is
    /// deleted, to be fetched again).
    fn stored(&self, m: &Manifest, index: u32) -> bool {
        if !store::has_chunk(&self.dir, index) {
            return false;
        }
        let name = index.to_string();
        let ok = matches!(
            store::read_part(&self.dir, &name),
            Ok(Some(part)) if open_chunk(&self.keys, m, index, &part).is_ok()
        );
        if !ok {
            store::remove_part(&self.dir, &name);
        }
        ok
    }

    fn check_closing(&self) -> Result<(), BlobError> {
        if *self.closing.borrow() {
            return Err(BlobError::Busy(
                "the node is shutting down; the fetch resumes when it starts again".into(),
            ));
        }
        Ok(())
    }

    fn ask(&mut self, peer: PeerId, request: Request) -> u64 {
        self.tag += 1;
        let (tag, tx) = (self.tag, self.tx.clone());
        let env = Envelope {
            request,
            proof: self.proof.clone(),
        };
        self.net.ask(
            peer,
            env,
            Box::new(move |r| {
                let _ = tx.send((tag, peer, r));
            }),
        );
        tag
    }

    /// Learns which member peers are connected: new ones are added, those
    /// gone are marked so. `stuck`: nothing arrived since the last time,
    /// so what peers lacked is asked again (they may have fetched it).
    fn refresh_peers(&mut self, stuck: bool) {
        let (tx, rx) = mpsc::channel();
        self.net.peers_of(
            self.fetch.ctx,
            Box::new(move |v| {
                let _ = tx.send(v);
            }),
        );
        let Ok(listed) = rx.recv_timeout(Duration::from_secs(5)) else {
            return;
        };
        for p in self.peers.values_mut() {
            p.gone = true;
        }
        for id in listed {
            let p = self.peers.entry(id).or_default();
            p.gone = false;
            if stuck {
                p.lacks.clear();
            }
        }
    }

    /// Refreshes the keys (a rotation brought a new epoch) and the proof.
    fn refresh_access(&mut self) {
        if let Ok((keys, proof)) = self.node.blob_access(&self.fetch.ctx) {
            if let Some((e, _)) = keys.current() {
                self.epoch = e;
            }
            self.keys = keys;
            self.proof = proof;
        }
    }

    fn garbage(&self, peer: PeerId, what: &str) {
        tracing::warn!(%peer, context = %self.fetch.ctx, blob = %self.fetch.id, "peer sent a bad blob {what}; refused");
        self.node.blobs().metrics.refused("garbage");
        self.net.garbage(peer);
    }

    /// The blob's manifest: the stored one, or the first a peer sends that
    /// checks out.
    fn manifest(&mut self) -> Result<Manifest, BlobError> {
        let id = self.fetch.id;
        if let Ok(Some(part)) = store::read_part(&self.dir, MANIFEST)
            && let Ok(m) = open_manifest(&self.keys, &id, &part)
        {
            // A fetch picked up again: its grace period starts over.
            let _ = store::touch(&self.dir.join(MANIFEST));
            return Ok(m);
        }
        let timeout = Duration::from_secs(self.node.blobs().config.fetch_timeout_secs);
        let deadline = Instant::now() + timeout;
        let mut why = "no member peer is connected".to_owned();
        loop {
            self.check_closing()?;
            self.refresh_peers(false);
            let live: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, p)| !p.gone)
                .map(|(id, _)| *id)
                .collect();
            let mut asked = HashSet::new();
            for p in live {
                let request = Request::BlobManifest {
                    context: self.fetch.ctx,
                    blob: id,
                    epoch: self.epoch,
                };
                asked.insert(self.ask(p, request));
            }
            let round_end = Instant::now() + Duration::from_secs(25).min(timeout);
            while !asked.is_empty() {
                let left = round_end.saturating_duration_since(Instant::now());
                let Ok((tag, peer, reply)) = self.rx.recv_timeout(left) else {
                    break;
                };
                if !asked.remove(&tag) {
                    continue;
                }
                match reply {
                    Ok(Response::Blob { part: Some(part) }) => {
                        if let Some(m) = self.take_manifest(peer, &part, &mut why)? {
                            return Ok(m);
                        }
                    }
                    Ok(Response::Blob { part: None }) => {
                        why = "no connected member peer has it".into();
                    }
                    Ok(Response::Error { message }) => why = format!("a peer answered: {message}"),
                    Ok(_) => self.garbage(peer, "manifest answer"),
                    Err(e) => {
                        self.node.blobs().metrics.peer_failure();
                        why = format!("asking a peer failed: {e}");
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(BlobError::NotFound(id, why));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Checks a manifest a peer sent and stores it; `None` if refused.
    fn take_manifest(
        &mut self,
        peer: PeerId,
        part: &Sealed,
        why: &mut String,
    ) -> Result<Option<Manifest>, BlobError> {
        let mut opened = open_manifest(&self.keys, &self.fetch.id, part);
        if opened == Err(PartFault::UnknownEpoch) {
            self.refresh_access();
            opened = open_manifest(&self.keys, &self.fetch.id, part);
        }
        match opened {
            Ok(m) => {
                store::write_part(&self.dir, MANIFEST, part).map_err(BlobError::io)?;
                Ok(Some(m))
            }
            Err(PartFault::UnknownEpoch) => {
                self.node.blobs().metrics.refused("unknown_epoch");
                *why = "peers sealed it in a key epoch this node does not hold yet".into();
                Ok(None)
            }
            Err(PartFault::Garbage) => {
                self.garbage(peer, "manifest");
                *why = "a peer sent a manifest that does not match the id".into();
                Ok(None)
            }
        }
    }

    /// Fetches the `pending` chunks.
    fn chunks(&mut self, m: &Manifest, mut pending: BTreeSet<u32>) -> Result<(), BlobError> {
        let cfg = self.node.blobs().config;
        let (timeout, window) = (
            Duration::from_secs(cfg.fetch_timeout_secs),
            cfg.fetch_window,
        );
        let mut inflight: HashMap<u64, (PeerId, u32, Instant)> = HashMap::new();
        let mut last_progress = Instant::now();
        let mut refreshed: Option<Instant> = None;
        let mut progressed = true;
        while !pending.is_empty() || !inflight.is_empty() {
            self.check_closing()?;
            if refreshed.is_none_or(|t| t.elapsed() >= PEER_REFRESH) {
                self.refresh_peers(!progressed);
                refreshed = Some(Instant::now());
                progressed = false;
            }
            self.assign(window, &mut pending, &mut inflight);
            if inflight.is_empty() {
                if last_progress.elapsed() >= timeout {
                    return Err(BlobError::NotFound(
                        self.fetch.id,
                        format!(
                            "{} of its {} chunks are missing and no connected member peer sent them",
                            pending.len(),
                            m.count()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let reply = match self.rx.recv_timeout(Duration::from_millis(200)) {
                Ok(r) => r,
                Err(_) => {
                    self.expire(&mut pending, &mut inflight);
                    continue;
                }
            };
            let (tag, peer, reply) = reply;
            let Some((_, index, _)) = inflight.remove(&tag) else {
                continue;
            };
            if let Some(p) = self.peers.get_mut(&peer) {
                p.inflight = p.inflight.saturating_sub(1);
            }
            if self.take_chunk(m, peer, index, reply)? {
                last_progress = Instant::now();
                progressed = true;
            } else {
                pending.insert(index);
            }
        }
        Ok(())
    }

    /// Sends chunk requests to every usable peer up to `window` each.
    fn assign(
        &mut self,
        window: usize,
        pending: &mut BTreeSet<u32>,
        inflight: &mut HashMap<u64, (PeerId, u32, Instant)>,
    ) {
        let now = Instant::now();
        let mut order: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.gone && p.rest_until.is_none_or(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        order.sort_by_key(|id| self.peers[id].inflight);
        for peer in order {
            while self.peers[&peer].inflight < window && inflight.len() < MAX_INFLIGHT {
                let lacks = &self.peers[&peer].lacks;
                let Some(index) = pending.iter().copied().find(|i| !lacks.contains(i)) else {
                    break;
                };
                pending.remove(&index);
                let request = Request::BlobChunk {
                    context: self.fetch.ctx,
                    blob: self.fetch.id,
                    index,
                    epoch: self.epoch,
                };
                let tag = self.ask(peer, request);
                inflight.insert(tag, (peer, index, now));
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.inflight += 1;
                }
            }
        }
    }

    /// Requests without an answer for too long count as failed.
    fn expire(
        &mut self,
        pending: &mut BTreeSet<u32>,
        inflight: &mut HashMap<u64, (PeerId, u32, Instant)>,
    ) {
        let late: Vec<u64> = inflight
            .iter()
            .filter(|(_, (_, _, at))| at.elapsed() >= REQUEST_DEADLINE)
            .map(|(t, _)| *t)
            .collect();
        for tag in late {
            if let Some((peer, index, _)) = inflight.remove(&tag) {
                pending.insert(index);
                self.node.blobs().metrics.peer_failure();
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.inflight = p.inflight.saturating_sub(1);
                    p.gone = true;
                }
            }
        }
    }

    /// Handles a peer's answer to a chunk request; whether the chunk is
    /// now stored.
    fn take_chunk(
        &mut self,
        m: &Manifest,
        peer: PeerId,
        index: u32,
        reply: Result<Response, String>,
    ) -> Result<bool, BlobError> {
        let ctx = self.fetch.ctx;
        let part = match reply {
            Ok(Response::Blob { part: Some(part) }) => part,
            Ok(Response::Blob { part: None }) => {
                self.peers.entry(peer).or_default().lacks.insert(index);
                return Ok(false);
            }
            Ok(Response::Error { message }) => {
                let p = self.peers.entry(peer).or_default();
                if message.starts_with("busy") {
                    p.rest_until = Some(Instant::now() + BUSY_REST);
                } else {
                    // Refused: perhaps this node's proof is stale (its join
                    // went in meanwhile).
                    tracing::debug!(%peer, "a peer refused a blob request: {message}");
                    p.gone = true;
                    self.refresh_access();
                }
                return Ok(false);
            }
            Ok(_) => {
                self.garbage(peer, "chunk answer");
                return Ok(false);
            }
            Err(e) => {
                tracing::debug!(%peer, blob = %self.fetch.id, "a chunk request failed: {e}; asking other peers");
                self.node.blobs().metrics.peer_failure();
                self.peers.entry(peer).or_default().gone = true;
                return Ok(false);
            }
        };
        let mut opened = open_chunk(&self.keys, m, index, &part);
        if opened == Err(PartFault::UnknownEpoch) {
            self.refresh_access();
            opened = open_chunk(&self.keys, m, index, &part);
        }
        match opened {
            Ok(plain) => {
                store::write_part(&self.dir, &index.to_string(), &part).map_err(BlobError::io)?;
                self.node.blobs().metrics.fetched(&ctx, plain.len());
                self.fetch.update(|p| {
                    if let Some(h) = p.have.get_mut(index as usize) {
                        *h = true;
                    }
                });
                Ok(true)
            }
            Err(PartFault::UnknownEpoch) => {
                self.node.blobs().metrics.refused("unknown_epoch");
                self.peers.entry(peer).or_default().lacks.insert(index);
                Ok(false)
            }
            Err(PartFault::Garbage) => {
                self.garbage(peer, "chunk");
                self.peers.entry(peer).or_default().lacks.insert(index);
                Ok(false)
            }
        }
    }
}
