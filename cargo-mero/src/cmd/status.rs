//! `cargo mero status`: the sync table of the dev network (or one node),
//! or the nodes' `SyncStatus` as JSON.

use anyhow::{Context, bail};
use cargo_mero::status::{Report, dev, one, table};
use clap::Args;
use mero_testnet::converge::now_ms;

use crate::LocateArgs;

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// JSON: with --node or --url the node's sync status as its admin API
    /// answers it; else every node's, with the context.
    #[arg(long)]
    json: bool,
    /// Only this node of the dev network (1-based).
    #[arg(long, conflicts_with = "url")]
    node: Option<usize>,
    /// A row per peer under each node.
    #[arg(short, long)]
    verbose: bool,
    /// Any node's API URL instead of the dev network.
    #[arg(long, env = "MERO_NODE_URL")]
    url: Option<String>,
    /// The node's admin token (with --url).
    #[arg(long, env = "MERO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Context id (default: the dev network's; required with --url).
    #[arg(long)]
    context: Option<String>,
    /// Where the app is, to find its dev network.
    #[command(flatten)]
    locate: LocateArgs,
}

pub(crate) fn run(a: StatusArgs) -> anyhow::Result<()> {
    let single = a.node.is_some() || a.url.is_some();
    let report: Report = match &a.url {
        Some(url) => {
            let context = a
                .context
                .as_deref()
                .context("--url needs --context ID: the context whose status to show")?;
            one(url, a.token.as_deref(), context)
        }
        None => {
            let dir = super::dev_dir(
                a.locate.manifest_path,
                a.locate.package,
                a.locate.target_dir,
            )?;
            dev(&dir, a.node, a.context)?
        }
    };
    if !a.json {
        print!("{}", table(&report, a.verbose, now_ms()));
        return Ok(());
    }
    if !single {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let node = report.nodes.first().context("no node answered")?;
    match (&node.sync, &node.error) {
        (Some(s), _) => println!("{}", serde_json::to_string_pretty(s)?),
        (None, e) => bail!(
            "node {} ({}): {}",
            node.index,
            node.url,
            e.as_deref().unwrap_or("no answer")
        ),
    }
    Ok(())
}
