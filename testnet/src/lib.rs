//! `mero-testnet`: multi-node tests for a mero app, from the app's own
//! `cargo test`.
//!
//! ```no_run
//! use mero_testnet::json;
//! use std::time::Duration;
//!
//! let mut net = mero_testnet::app!().network(3)?;
//! net.partition(&[3])?;
//! net.node(1).execute("set", json!({"key": "a", "value": "1"}))?;
//! net.node(3).execute("set", json!({"key": "b", "value": "2"}))?;
//! net.heal()?;
//! net.wait_converged(Duration::from_secs(30))?;
//! assert_eq!(net.node(3).query("get", json!({"key": "a"}))?, json!("1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`App::network`] builds the app (`cargo mero build`, once per test
//! process), starts real nodes (`merod run --dev`) on OS-picked loopback
//! ports with homes in a temporary directory, installs the app, creates a
//! context on node 1 and has every other node join it. Nodes are numbered
//! from 1, as `cargo mero dev` numbers them. Faults (partitions, delay,
//! loss) go through each node's dev-mode `PUT /admin/dev/faults`; everything
//! else through the node's ordinary HTTP API ([`mero_client`]). Dropping
//! the [`Testnet`], also while a failed test unwinds, stops every node
//! (SIGTERM, SIGKILL after 5 s) and removes the homes.
//!
//! Binaries: see [`locate`] for the lookup order (`MERO_BIN`, the test's
//! own target directory, `PATH`; `MEROD` for the nodes). Building runs the
//! `cargo-mero` binary, not its library: see [`build`] for why.
//! `MERO_TESTNET_LOG` sets the nodes' `RUST_LOG` (default `warn`); their
//! output is printed through the test harness, which shows it only for a
//! failed test.
//!
//! It must stay light and observe like a user: no tokio, no `mero-node`,
//! no reading node homes beyond the config it wrote; it decides nothing
//! about sync or state, it only compares what the nodes' API answers.

#![warn(missing_docs)]

pub mod build;
pub mod converge;
pub mod diff;
pub mod faults;
pub mod locate;
mod network;
pub mod process;

use std::path::PathBuf;

pub use converge::{Converged, NodeReport, NotConverged};
pub use diff::{AuthorDiff, PathDiff};
pub use mero_api::SyncStatus;
pub use mero_client::{CallKind, ClientError, NodeClient};
pub use network::{Node, Testnet};
pub use serde_json::{Value, json};

/// What went wrong setting up or driving a network.
#[derive(Debug, thiserror::Error)]
pub enum TestnetError {
    /// No binary to build the app or run nodes.
    #[error("{0}")]
    NoNodeBinary(String),
    /// The node binary has no dev mode (it predates this crate).
    #[error("{0}")]
    NoDevMode(String),
    /// The nodes are another version than this crate.
    #[error(
        "the nodes run mero {found} but this mero-testnet is {expected}; point MERO_BIN at a matching cargo-mero"
    )]
    VersionMismatch {
        /// The node's `/health` version.
        found: String,
        /// This crate's version.
        expected: String,
    },
    /// `cargo mero build` failed.
    #[error("building {}: {message}", .manifest.display())]
    Build {
        /// The app's manifest.
        manifest: PathBuf,
        /// Cargo's or cargo-mero's message.
        message: String,
    },
    /// A node process did not start or stop as it should.
    #[error("{0}")]
    Node(String),
    /// A node's API refused or failed.
    #[error("node {index}: {source}")]
    Api {
        /// 1-based node number.
        index: usize,
        /// What the client saw.
        #[source]
        source: ClientError,
    },
    /// No node with that number.
    #[error("no node {0} in this network (nodes are numbered from 1)")]
    NoSuchNode(usize),
    /// The node was killed and not restarted.
    #[error("node {0} is not running (restart it first)")]
    NotRunning(usize),
    /// A fault the nodes cannot apply.
    #[error("{0}")]
    BadFault(String),
    /// The new network did not settle.
    #[error("{0}")]
    NotConverged(Box<NotConverged>),
    /// File system error.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The app under test: the crate at `CARGO_MANIFEST_DIR` (see [`app!`]).
#[macro_export]
macro_rules! app {
    () => {
        $crate::App::at(env!("CARGO_MANIFEST_DIR"))
    };
}

/// An app crate to test on a network.
#[derive(Debug, Clone)]
pub struct App {
    dir: PathBuf,
    features: Vec<String>,
    sync_interval_ms: u64,
}

impl App {
    /// The app whose Cargo.toml is in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            features: Vec::new(),
            sync_interval_ms: 500,
        }
    }

    /// Builds the app with these cargo features.
    pub fn features(mut self, features: &[&str]) -> Self {
        self.features = features.iter().map(|f| (*f).to_owned()).collect();
        self
    }

    /// The nodes' catch-up interval (default 500 ms, a quarter of a
    /// production node's): how soon a node notices it is behind without
    /// gossip.
    pub fn sync_interval(mut self, ms: u64) -> Self {
        self.sync_interval_ms = ms;
        self
    }

    /// Builds the app (once per process), starts `n` dev-mode nodes on
    /// OS-picked loopback ports in a temp dir, installs the app on each,
    /// creates a context on node 1, has the others join it, and waits
    /// until all agree (60 s).
    pub fn network(self, n: usize) -> Result<Testnet, TestnetError> {
        network::Testnet::start(self, n)
    }
}
