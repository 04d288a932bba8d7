//! The node core: installed apps, contexts and their executors. Synchronous:
//! the HTTP layer runs these calls on blocking threads.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use mero_abi::{AppAbi, CallError, CallErrorKind};
use mero_engine::{CallEnv, CallLimits, CallMode, ContextState, PrivateStorage};
use serde::Serialize;

use crate::config::NodeConfig;
use crate::delta::Delta;
use crate::error::NodeError;
use crate::host::{AppModule, WasmHost};
use crate::ids::{AppHash, ContextId, MemberKey, random32, sha256};
use crate::store::{ContextMeta, Store};

/// How a client invokes a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// JSON-RPC `execute`: may change state.
    Execute,
    /// JSON-RPC `query`: views only.
    Query,
}

/// A successful call's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallOutput {
    /// The method's JSON return value.
    pub output: serde_json::Value,
    /// Sequence number of the delta the call produced, if it changed state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta_seq: Option<u64>,
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
    /// Local delta count.
    pub seq: u64,
    /// Current DAG heads.
    pub heads: Vec<crate::ids::DeltaId>,
}

/// One context's executor: everything a call needs, behind one lock so one
/// call at a time writes.
struct ContextRuntime {
    id: ContextId,
    meta: ContextMeta,
    state: ContextState,
    private: Arc<dyn PrivateStorage>,
}

struct DbPrivate {
    db: Arc<Store>,
    ctx: ContextId,
}

impl PrivateStorage for DbPrivate {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.db.private_get(&self.ctx, key) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(context = %self.ctx, "private storage read failed: {e}");
                None
            }
        }
    }
}

/// A running node.
pub struct Node {
    config: NodeConfig,
    identity: crate::identity::NodeIdentity,
    db: Arc<Store>,
    host: Arc<WasmHost>,
    apps: RwLock<HashMap<AppHash, Arc<AppModule>>>,
    contexts: RwLock<HashMap<ContextId, Arc<Mutex<ContextRuntime>>>>,
}

fn now_nanos() -> u64 {
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
        let node = Self {
            config,
            identity,
            db,
            host,
            apps: RwLock::default(),
            contexts: RwLock::default(),
        };
        for (hash, wasm) in node.db.apps()? {
            let module = node.host.load(&node.db, hash, &wasm)?;
            node.apps.write().unwrap().insert(hash, Arc::new(module));
        }
        for (id, meta) in node.db.contexts()? {
            let rt = node.restore(id, meta)?;
            node.contexts
                .write()
                .unwrap()
                .insert(id, Arc::new(Mutex::new(rt)));
        }
        Ok(node)
    }

    fn restore(&self, id: ContextId, meta: ContextMeta) -> Result<ContextRuntime, NodeError> {
        let peer = ContextState::peer_id_for(&meta.member.0);
        let (mut state, from) = match self.db.snapshot(&id)? {
            Some((seq, bytes)) => (ContextState::from_snapshot(&bytes, peer)?, seq),
            None => (ContextState::new(peer), 0),
        };
        for delta in self.db.deltas_after(&id, from)? {
            state.import(&delta.payload.update)?;
        }
        Ok(ContextRuntime {
            id,
            meta,
            state,
            private: Arc::new(DbPrivate {
                db: self.db.clone(),
                ctx: id,
            }),
        })
    }

    /// The node's public identity key.
    pub fn identity(&self) -> MemberKey {
        self.identity.public()
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

    /// An app's ABI.
    pub fn app_abi(&self, hash: &AppHash) -> Result<AppAbi, NodeError> {
        Ok(self.app(hash)?.abi.clone())
    }

    fn app(&self, hash: &AppHash) -> Result<Arc<AppModule>, NodeError> {
        self.apps
            .read()
            .unwrap()
            .get(hash)
            .cloned()
            .ok_or(NodeError::UnknownApp(*hash))
    }

    fn context(&self, id: &ContextId) -> Result<Arc<Mutex<ContextRuntime>>, NodeError> {
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
        let id = ContextId(random32());
        let secret = random32();
        let member = MemberKey(SigningKey::from_bytes(&secret).verifying_key().to_bytes());
        let meta = ContextMeta {
            app: *app,
            member,
            created_at_ms: now_nanos() / 1_000_000,
            seq: 0,
            heads: Vec::new(),
            snapshot_seq: 0,
        };
        let mut rt = ContextRuntime {
            id,
            meta,
            state: ContextState::new(ContextState::peer_id_for(&member.0)),
            private: Arc::new(DbPrivate {
                db: self.db.clone(),
                ctx: id,
            }),
        };
        let mut batch = self.db.batch();
        batch.put_secret(&self.db, &id, &secret);
        self.run_call(&mut rt, &module, &init, args, CallMode::Mutate, Some(batch))?;
        let info = context_info(&rt);
        self.contexts
            .write()
            .unwrap()
            .insert(id, Arc::new(Mutex::new(rt)));
        tracing::info!(context = %id, app = %app, "created context");
        Ok(info)
    }

    /// Contexts on this node.
    pub fn contexts(&self) -> Vec<ContextInfo> {
        let ctxs: Vec<_> = self.contexts.read().unwrap().values().cloned().collect();
        let mut v: Vec<_> = ctxs
            .iter()
            .map(|c| context_info(&c.lock().unwrap()))
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// One context.
    pub fn context_info(&self, id: &ContextId) -> Result<ContextInfo, NodeError> {
        Ok(context_info(&self.context(id)?.lock().unwrap()))
    }

    /// A context's state as JSON.
    pub fn state_json(&self, id: &ContextId) -> Result<serde_json::Value, NodeError> {
        Ok(self.context(id)?.lock().unwrap().state.to_json())
    }

    /// Calls `method` on a context with JSON `args`.
    pub fn call(
        &self,
        ctx: &ContextId,
        method: &str,
        args: &[u8],
        kind: CallKind,
    ) -> Result<CallOutput, NodeError> {
        let rt = self.context(ctx)?;
        let mut rt = rt.lock().unwrap();
        let module = self.app(&rt.meta.app)?;
        let Some(abi) = module.abi.method(method) else {
            let names: Vec<_> = module
                .abi
                .methods
                .iter()
                .filter(|m| !m.init)
                .map(|m| m.name.as_str())
                .collect();
            return Err(NodeError::Call(CallError::new(
                CallErrorKind::UnknownMethod,
                format!(
                    "the app has no method `{method}`; it has: {}",
                    names.join(", ")
                ),
            )));
        };
        if abi.init {
            return Err(NodeError::Call(CallError::new(
                CallErrorKind::UnknownMethod,
                format!("`{method}` is the constructor; it runs once, when the context is created"),
            )));
        }
        let view = abi.mutability == mero_abi::Mutability::View;
        if kind == CallKind::Query && !view {
            return Err(NodeError::Call(CallError::new(
                CallErrorKind::Mutability,
                format!("`{method}` changes state; call it with `execute`, not `query`"),
            )));
        }
        let mode = if view {
            CallMode::View
        } else {
            CallMode::Mutate
        };
        self.run_call(&mut rt, &module, method, args, mode, None)
    }

    /// Runs one call and persists its effects (plus `batch`, if given) atomically.
    fn run_call(
        &self,
        rt: &mut ContextRuntime,
        module: &AppModule,
        method: &str,
        args: &[u8],
        mode: CallMode,
        batch: Option<crate::store::Batch>,
    ) -> Result<CallOutput, NodeError> {
        let limits = &self.config.limits;
        if args.len() > limits.max_request_bytes {
            return Err(NodeError::BadRequest(format!(
                "arguments are {} bytes; the node accepts at most {}",
                args.len(),
                limits.max_request_bytes
            )));
        }
        let env = CallEnv {
            context_id: rt.id.0,
            executor: rt.meta.member.0,
            time_nanos: now_nanos(),
            input: args.to_vec(),
            mode,
            limits: CallLimits {
                max_return_bytes: limits.max_return_bytes,
                ..CallLimits::default()
            },
            private: rt.private.clone(),
            random: Box::new(|buf| {
                getrandom::fill(buf).expect("the OS random source is available")
            }),
        };
        let session = rt.state.begin(env);
        let (session, trap) = self.host.call(module, session, method);
        let outcome = rt.state.finish(session, trap);
        for line in &outcome.logs {
            tracing::info!(target: "app", context = %rt.id, method, "{line}");
        }
        let output = outcome.result.map_err(NodeError::Call)?;
        let output: serde_json::Value = serde_json::from_slice(&output).map_err(|e| {
            NodeError::Call(CallError::new(
                CallErrorKind::Host,
                format!("the method returned invalid JSON: {e}"),
            ))
        })?;

        if outcome.delta.is_none() && outcome.private_writes.is_empty() && batch.is_none() {
            return Ok(CallOutput {
                output,
                delta_seq: None,
            });
        }
        let mut batch = batch.unwrap_or_else(|| self.db.batch());
        let mut meta = rt.meta.clone();
        let mut delta_seq = None;
        if let Some(payload) = outcome.delta {
            for e in &payload.events {
                tracing::debug!(target: "app", context = %rt.id, kind = %e.kind, "event {}", e.data);
            }
            let delta = Delta {
                context: rt.id,
                author: meta.member,
                seq: meta.seq + 1,
                parents: meta.heads.clone(),
                app: module.hash,
                payload,
            };
            meta.seq = delta.seq;
            meta.heads = vec![delta.id()];
            batch.put_delta(&self.db, &delta);
            if meta.seq - meta.snapshot_seq >= self.config.store.snapshot_every {
                batch.put_snapshot(&self.db, &rt.id, meta.seq, &rt.state.snapshot()?);
                meta.snapshot_seq = meta.seq;
            }
            delta_seq = Some(meta.seq);
        }
        for (k, v) in &outcome.private_writes {
            batch.private(&self.db, &rt.id, k, v.as_deref());
        }
        batch.put_context(&self.db, &rt.id, &meta);
        if let Err(e) = self.db.write(batch) {
            // The change is applied in memory but not durable: reload the
            // replica from the store so memory matches disk again.
            tracing::error!(context = %rt.id, "persisting a call failed, reloading the context: {e}");
            if let Ok(fresh) = self.restore(rt.id, rt.meta.clone()) {
                *rt = fresh;
            }
            return Err(e);
        }
        rt.meta = meta;
        Ok(CallOutput { output, delta_seq })
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

fn context_info(rt: &ContextRuntime) -> ContextInfo {
    ContextInfo {
        id: rt.id,
        app: rt.meta.app,
        member: rt.meta.member,
        seq: rt.meta.seq,
        heads: rt.meta.heads.clone(),
    }
}
