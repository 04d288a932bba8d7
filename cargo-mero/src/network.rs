//! `target/mero/dev/network.json`: where a `cargo mero dev` network is, for
//! `cargo mero call`, `net`, `status` and any other tool (scripts, front
//! ends, tests). It holds admin tokens and the session's control key, so
//! it is written readable by its owner only.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::build::Project;

/// File name under the dev directory.
pub const NETWORK_FILE: &str = "network.json";

/// Where a project's dev network lives: `<target>/mero/dev` when the
/// target dir is the project's own, else `<target>/mero/dev/<package>`, so
/// projects sharing a target dir (`CARGO_TARGET_DIR`) never share nodes.
pub fn dev_dir(project: &Project) -> PathBuf {
    let base = project.target_dir.join("mero").join("dev");
    let own = match (
        project.target_dir.canonicalize(),
        project.dir.canonicalize(),
    ) {
        (Ok(t), Ok(d)) => t.starts_with(d),
        _ => project.target_dir.starts_with(&project.dir),
    };
    if own {
        base
    } else {
        base.join(&project.package)
    }
}

/// One node of a dev network.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevNode {
    /// 1-based, as `--node` takes it.
    pub index: usize,
    /// JSON-RPC and admin API base URL.
    pub rpc_url: String,
    /// Event stream of the dev context (token included).
    pub ws_url: String,
    /// Admin token.
    pub admin_token: String,
    /// Home directory (config, data, `node.log`).
    pub home: PathBuf,
    /// libp2p peer id.
    pub peer_id: String,
    /// libp2p address other nodes dial.
    pub p2p: String,
    /// This node's member key in the dev context.
    pub member_key: String,
    /// Process id while the network runs.
    pub pid: u32,
    /// The app's page on this node, with a client token of the node in
    /// it, when the app has a front end (`web/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
}

/// A dev network, as `network.json` holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevNetwork {
    /// Format version.
    pub version: u32,
    /// The app's package name.
    pub package: String,
    /// The `cargo mero dev` process, while it runs.
    pub pid: u32,
    /// The context every node shares.
    pub context: String,
    /// The app hash the context runs.
    pub app: String,
    /// The nodes, by index.
    pub nodes: Vec<DevNode>,
    /// The Server-Sent Events stream the dev pages reload on, when the app
    /// has a front end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload_url: Option<String>,
    /// The session's control server, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlInfo>,
}

/// Where a running session takes commands (`POST /control`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlInfo {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The session key (a Bearer token).
    pub key: String,
}

/// What went wrong reading `network.json`.
#[derive(Debug, thiserror::Error)]
pub enum NetworkFileError {
    /// No file.
    #[error("no dev network at {0}; start one with `cargo mero dev`, or pass --url")]
    Missing(PathBuf),
    /// Unreadable.
    #[error("{path}: {reason}; `cargo mero dev --clean` starts a new network")]
    Bad {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl DevNetwork {
    /// Reads `<dev_dir>/network.json`.
    pub fn load(dev_dir: &Path) -> Result<Self, NetworkFileError> {
        let path = dev_dir.join(NETWORK_FILE);
        let text = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NetworkFileError::Missing(path.clone()),
            _ => NetworkFileError::Bad {
                path: path.clone(),
                reason: e.to_string(),
            },
        })?;
        serde_json::from_slice(&text).map_err(|e| NetworkFileError::Bad {
            path,
            reason: e.to_string(),
        })
    }

    /// Writes `<dev_dir>/network.json` atomically, owner-only.
    pub fn save(&self, dev_dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let path = dev_dir.join(NETWORK_FILE);
        let tmp = dev_dir.join(format!("{NETWORK_FILE}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
        let mut file = open.open(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(self).expect("networks serialize"))?;
        file.sync_all()?;
        std::fs::rename(tmp, path)
    }

    /// Node `index` (1-based).
    pub fn node(&self, index: usize) -> Option<&DevNode> {
        self.nodes.iter().find(|n| n.index == index)
    }
}
