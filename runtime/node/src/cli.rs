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
        /// libp2p listen multiaddr (repeatable): TCP and QUIC by default.
        #[arg(long = "p2p-listen", default_values = ["/ip4/0.0.0.0/tcp/2429", "/ip4/0.0.0.0/udp/2429/quic-v1"])]
        p2p_listen: Vec<String>,
        /// Peers to connect to (multiaddrs, repeatable).
        #[arg(long)]
        bootstrap: Vec<String>,
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
        /// Network overrides.
        #[command(flatten)]
        net: NetArgs,
        /// Dev mode: fault injection at `/admin/dev/faults` (partitions,
        /// delay, loss) and per-peer metrics. Only with an HTTP API on
        /// loopback; never settable in config.toml.
        #[arg(long)]
        dev: bool,
    },
    /// Read or change config.toml (changes apply at the next start).
    Config {
        /// Home directory.
        #[arg(long, env = "MERO_HOME")]
        home: PathBuf,
        /// What to do.
        #[command(subcommand)]
        action: ConfigAction,
    },
}

/// `merod config` actions.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print one setting (`server.listen`), or the whole effective config.
    Get {
        /// Dotted key; omit it for everything.
        key: Option<String>,
    },
    /// Change one setting; refused, with nothing written, unless the result is valid.
    Set {
        /// Dotted key, e.g. `server.cors_origins`.
        key: String,
        /// A TOML value (`8080`, `true`, `["http://localhost:5173"]`) or a bare string.
        value: String,
    },
}

/// Network overrides for `merod run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetArgs {
    /// Override the libp2p listen multiaddrs (repeatable; /tcp/0 picks a free port).
    #[arg(long = "p2p-listen")]
    pub p2p_listen: Vec<String>,
    /// Extra peers to connect to (multiaddrs, repeatable).
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// Discover peers on the local network with mDNS.
    #[arg(long)]
    pub mdns: bool,
    /// Hold a slot on this relay, for peers that cannot dial this node
    /// (a multiaddr ending in /p2p/<peer id>; repeatable).
    #[arg(long = "relay")]
    pub relays: Vec<String>,
    /// Serve as a relay for peers behind NATs (needs --public or
    /// --external-address).
    #[arg(long)]
    pub serve_relay: bool,
    /// Serve as a meet server: members of a context that know this node
    /// find each other here (it learns peer ids, addresses and opaque
    /// tags, never contexts).
    #[arg(long)]
    pub serve_meet: bool,
    /// The listen addresses are reachable as they are (a public server).
    #[arg(long)]
    pub public: bool,
    /// An address peers elsewhere reach this node on (repeatable).
    #[arg(long = "external-address")]
    pub external_addresses: Vec<String>,
}

impl NetArgs {
    /// Applies the overrides to a config.
    pub fn apply(&self, cfg: &mut crate::config::NetworkConfig) {
        if !self.p2p_listen.is_empty() {
            cfg.listen = self.p2p_listen.clone();
        }
        cfg.bootstrap.extend(self.bootstrap.iter().cloned());
        cfg.mdns |= self.mdns;
        cfg.relays.extend(self.relays.iter().cloned());
        cfg.relay.serve |= self.serve_relay;
        cfg.meet.serve |= self.serve_meet;
        cfg.public |= self.public;
        cfg.external_addresses
            .extend(self.external_addresses.iter().cloned());
    }
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            home,
            listen,
            p2p_listen,
            bootstrap,
            force,
        } => init(&home, listen, p2p_listen, bootstrap, force),
        Command::Config { home, action } => {
            match action {
                ConfigAction::Get { key: None } => print!("{}", crate::config::show(&home)?),
                ConfigAction::Get { key: Some(k) } => {
                    println!("{}", crate::config::get_key(&home, &k)?)
                }
                ConfigAction::Set { key, value } => {
                    crate::config::set_key(&home, &key, &value)?;
                    println!("set {key}; restart the node for it to take effect");
                }
            }
            Ok(())
        }
        Command::Run {
            home,
            listen,
            net,
            dev,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(crate::host::CALL_THREAD_STACK)
                .build()
                .context("starting the async runtime")?;
            rt.block_on(serve(&home, listen, &net, dev))
        }
    }
}

fn init(
    home: &Path,
    listen: SocketAddr,
    p2p_listen: Vec<String>,
    bootstrap: Vec<String>,
    force: bool,
) -> anyhow::Result<()> {
    let path = home.join(CONFIG_FILE);
    if path.exists() && !force {
        bail!(
            "{} already exists; pass --force to overwrite it (data is kept)",
            path.display()
        );
    }
    std::fs::create_dir_all(home.join("data"))
        .with_context(|| format!("creating {}", home.display()))?;
    let mut cfg = NodeConfig::generate(listen);
    cfg.network.listen = p2p_listen;
    cfg.network.bootstrap = bootstrap;
    cfg.save(home)?;
    let identity = crate::identity::NodeIdentity::load_or_create(home)?;
    println!("initialized node home {}", home.display());
    println!("  config:      {}", path.display());
    println!("  identity:    {}", identity.public());
    println!("  listen:      http://{listen}");
    println!("  p2p:         {}", cfg.network.listen.join(", "));
    println!("  admin token: {}", cfg.auth.admin_token);
    println!("start it with: merod run --home {}", home.display());
    Ok(())
}

async fn serve(
    home: &Path,
    listen: Option<SocketAddr>,
    net: &NetArgs,
    dev: bool,
) -> anyhow::Result<()> {
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
    net.apply(&mut config.network);
    config
        .network
        .validate()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if dev && !config.server.listen.ip().is_loopback() {
        bail!(
            "--dev needs the HTTP API on loopback, not {}: fault injection must not be reachable from other machines; pass --listen 127.0.0.1:<port>",
            config.server.listen
        );
    }
    config.dev = dev;
    if dev {
        tracing::warn!("DEV MODE: fault injection enabled at /admin/dev/faults");
    }
    let net_config = config.network.clone();
    let addr = config.server.listen;
    let secret = crate::identity::NodeIdentity::load_or_create(home)
        .with_context(|| format!("reading the node key in {}", home.display()))?
        .secret();
    let mode = if dev {
        crate::net::NetMode::Dev
    } else {
        crate::net::NetMode::Operator
    };
    let pending = crate::net::Pending::new(secret, &net_config, mode)
        .context("the node key is not a valid libp2p key")?;
    let node = {
        let owned = home.to_owned();
        let handle = pending.handle();
        tokio::task::spawn_blocking(move || Node::open_with(&owned, config, Some(handle)))
            .await?
            .with_context(|| format!("opening the node at {}", home.display()))?
    };
    crate::net::start(node.clone(), secret, pending, &net_config)
        .await
        .context("starting the peer-to-peer network; check [network] in config.toml")?;
    crate::blobs::start(&node).context("starting the blob worker thread")?;
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
    let stopping = node.clone();
    let shutdown = async move {
        shutdown_signal().await;
        // Ends subscriptions (WebSocket, SSE) so the server can drain.
        stopping.begin_shutdown();
    };
    crate::api::serve(node.clone(), listener, shutdown).await?;
    if let Some(net) = node.net() {
        net.shutdown().await;
    }
    close(node).await;
    tracing::info!("node stopped");
    Ok(())
}

/// Closes the database before the process exits, whatever still holds
/// the node (a blocking task finishing a request).
async fn close(node: Arc<Node>) {
    let _ = tokio::task::spawn_blocking(move || node.close()).await;
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
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // libp2p logs every inbound stream it drops at a peer's request
        // limit: a peer opening thousands would fill the log. The node
        // counts and bans such peers itself.
        .add_directive(
            "libp2p_request_response::handler=error"
                .parse()
                .expect("a valid directive"),
        );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
