//! `merod` commands, shared with `cargo mero node`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::config::{CONFIG_FILE, NodeConfig};
use crate::node::Node;

/// A mero node.
#[derive(Debug, Parser)]
#[command(
    name = "merod",
    version,
    about = "A mero node: runs replicated app contexts and serves their API"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `merod` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node home: config.toml with a fresh admin token, and a data directory.
    Init {
        /// Home directory.
        #[arg(long, env = "MERO_HOME")]
        home: PathBuf,
        /// Address for the HTTP API.
        #[arg(long, default_value = "127.0.0.1:2428")]
        listen: SocketAddr,
        /// Overwrite an existing config (keeps data).
        #[arg(long)]
        force: bool,
    },
    /// Run the node until Ctrl-C or SIGTERM.
    Run {
        /// Home directory.
        #[arg(long, env = "MERO_HOME")]
        home: PathBuf,
        /// Override the configured listen address (port 0 picks a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            home,
            listen,
            force,
        } => init(&home, listen, force),
        Command::Run { home, listen } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(serve(&home, listen))
        }
    }
}

fn init(home: &Path, listen: SocketAddr, force: bool) -> anyhow::Result<()> {
    let path = home.join(CONFIG_FILE);
    if path.exists() && !force {
        bail!(
            "{} already exists; pass --force to overwrite it (data is kept)",
            path.display()
        );
    }
    std::fs::create_dir_all(home.join("data"))
        .with_context(|| format!("creating {}", home.display()))?;
    let cfg = NodeConfig::generate(listen);
    cfg.save(home)?;
    let identity = crate::identity::NodeIdentity::load_or_create(home)?;
    println!("initialized node home {}", home.display());
    println!("  config:      {}", path.display());
    println!("  identity:    {}", identity.public());
    println!("  listen:      http://{listen}");
    println!("  admin token: {}", cfg.auth.admin_token);
    println!("start it with: merod run --home {}", home.display());
    Ok(())
}

async fn serve(home: &Path, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let mut config = NodeConfig::load(home).with_context(|| {
        format!(
            "no usable node home at {}; create one with `merod init --home {}`",
            home.display(),
            home.display()
        )
    })?;
    if let Some(l) = listen {
        config.server.listen = l;
    }
    let addr = config.server.listen;
    let node = {
        let owned = home.to_owned();
        tokio::task::spawn_blocking(move || Node::open(&owned, config))
            .await?
            .with_context(|| format!("opening the node at {}", home.display()))?
    };
    let node = Arc::new(node);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "cannot listen on {addr}; is another node using it? set --listen or [server].listen"
        )
    })?;
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() {
        tracing::warn!("the HTTP API listens on {bound}, which is reachable from other machines");
    }
    // Scripts and tests read this line to learn the port.
    println!("merod listening on http://{bound}");
    tracing::info!(
        contexts = node.contexts().len(),
        apps = node.apps().len(),
        "node ready"
    );
    crate::server::serve(node, listener, shutdown_signal()).await?;
    tracing::info!("node stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Sets up logging to stderr, filtered by `RUST_LOG` (default: info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
