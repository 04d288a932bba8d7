//! Installed apps: installing (by the operator, or fetched from a peer),
//! listing, removing, and asking peers for an app a context runs. What an
//! app may do once installed is decided elsewhere (`crate::host` compiles
//! and limits it, `crate::xcall` checks [`Node::trusts`]).

use std::sync::Arc;

use mero_abi::AppAbi;

use crate::error::NodeError;
use crate::host::AppModule;
use crate::ids::{AppHash, ContextId, sha256};
use crate::node::{AppInfo, Node};

impl Node {
    /// Validates, compiles and stores an app, as this node's operator's
    /// choice: contexts running it may call other contexts. Installing the
    /// same bytes twice is a no-op returning the same hash (it marks an app
    /// that came from a peer as the operator's).
    pub fn install_app(&self, wasm: &[u8]) -> Result<AppInfo, NodeError> {
        let hash = AppHash(sha256(wasm));
        let info = self.install_fetched_app(wasm)?;
        if !self.trusts(&hash) {
            self.db().put_trusted(&hash)?;
            self.trusted.write().unwrap().insert(hash);
        }
        Ok(info)
    }

    /// Whether this node's operator installed app `hash` ([`install_app`](Self::install_app)),
    /// rather than it arriving from a peer: only then may its contexts call
    /// other contexts.
    pub fn trusts(&self, hash: &AppHash) -> bool {
        self.trusted.read().unwrap().contains(hash)
    }

    /// Installs an app a peer sent (for an upgrade, or a context joined).
    pub(crate) fn install_fetched_app(&self, wasm: &[u8]) -> Result<AppInfo, NodeError> {
        let hash = AppHash(sha256(wasm));
        if let Some(app) = self.apps.read().unwrap().get(&hash) {
            return Ok(app_info(app));
        }
        let module = self.host().load(self.db(), hash, wasm)?;
        self.db().put_app(&hash, wasm)?;
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
            .filter(|c| c.inspect().meta().app == *hash)
            .map(|c| c.id().to_string())
            .collect();
        if !users.is_empty() {
            return Err(NodeError::Conflict(format!(
                "app {hash} is in use by context(s) {}; upgrade or delete them first",
                users.join(", ")
            )));
        }
        self.db().delete_app(hash)?;
        self.apps.write().unwrap().remove(hash);
        self.trusted.write().unwrap().remove(hash);
        tracing::info!(app = %hash, "removed app");
        Ok(())
    }

    /// Whether an app is installed.
    pub fn has_app(&self, hash: &AppHash) -> bool {
        self.apps.read().unwrap().contains_key(hash)
    }

    /// An installed app's WASM bytes.
    pub fn app_wasm(&self, hash: &AppHash) -> Result<Option<Vec<u8>>, NodeError> {
        self.db().app(hash)
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

    /// Asks peers of `ctx` for the app it runs, unless the node has it.
    pub(crate) fn fetch_app(&self, ctx: ContextId, app: AppHash) {
        if self.has_app(&app) {
            return;
        }
        if let Some(net) = self.net() {
            net.fetch_app(app, ctx);
        }
    }

    /// A request for `app` from peers of `ctx`, with this node's proof as
    /// it is now; `None` once the node has the app.
    pub(crate) fn app_request(
        &self,
        ctx: &ContextId,
        app: &AppHash,
    ) -> Option<mero_sync::protocol::Envelope> {
        if self.has_app(app) {
            return None;
        }
        self.envelope(mero_sync::protocol::Request::App {
            context: *ctx,
            hash: *app,
        })
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
