//! Waiting until nodes agree, and saying what differs when they do not.
//!
//! Converged means: every node answers, has the same heads digest, no
//! delta waiting for parents, is not joining, and exports the same state.
//! Observation only: the nodes' `GET /admin/contexts/{id}/sync` and
//! `/state`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mero_api::SyncStatus;
use mero_client::NodeClient;
use serde_json::Value;

use crate::diff::{AuthorDiff, PathDiff, author_diffs, state_paths};

/// How often the nodes are asked.
const POLL: Duration = Duration::from_millis(25);
/// Most differing state paths a report lists.
pub const MAX_PATHS: usize = 20;

/// Every node agrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converged {
    /// The common heads digest.
    pub digest: String,
    /// Deltas applied (the same on every node).
    pub deltas: u64,
    /// From the last heal to the last node's last heads change (the nodes'
    /// own clocks), when the network was healed.
    pub since_heal: Option<Duration>,
}

/// One node, as it stood when the wait gave up.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeReport {
    /// 1-based node number.
    pub index: usize,
    /// Its API URL.
    pub url: String,
    /// Its sync status, or why it could not be read.
    pub sync: Result<SyncStatus, String>,
}

/// The nodes did not agree within the timeout: what each one has.
#[derive(Debug, Clone, PartialEq)]
pub struct NotConverged {
    /// How long the wait took.
    pub waited: Duration,
    /// Per node: deltas, pending, rejected, joining, digest.
    pub nodes: Vec<NodeReport>,
    /// Authors whose applied seq differs.
    pub authors: Vec<AuthorDiff>,
    /// State paths that differ (at most [`MAX_PATHS`]).
    pub paths: Vec<PathDiff>,
    /// How many state paths differ in all.
    pub paths_total: usize,
    /// Nodes whose state could not be read, and why.
    pub state_errors: Vec<(usize, String)>,
}

impl std::error::Error for NotConverged {}

impl fmt::Display for NotConverged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the nodes did not converge within {:?}:", self.waited)?;
        for n in &self.nodes {
            match &n.sync {
                Ok(s) => writeln!(
                    f,
                    "  node{} ({}): deltas {}, pending {}, joining {}, digest {:.12}, heads {}, rejected {:?}",
                    n.index,
                    n.url,
                    s.deltas,
                    s.pending,
                    s.joining,
                    s.digest,
                    s.heads.len(),
                    s.rejected
                )?,
                Err(e) => writeln!(f, "  node{} ({}): {e}", n.index, n.url)?,
            }
        }
        if !self.authors.is_empty() {
            writeln!(f, "applied deltas per author that differ:")?;
            for a in &self.authors {
                writeln!(f, "  {a}")?;
            }
        }
        if self.paths_total > 0 {
            writeln!(f, "state paths that differ ({} in all):", self.paths_total)?;
            for p in &self.paths {
                writeln!(f, "  {p}")?;
            }
            if self.paths_total > self.paths.len() {
                writeln!(f, "  … and {} more", self.paths_total - self.paths.len())?;
            }
        } else if self.authors.is_empty() {
            writeln!(f, "same applied deltas and state; still joining or waiting")?;
        }
        for (i, e) in &self.state_errors {
            writeln!(f, "  node{i}: state unreadable: {e}")?;
        }
        Ok(())
    }
}

/// A node to watch: its number, its API and its member key.
pub struct Watched<'a> {
    /// 1-based node number.
    pub index: usize,
    /// Its API, with the admin token.
    pub client: &'a NodeClient,
    /// Its member key in the context (to name authors).
    pub member: Option<&'a str>,
}

/// Milliseconds since the Unix epoch, as nodes report times.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn agree(syncs: &[Result<SyncStatus, String>]) -> Option<&SyncStatus> {
    let first = syncs.first()?.as_ref().ok()?;
    syncs
        .iter()
        .all(|s| {
            s.as_ref()
                .is_ok_and(|s| s.digest == first.digest && s.pending == 0 && !s.joining)
        })
        .then_some(first)
}

/// Polls `nodes` until they converge on `context` or `timeout` passes;
/// `healed_at_ms` (ms since the epoch) gives [`Converged::since_heal`].
pub fn wait(
    nodes: &[Watched<'_>],
    context: &str,
    timeout: Duration,
    healed_at_ms: Option<u64>,
) -> Result<Converged, Box<NotConverged>> {
    let start = Instant::now();
    loop {
        let syncs: Vec<Result<SyncStatus, String>> = nodes
            .iter()
            .map(|n| n.client.sync_status(context).map_err(|e| e.to_string()))
            .collect();
        if let Some(first) = agree(&syncs) {
            let states = states(nodes, context);
            let same = states
                .iter()
                .all(|s| s.is_ok() && s.as_ref().ok() == states[0].as_ref().ok());
            if same {
                let changed = syncs
                    .iter()
                    .flatten()
                    .map(|s| s.heads_changed_at_ms)
                    .max()
                    .unwrap_or(0);
                return Ok(Converged {
                    digest: first.digest.clone(),
                    deltas: first.deltas,
                    since_heal: healed_at_ms
                        .map(|h| Duration::from_millis(changed.saturating_sub(h))),
                });
            }
            // Same heads and different state is an engine bug: waiting
            // longer will not change it.
            if states.iter().all(Result::is_ok) {
                return Err(Box::new(report(nodes, syncs, states, start.elapsed())));
            }
        }
        if start.elapsed() >= timeout {
            let states = states(nodes, context);
            return Err(Box::new(report(nodes, syncs, states, start.elapsed())));
        }
        std::thread::sleep(POLL.min(timeout.saturating_sub(start.elapsed())));
    }
}

fn states(nodes: &[Watched<'_>], context: &str) -> Vec<Result<Value, String>> {
    nodes
        .iter()
        .map(|n| n.client.state(context).map_err(|e| e.to_string()))
        .collect()
}

fn report(
    nodes: &[Watched<'_>],
    syncs: Vec<Result<SyncStatus, String>>,
    states: Vec<Result<Value, String>>,
    waited: Duration,
) -> NotConverged {
    let owners: BTreeMap<String, usize> = nodes
        .iter()
        .filter_map(|n| n.member.map(|m| (m.to_owned(), n.index)))
        .collect();
    let vectors: Vec<(usize, &BTreeMap<String, u64>)> = nodes
        .iter()
        .zip(&syncs)
        .filter_map(|(n, s)| s.as_ref().ok().map(|s| (n.index, &s.vector)))
        .collect();
    let authors = author_diffs(&vectors, &owners);
    let readable: Vec<(usize, &Value)> = nodes
        .iter()
        .zip(&states)
        .filter_map(|(n, s)| s.as_ref().ok().map(|v| (n.index, v)))
        .collect();
    let (paths, paths_total) = if readable.is_empty() {
        (Vec::new(), 0)
    } else {
        state_paths(&readable, MAX_PATHS)
    };
    let state_errors = nodes
        .iter()
        .zip(&states)
        .filter_map(|(n, s)| s.as_ref().err().map(|e| (n.index, e.clone())))
        .collect();
    NotConverged {
        waited,
        nodes: nodes
            .iter()
            .zip(syncs)
            .map(|(n, sync)| NodeReport {
                index: n.index,
                url: n.client.url().to_owned(),
                sync,
            })
            .collect(),
        authors,
        paths,
        paths_total,
        state_errors,
    }
}
