//! The node's side of the network: a handle that queues commands for the
//! swarm task. Every method returns at once; none blocks or fails.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use libp2p::PeerId;
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::request_response::ResponseChannel;
use mero_sync::SignedDelta;
use mero_sync::gate::Topic;
use mero_sync::protocol::{Envelope, Response};
use tokio::sync::{mpsc, oneshot};

use super::faults::{FaultSpec, Link};
use crate::ids::{AppHash, ContextId};

/// One connected peer, as `/admin/network` shows it.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Its peer id.
    pub peer_id: String,
    /// Contexts whose gossip it shares with this node.
    pub contexts: Vec<ContextId>,
    /// How it is reached.
    pub path: mero_api::PeerPath,
    /// Its open connections.
    pub connections: Vec<mero_api::Connection>,
    /// The last ping's round trip on the path, in milliseconds.
    pub rtt_ms: Option<f64>,
}

/// The network's state, for `/admin/network`.
#[derive(Debug, Clone)]
pub struct NetStatus {
    /// This node's peer id.
    pub peer_id: String,
    /// Where it listens (with `/p2p/<peer id>`: give these to other nodes).
    pub listen_addrs: Vec<String>,
    /// Where peers elsewhere reach it (with `/p2p/<peer id>`).
    pub external_addrs: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerInfo>,
    /// Peers banned for sending garbage, until the ban expires.
    pub banned: Vec<String>,
    /// Slots this node holds on relays.
    pub relays: Vec<mero_api::RelayReservation>,
    /// Its own relay service, when it runs one.
    pub relay_service: Option<mero_api::RelayService>,
    /// Meet servers in use, and this node's own board.
    pub meet: mero_api::MeetStatus,
    /// The injected faults (dev mode only).
    pub faults: Option<mero_api::Faults>,
}

/// The dev-mode faults that touch links, for per-peer rows.
#[derive(Debug, Clone)]
pub struct FaultLinks {
    /// Cut off from every peer.
    pub isolated: bool,
    /// Peers blocked.
    pub blocked: HashSet<String>,
    /// Link faults per peer (`None`: every other peer).
    pub links: HashMap<Option<String>, Link>,
}

impl FaultLinks {
    /// The fault on the link to `peer`: a block shows as 100 % loss.
    pub fn link(&self, peer: &str) -> Option<mero_api::Link> {
        if self.isolated || self.blocked.contains(peer) {
            return Some(mero_api::Link {
                peer: Some(peer.to_owned()),
                delay_ms: 0,
                loss_percent: 100.0,
            });
        }
        let l = self
            .links
            .get(&Some(peer.to_owned()))
            .or_else(|| self.links.get(&None))?;
        Some(mero_api::Link {
            peer: Some(peer.to_owned()),
            delay_ms: l.delay_ms,
            loss_percent: l.loss_percent,
        })
    }
}

/// What the swarm knows of a context's peers: connections, traffic,
/// faults (for `/admin/contexts/{id}/sync`).
#[derive(Debug, Clone, Default)]
pub struct Peering {
    /// Every connected peer.
    pub connected: HashSet<String>,
    /// Connected peers that share the context.
    pub sharing: HashSet<String>,
    /// Peers whose connections closed, and since when (ms since the epoch).
    pub down_since: HashMap<String, u64>,
    /// Per peer: (sent, received) about the context.
    pub traffic: HashMap<String, (mero_api::Traffic, mero_api::Traffic)>,
    /// Dev mode only.
    pub faults: Option<FaultLinks>,
}

/// Dev-mode fault commands.
pub(crate) enum FaultsCmd {
    Get(oneshot::Sender<Option<mero_api::Faults>>),
    Set(FaultSpec, oneshot::Sender<Option<mero_api::Faults>>),
}

pub(crate) enum Command {
    Publish(SignedDelta),
    /// Follow a context: catch-up rounds, and gossip on this topic (none
    /// while this node lacks the current epoch key).
    Follow(ContextId, Option<Topic>),
    /// Look a joining context's members up at meet servers under these
    /// topics (one per key the invitation gave), until it gossips on one.
    Seek(ContextId, Vec<Topic>),
    Unfollow(ContextId),
    /// Ask peers (this one first, if connected) for these requests.
    Want(Vec<Envelope>, Option<String>),
    FetchApp(AppHash, ContextId),
    AppArrived(AppHash),
    Sync(ContextId),
    Dial(Vec<String>),
    Status(oneshot::Sender<NetStatus>),
    /// Per-peer connections, traffic and faults of a context.
    Peering(ContextId, oneshot::Sender<Peering>),
    /// Dev mode only: never queued on an operator's node.
    Faults(FaultsCmd),
    /// Stop: drain the workers, then answer.
    Shutdown(oneshot::Sender<()>),
    /// A worker's answer to an inbound request about `context`;
    /// `admitted`: the peer proved it belongs there.
    Respond {
        peer: PeerId,
        channel: ResponseChannel<Response>,
        response: Response,
        context: ContextId,
        admitted: bool,
        /// Refused about a context this node has: counts against the peer.
        strike: bool,
        differ: bool,
    },
    /// A worker's next request after a response (`None`: the exchange
    /// about `ctx` is over).
    Next(PeerId, ContextId, Option<Envelope>),
    /// Requests a worker prepared for a peer (round openings).
    Requests(PeerId, Vec<Envelope>),
    /// The applier's verdict on a gossip message.
    Validated(MessageId, PeerId, MessageAcceptance),
    /// Send one request to one peer and hand its answer (or the failure)
    /// to the callback: blob fetches drive their own exchanges.
    Ask(PeerId, Envelope, AskReply),
    /// The connected peers to ask about a context.
    Peers(ContextId, Box<dyn FnOnce(Vec<PeerId>) + Send>),
    /// A peer sent garbage outside gossip and requests (a blob part that
    /// does not check out): score it.
    Garbage(PeerId),
}

/// Where the answer to [`NetHandle::ask`] goes: the response, or why there
/// is none (not connected, timed out, connection closed, queue full). It
/// is called on the swarm task, so it must not block.
pub type AskReply = Box<dyn FnOnce(Result<Response, String>) + Send>;

/// The node's handle on the network.
#[derive(Clone)]
pub struct NetHandle {
    tx: mpsc::Sender<Command>,
    addrs: Arc<RwLock<Vec<String>>>,
    /// The addresses of the meet servers in use.
    meet_addrs: Arc<RwLock<Vec<String>>>,
    peer_id: PeerId,
    dev: bool,
}

impl NetHandle {
    pub(crate) fn new(
        tx: mpsc::Sender<Command>,
        addrs: Arc<RwLock<Vec<String>>>,
        meet_addrs: Arc<RwLock<Vec<String>>>,
        peer_id: PeerId,
        dev: bool,
    ) -> Self {
        Self {
            tx,
            addrs,
            meet_addrs,
            peer_id,
            dev,
        }
    }

    /// Queues a command. A full queue (the swarm task is far behind) drops
    /// it: every command is either repeated by the periodic catch-up or
    /// answered by it (a dropped publish arrives by catch-up instead).
    fn send(&self, cmd: Command) {
        match self.tx.try_send(cmd) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    "the network's command queue is full; dropping a command (catch-up repairs it)"
                )
            }
            // The swarm task has stopped: the node is shutting down.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The network's state.
    pub async fn status(&self) -> Option<NetStatus> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Status(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Per-peer connections, traffic and faults of `ctx`.
    pub async fn peering(&self, ctx: ContextId) -> Option<Peering> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Peering(ctx, tx)).await.ok()?;
        rx.await.ok()
    }

    /// The injected faults; `None` unless the network runs in dev mode
    /// (then nothing is even queued) or once it has stopped.
    pub async fn faults(&self) -> Option<mero_api::Faults> {
        if !self.dev {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Faults(FaultsCmd::Get(tx)))
            .await
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Replaces the injected faults (dev mode only, else `None` and
    /// nothing happens); answers the faults now in force.
    pub async fn set_faults(&self, spec: FaultSpec) -> Option<mero_api::Faults> {
        if !self.dev {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Faults(FaultsCmd::Set(spec, tx)))
            .await
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Stops the network: closes every connection and waits until gossip
    /// already received has been applied. Later calls do nothing.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Publishes a delta on its context's topic (together with whatever
    /// else was committed meanwhile: see [`mero_sync::protocol::encode_gossip`]).
    pub fn publish(&self, delta: SignedDelta) {
        self.send(Command::Publish(delta));
    }

    /// Follows a context: catch-up with every peer, and its gossip topic
    /// (`None` while this node lacks the current key epoch's key).
    pub fn follow(&self, ctx: ContextId, topic: Option<Topic>) {
        self.send(Command::Follow(ctx, topic));
    }

    /// Looks up the members of `ctx`, which this node is joining, at meet
    /// servers under `topics`.
    pub fn seek(&self, ctx: ContextId, topics: Vec<Topic>) {
        self.send(Command::Seek(ctx, topics));
    }

    /// Stops following a context.
    pub fn unfollow(&self, ctx: ContextId) {
        self.send(Command::Unfollow(ctx));
    }

    /// Sends these requests to peers (`from` first, if connected).
    pub fn want(&self, requests: Vec<Envelope>, from: Option<String>) {
        self.send(Command::Want(requests, from));
    }

    /// Fetches an app's WASM from the peers of `ctx` until it arrives; the
    /// node installs it then.
    pub fn fetch_app(&self, hash: AppHash, ctx: ContextId) {
        self.send(Command::FetchApp(hash, ctx));
    }

    /// An app was installed: stop asking peers for it.
    pub fn app_arrived(&self, hash: AppHash) {
        self.send(Command::AppArrived(hash));
    }

    /// Sends `request` to `peer` and calls `reply` with its answer. The
    /// reply always comes: with an error when the command queue is full,
    /// the peer is not connected, or the request fails or times out.
    pub fn ask(&self, peer: PeerId, request: Envelope, reply: AskReply) {
        match self.tx.try_send(Command::Ask(peer, request, reply)) {
            Ok(()) => {}
            Err(
                mpsc::error::TrySendError::Full(Command::Ask(_, _, reply))
                | mpsc::error::TrySendError::Closed(Command::Ask(_, _, reply)),
            ) => reply(Err("the network's command queue is full or closed".into())),
            Err(_) => {}
        }
    }

    /// [`ask`](Self::ask), waiting up to `timeout` for the answer (for
    /// threads of their own, never an async worker).
    pub fn ask_blocking(
        &self,
        peer: PeerId,
        request: Envelope,
        timeout: std::time::Duration,
    ) -> Result<Response, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.ask(
            peer,
            request,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv_timeout(timeout)
            .map_err(|_| format!("{peer} did not answer in {timeout:?}"))?
    }

    /// [`peers_of`](Self::peers_of), waiting for the list (a few seconds
    /// at most; `None` when the network does not answer).
    pub fn peers_of_blocking(&self, ctx: ContextId) -> Option<Vec<PeerId>> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.peers_of(
            ctx,
            Box::new(move |v| {
                let _ = tx.send(v);
            }),
        );
        rx.recv_timeout(std::time::Duration::from_secs(5)).ok()
    }

    /// Calls `reply` with the connected peers to ask about `ctx` (that
    /// proved membership, or follow its topic); not at all if the network
    /// has stopped.
    pub fn peers_of(&self, ctx: ContextId, reply: Box<dyn FnOnce(Vec<PeerId>) + Send>) {
        self.send(Command::Peers(ctx, reply));
    }

    /// Scores `peer` for sending garbage (a blob part that does not check
    /// out); enough of it bans the peer.
    pub fn garbage(&self, peer: PeerId) {
        self.send(Command::Garbage(peer));
    }

    /// Starts a catch-up round for `ctx` with every connected peer.
    pub fn sync(&self, ctx: ContextId) {
        self.send(Command::Sync(ctx));
    }

    /// Connects (and keeps reconnecting) to these multiaddrs.
    pub fn dial(&self, addrs: &[String]) {
        self.send(Command::Dial(addrs.to_vec()));
    }

    /// This node's listen addresses, with its peer id.
    pub fn addresses(&self) -> Vec<String> {
        self.addrs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// What an invitation names for a joiner to dial: this node's
    /// addresses, then its meet servers' (where the joiner finds the other
    /// members, this node offline included).
    pub fn invite_addresses(&self) -> Vec<String> {
        let mut out = self.addresses();
        let meet = self
            .meet_addrs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.extend(
            meet.iter()
                .filter(|a| !out.contains(a))
                .cloned()
                .collect::<Vec<_>>(),
        );
        out
    }
}
