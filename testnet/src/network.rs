//! A running network: its nodes, the shared context, faults, kill,
//! restart and add-node.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mero_api::SyncStatus;
use mero_client::{CallKind, ClientError, NodeClient};
use serde_json::Value;

use crate::build::Built;
use crate::converge::{self, Converged, NotConverged, Watched};
use crate::faults::Plan;
use crate::locate::Binaries;
use crate::process::{self, NodeProcess, OnLine, Spawn};
use crate::{App, TestnetError};

/// How long a network's setup, a join or a restart may take to settle.
const SETTLE: Duration = Duration::from_secs(60);
/// How long stopping nodes may take before they are killed.
const GRACE: Duration = Duration::from_secs(5);

/// One node of a [`Testnet`].
pub struct Node {
    index: usize,
    home: PathBuf,
    client: NodeClient,
    token: String,
    peer_id: String,
    member: String,
    context: String,
    /// The libp2p address it last listened on (kept while it is killed).
    p2p: String,
    process: Option<NodeProcess>,
}

impl Node {
    /// Calls a mutating method of the app on this node; returns its output.
    pub fn execute(&self, method: &str, args: Value) -> Result<Value, ClientError> {
        self.client
            .call(CallKind::Execute, &self.context, method, &args)
    }

    /// Calls a view of the app on this node; returns its output.
    pub fn query(&self, method: &str, args: Value) -> Result<Value, ClientError> {
        self.client
            .call(CallKind::Query, &self.context, method, &args)
    }

    /// The context's state on this node, as `GET /admin/contexts/{id}/state`
    /// exports it.
    pub fn state(&self) -> Result<Value, ClientError> {
        self.client.state(&self.context)
    }

    /// The context's sync status on this node (with per-peer rows).
    pub fn sync(&self) -> Result<SyncStatus, ClientError> {
        self.client.sync_status(&self.context)
    }

    /// Its 1-based number.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its HTTP API base URL (it may change when the node restarts).
    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// Its admin token.
    pub fn admin_token(&self) -> &str {
        &self.token
    }

    /// Its libp2p peer id (kept across restarts).
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// Its member key in the context.
    pub fn member(&self) -> &str {
        &self.member
    }

    /// Its API, with the admin token.
    pub fn client(&self) -> &NodeClient {
        &self.client
    }

    /// Its home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Whether it runs (not killed).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(NodeProcess::pid)
    }

    /// The last lines it printed (up to 200).
    pub fn recent_output(&self) -> String {
        self.process
            .as_ref()
            .map(NodeProcess::recent_output)
            .unwrap_or_default()
    }
}

/// Real nodes sharing one context of the app; stopped and removed when
/// dropped. Nodes are numbered from 1.
pub struct Testnet {
    bins: Binaries,
    app: Arc<Built>,
    sync_interval_ms: u64,
    log_filter: String,
    context: String,
    nodes: Vec<Node>,
    plan: Plan,
    healed_at_ms: Option<u64>,
    // Last: removed after `Drop::drop` stopped the nodes.
    dir: tempfile::TempDir,
}

fn api(index: usize) -> impl FnOnce(ClientError) -> TestnetError {
    move |source| TestnetError::Api { index, source }
}

impl Testnet {
    pub(crate) fn start(app: App, n: usize) -> Result<Self, TestnetError> {
        if n == 0 {
            return Err(TestnetError::Node(
                "a network needs at least one node".into(),
            ));
        }
        let bins = crate::locate::locate_here()?;
        let built = crate::build::build(&bins.cargo_mero, &app.dir, &app.features)?;
        let dir = tempfile::Builder::new()
            .prefix("mero-testnet-")
            .tempdir()
            .map_err(|source| TestnetError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut net = Testnet {
            bins,
            app: built,
            sync_interval_ms: app.sync_interval_ms,
            log_filter: std::env::var("MERO_TESTNET_LOG").unwrap_or_else(|_| "warn".into()),
            context: String::new(),
            nodes: Vec::new(),
            plan: Plan::new(),
            healed_at_ms: None,
            dir,
        };
        for i in 1..=n {
            let node = net.spawn(i, None)?;
            net.nodes.push(node);
        }
        let first = &net.nodes[0];
        let info = first.client.create_context(&net.app.hash).map_err(api(1))?;
        net.context = info.id.to_string();
        net.nodes[0].member = info.member.to_string();
        for i in 2..=n {
            net.join(i, 1)?;
        }
        for node in &mut net.nodes {
            node.context = net.context.clone();
        }
        net.wait_converged(SETTLE)
            .map_err(TestnetError::NotConverged)?;
        Ok(net)
    }

    /// Starts node `index`: on a new home with the app installed, or
    /// with `restart` = (token, ports) on its existing one.
    fn spawn(
        &self,
        index: usize,
        restart: Option<(String, u16, u16)>,
    ) -> Result<Node, TestnetError> {
        let home = process::home_of(self.dir.path(), index);
        let cmd = &self.bins.node;
        let fresh = restart.is_none();
        let (token, ports) = match restart {
            Some((token, http, p2p)) => (token, Some((http, p2p))),
            None => (process::init_home(cmd, &home, self.sync_interval_ms)?, None),
        };
        // Only peers on this node's side: a node must not reach across a
        // partition before its own faults are in place.
        let bootstrap: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.index != index && !self.plan.split(index, n.index))
            .filter_map(|n| n.process.as_ref().map(|p| p.p2p.clone()))
            .collect();
        // Through the test harness: shown only for a failed test.
        let on_line: OnLine = Arc::new(|i: usize, line: &str| eprintln!("[node{i}] {line}"));
        let start = |(http_port, p2p_port): (u16, u16)| {
            NodeProcess::start(Spawn {
                command: cmd,
                index,
                home: &home,
                http_port,
                p2p_port,
                bootstrap: &bootstrap,
                log_filter: &self.log_filter,
                on_line: Some(on_line.clone()),
            })
        };
        let proc = match ports {
            // The old ports may be taken by now: then any.
            Some(p) => start(p).or_else(|_| start((0, 0)))?,
            None => start((0, 0))?,
        };
        let client = NodeClient::new(&proc.url, Some(&token));
        let mut node = Node {
            index,
            home,
            client,
            token,
            peer_id: String::new(),
            member: String::new(),
            context: self.context.clone(),
            p2p: proc.p2p.clone(),
            process: Some(proc),
        };
        self.check(&mut node)?;
        if fresh {
            node.client
                .install_app(&self.app.wasm, &mut |_| {})
                .map_err(api(index))?;
        }
        Ok(node)
    }

    /// Version, dev mode and peer id of a started node.
    fn check(&self, node: &mut Node) -> Result<(), TestnetError> {
        let index = node.index;
        let health = node.client.health().map_err(api(index))?;
        let expected = env!("CARGO_PKG_VERSION");
        if health.version != expected {
            return Err(TestnetError::VersionMismatch {
                found: health.version,
                expected: expected.into(),
            });
        }
        let status = node.client.node_status().map_err(api(index))?;
        if !status.dev_mode {
            return Err(TestnetError::NoDevMode(format!(
                "node {index} ({}) did not start in dev mode",
                self.bins.node.program.display()
            )));
        }
        node.peer_id = status.peer_id.ok_or_else(|| {
            TestnetError::Node(format!("node {index} started without networking"))
        })?;
        Ok(())
    }

    /// Node `index` joins the context by an invitation from node `from`
    /// and waits until it has caught up with the join.
    fn join(&mut self, index: usize, from: usize) -> Result<(), TestnetError> {
        let invitation = self
            .running(from)?
            .client
            .invite(&self.context)
            .map_err(api(from))?;
        let node = self.running(index)?;
        let info = node.client.join(&invitation).map_err(api(index))?;
        let member = info.member.to_string();
        let deadline = Instant::now() + SETTLE;
        loop {
            let ctx = node.client.context(&self.context).map_err(api(index))?;
            if !ctx.joining {
                break;
            }
            if Instant::now() >= deadline {
                return Err(TestnetError::Node(format!(
                    "node {index} was still joining after {SETTLE:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.nodes[index - 1].member = member;
        Ok(())
    }

    fn slot(&self, index: usize) -> Result<&Node, TestnetError> {
        index
            .checked_sub(1)
            .and_then(|i| self.nodes.get(i))
            .ok_or(TestnetError::NoSuchNode(index))
    }

    fn running(&self, index: usize) -> Result<&Node, TestnetError> {
        let node = self.slot(index)?;
        if node.process.is_none() {
            return Err(TestnetError::NotRunning(index));
        }
        Ok(node)
    }

    /// Node `i` (1-based). Panics, naming the network's size, if there is
    /// no such node; [`Testnet::get`] does not.
    pub fn node(&self, i: usize) -> &Node {
        self.get(i).unwrap_or_else(|| {
            panic!(
                "no node {i}: this network has nodes 1 to {}",
                self.nodes.len()
            )
        })
    }

    /// Node `i` (1-based), if there is one.
    pub fn get(&self, i: usize) -> Option<&Node> {
        self.slot(i).ok()
    }

    /// Every node, killed ones included.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// How many nodes the network has (killed ones included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the network has no node (never, once started).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The shared context's id.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The app's content hash.
    pub fn app_hash(&self) -> &str {
        &self.app.hash
    }

    /// The faults in effect.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Splits the network: the nodes of `side` against all others, both
    /// ways (replacing an earlier partition; delays and loss stay).
    pub fn partition(&mut self, side: &[usize]) -> Result<(), TestnetError> {
        for &i in side {
            self.slot(i)?;
        }
        self.plan.partition(side);
        self.apply(None)
    }

    /// Every link of node `i` gets `delay` more one way (see
    /// [`crate::faults`]; 0 removes it).
    pub fn delay(&mut self, i: usize, delay: Duration) -> Result<(), TestnetError> {
        self.slot(i)?;
        let ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        self.plan.delay(i, ms)?;
        self.apply(None)
    }

    /// Every link of node `i` loses `percent` % of its gossip (catch-up
    /// repairs it; 0 removes it).
    pub fn loss(&mut self, i: usize, percent: f64) -> Result<(), TestnetError> {
        self.slot(i)?;
        self.plan.loss(i, percent)?;
        self.apply(None)
    }

    /// Clears every fault on every running node; they redial at once.
    pub fn heal(&mut self) -> Result<(), TestnetError> {
        self.plan.heal();
        self.healed_at_ms = Some(converge::now_ms());
        for n in self.nodes.iter().filter(|n| n.process.is_some()) {
            n.client.heal().map_err(api(n.index))?;
        }
        Ok(())
    }

    /// Puts the plan on node `only`, or on every running node.
    fn apply(&self, only: Option<usize>) -> Result<(), TestnetError> {
        let peers: BTreeMap<usize, String> = self
            .nodes
            .iter()
            .map(|n| (n.index, n.peer_id.clone()))
            .collect();
        let targets = self
            .nodes
            .iter()
            .filter(|n| n.process.is_some() && only.is_none_or(|o| o == n.index));
        for n in targets {
            let faults = self.plan.faults_for(n.index, &peers);
            n.client.set_faults(&faults).map_err(api(n.index))?;
        }
        Ok(())
    }

    /// SIGKILLs node `i` (no clean shutdown); its home stays for
    /// [`Testnet::restart`].
    pub fn kill(&mut self, i: usize) -> Result<(), TestnetError> {
        self.running(i)?;
        if let Some(mut p) = self.nodes[i - 1].process.take() {
            p.kill();
        }
        Ok(())
    }

    /// Starts node `i` again from its home (same identity and data; the
    /// same ports when they are still free), stopping it first (SIGTERM)
    /// if it runs, and puts the current faults on it.
    pub fn restart(&mut self, i: usize) -> Result<(), TestnetError> {
        let old = self.slot(i)?;
        let again = (
            old.token.clone(),
            process::port_of(old.client.url()),
            process::port_of(&old.p2p),
        );
        if let Some(mut p) = self.nodes[i - 1].process.take() {
            process::stop_all(&mut [&mut p], GRACE);
        }
        let mut node = self.spawn(i, Some(again))?;
        node.member = std::mem::take(&mut self.nodes[i - 1].member);
        self.nodes[i - 1] = node;
        if !self.plan.is_empty() {
            self.apply(Some(i))?;
        }
        Ok(())
    }

    /// Starts one more node, joins it to the context by an invitation from
    /// the first running node (on whose side of a partition it goes), and
    /// waits until it finished joining. Returns its number.
    pub fn add_node(&mut self) -> Result<usize, TestnetError> {
        let index = self.nodes.len() + 1;
        let from = self
            .nodes
            .iter()
            .find(|n| n.process.is_some())
            .map(|n| n.index)
            .ok_or_else(|| TestnetError::Node("no node runs to invite a new one".into()))?;
        self.plan.join_side_of(index, from);
        let node = self.spawn(index, None)?;
        self.nodes.push(node);
        if !self.plan.is_empty() {
            self.apply(None)?;
        }
        self.join(index, from)?;
        Ok(index)
    }

    /// Waits until every running node has the same heads, nothing pending,
    /// is not joining and exports the same state. On timeout the error
    /// lists, per node, its sync status, the authors whose applied deltas
    /// differ and the state paths that differ.
    pub fn wait_converged(&self, timeout: Duration) -> Result<Converged, Box<NotConverged>> {
        let watched: Vec<Watched<'_>> = self
            .nodes
            .iter()
            .filter(|n| n.process.is_some())
            .map(|n| Watched {
                index: n.index,
                client: &n.client,
                member: (!n.member.is_empty()).then_some(n.member.as_str()),
            })
            .collect();
        converge::wait(&watched, &self.context, timeout, self.healed_at_ms)
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        let mut procs: Vec<&mut NodeProcess> = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.process.as_mut())
            .collect();
        process::stop_all(&mut procs, GRACE);
    }
}
