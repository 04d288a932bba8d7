//! The node core: installed apps, contexts and their executors. Synchronous:
//! the HTTP and network layers run these calls on blocking threads.
//!
//! Method calls live in [`crate::calls`], membership operations in
//! [`crate::membership`], the receive and catch-up side in [`crate::sync`];
//! all are `impl Node` blocks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use mero_abi::AppAbi;
use mero_engine::CallMode;
use mero_sync::access::context_id;
use mero_sync::delta::GENESIS_EPOCH;
use mero_sync::{ContextKey, MemberSecret};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::calls::ContextSlot;
use crate::config::NodeConfig;
use crate::context::{CommitPolicy, ContextRuntime, Effects};
use crate::error::NodeError;
use crate::events::StreamItem;
use crate::host::{AppModule, WasmHost};
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey, random32, sha256};
use crate::metrics::Metrics;
use crate::net::NetHandle;
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

/// A successful call's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallOutput {
    /// The method's JSON return value.
    pub output: serde_json::Value,
    /// Id of the delta the call produced, if it changed state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<DeltaId>,
}

/// What the node reports about an app.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
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

/// What the node reports about a context.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_app: Option<AppHash>,
}

/// Stream items the subscription channel holds for its slowest receiver.
pub const EVENT_CHANNEL: usize = 4096;

/// A running node.
pub struct Node {
    config: NodeConfig,
    identity: crate::identity::NodeIdentity,
    db: Arc<Store>,
    host: Arc<WasmHost>,
    apps: RwLock<HashMap<AppHash, Arc<AppModule>>>,
    pub(crate) contexts: RwLock<HashMap<ContextId, Arc<ContextSlot>>>,
    events: broadcast::Sender<Arc<StreamItem>>,
    net: OnceLock<NetHandle>,
    metrics: Metrics,
    tokens: Tokens,
    closing: tokio::sync::watch::Sender<bool>,
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
    pub fn open(home: &Path, config: NodeConfig) -> Result<Self, NodeError> {
        // Homes made without `merod init` (embedders, tests) get one now.
        let identity = crate::identity::NodeIdentity::load_or_create(home)?;
        let db = Arc::new(Store::open(&home.join("data"))?);
        let host = WasmHost::new(config.limits)?;
        let tokens = Tokens::open(db.clone(), &identity.secret())?;
        let node = Self {
            config,
            identity,
            db,
            host,
            apps: RwLock::default(),
            contexts: RwLock::default(),
            events: broadcast::channel(EVENT_CHANNEL).0,
            net: OnceLock::new(),
            metrics: Metrics::new(),
            tokens,
            closing: tokio::sync::watch::channel(false).0,
        };
        for (hash, wasm) in node.db.apps()? {
            let module = node.host.load(&node.db, hash, &wasm)?;
            node.apps.write().unwrap().insert(hash, Arc::new(module));
        }
        for (id, meta) in node.db.contexts()? {
            let rt = ContextRuntime::restore(&node.db, id, meta)?;
            node.contexts
                .write()
                .unwrap()
                .insert(id, Arc::new(ContextSlot::new(rt)));
        }
        Ok(node)
    }

    /// The node's public identity key.
    pub fn identity(&self) -> MemberKey {
        self.identity.public()
    }

    /// Connects the node to the peer-to-peer layer (once) and subscribes
    /// to every context.
    pub fn set_network(&self, net: NetHandle) {
        for ctx in self.contexts.read().unwrap().keys() {
            net.subscribe(*ctx);
        }
        let _ = self.net.set(net);
    }

    /// The network, once started.
    pub fn net(&self) -> Option<&NetHandle> {
        self.net.get()
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

    /// Tells long-lived streams (WebSocket, SSE) that the node is stopping.
    pub fn begin_shutdown(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves-on-change view of [`Node::begin_shutdown`].
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Client tokens.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Deltas waiting for missing parents, per context.
    pub fn buffered(&self) -> Vec<(ContextId, usize)> {
        self.runtimes()
            .iter()
            .map(|c| {
                let c = c.lock().unwrap();
                (c.id, c.dag().pending_len())
            })
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

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Validates, compiles and stores an app. Installing the same bytes twice
    /// is a no-op returning the same hash.
    pub fn install_app(&self, wasm: &[u8]) -> Result<AppInfo, NodeError> {
        let hash = AppHash(sha256(wasm));
        if let Some(app) = self.apps.read().unwrap().get(&hash) {
            return Ok(app_info(app));
        }
        let module = self.host.load(&self.db, hash, wasm)?;
        self.db.put_app(&hash, wasm)?;
        let info = app_info(&module);
        self.apps.write().unwrap().insert(hash, Arc::new(module));
        tracing::info!(app = %hash, size = wasm.len(), "installed app");
        self.app_arrived(&hash);
        Ok(info)
    }

    /// Installed apps.
    pub fn apps(&self) -> Vec<AppInfo> {
        let mut v: Vec<_> = self
            .apps
            .read()
            .unwrap()
            .values()
            .map(|a| app_info(a))
            .collect();
        v.sort_by_key(|a| a.hash);
        v
    }

    /// Uninstalls an app no context on this node runs.
    pub fn remove_app(&self, hash: &AppHash) -> Result<(), NodeError> {
        self.app(hash)?;
        let users: Vec<String> = self
            .runtimes()
            .iter()
            .filter_map(|c| {
                let c = c.lock().unwrap();
                (c.meta.app == *hash).then(|| c.id.to_string())
            })
            .collect();
        if !users.is_empty() {
            return Err(NodeError::Conflict(format!(
                "app {hash} is in use by context(s) {}; upgrade or delete them first",
                users.join(", ")
            )));
        }
        self.db.delete_app(hash)?;
        self.apps.write().unwrap().remove(hash);
        tracing::info!(app = %hash, "removed app");
        Ok(())
    }

    /// Whether an app is installed.
    pub fn has_app(&self, hash: &AppHash) -> bool {
        self.apps.read().unwrap().contains_key(hash)
    }

    /// An installed app's WASM bytes.
    pub fn app_wasm(&self, hash: &AppHash) -> Result<Option<Vec<u8>>, NodeError> {
        self.db.app(hash)
    }

    /// An app's ABI.
    pub fn app_abi(&self, hash: &AppHash) -> Result<AppAbi, NodeError> {
        Ok(self.app(hash)?.abi.clone())
    }

    pub(crate) fn app(&self, hash: &AppHash) -> Result<Arc<AppModule>, NodeError> {
        self.apps
            .read()
            .unwrap()
            .get(hash)
            .cloned()
            .ok_or(NodeError::UnknownApp(*hash))
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
        let mut rt = ContextRuntime::fresh(&self.db, id, meta, secret, keys, None);
        let mut batch = self.db.batch();
        rt.stage_secrets(&self.db, &mut batch);
        let mut fx = Effects::default();
        self.run_call(
            &mut rt,
            &module,
            &init,
            args,
            CallMode::Mutate,
            Some(&mut batch),
            &mut fx,
        )?;
        rt.commit(&self.db, batch, self.policy(), &mut fx)?;
        let info = self.register(rt);
        self.finish(id, fx, None);
        tracing::info!(context = %id, app = %app, "created context");
        Ok(info)
    }

    /// Makes a new, persisted context live: callable and followed on the network.
    pub(crate) fn register(&self, rt: ContextRuntime) -> ContextInfo {
        let info = context_info(&rt);
        let id = rt.id;
        self.contexts
            .write()
            .unwrap()
            .insert(id, Arc::new(ContextSlot::new(rt)));
        if let Some(net) = self.net() {
            net.subscribe(id);
        }
        info
    }

    /// Contexts on this node.
    pub fn contexts(&self) -> Vec<ContextInfo> {
        let mut v: Vec<_> = self
            .runtimes()
            .iter()
            .map(|c| context_info(&c.lock().unwrap()))
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Every context's runtime, taken out of the map so callers lock them
    /// without holding the map's lock.
    pub(crate) fn runtimes(&self) -> Vec<Arc<ContextSlot>> {
        self.contexts.read().unwrap().values().cloned().collect()
    }

    /// The member this node acts as in a context.
    pub fn member(&self, id: &ContextId) -> Result<MemberKey, NodeError> {
        Ok(self.context(id)?.lock().unwrap().meta.member)
    }

    /// One context.
    pub fn context_info(&self, id: &ContextId) -> Result<ContextInfo, NodeError> {
        Ok(context_info(&self.context(id)?.lock().unwrap()))
    }

    /// A context's state as JSON.
    pub fn state_json(&self, id: &ContextId) -> Result<serde_json::Value, NodeError> {
        Ok(self.context(id)?.lock().unwrap().state.to_json())
    }

    /// Carries out what a change asked for, outside the context lock:
    /// publish, notify subscribers, fetch apps, ask for missing deltas, run
    /// event handlers.
    pub(crate) fn finish(&self, ctx: ContextId, fx: Effects, from: Option<String>) {
        let net = self.net();
        if !fx.publish.is_empty() {
            self.metrics.sent(&ctx, fx.publish.len());
        }
        for d in fx.publish {
            if let Some(net) = net {
                net.publish(d);
            }
        }
        if !fx.stream.is_empty() {
            self.metrics.stream_items(&ctx, fx.stream.len());
        }
        for item in fx.stream {
            // No subscribers is fine.
            let _ = self.events.send(item);
        }
        for app in fx.apps {
            if !self.has_app(&app)
                && let Some(net) = net
            {
                net.fetch_app(app);
            }
        }
        if !fx.want.is_empty()
            && let Some(net) = net
        {
            net.want(ctx, fx.want, from);
        }
        for h in fx.handlers {
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
        let app = self.context(ctx).ok()?.lock().unwrap().meta.app;
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

fn app_info(app: &AppModule) -> AppInfo {
    AppInfo {
        hash: app.hash,
        size: app.size,
        name: app.abi.state.name.clone(),
        methods: app
            .abi
            .methods
            .iter()
            .filter(|m| !m.init)
            .map(|m| m.name.clone())
            .collect(),
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
    }
}
