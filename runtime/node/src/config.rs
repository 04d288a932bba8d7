//! The node's home directory and its TOML configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::net::config::{NetworkConfig, RelayServiceConfig};

/// File name of the config inside the home directory.
pub const CONFIG_FILE: &str = "config.toml";

/// `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// HTTP server.
    pub server: ServerConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// Per-call limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Storage tuning.
    #[serde(default)]
    pub store: StoreConfig,
    /// Peer-to-peer networking.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Event streams (WebSocket, SSE) and the event log.
    #[serde(default)]
    pub events: EventsConfig,
    /// `/metrics`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// What one received delta, and the deltas waiting for their parents,
    /// may hold.
    #[serde(default)]
    pub replica: ReplicaConfig,
    /// Blobs: size limit, fetching, garbage collection.
    #[serde(default)]
    pub blobs: BlobsConfig,
    /// Fault injection for tests; leave empty.
    #[serde(default)]
    pub testing: TestingConfig,
    /// Dev mode (`merod run --dev` only): fault injection at
    /// `/admin/dev/faults`. Never read from or written to config.toml (so
    /// `merod config set dev true` is refused as an unknown key) and never
    /// shown by `/admin/node/config`: only the operator's command line
    /// turns it on.
    #[serde(skip)]
    pub dev: bool,
}

/// `[blobs]`: large files stored next to a context's state (see docs/blobs.md).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobsConfig {
    /// Largest blob this node uploads or fetches, in bytes.
    pub max_blob_bytes: u64,
    /// Seconds an unreferenced blob is kept: an uploaded blob must be stored
    /// in the context's state within this time, or it is collected.
    pub gc_grace_secs: u64,
    /// Seconds between garbage collections.
    pub gc_interval_secs: u64,
    /// Blob fetches from peers that may run at once.
    pub max_fetches: usize,
    /// Chunk requests one fetch keeps in flight to each peer.
    pub fetch_window: usize,
    /// Seconds a fetch waits without progress (no peer has the blob, or
    /// every peer failed) before it gives up; a later read starts it again.
    pub fetch_timeout_secs: u64,
}

impl Default for BlobsConfig {
    fn default() -> Self {
        Self {
            max_blob_bytes: 1 << 30,
            gc_grace_secs: 3_600,
            gc_interval_secs: 60,
            max_fetches: 4,
            fetch_window: 8,
            fetch_timeout_secs: 30,
        }
    }
}

/// `[replica]`: bounds on received deltas, per context.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicaConfig {
    /// Largest payload of one delta, in bytes; larger ones are refused.
    pub max_delta_bytes: usize,
    /// Most events one call delta may carry.
    pub max_events_per_delta: usize,
    /// Deltas waiting for missing parents; more are refused (catch-up
    /// fetches them later, in order).
    pub max_pending: usize,
    /// Bytes of deltas waiting for missing parents.
    pub max_pending_bytes: usize,
    /// Deltas of one author waiting for missing parents.
    pub max_pending_per_author: usize,
    /// A joiner asks for a snapshot instead of replaying every delta when
    /// the history holds at least this many deltas (0: always replays).
    pub snapshot_join_min: u64,
    /// Largest snapshot a joiner accepts, in bytes.
    pub max_snapshot_bytes: u64,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        let l = mero_sync::replica::Limits::default();
        Self {
            max_delta_bytes: l.max_payload,
            max_events_per_delta: l.max_events,
            max_pending: l.max_pending,
            max_pending_bytes: l.max_pending_bytes,
            max_pending_per_author: l.max_pending_per_author,
            snapshot_join_min: 10_000,
            max_snapshot_bytes: mero_sync::snapshot::DEFAULT_MAX_SNAPSHOT_BYTES,
        }
    }
}

impl ReplicaConfig {
    /// As the replica takes them.
    pub fn limits(&self) -> mero_sync::replica::Limits {
        mero_sync::replica::Limits {
            max_payload: self.max_delta_bytes,
            max_events: self.max_events_per_delta,
            max_pending: self.max_pending,
            max_pending_bytes: self.max_pending_bytes,
            max_pending_per_author: self.max_pending_per_author,
        }
    }
}

/// `[testing]`: fault injection, for the node's own tests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingConfig {
    /// Calls of this method that fail after writing make the state's
    /// rollback fail, as a corrupt document would: the context is
    /// quarantined.
    pub fail_rollback_method: Option<String>,
}

/// `[events]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Stream items kept per context for SSE replay (`Last-Event-ID`).
    pub retention: u64,
    /// Items one WebSocket or SSE subscriber may have queued before it is
    /// disconnected as too slow.
    pub subscriber_buffer: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            retention: 10_000,
            subscriber_buffer: 1_024,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` without a token (for a scraper on a trusted network).
    pub public: bool,
    /// Also serve per-peer series (`mero_peer_*`, one per context and
    /// peer); always on in dev mode. Off by default: thousands of contexts
    /// times their peers are too many series for most scrapers.
    pub per_peer: bool,
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP API listens on. Loopback unless you mean otherwise.
    pub listen: SocketAddr,
    /// Origins browsers may call the API from (CORS), e.g.
    /// `["http://localhost:5173"]`. Empty: no CORS headers at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cors_origins: Vec<String>,
    /// A directory of static files served under `/app/` (a web front end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_dir: Option<PathBuf>,
}

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer token for `/admin` and `/jsonrpc`.
    pub admin_token: String,
}

/// `[limits]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Wall time of one call, in milliseconds.
    pub call_timeout_ms: u64,
    /// WASM linear memory of one call, in MiB.
    pub call_memory_mib: u32,
    /// Largest JSON-RPC request body, in bytes.
    pub max_request_bytes: usize,
    /// Largest app upload, in bytes.
    pub max_app_bytes: usize,
    /// Largest return value, in bytes.
    pub max_return_bytes: usize,
    /// Calls that may run at once across all contexts.
    pub max_concurrent_calls: u32,
    /// Bytes one call may write (keys, values, text, private storage, plus
    /// a fixed cost per write); beyond it the call fails with `limit`.
    /// Keep it under `[replica] max_delta_bytes`, or peers refuse the delta.
    pub max_call_write_bytes: usize,
    /// Collection handles (detached collections included) one call may hold.
    pub max_call_handles: usize,
    /// Wall time of an upgrade's state migration (`#[app::migrate]`), in
    /// milliseconds: it runs once, over the whole state.
    pub migration_timeout_ms: u64,
    /// Contexts one chain of cross-context calls may span, the first
    /// caller included (`mero_sdk::xcall`).
    pub xcall_depth: usize,
    /// How long a cross-context call waits for a callee busy with other
    /// work, in milliseconds, before it is refused. Two calls that call
    /// into each other's contexts at once both wait this long at most.
    pub xcall_busy_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            call_timeout_ms: 2_000,
            call_memory_mib: 64,
            max_request_bytes: 1 << 20,
            max_app_bytes: 32 << 20,
            max_return_bytes: 4 << 20,
            max_concurrent_calls: 64,
            max_call_write_bytes: mero_engine::CallLimits::default().max_write_bytes,
            max_call_handles: mero_engine::CallLimits::default().max_handles,
            migration_timeout_ms: 60_000,
            xcall_depth: 4,
            xcall_busy_ms: 1_000,
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Write a state snapshot after at least this many deltas, once they also
    /// add up to a few times the size of the previous snapshot (so snapshots
    /// get rarer as the state grows, and their cost per delta stays flat).
    pub snapshot_every: u64,
    /// Set a context's replica aside ("cold": a few KiB stay in memory)
    /// once it has not been used for this many seconds; it loads again on
    /// its next use. 0 keeps every replica loaded.
    pub idle_evict_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            snapshot_every: 1000,
            idle_evict_secs: 60,
        }
    }
}

/// Errors reading or writing the home directory.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The config does not parse or validate.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl NodeConfig {
    /// A fresh config with a new random admin token.
    pub fn generate(listen: SocketAddr) -> Self {
        Self {
            server: ServerConfig {
                listen,
                cors_origins: Vec::new(),
                static_dir: None,
            },
            auth: AuthConfig {
                admin_token: hex::encode(crate::ids::random32()),
            },
            limits: LimitsConfig::default(),
            store: StoreConfig::default(),
            network: NetworkConfig::default(),
            events: EventsConfig::default(),
            metrics: MetricsConfig::default(),
            replica: ReplicaConfig::default(),
            blobs: BlobsConfig::default(),
            testing: TestingConfig::default(),
            dev: false,
        }
    }

    /// Loads `home/config.toml`.
    pub fn load(home: &Path) -> Result<Self, ConfigError> {
        let path = home.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        let cfg: Self = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        cfg.validate()
            .map_err(|message| ConfigError::Invalid { path, message })?;
        Ok(cfg)
    }

    /// Writes `home/config.toml` (owner-only: it holds the admin token).
    pub fn save(&self, home: &Path) -> Result<(), ConfigError> {
        let path = home.join(CONFIG_FILE);
        let text = toml::to_string_pretty(self).expect("configs serialize");
        write_private(&path, text.as_bytes()).map_err(|source| ConfigError::Io { path, source })
    }

    /// Checks values a TOML parser cannot.
    pub fn validate(&self) -> Result<(), String> {
        self.network.validate()?;
        if self.auth.admin_token.len() < 16 {
            return Err("auth.admin_token must be at least 16 characters".into());
        }
        let l = &self.limits;
        if l.call_timeout_ms == 0 || l.call_memory_mib == 0 || l.max_concurrent_calls == 0 {
            return Err("limits must be positive".into());
        }
        if l.call_memory_mib > 4096 {
            return Err("limits.call_memory_mib cannot exceed 4096 (wasm32)".into());
        }
        if !(1..=crate::host::MAX_XCALL_DEPTH).contains(&l.xcall_depth) {
            return Err(format!(
                "limits.xcall_depth must be between 1 and {}",
                crate::host::MAX_XCALL_DEPTH
            ));
        }
        if self.store.snapshot_every == 0 {
            return Err("store.snapshot_every must be positive".into());
        }
        if self.events.retention == 0 || self.events.subscriber_buffer == 0 {
            return Err("events.retention and events.subscriber_buffer must be positive".into());
        }
        for o in &self.server.cors_origins {
            let ok = (o.starts_with("http://") || o.starts_with("https://"))
                && !o.trim_end_matches('/').contains(['?', '#'])
                && o.parse::<axum::http::HeaderValue>().is_ok();
            if !ok && o != "*" {
                return Err(format!(
                    "server.cors_origins: `{o}` is not an origin like `https://app.example` (or `*`)"
                ));
            }
        }
        let b = &self.blobs;
        if b.gc_interval_secs == 0 || b.max_fetches == 0 || b.fetch_window == 0 {
            return Err(
                "blobs.gc_interval_secs, blobs.max_fetches and blobs.fetch_window must be positive"
                    .into(),
            );
        }
        if l.max_request_bytes == 0 || l.max_app_bytes == 0 {
            return Err(
                "limits.max_request_bytes and limits.max_app_bytes must be positive".into(),
            );
        }
        Ok(())
    }
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(path)?.write_all(bytes)
}

/// Reads one setting by dotted key (`server.listen`), defaults included,
/// rendered as TOML. A table key prints the whole table.
pub fn get_key(home: &Path, key: &str) -> Result<String, ConfigError> {
    let cfg = NodeConfig::load(home)?;
    let path = home.join(CONFIG_FILE);
    let mut v = toml::Value::try_from(&cfg).expect("configs serialize");
    for part in key.split('.') {
        v = v.get(part).cloned().ok_or_else(|| ConfigError::Invalid {
            path: path.clone(),
            message: format!("no setting `{key}`; `merod config get` with no key lists them"),
        })?;
    }
    Ok(match v {
        toml::Value::Table(t) => toml::to_string_pretty(&t).expect("tables serialize"),
        toml::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// The whole effective configuration, defaults included, as TOML.
pub fn show(home: &Path) -> Result<String, ConfigError> {
    let cfg = NodeConfig::load(home)?;
    Ok(toml::to_string_pretty(&cfg).expect("configs serialize"))
}

/// Sets one setting by dotted key. `value` is read as TOML (`8080`, `true`,
/// `["a", "b"]`), or taken as a string when it is not TOML. The file keeps
/// its comments and layout; nothing is written unless the result validates.
pub fn set_key(home: &Path, key: &str, value: &str) -> Result<(), ConfigError> {
    let path = home.join(CONFIG_FILE);
    let invalid = |message: String| ConfigError::Invalid {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
        path: path.clone(),
        source,
    })?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| invalid(e.to_string()))?;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(invalid(format!(
            "`{key}` is not a dotted key like `server.listen`"
        )));
    }
    let value: toml_edit::Value = value
        .parse()
        .unwrap_or_else(|_| toml_edit::Value::from(value));
    let (last, tables) = parts.split_last().expect("split yields one part at least");
    let mut table = doc.as_table_mut();
    for t in tables {
        let entry = table
            .entry(t)
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| invalid(format!("`{t}` in `{key}` is not a table")))?;
    }
    table.insert(last, toml_edit::value(value));
    let new_text = doc.to_string();
    let cfg: NodeConfig =
        toml::from_str(&new_text).map_err(|e| invalid(format!("setting `{key}`: {e}")))?;
    cfg.validate()
        .map_err(|m| invalid(format!("setting `{key}`: {m}")))?;
    write_private(&path, new_text.as_bytes()).map_err(|source| ConfigError::Io { path, source })
}
