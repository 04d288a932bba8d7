//! `cargo mero dev`: a local multi-node network running the app, reloaded
//! into every node on each save.
//!
//! The session builds the app, starts N nodes as child processes of this
//! binary (`cargo-mero node run`, homes under `target/mero/dev/`), shares
//! one context among them, then watches the sources. A reload installs the
//! new module on every node and upgrades the context on node 1; the upgrade
//! travels as a delta, so state is kept and every node switches at the same
//! point of history. Nodes never outlive the session (see [`nodes`]).
//!
//! An app with a front end (`web/`) gets it built and served by every node
//! under `/app/`, with a page URL per node that carries a client token of
//! that node; saving a front-end file rebuilds it, saving Rust code also
//! regenerates the bindings, and either way the open pages reload
//! (`pages`, `reload`).
//!
//! The session is also the network's control plane (it owns the
//! processes): nodes run in dev mode, and [`control`] takes commands
//! (partition, heal, kill, restart, delay, loss, add-node) from terminal
//! lines ([`keys`]), `cargo mero net` and the dashboard, over one loopback
//! server whose URL and key `network.json` holds.

pub mod console;
pub mod control;
mod dashboard;
mod fleet;
pub mod keys;
mod nodes;
mod pages;
mod reload;
mod session;
mod upgrade;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

pub use console::{Console, Verbosity};

use crate::build::{BuildError, BuildOptions};
use crate::client::ClientError;
use crate::network::NetworkFileError;

/// What went wrong in a dev session.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// Building failed for a reason other than the app's code.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A node's API failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A node process failed.
    #[error("{0}")]
    Node(String),
    /// The file watcher failed.
    #[error("watching the sources: {0}")]
    Watch(String),
    /// Another session owns this project's network.
    #[error("{0}")]
    Busy(String),
    /// Nodes did not agree in time.
    #[error("{0}")]
    Timeout(String),
    /// Ctrl-C or SIGTERM arrived while setting up.
    #[error("interrupted")]
    Interrupted,
    /// `network.json` is unusable.
    #[error(transparent)]
    NetworkFile(#[from] NetworkFileError),
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What wakes the session up.
#[derive(Debug)]
pub enum DevEvent {
    /// Sources changed (paths, time of the first change).
    Changed(Vec<PathBuf>, Instant),
    /// SIGINT, SIGTERM or SIGHUP.
    Signal(i32),
    /// A command from a front end, and where its answer goes.
    Control(control::ControlRequest, control::Reply),
    /// The wait for convergence after the heal at `healed_at_ms` ended:
    /// the last heads change (ms since the epoch), or what differs.
    Converged {
        /// The heal it follows.
        healed_at_ms: u64,
        /// When the nodes agreed, or the report of why they do not.
        outcome: Result<u64, String>,
    },
}

/// Options of `cargo mero dev`.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Which app, features, target dir (`opt_level`, `capture` and `color`
    /// are set by the session).
    pub build: BuildOptions,
    /// How many nodes.
    pub nodes: usize,
    /// Start a new network instead of resuming the saved one.
    pub clean: bool,
    /// Reload on source changes.
    pub watch: bool,
    /// Optimize with wasm-opt, as `deploy` does.
    pub release: bool,
    /// Console volume.
    pub verbosity: Verbosity,
    /// ANSI colors.
    pub color: bool,
    /// The binary whose `node run` subcommand runs a node (this one).
    pub exe: PathBuf,
    /// Read control commands from stdin lines (a pipe, or the terminal
    /// when in the foreground).
    pub keys: bool,
}

/// Runs a dev session until SIGINT/SIGTERM. Nodes are stopped on return,
/// whatever the outcome.
pub fn run(opts: DevOptions) -> Result<(), DevError> {
    if opts.nodes == 0 {
        return Err(DevError::Node("--nodes must be at least 1".into()));
    }
    let (tx, rx) = mpsc::channel();
    let interrupted = Arc::new(AtomicBool::new(false));
    listen_for_signals(tx.clone(), interrupted.clone())?;
    let mut session = session::Session::open(opts, rx, tx.clone(), interrupted)?;
    let _watcher = if session.watching() {
        Some(session.watch(tx)?)
    } else {
        None
    };
    let result = session.start().and_then(|()| session.serve());
    session.stop();
    match result {
        Err(DevError::Interrupted) => Ok(()),
        other => other,
    }
}

fn listen_for_signals(
    tx: mpsc::Sender<DevEvent>,
    interrupted: Arc<AtomicBool>,
) -> Result<(), DevError> {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .map_err(|e| DevError::Node(format!("cannot handle signals: {e}")))?;
        std::thread::spawn(move || {
            for sig in signals.forever() {
                interrupted.store(true, Ordering::SeqCst);
                if tx.send(DevEvent::Signal(sig)).is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (tx, interrupted);
    Ok(())
}
