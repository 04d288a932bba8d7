//! The node core: installed apps, contexts and their executors. Synchronous:
//! the HTTP and network layers run these calls on blocking threads.
//!
//! Installed apps live in [`crate::apps`], method calls in [`crate::calls`], membership operations in
//! [`crate::membership`], the receive and catch-up side in [`crate::sync`];
//! all are `impl Node` blocks.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use mero_sync::access::context_id;
use mero_sync::delta::GENESIS_EPOCH;
use mero_sync::{ContextKey, MemberSecret};
use tokio::sync::broadcast;

use crate::config::NodeConfig;
use crate::context::{CommitPolicy, ContextRuntime, Effects};
use crate::error::NodeError;
use crate::events::StreamItem;
use crate::host::{AppModule, WasmHost};
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey, random32};
use crate::metrics::Metrics;
use crate::net::NetHandle;
use crate::slot::ContextSlot;
use crate::store::{ContextMeta, Store};
use crate::tokens::Tokens;

/// How a client invokes a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// JSON-RPC `execute`: may change state.
    Execute,
    /// JSON-RPC `query`: views only.
    Query,
    /// A handler the app's ABI declares for an event, run by this node
    /// after applying a peer's delta. Clients cannot call handlers.
    Handler,
}

/// A successful call's answer (on the wire: `mero_api::CallResult`).
#[derive(Debug, Clone)]
pub struct CallOutput {
    /// The method's JSON return value.
    pub output: serde_json::Value,
    /// Id of the delta the call produced, if it changed state.
    pub delta: Option<DeltaId>,
}

/// What the node reports about an app (on the wire: `mero_api::AppInfo`).
#[derive(Debug, Clone)]
pub struct AppInfo {
    /// Content hash.
    pub hash: AppHash,
    /// WASM size in bytes.
    pub size: usize,
    /// State struct name.
    pub name: String,
    /// Method names.
    pub methods: Vec<String>,
}

/// What the node reports about a context (on the wire:
/// `mero_api::ContextInfo`).
#[derive(Debug, Clone)]
pub struct ContextInfo {
    /// Context id.
    pub id: ContextId,
    /// App it runs.
    pub app: AppHash,
    /// This node's member key in it.
    pub member: MemberKey,
    /// This member's delta count.
    pub seq: u64,
    /// Deltas applied in the context, from every member.
    pub deltas: u64,
    /// Current DAG heads.
    pub heads: Vec<DeltaId>,
    /// Number of members.
    pub members: usize,
    /// Whether this node is still catching up before its join.
    pub joining: bool,
    /// The app the context upgraded to, while this node lacks it and keeps
    /// serving `app`.
    pub pending_app: Option<AppHash>,
    /// Why the context is quarantined, if it is: its calls and deltas are
    /// refused until the node restarts (other contexts are unaffected).
    pub quarantined: Option<String>,
}

/// Stream items the subscription channel holds for its slowest receiver.
pub const EVENT_CHANNEL: usize = 4096;

/// A running node.
pub struct Node {
    config: NodeConfig,
    identity: crate::identity::NodeIdentity,
    /// The libp2p peer id (bytes) of the node key: what request proofs bind.
    transport: Vec<u8>,
    db: Arc<Store>,
    host: Arc<WasmHost>,
    pub(crate) apps: RwLock<HashMap<AppHash, Arc<AppModule>>>,
    pub(crate) contexts: RwLock<HashMap<ContextId, Arc<ContextSlot>>>,
    events: broadcast::Sender<Arc<StreamItem>>,
    net: Option<NetHandle>,
    metrics: Metrics,
    tokens: Tokens,
    closing: tokio::sync::watch::Sender<bool>,
    blobs: Arc<crate::blobs::Blobs>,
    /// This node, for what outlives a borrow of it: a call's link to the
    /// other contexts (cross-context calls, [`crate::xcall`]).
    me: Weak<Node>,
    /// Apps this node's operator installed, not fetched from peers: their
    /// contexts may call other contexts ([`crate::xcall`]).
    pub(crate) trusted: RwLock<HashSet<AppHash>>,
    /// When the node opened (ms since the epoch).
    started_ms: u64,
    /// Where cold replicas load from ([`crate::cold`]).
    pub(crate) residency: Arc<crate::cold::Residency>,
    /// Snapshots served to joiners, and joins fetching one.
    snapshots: crate::snapshots::Snapshots,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    now_nanos() / 1_000_000
}

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Node {
    /// Opens the node in `home`: the store, every installed app and every
    /// context, restored from its latest snapshot plus the deltas after it.
    pub fn open(home: &Path, config: NodeConfig) -> Result<Arc<Self>, NodeError> {
        Self::open_with(home, config, None)
    }

    /// [`Node::open`], connected to the network behind `net` (see
    /// [`crate::net::Pending`]; the network starts with [`crate::net::start`]).
    pub fn open_with(
        home: &Path,
        config: NodeConfig,
        net: Option<NetHandle>,
    ) -> Result<Arc<Self>, NodeError> {
        // Homes made without `merod init` (embedders, tests) get one now.
        let identity = crate::identity::NodeIdentity::load_or_create(home)?;
        let db = Arc::new(Store::open(&home.join("data"))?);
        let host = WasmHost::new(config.limits)?;
        let tokens = Tokens::open(db.clone(), &identity.secret())?;
        let mut secret = identity.secret();
        let transport = libp2p::identity::Keypair::ed25519_from_bytes(&mut secret)
            .map_err(|e| NodeError::Corrupt(format!("node key: {e}")))?
            .public()
            .to_peer_id()
            .to_bytes();
        let metrics = Metrics::new();
        let blobs = Arc::new(crate::blobs::Blobs::new(
            home.join("blobs"),
            config.blobs,
            metrics.blobs().clone(),
        ));
        let residency = Arc::new(crate::cold::Residency::new(
            db.clone(),
            config.replica.limits(),
            metrics.residency(),
        ));
        let node = Self {
            residency,
            config,
            identity,
            transport,
            db,
            host,
            apps: RwLock::default(),
            contexts: RwLock::default(),
            events: broadcast::channel(EVENT_CHANNEL).0,
            net,
            metrics,
            tokens,
            closing: tokio::sync::watch::channel(false).0,
            blobs,
            me: Weak::new(),
            trusted: RwLock::default(),
            started_ms: now_ms(),
            snapshots: crate::snapshots::Snapshots::default(),
        };
        node.trusted.write().unwrap().extend(node.db.trusted()?);
        for (hash, wasm) in node.db.apps()? {
            let module = node.host.load(&node.db, hash, &wasm)?;
            node.apps.write().unwrap().insert(hash, Arc::new(module));
        }
        // Joins to pick up once the node is shared: one interrupted before
        // its first delta asks for a snapshot again; one whose history below
        // the snapshot is not all here yet goes on fetching it.
        let mut refetch = Vec::new();
        let mut backfill = Vec::new();
        for (id, meta) in node.db.contexts()? {
            if meta.joining.is_some() && meta.log_len == 0 {
                refetch.push(id);
            }
            if node
                .db
                .received(&id)?
                .is_some_and(|m| node.db.backfilled(&id).is_ok_and(|b| b < m.len))
            {
                backfill.push(id);
            }
            // A context left cold with a current summary starts cold: its
            // log is read when it is first used.
            if let Some(cold) = node.residency.at_start(id, &meta) {
                let slot = ContextSlot::cold(id, cold, node.residency.clone());
                node.contexts.write().unwrap().insert(id, Arc::new(slot));
                continue;
            }
            let slot =
                match ContextRuntime::restore(&node.db, id, meta.clone(), node.replica_limits()) {
                    Ok(rt) => {
                        let seek = rt.seek_topics();
                        if let Some(net) = node.net()
                            && !seek.is_empty()
                        {
                            net.seek(id, seek);
                        }
                        ContextSlot::new(rt, node.residency.clone())
                    }
                    // One context that does not load must not keep the node
                    // (and every other context) down: it is quarantined, shown
                    // by /admin/contexts, and can be deleted.
                    Err(e) => node.unloadable(id, meta, e),
                };
            node.contexts.write().unwrap().insert(id, Arc::new(slot));
        }
        let node = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            ..node
        });
        node.start_evictor();
        for id in refetch {
            crate::snapshots::fetch::start(&node, id);
        }
        for id in backfill {
            crate::snapshots::backfill::start(&node, id);
        }
        Ok(node)
    }

    /// Snapshots served and fetched ([`crate::snapshots`]).
    pub(crate) fn snapshots(&self) -> &crate::snapshots::Snapshots {
        &self.snapshots
    }

    /// This node, shared: what a call's link to other contexts holds.
    pub(crate) fn me(&self) -> Weak<Node> {
        self.me.clone()
    }

    /// A quarantined placeholder for a stored context that failed to load.
    fn unloadable(&self, id: ContextId, meta: ContextMeta, e: NodeError) -> ContextSlot {
        let member = self.db.secrets(&id).map_or_else(
            |_| MemberSecret::generate(),
            |s| MemberSecret::from_bytes(&s.member),
        );
        let rt = ContextRuntime::fresh(
            &self.db,
            id,
            meta,
            member,
            Vec::new(),
            None,
            self.replica_limits(),
        );
        let slot = ContextSlot::new(rt, self.residency.clone());
        slot.set_aside(format!("it could not be loaded from the store: {e}"));
        slot
    }

    /// Makes the store safe for the process to exit (see [`Store::close`]).
    /// Call it last: writes after it may fail.
    pub fn close(&self) {
        self.db.close();
    }

    /// The node's public identity key.
    pub fn identity(&self) -> MemberKey {
        self.identity.public()
    }

    /// The network, if the node has one.
    pub fn net(&self) -> Option<&NetHandle> {
        self.net.as_ref()
    }

    /// The node's libp2p peer id, as bytes.
    pub fn transport_id(&self) -> &[u8] {
        &self.transport
    }

    /// The node's libp2p identity secret (the node key).
    pub fn identity_secret(&self) -> [u8; 32] {
        self.identity.secret()
    }

    /// Subscribes to the stream items of every context on this node, as
    /// they are committed. A receiver that falls [`EVENT_CHANNEL`] items
    /// behind loses the oldest (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StreamItem>> {
        self.events.subscribe()
    }

    /// Up to `limit` persisted stream items of a context after id `after`,
    /// oldest first. Items older than the retention are gone.
    pub fn stream_after(
        &self,
        ctx: &ContextId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StreamItem>, NodeError> {
        self.context(ctx)?;
        Ok(self
            .db
            .events_after(ctx, after, limit)?
            .into_iter()
            .filter_map(|(id, json)| StreamItem::from_log(*ctx, id, &json))
            .collect())
    }

    /// The id of the newest persisted stream item of a context (0: none
    /// yet): where a subscription that starts now begins.
    pub fn stream_last(&self, ctx: &ContextId) -> Result<u64, NodeError> {
        self.context(ctx)?;
        self.db.last_event_id(ctx)
    }

    /// Tells long-lived streams (WebSocket, SSE) that the node is stopping.
    pub fn begin_shutdown(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves-on-change view of [`Node::begin_shutdown`].
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// When the node opened (ms since the epoch).
    pub fn started_ms(&self) -> u64 {
        self.started_ms
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Client tokens.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// What received deltas may hold, from `[replica]`.
    pub(crate) fn replica_limits(&self) -> mero_sync::replica::Limits {
        self.config.replica.limits()
    }

    /// How many contexts are quarantined.
    pub fn quarantined(&self) -> usize {
        self.runtimes()
            .iter()
            .filter(|c| c.quarantined().is_some())
            .count()
    }

    /// Every context's peer records, for the scrape-time sync gauges.
    pub fn peer_records(&self) -> Vec<crate::metrics::ContextPeers> {
        self.runtimes()
            .iter()
            .map(|c| crate::metrics::ContextPeers {
                context: c.id(),
                peers: c.inspect().peers().snapshot(),
            })
            .collect()
    }

    /// Deltas waiting for missing parents, per context.
    pub fn buffered(&self) -> Vec<(ContextId, usize)> {
        self.runtimes()
            .iter()
            .map(|c| (c.id(), c.inspect().pending_len()))
            .collect()
    }

    pub(crate) fn policy(&self) -> CommitPolicy {
        CommitPolicy {
            snapshot_every: self.config.store.snapshot_every,
            event_retention: self.config.events.retention,
        }
    }

    pub(crate) fn host(&self) -> &WasmHost {
        &self.host
    }

    pub(crate) fn db(&self) -> &Arc<Store> {
        &self.db
    }

    pub(crate) fn blobs(&self) -> &Arc<crate::blobs::Blobs> {
        &self.blobs
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Whether the node has this context: no context lock, no storage, so
    /// async handlers may ask.
    pub fn has_context(&self, id: &ContextId) -> Result<(), NodeError> {
        self.context(id).map(drop)
    }

    pub(crate) fn context(&self, id: &ContextId) -> Result<Arc<ContextSlot>, NodeError> {
        self.contexts
            .read()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or(NodeError::UnknownContext(*id))
    }

    /// Creates a context running `app`: runs its `init` with `args` and
    /// persists the result before returning.
    pub fn create_context(&self, app: &AppHash, args: &[u8]) -> Result<ContextInfo, NodeError> {
        let module = self.app(app)?;
        let init = module
            .abi
            .init()
            .ok_or_else(|| NodeError::InvalidApp("the app has no init method".into()))?
            .name
            .clone();
        let secret = MemberSecret::generate();
        let key = ContextKey::generate();
        let member = secret.public();
        let salt = random32();
        let id = context_id(&member, &salt);
        let meta = ContextMeta::empty(*app, member, member, salt, now_ms(), None);
        let keys = vec![(GENESIS_EPOCH, key)];
        let limits = self.replica_limits();
        let mut rt = ContextRuntime::fresh(&self.db, id, meta, secret, keys, None, limits);
        let mut batch = self.db.batch();
        rt.stage_secrets(&self.db, &mut batch);
        let mut fx = Effects::default();
        let kind = mero_engine::policy::CallKind::Init;
        mero_engine::policy::check_args(kind, args).map_err(crate::calls::refused)?;
        let mode =
            mero_engine::policy::decide(&module.abi, &init, kind).map_err(crate::calls::refused)?;
        let call = crate::calls::Call::new(&module, &init, args, mode, kind);
        self.run_call(&mut rt, call, Some(&mut batch), &mut fx)?;
        rt.commit(&self.db, batch, self.policy(), &mut fx)?;
        // Before anyone else can change it.
        self.announce(id, &mut fx);
        let info = self.register(rt);
        self.finish(id, fx, None);
        tracing::info!(context = %id, app = %app, "created context");
        Ok(info)
    }

    /// Makes a new, persisted context live: callable and followed on the network.
    pub(crate) fn register(&self, mut rt: ContextRuntime) -> ContextInfo {
        let info = context_info(&rt);
        let id = rt.id;
        let topic = rt.topic();
        let seek = rt.seek_topics();
        rt.announced = topic.clone();
        self.contexts
            .write()
            .unwrap()
            .insert(id, Arc::new(ContextSlot::new(rt, self.residency.clone())));
        if let Some(net) = self.net() {
            net.follow(id, topic);
            if !seek.is_empty() {
                net.seek(id, seek);
            }
        }
        info
    }

    /// Contexts on this node.
    pub fn contexts(&self) -> Vec<ContextInfo> {
        let mut v: Vec<_> = self.runtimes().iter().map(|c| slot_info(c)).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Every context's runtime, taken out of the map so callers lock them
    /// without holding the map's lock.
    pub(crate) fn runtimes(&self) -> Vec<Arc<ContextSlot>> {
        self.contexts.read().unwrap().values().cloned().collect()
    }

    /// The member this node acts as in a context. Takes no context lock.
    pub fn member(&self, id: &ContextId) -> Result<MemberKey, NodeError> {
        Ok(self.context(id)?.member)
    }

    /// One context.
    pub fn context_info(&self, id: &ContextId) -> Result<ContextInfo, NodeError> {
        let slot = self.context(id)?;
        Ok(slot_info(&slot))
    }

    /// A context's state as JSON.
    pub fn state_json(&self, id: &ContextId) -> Result<serde_json::Value, NodeError> {
        Ok(self.context(id)?.lock()?.state.to_json())
    }

    /// Tells subscribers about a change's stream items. Call it while
    /// still holding the context's lock: items are numbered under it, and
    /// a subscriber skips any item numbered below one it already got, so
    /// two changes announced out of order would lose the first one's items
    /// (the broadcast never waits).
    pub(crate) fn announce(&self, ctx: ContextId, fx: &mut Effects) {
        if !fx.stream.is_empty() {
            self.metrics.stream_items(&ctx, fx.stream.len());
        }
        for item in fx.stream.drain(..) {
            // No subscribers is fine.
            let _ = self.events.send(item);
        }
    }

    /// Carries out what a change asked for, outside the context lock:
    /// publish, notify subscribers (of what [`announce`](Self::announce)
    /// did not), fetch apps, ask for missing deltas, run event handlers.
    pub(crate) fn finish(&self, ctx: ContextId, mut fx: Effects, from: Option<String>) {
        let net = self.net();
        if !fx.publish.is_empty() {
            self.metrics.sent(&ctx, fx.publish.len());
        }
        for d in std::mem::take(&mut fx.publish) {
            if let Some(net) = net {
                net.publish(d);
            }
        }
        self.announce(ctx, &mut fx);
        let Some(net) = net else {
            return self.run_handlers(ctx, fx.handlers);
        };
        if let Some(topic) = fx.topic {
            net.follow(ctx, topic);
        }
        for app in fx.apps {
            self.fetch_app(ctx, app);
        }
        if !fx.want.is_empty() {
            let requests = fx
                .want
                .chunks(mero_sync::protocol::BY_ID_LIMIT)
                .filter_map(|ids| {
                    self.envelope(mero_sync::protocol::Request::ById {
                        context: ctx,
                        ids: ids.to_vec(),
                    })
                })
                .collect();
            net.want(requests, from);
        }
        self.run_handlers(ctx, fx.handlers);
    }

    /// Runs the handlers the app declares for events received from peers.
    fn run_handlers(&self, ctx: ContextId, handlers: Vec<crate::context::HandlerCall>) {
        for h in handlers {
            // The handler is the one the running app's ABI declares for the
            // event's kind, never a name that came with the event.
            let declared = self.handler_of(&ctx, &h.kind);
            if h.claimed.is_some() && h.claimed != declared {
                tracing::warn!(context = %ctx, kind = h.kind, claimed = ?h.claimed, "an event named a handler its app does not declare for it; not run");
                self.metrics.handler_refused(&ctx);
            }
            let Some(method) = declared else {
                continue;
            };
            match self.call(&ctx, &method, &h.args, CallKind::Handler) {
                Ok(_) => tracing::debug!(context = %ctx, method, "ran event handler"),
                Err(e) => tracing::warn!(context = %ctx, method, "event handler failed: {e}"),
            }
        }
    }
}

impl Node {
    /// The method the running app of `ctx` declares as the handler of
    /// events of `kind`.
    fn handler_of(&self, ctx: &ContextId, kind: &str) -> Option<String> {
        let app = self.context(ctx).ok()?.lock().ok()?.meta.app;
        let module = self.app(&app).ok()?;
        module
            .abi
            .events
            .iter()
            .find(|e| e.name == kind)?
            .handler
            .clone()
    }
}

pub(crate) fn context_info(rt: &ContextRuntime) -> ContextInfo {
    ContextInfo {
        id: rt.id,
        app: rt.meta.app,
        member: rt.meta.member,
        seq: rt.dag().seq_of(&rt.meta.member),
        deltas: rt.dag().len() as u64,
        heads: rt.dag().heads(),
        members: rt
            .replica
            .access()
            .members()
            .filter(|(_, m)| m.active())
            .count(),
        joining: rt.meta.joining.is_some(),
        pending_app: rt.replica.access().app().filter(|a| *a != rt.meta.app),
        quarantined: None,
    }
}

/// What `/admin/contexts` shows of a context, quarantined or not.
fn slot_info(slot: &ContextSlot) -> ContextInfo {
    ContextInfo {
        quarantined: slot.quarantined().map(str::to_owned),
        ..slot.inspect().info(slot.id())
    }
}
