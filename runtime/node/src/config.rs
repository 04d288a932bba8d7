//! The node's home directory and its TOML configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
}

/// `[network]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// libp2p listen multiaddrs. Port 0 picks a free port.
    pub listen: Vec<String>,
    /// Peers to connect to at start and to keep reconnecting to
    /// (multiaddrs, ideally ending in `/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// How often to compare heads with each peer, in milliseconds.
    pub sync_interval_ms: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            bootstrap: Vec::new(),
            mdns: false,
            sync_interval_ms: 2_000,
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP API listens on. Loopback unless you mean otherwise.
    pub listen: SocketAddr,
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
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Write a state snapshot every this many deltas (startup replays at most this many).
    pub snapshot_every: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            snapshot_every: 1000,
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
            server: ServerConfig { listen },
            auth: AuthConfig {
                admin_token: hex::encode(crate::ids::random32()),
            },
            limits: LimitsConfig::default(),
            store: StoreConfig::default(),
            network: NetworkConfig::default(),
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
        if self.store.snapshot_every == 0 {
            return Err("store.snapshot_every must be positive".into());
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
