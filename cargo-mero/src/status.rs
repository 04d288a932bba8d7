//! `cargo mero status`: where each node's replica of a context stands, from
//! the nodes' own `GET /admin/contexts/{id}/sync` (no session needed: the
//! dev network's nodes from `network.json`, or any node by URL).
//!
//! Status is as of each node's last exchange with its peers; this module
//! only reads and formats it, and decides nothing from it.

use std::collections::BTreeMap;
use std::path::Path;

use mero_api::{PeerSync, SyncState, SyncStatus};
use serde::Serialize;

use crate::client::NodeClient;
use crate::network::{DevNetwork, NetworkFileError};

/// What went wrong collecting the status.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// `network.json` is unusable.
    #[error(transparent)]
    NetworkFile(#[from] NetworkFileError),
    /// No such node in the dev network.
    #[error("no node {0} in the dev network (nodes are numbered from 1)")]
    NoSuchNode(usize),
}

/// One node's answer.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSync {
    /// 1-based node number.
    pub index: usize,
    /// Its API URL.
    pub url: String,
    /// Its sync status, when it answered.
    pub sync: Option<SyncStatus>,
    /// Why it did not.
    pub error: Option<String>,
}

/// Every asked node's status of one context.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The context.
    pub context: String,
    /// The nodes, by number.
    pub nodes: Vec<NodeSync>,
    /// Peer ids of the dev network's nodes, to name peers by number.
    #[serde(skip)]
    pub names: BTreeMap<String, usize>,
}

fn ask(index: usize, client: &NodeClient, context: &str) -> NodeSync {
    let (sync, error) = match client.sync_status(context) {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e.to_string())),
    };
    NodeSync {
        index,
        url: client.url().to_owned(),
        sync,
        error,
    }
}

/// Asks the dev network's nodes (or only `only`) about `context` (default:
/// the network's).
pub fn dev(
    dev_dir: &Path,
    only: Option<usize>,
    context: Option<String>,
) -> Result<Report, StatusError> {
    let net = DevNetwork::load(dev_dir)?;
    if let Some(i) = only
        && net.node(i).is_none()
    {
        return Err(StatusError::NoSuchNode(i));
    }
    let context = context.unwrap_or_else(|| net.context.clone());
    let nodes = net
        .nodes
        .iter()
        .filter(|n| only.is_none_or(|o| o == n.index))
        .map(|n| {
            ask(
                n.index,
                &NodeClient::new(&n.rpc_url, Some(&n.admin_token)),
                &context,
            )
        })
        .collect();
    let names = net
        .nodes
        .iter()
        .map(|n| (n.peer_id.clone(), n.index))
        .collect();
    Ok(Report {
        context,
        nodes,
        names,
    })
}

/// Asks one node at `url` (as node 1).
pub fn one(url: &str, token: Option<&str>, context: &str) -> Report {
    Report {
        context: context.to_owned(),
        nodes: vec![ask(1, &NodeClient::new(url, token), context)],
        names: BTreeMap::new(),
    }
}

/// "1.2s" from `then` to `now` (ms since the epoch).
fn ago(then: u64, now: u64) -> String {
    format!("{:.1}s", now.saturating_sub(then) as f64 / 1000.0)
}

/// A state as a person reads it: "in sync", "behind 12 since 3.2s".
pub fn state_text(
    state: SyncState,
    behind: u64,
    ahead: u64,
    since: Option<u64>,
    now: u64,
) -> String {
    let since = since
        .map(|s| format!(" since {}", ago(s, now)))
        .unwrap_or_default();
    match state {
        SyncState::InSync => "in sync".into(),
        SyncState::Behind => format!("behind {behind}{since}"),
        SyncState::Ahead => format!("ahead {ahead}"),
        SyncState::Diverged => format!("diverged (behind {behind}, ahead {ahead}){since}"),
        SyncState::Forked => format!("forked{since}"),
        SyncState::Unreachable => format!("unreachable{since}"),
        SyncState::Alone => "alone".into(),
        SyncState::Unknown => "unknown".into(),
    }
}

fn peer_row(p: &PeerSync, names: &BTreeMap<String, usize>, now: u64) -> String {
    let who = match names.get(&p.peer_id) {
        Some(i) => format!("node {i}"),
        None => format!("{:.12}…", p.peer_id),
    };
    let since = p.since_ms.or(p.unreachable_since_ms);
    let mut row = format!(
        "      ↳ {who:<8} {:<28} last {:<8} sent {} deltas, received {}",
        state_text(p.state, p.behind, p.ahead, since, now),
        p.last_exchange_ms
            .map_or("-".into(), |t| format!("{} ago", ago(t, now))),
        p.sent.deltas,
        p.received.deltas
    );
    if let Some(l) = &p.link {
        row += &format!("; link +{} ms, {}% loss", l.delay_ms, l.loss_percent);
    }
    row
}

/// The report as a table, a row per node; `verbose` adds a row per peer.
pub fn table(report: &Report, verbose: bool, now: u64) -> String {
    let mut t = format!("context {}\n", report.context);
    t += &format!(
        "{:<5} {:<5} {:<6} {:<7} {:<13} {:<28} {}\n",
        "node", "up", "peers", "deltas", "digest", "state", "last exchange"
    );
    for n in &report.nodes {
        let Some(s) = &n.sync else {
            let why = n.error.as_deref().unwrap_or("no answer");
            t += &format!("{:<5} {:<5} {why}\n", n.index, "down");
            continue;
        };
        let m = &s.summary;
        t += &format!(
            "{:<5} {:<5} {:<6} {:<7} {:<13} {:<28} {}\n",
            n.index,
            "up",
            format!("{}/{}", m.reachable, m.peers),
            s.deltas,
            format!("{:.12}", s.digest),
            state_text(m.state, m.behind, m.ahead, m.behind_since_ms, now),
            m.last_exchange_ms
                .map_or("-".into(), |l| format!("{} ago", ago(l, now)))
        );
        if verbose {
            for p in s.peers.iter().flatten() {
                t += &peer_row(p, &report.names, now);
                t.push('\n');
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_like_sentences() {
        let now = 10_000;
        assert_eq!(state_text(SyncState::InSync, 0, 0, None, now), "in sync");
        assert_eq!(
            state_text(SyncState::Behind, 12, 0, Some(6_800), now),
            "behind 12 since 3.2s"
        );
        assert_eq!(
            state_text(SyncState::Unreachable, 0, 0, Some(9_000), now),
            "unreachable since 1.0s"
        );
        assert_eq!(state_text(SyncState::Ahead, 0, 3, None, now), "ahead 3");
    }
}
