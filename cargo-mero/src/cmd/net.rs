//! `cargo mero net ...`: one command to the running dev session, and its
//! answer (for `heal`, also the convergence time).

use std::path::PathBuf;

use anyhow::bail;
use cargo_mero::dev::control::ControlRequest;
use cargo_mero::dev::keys::{parse_ms, parse_percent};
use cargo_mero::net::{HEAL_WAIT, heal, send, session};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub(crate) struct NetArgs {
    #[command(subcommand)]
    command: NetCmd,
    /// Path to the app's Cargo.toml.
    #[arg(long, global = true)]
    manifest_path: Option<PathBuf>,
    /// The app's package, in a workspace.
    #[arg(short, long, global = true)]
    package: Option<String>,
    /// Directory for build artifacts (and the dev network).
    #[arg(long, global = true)]
    target_dir: Option<PathBuf>,
    /// Print the session's answer as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum NetCmd {
    /// Cut these nodes off from all others, both ways (replaces an
    /// earlier partition).
    Partition {
        /// Node numbers (from 1) of one side.
        #[arg(required = true)]
        nodes: Vec<usize>,
    },
    /// Clear every fault and wait until the nodes agree again.
    Heal {
        /// Do not wait for the nodes to converge.
        #[arg(long)]
        no_wait: bool,
    },
    /// SIGKILL a node (its home is kept for `restart`).
    Kill {
        /// Node number.
        node: usize,
    },
    /// Start a node again from its home, on the same ports when free.
    Restart {
        /// Node number.
        node: usize,
    },
    /// Delay every link of a node, one way (0ms removes it).
    Delay {
        /// Node number.
        node: usize,
        /// How much, e.g. 200ms or 1s.
        #[arg(value_parser = parse_ms)]
        delay: u32,
    },
    /// Lose a share of a node's gossip on every link (0% removes it).
    Loss {
        /// Node number.
        node: usize,
        /// How much, e.g. 10%.
        #[arg(value_parser = parse_percent)]
        percent: f64,
    },
    /// Start one more node and join it to the context.
    AddNode,
}

/// Sends the command; fails (after printing the answer) when the session
/// did not do it.
pub(crate) fn run(a: NetArgs) -> anyhow::Result<()> {
    let dev_dir = super::dev_dir(a.manifest_path, a.package, a.target_dir)?;
    let info = session(&dev_dir)?;
    let request = match a.command {
        NetCmd::Heal { no_wait } => {
            let (answer, converged) = heal(&info, (!no_wait).then_some(HEAL_WAIT))?;
            if a.json {
                let mut v = serde_json::to_value(&answer)?;
                v["converged"] = serde_json::to_value(converged)?;
                println!("{v}");
            } else {
                println!("{}", answer.message);
                if let Some(c) = converged {
                    println!("converged {} ms after the heal", c.took_ms);
                }
            }
            return Ok(());
        }
        NetCmd::Partition { nodes } => ControlRequest::Partition { nodes },
        NetCmd::Kill { node } => ControlRequest::Kill { node },
        NetCmd::Restart { node } => ControlRequest::Restart { node },
        NetCmd::Delay { node, delay } => ControlRequest::Delay { node, ms: delay },
        NetCmd::Loss { node, percent } => ControlRequest::Loss { node, percent },
        NetCmd::AddNode => ControlRequest::AddNode,
    };
    let answer = send(&info, &request)?;
    if a.json {
        println!("{}", serde_json::to_string(&answer)?);
    } else if answer.ok {
        println!("{}", answer.message);
    }
    if !answer.ok {
        bail!("{}", answer.message);
    }
    Ok(())
}
