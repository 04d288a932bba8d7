//! The session's nodes as a fleet: install, join and converge, and the
//! control commands that change it (kill, restart, add-node) or its links
//! (partition, delay, loss, heal), each answered as a [`ControlAnswer`].
//!
//! Faults come from one `mero_testnet::faults::Plan`, put on every running
//! node through its dev-mode `PUT /admin/dev/faults`; a restarted or added
//! node gets the plan too. Observation stays with the nodes' own API; this
//! module never reads node homes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mero_testnet::converge::{self, Watched, now_ms};

use super::control::{
    ControlAnswer, ControlRequest, Converged, FaultsView, NodeView, SessionEvent, SessionView,
};
use super::nodes::{Launch, NodeProcess, stop_all};
use super::session::{CONVERGE_TIMEOUT, STOP_GRACE, Session, io, ws_url};
use super::{DevError, DevEvent, pages};
use crate::build::BuildOutput;
use crate::network::DevNode;

/// "nodes 1, 2" or "node 3".
fn named(nodes: &[usize]) -> String {
    let list: Vec<String> = nodes.iter().map(usize::to_string).collect();
    let noun = if nodes.len() == 1 { "node" } else { "nodes" };
    format!("{noun} {}", list.join(", "))
}

impl Session {
    /// The nodes whose process runs, in index order.
    pub(super) fn alive(&self) -> impl Iterator<Item = &NodeProcess> {
        self.nodes.iter().filter(|n| !self.dead.contains(&n.index))
    }

    /// Node `index`, if it runs.
    pub(super) fn node(&self, index: usize) -> Option<&NodeProcess> {
        self.alive().find(|n| n.index == index)
    }

    /// Running nodes on the side of the first running one (a reload
    /// upgrades through it): the ones a convergence wait can expect.
    pub(super) fn reachable(&self) -> Vec<usize> {
        let first = self.alive().map(|n| n.index).next();
        self.alive()
            .map(|n| n.index)
            .filter(|&i| first.is_some_and(|f| !self.plan.split(f, i)))
            .collect()
    }

    pub(super) fn launch(&self) -> Launch<'_> {
        Launch {
            exe: &self.opts.exe,
            log_filter: &self.log_filter,
            static_dir: self.pages.as_ref().map(|p| p.serve_dir.as_path()),
            cors_origin: self.control.origin(),
            console: &self.console,
        }
    }

    /// Installs the module on every running node at once (or on `only`),
    /// so none has to fetch it.
    pub(super) fn install(&self, built: &BuildOutput, only: Option<usize>) -> Result<(), DevError> {
        let wasm = std::fs::read(&built.wasm).map_err(io(&built.wasm))?;
        let clients: Vec<_> = self
            .alive()
            .filter(|n| only.is_none_or(|o| o == n.index))
            .map(|n| &n.client)
            .collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = clients
                .iter()
                .map(|c| s.spawn(|| c.install_app(&wasm, &mut |_| {})))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("install thread"))
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(())
    }

    /// Nodes `which` join the context by invitations from node `from`, and
    /// finish their join.
    pub(super) fn join(&self, which: &[usize], from: usize) -> Result<(), DevError> {
        let gone = |i: usize| DevError::Node(format!("node {i} is not running"));
        let inviter = self.node(from).ok_or_else(|| gone(from))?;
        for &i in which {
            let invitation = inviter.client.invite(&self.context)?;
            let node = self.node(i).ok_or_else(|| gone(i))?;
            node.client.join(&invitation)?;
            let deadline = Instant::now() + CONVERGE_TIMEOUT;
            while node.client.context(&self.context)?.joining {
                self.check_interrupted()?;
                if Instant::now() > deadline {
                    return Err(DevError::Timeout(format!(
                        "node {i} was still joining after {}s",
                        CONVERGE_TIMEOUT.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        Ok(())
    }

    /// Waits until nodes `among` run `app` in the context and share one
    /// heads digest.
    pub(super) fn converge(&self, app: &str, among: &[usize]) -> Result<(), DevError> {
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            self.check_interrupted()?;
            let mut states = Vec::new();
            for n in self.alive().filter(|n| among.contains(&n.index)) {
                let info = n.client.context(&self.context).ok();
                let sync = n.client.sync_status(&self.context).ok();
                states.push((
                    info.as_ref().is_some_and(|i| i.app == app && !i.joining),
                    sync.map(|s| s.digest),
                ));
            }
            if states.iter().all(|(ready, d)| *ready && *d == states[0].1) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(DevError::Timeout(format!(
                    "the nodes did not agree within {}s (app {app}); their logs are in {}",
                    CONVERGE_TIMEOUT.as_secs(),
                    self.dev_dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Handles one control request; the answer is also printed.
    pub(super) fn command(&mut self, request: ControlRequest) -> ControlAnswer {
        let named_nodes = match &request {
            ControlRequest::Partition { nodes } => nodes.clone(),
            ControlRequest::Kill { node }
            | ControlRequest::Restart { node }
            | ControlRequest::Delay { node, .. }
            | ControlRequest::Loss { node, .. } => vec![*node],
            _ => vec![],
        };
        let bad = named_nodes
            .into_iter()
            .find(|&n| n == 0 || n > self.nodes.len());
        let result = match (bad, request) {
            (Some(n), _) => Err(format!(
                "there is no node {n}: the nodes are 1 to {}",
                self.nodes.len()
            )),
            (None, ControlRequest::Partition { nodes }) => self.partition(&nodes),
            (None, ControlRequest::Heal) => self.heal(),
            (None, ControlRequest::Kill { node }) => self.kill(node),
            (None, ControlRequest::Restart { node }) => self.restart(node),
            (None, ControlRequest::Delay { node, ms }) => self
                .plan
                .delay(node, ms)
                .map_err(|e| e.to_string())
                .and_then(|()| self.faults_changed())
                .map(|()| match ms {
                    0 => format!("node {node}: delay removed"),
                    _ => format!("node {node}: {ms} ms more delay on every link"),
                }),
            (None, ControlRequest::Loss { node, percent }) => self
                .plan
                .loss(node, percent)
                .map_err(|e| e.to_string())
                .and_then(|()| self.faults_changed())
                .map(|()| {
                    if percent == 0.0 {
                        format!("node {node}: loss removed")
                    } else {
                        format!("node {node}: {percent}% of gossip lost on every link")
                    }
                }),
            (None, ControlRequest::AddNode) => self.add_node(),
            (None, ControlRequest::Status) => Ok(self.status_line()),
        };
        let (ok, message) = match result {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        if ok {
            self.console.ok(&message);
        } else {
            self.console.error(&message);
        }
        self.publish_view();
        ControlAnswer {
            ok,
            message,
            nodes: self.views(),
        }
    }

    fn status_line(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| {
                let state = match (self.dead.contains(&n.index), self.killed.contains(&n.index)) {
                    (false, _) => "up",
                    (true, true) => "killed",
                    (true, false) => "exited",
                };
                format!("node {} {state}", n.index)
            })
            .collect();
        let f = FaultsView::of(&self.plan);
        let mut faults = Vec::new();
        if let Some(side) = f.partition.first() {
            faults.push(format!("{} partitioned", named(side)));
        }
        faults.extend(f.delays.iter().map(|(n, ms)| format!("node {n} +{ms} ms")));
        faults.extend(f.losses.iter().map(|(n, p)| format!("node {n} {p}% loss")));
        if faults.is_empty() {
            faults.push("none".into());
        }
        format!("{}; faults: {}", nodes.join(", "), faults.join(", "))
    }

    fn partition(&mut self, side: &[usize]) -> Result<String, String> {
        let others: Vec<usize> = self
            .nodes
            .iter()
            .map(|n| n.index)
            .filter(|i| !side.contains(i))
            .collect();
        if side.is_empty() || others.is_empty() {
            return Err("a partition needs nodes on both sides, e.g. `p 3`".into());
        }
        self.plan.partition(side);
        self.faults_changed()?;
        Ok(format!(
            "{} partitioned from {}",
            named(side),
            named(&others)
        ))
    }

    /// Every node's peer id (killed ones too: they keep it).
    fn peers(&self) -> BTreeMap<usize, String> {
        self.nodes
            .iter()
            .map(|n| (n.index, n.peer_id().to_owned()))
            .collect()
    }

    /// Puts the plan on node `only`, or on every running node.
    fn apply_plan(&self, only: Option<usize>) -> Result<(), String> {
        let peers = self.peers();
        let mut failed = Vec::new();
        for n in self.alive().filter(|n| only.is_none_or(|o| o == n.index)) {
            let faults = self.plan.faults_for(n.index, &peers);
            if let Err(e) = n.client.set_faults(&faults) {
                failed.push(format!("node {}: {e}", n.index));
            }
        }
        match failed.is_empty() {
            true => Ok(()),
            false => Err(format!("faults not applied on {}", failed.join("; "))),
        }
    }

    fn faults_changed(&mut self) -> Result<(), String> {
        let applied = self.apply_plan(None);
        self.control.publish(SessionEvent::Faults {
            faults: FaultsView::of(&self.plan),
        });
        applied
    }

    /// Clears every fault and starts waiting (in a thread) for the nodes
    /// to agree; [`Self::converged`] reports the result.
    fn heal(&mut self) -> Result<String, String> {
        self.plan.heal();
        let at = now_ms();
        self.healed_at_ms = Some(at);
        let failed: Vec<String> = self
            .alive()
            .filter_map(|n| {
                n.client
                    .heal()
                    .err()
                    .map(|e| format!("node {}: {e}", n.index))
            })
            .collect();
        self.control.publish(SessionEvent::Healed { at_ms: at });
        self.control.publish(SessionEvent::Faults {
            faults: FaultsView::default(),
        });
        let members = self.members();
        let watched: Vec<_> = self
            .alive()
            .map(|n| (n.index, n.client.clone(), members.get(&n.index).cloned()))
            .collect();
        let (tx, context) = (self.tx.clone(), self.context.clone());
        std::thread::spawn(move || {
            let nodes: Vec<Watched<'_>> = watched
                .iter()
                .map(|(index, client, member)| Watched {
                    index: *index,
                    client,
                    member: member.as_deref(),
                })
                .collect();
            let outcome = converge::wait(&nodes, &context, CONVERGE_TIMEOUT, Some(at))
                .map(|c| at + c.since_heal.map_or(0, |d| d.as_millis() as u64))
                .map_err(|e| e.to_string());
            let _ = tx.send(DevEvent::Converged {
                healed_at_ms: at,
                outcome,
            });
        });
        if !failed.is_empty() {
            return Err(format!("heal failed on {}", failed.join("; ")));
        }
        Ok("healed; waiting for the nodes to converge".into())
    }

    /// The wait after the heal at `healed_at_ms` ended.
    pub(super) fn converged(&mut self, healed_at_ms: u64, outcome: Result<u64, String>) {
        // A later heal (or fault) makes this one's result moot.
        if self.healed_at_ms != Some(healed_at_ms) {
            return;
        }
        match outcome {
            Ok(at) => {
                let c = Converged {
                    healed_at_ms,
                    converged_at_ms: at.max(healed_at_ms),
                    took_ms: at.saturating_sub(healed_at_ms),
                };
                self.console
                    .ok(&format!("converged {} ms after the heal", c.took_ms));
                self.last_converged = Some(c);
                self.control.publish(SessionEvent::Converged(c));
                self.publish_view();
            }
            Err(report) => self.console.error(&format!("after the heal: {report}")),
        }
    }

    /// Member keys by node, as network.json has them.
    fn members(&self) -> BTreeMap<usize, String> {
        self.network
            .iter()
            .flat_map(|net| &net.nodes)
            .map(|n| (n.index, n.member_key.clone()))
            .collect()
    }

    fn kill(&mut self, index: usize) -> Result<String, String> {
        if self.dead.contains(&index) {
            return Err(format!(
                "node {index} is not running; `r {index}` starts it"
            ));
        }
        let n = &mut self.nodes[index - 1];
        n.kill();
        self.dead.push(index);
        self.killed.push(index);
        self.control.publish(SessionEvent::NodeDown {
            index,
            why: "killed".into(),
        });
        Ok(format!(
            "node {index} killed (SIGKILL); `r {index}` restarts it"
        ))
    }

    /// The addresses node `index` starts with: only peers on its side, so
    /// it never reaches across a partition before its own faults are in
    /// place.
    fn bootstrap_for(&self, index: usize) -> Vec<String> {
        self.alive()
            .filter(|n| !self.plan.split(index, n.index))
            .map(|n| n.p2p.clone())
            .collect()
    }

    fn restart(&mut self, index: usize) -> Result<String, String> {
        let ports = self.nodes[index - 1].ports();
        if !self.dead.contains(&index) {
            stop_all(std::slice::from_mut(&mut self.nodes[index - 1]), STOP_GRACE);
            self.dead.push(index);
        }
        let home = self.nodes[index - 1].home.clone();
        let node = {
            let bootstrap = self.bootstrap_for(index);
            let launch = self.launch();
            NodeProcess::start(&launch, index, &home, &bootstrap, Some(ports))
                .or_else(|_| NodeProcess::start(&launch, index, &home, &bootstrap, None))
                .map_err(|e| e.to_string())?
        };
        let same = node.ports() == ports;
        self.nodes[index - 1] = node;
        self.dead.retain(|&i| i != index);
        self.killed.retain(|&i| i != index);
        self.apply_plan(Some(index))?;
        self.node_up(index).map_err(|e| e.to_string())?;
        let url = &self.nodes[index - 1].url;
        let ports = if same {
            "same ports"
        } else {
            "new ports: the old ones were taken"
        };
        Ok(format!("node {index} restarted at {url} ({ports})"))
    }

    fn add_node(&mut self) -> Result<String, String> {
        let index = self.nodes.len() + 1;
        let from = self
            .alive()
            .map(|n| n.index)
            .next()
            .ok_or("no node runs to invite a new one; `r 1` restarts node 1")?;
        if self.app.is_none() {
            return Err("the app is not built yet".into());
        }
        self.plan.join_side_of(index, from);
        let home = self.dev_dir.join(format!("node{index}"));
        if home.exists() {
            // Left by an earlier session's add-node: a new node starts empty.
            std::fs::remove_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
        }
        let node = {
            let bootstrap = self.bootstrap_for(index);
            NodeProcess::start(&self.launch(), index, &home, &bootstrap, None)
                .map_err(|e| e.to_string())?
        };
        self.nodes.push(node);
        let built = self.app.as_ref().expect("checked above");
        let joined = self
            .install(built, Some(index))
            .map_err(|e| e.to_string())
            .and_then(|()| self.apply_plan(None))
            .and_then(|()| self.join(&[index], from).map_err(|e| e.to_string()))
            .and_then(|()| self.node_up(index).map_err(|e| e.to_string()));
        if let Err(e) = joined {
            // Keep numbering dense: the next add-node reuses the number.
            let mut n = self.nodes.pop().expect("just pushed");
            n.kill();
            return Err(format!("adding node {index} failed: {e}"));
        }
        let url = &self.nodes[index - 1].url;
        Ok(format!(
            "node {index} added at {url}, joined through node {from}"
        ))
    }

    /// After a restart or an add: events, a client token, network.json,
    /// and the dashboard learn of node `index`.
    fn node_up(&mut self, index: usize) -> Result<(), DevError> {
        let n = &self.nodes[index - 1];
        let url = ws_url(&n.url, &self.context, &n.token);
        super::console::subscribe_events(index, url, &self.console);
        if let Ok(t) = pages::client_token(&n.url, &n.token, &self.context) {
            self.client_tokens.insert(index, t);
        }
        let member = match self.members().remove(&index) {
            Some(m) => m,
            None => n.client.context(&self.context)?.member.0,
        };
        let entry = self.dev_node(n, member)?;
        if let Some(net) = &mut self.network {
            net.nodes.retain(|d| d.index != index);
            net.nodes.push(entry);
            net.nodes.sort_by_key(|d| d.index);
        }
        self.save()?;
        if let Some(v) = self.views().into_iter().find(|v| v.index == index) {
            self.control.publish(SessionEvent::NodeUp { node: v });
        }
        Ok(())
    }

    /// network.json's entry of node `n`.
    pub(super) fn dev_node(
        &self,
        n: &NodeProcess,
        member_key: String,
    ) -> Result<DevNode, DevError> {
        Ok(DevNode {
            index: n.index,
            rpc_url: n.url.clone(),
            ws_url: ws_url(&n.url, &self.context, &n.token),
            admin_token: n.token.clone(),
            home: n.home.clone(),
            peer_id: n.peer_id().to_owned(),
            p2p: n.p2p.clone(),
            member_key,
            pid: n.pid(),
            page_url: match &self.pages {
                Some(_) => {
                    let token = pages::client_token(&n.url, &n.token, &self.context)?;
                    Some(pages::page_url(&n.url, &self.context, &token, n.index))
                }
                None => None,
            },
        })
    }

    /// Every node, as the dashboard shows it.
    pub(super) fn views(&self) -> Vec<NodeView> {
        self.nodes
            .iter()
            .map(|n| NodeView {
                index: n.index,
                url: n.url.clone(),
                admin_token: n.token.clone(),
                client_token: self
                    .client_tokens
                    .get(&n.index)
                    .cloned()
                    .unwrap_or_default(),
                peer_id: n.peer_id().to_owned(),
                alive: !self.dead.contains(&n.index),
            })
            .collect()
    }

    /// Refreshes what `/session` answers.
    pub(super) fn publish_view(&self) {
        self.control.set_view(SessionView {
            context: self.context.clone(),
            app: self
                .app
                .as_ref()
                .map(|a| a.hash.clone())
                .unwrap_or_default(),
            started_at_ms: self.started_at_ms,
            nodes: self.views(),
            faults: FaultsView::of(&self.plan),
            reloads: self.reloads.clone(),
            last_converged: self.last_converged,
        });
    }
}
