//! One dev session: the network's lifecycle and its event loop (reloads,
//! control commands, signals). The fleet and its faults are in
//! [`super::fleet`], the app reload in [`super::upgrade`].

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use mero_testnet::converge::now_ms;
use mero_testnet::faults::Plan;

use super::console::Console;
use super::control::{ControlAnswer, ControlServer, Converged, ReloadRecord};
use super::nodes::{NodeProcess, stop_all};
use super::pages::{self, Pages};
use super::{DevError, DevEvent, DevOptions, keys, watch};
use crate::build::web::Frontend;
use crate::build::{self, BuildError, BuildOutput, Project};
use crate::network::{self, ControlInfo, DevNetwork};

/// How long nodes get to agree after a change.
pub(super) const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long nodes get to stop before they are killed.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(10);

pub(super) struct Session {
    pub(super) opts: DevOptions,
    pub(super) console: Console,
    pub(super) project: Project,
    pub(super) dev_dir: PathBuf,
    rx: Receiver<DevEvent>,
    /// For threads that report back (the wait after a heal).
    pub(super) tx: mpsc::Sender<DevEvent>,
    interrupted: Arc<AtomicBool>,
    /// Held for the session: one `dev` per project network.
    _lock: std::fs::File,
    pub(super) nodes: Vec<NodeProcess>,
    /// Indexes of nodes not running: exited on their own, or killed.
    pub(super) dead: Vec<usize>,
    /// Of those, the ones killed on purpose (they do not end the session).
    pub(super) killed: Vec<usize>,
    pub(super) context: String,
    pub(super) app: Option<BuildOutput>,
    /// What `network.json` holds; written at start and after each change.
    pub(super) network: Option<DevNetwork>,
    /// Events that arrived while another was being handled.
    pending: VecDeque<DevEvent>,
    /// The front end, when the app has one (`web/`).
    pub(super) pages: Option<Pages>,
    /// The control server (dashboard, `cargo mero net`).
    pub(super) control: ControlServer,
    /// The faults every running node has.
    pub(super) plan: Plan,
    /// The last heal (ms since the epoch).
    pub(super) healed_at_ms: Option<u64>,
    pub(super) last_converged: Option<Converged>,
    pub(super) reloads: Vec<ReloadRecord>,
    pub(super) started_at_ms: u64,
    /// A client token per node, for the dashboard's event streams.
    pub(super) client_tokens: BTreeMap<usize, String>,
    /// The nodes' `RUST_LOG`.
    pub(super) log_filter: String,
    /// Whether terminal lines are read.
    keys: bool,
}

pub(super) fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevError + '_ {
    move |source| DevError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Takes `dev.lock` so two sessions never share node homes.
fn lock(dev_dir: &Path) -> Result<std::fs::File, DevError> {
    use std::io::{Read, Seek, Write};
    let path = dev_dir.join("dev.lock");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; released when it closes,
        // including when this process dies.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(DevError::Busy(format!(
                "another `cargo mero dev` (pid {}) is running this project's network; stop it first",
                pid.trim()
            )));
        }
    }
    file.set_len(0).map_err(io(&path))?;
    file.rewind().map_err(io(&path))?;
    write!(file, "{}", std::process::id()).map_err(io(&path))?;
    Ok(file)
}

impl Session {
    pub(super) fn open(
        opts: DevOptions,
        rx: Receiver<DevEvent>,
        tx: mpsc::Sender<DevEvent>,
        interrupted: Arc<AtomicBool>,
    ) -> Result<Self, DevError> {
        let console = Console::new(opts.color, opts.verbosity);
        let project = build::project(&opts.build)?;
        let dev_dir = network::dev_dir(&project);
        std::fs::create_dir_all(&dev_dir).map_err(io(&dev_dir))?;
        let lock = lock(&dev_dir)?;
        if opts.clean {
            for entry in std::fs::read_dir(&dev_dir).map_err(io(&dev_dir))? {
                let path = entry.map_err(io(&dev_dir))?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.starts_with("node") && path.is_dir() {
                    std::fs::remove_dir_all(&path).map_err(io(&path))?;
                } else if name.starts_with(network::NETWORK_FILE) {
                    std::fs::remove_file(&path).map_err(io(&path))?;
                }
            }
            console.info(&format!(
                "--clean: removed the saved network in {}",
                dev_dir.display()
            ));
        }
        let pages = match Frontend::find(&project.dir) {
            Some(front) => Some(Pages::new(front, &dev_dir)?),
            None => None,
        };
        // Before any node starts: its origin goes into their CORS.
        let control = ControlServer::start(tx.clone())?;
        Ok(Self {
            pages,
            opts,
            console,
            project,
            dev_dir,
            rx,
            tx,
            interrupted,
            _lock: lock,
            nodes: Vec::new(),
            dead: Vec::new(),
            killed: Vec::new(),
            context: String::new(),
            app: None,
            network: None,
            pending: VecDeque::new(),
            control,
            plan: Plan::new(),
            healed_at_ms: None,
            last_converged: None,
            reloads: Vec::new(),
            started_at_ms: now_ms(),
            client_tokens: BTreeMap::new(),
            log_filter: String::new(),
            keys: false,
        })
    }

    pub(super) fn watching(&self) -> bool {
        self.opts.watch
    }

    pub(super) fn watch(
        &self,
        tx: mpsc::Sender<DevEvent>,
    ) -> Result<notify::RecommendedWatcher, DevError> {
        let mut ignored = vec![self.project.target_dir.clone()];
        if let Some(p) = &self.pages {
            ignored.extend(p.frontend.outputs());
        }
        let w = watch::watch(&self.project.sources, ignored, tx)?;
        let shown: Vec<String> = self
            .project
            .sources
            .iter()
            .map(|s| s.display().to_string())
            .collect();
        self.console.info(&format!("watching {}", shown.join(", ")));
        Ok(w)
    }

    pub(super) fn check_interrupted(&self) -> Result<(), DevError> {
        if self.interrupted.load(Ordering::SeqCst) {
            return Err(DevError::Interrupted);
        }
        Ok(())
    }

    /// Builds the app behind a spinner; compiler output is shown only when
    /// the code does not compile.
    pub(super) fn build(&self) -> Result<BuildOutput, BuildError> {
        let mut opts = self.opts.build.clone();
        opts.opt_level = self.opts.release.then_some(2);
        opts.capture = true;
        opts.color = Some(self.console.color());
        let bar = self
            .console
            .spinner(format!("building {}", self.project.package));
        let out = build::build(&opts);
        bar.finish_and_clear();
        if let Err(BuildError::Compile {
            output: Some(o), ..
        }) = &out
        {
            self.console.raw(o);
        }
        out
    }

    /// Builds; when the code does not compile and the session watches,
    /// waits for a fix (or a signal).
    fn first_build(&mut self) -> Result<BuildOutput, DevError> {
        loop {
            match self.build() {
                Ok(out) => return Ok(out),
                Err(BuildError::Compile { .. }) if self.opts.watch => {
                    self.console
                        .error("the app does not compile; fix it and save, or press Ctrl-C");
                }
                Err(e) => return Err(e.into()),
            }
            match self.rx.recv()? {
                DevEvent::Changed(paths, _) => {
                    let (_, other) = watch::settle(&self.rx, paths);
                    if other.iter().any(|e| matches!(e, DevEvent::Signal(_))) {
                        return Err(DevError::Interrupted);
                    }
                }
                DevEvent::Signal(_) => return Err(DevError::Interrupted),
                DevEvent::Control(_, reply) => {
                    let _ = reply.send(ControlAnswer {
                        ok: false,
                        message: "the network is not up yet (the app does not compile)".into(),
                        nodes: Vec::new(),
                    });
                }
                DevEvent::Converged { .. } => {}
            }
        }
    }

    /// Builds, starts the nodes and brings the shared context to the
    /// built code.
    pub(super) fn start(&mut self) -> Result<(), DevError> {
        let built = self.first_build()?;
        let size_kib = built.size_after as f64 / 1024.0;
        self.console.info(&format!(
            "built {} ({size_kib:.1} KiB, {} methods)",
            built.package,
            built.abi.methods.len()
        ));
        let saved = DevNetwork::load(&self.dev_dir)
            .ok()
            .filter(|n| n.package == self.project.package);
        if let Some(p) = &self.pages {
            std::fs::create_dir_all(&p.serve_dir).map_err(io(&p.serve_dir))?;
            if let Some((out, took)) = p.rebuild(&built.package, &built.bindings, &self.console) {
                let what = if out.built { "built" } else { "copied" };
                self.console
                    .info(&format!("front end {what} in {}", secs(took)));
            }
        }
        self.log_filter = std::env::var("MERO_NODE_LOG")
            .unwrap_or_else(|_| self.opts.verbosity.node_filter().to_owned());
        let started = Instant::now();
        for index in 1..=self.opts.nodes {
            self.check_interrupted()?;
            let home = self.dev_dir.join(format!("node{index}"));
            let bootstrap: Vec<String> = self.nodes.iter().map(|n| n.p2p.clone()).collect();
            let node = NodeProcess::start(&self.launch(), index, &home, &bootstrap, None)?;
            self.nodes.push(node);
        }
        self.console.info(&format!(
            "{} nodes up in {}",
            self.nodes.len(),
            secs(started.elapsed())
        ));

        let first = &self.nodes[0].client;
        let resumed = saved.and_then(|s| first.context(&s.context).ok().map(|_| s.context));
        let all: Vec<usize> = self.nodes.iter().map(|n| n.index).collect();
        match resumed {
            Some(ctx) => {
                self.console.info(&format!("resuming context {ctx}"));
                let missing: Vec<usize> = self.nodes[1..]
                    .iter()
                    .filter(|n| n.client.context(&ctx).is_err())
                    .map(|n| n.index)
                    .collect();
                self.context = ctx;
                self.join(&missing, 1)?;
                let first = &self.nodes[0].client;
                let current = first.context(&self.context)?.app.0;
                if current != built.hash {
                    self.install(&built, None)?;
                    first.upgrade(&self.context, &built.hash)?;
                }
            }
            None => {
                self.install(&built, None)?;
                let info = first.create_context(&built.hash)?;
                self.context = info.id.0;
                self.join(&all[1..], 1)?;
            }
        }
        self.converge(&built.hash, &all)?;
        self.app = Some(built);
        self.network = Some(self.describe()?);
        self.save()?;
        for n in &self.nodes {
            // Without one the dashboard only misses the node's events.
            if let Ok(t) = pages::client_token(&n.url, &n.token, &self.context) {
                self.client_tokens.insert(n.index, t);
            }
        }
        self.publish_view();
        if self.opts.keys {
            self.keys = keys::spawn(self.tx.clone(), self.console.clone());
        }
        self.announce();
        for n in &self.nodes {
            let url = ws_url(&n.url, &self.context, &n.token);
            super::console::subscribe_events(n.index, url, &self.console);
        }
        Ok(())
    }

    /// The network as `network.json` describes it; asks each node for its
    /// member key once, at start (it never changes).
    fn describe(&self) -> Result<DevNetwork, DevError> {
        let app = self
            .app
            .as_ref()
            .map(|a| a.hash.clone())
            .unwrap_or_default();
        let mut nodes = Vec::new();
        for n in &self.nodes {
            let info = n.client.context(&self.context)?;
            nodes.push(self.dev_node(n, info.member.0)?);
        }
        if let Some(p) = &self.pages {
            p.reload
                .allow(self.nodes.iter().map(|n| n.url.clone()).collect());
        }
        Ok(DevNetwork {
            version: 1,
            package: self.project.package.clone(),
            pid: std::process::id(),
            context: self.context.clone(),
            app,
            nodes,
            reload_url: self.pages.as_ref().map(|p| p.reload.url()),
            control: Some(ControlInfo {
                url: self.control.origin().to_owned(),
                key: self.control.key().to_owned(),
            }),
        })
    }

    pub(super) fn save(&self) -> Result<(), DevError> {
        let net = self.network.as_ref().expect("saved after start");
        net.save(&self.dev_dir)
            .map_err(io(&self.dev_dir.join(network::NETWORK_FILE)))
    }

    /// Prints where everything is and how to call it.
    fn announce(&self) {
        let net = self.network.as_ref().expect("announced after start");
        let app = self.app.as_ref().expect("announced after a build");
        let mut t = super::console::announcement(
            net,
            app,
            &self.dev_dir.join(network::NETWORK_FILE),
            self.pages.is_some(),
        );
        t += &format!("\n  dashboard: {}\n", self.control.dashboard_url());
        t += "  break it   cargo mero net partition 3 | heal | kill 3 | restart 3 | delay 2 200ms | loss 2 10% | add-node\n";
        if self.keys {
            t += &format!("  {}\n", keys::KEY_HELP);
        }
        self.console.raw(&t);
        let watching = if self.opts.watch {
            "watching for changes; "
        } else {
            ""
        };
        self.console.ok(&format!(
            "ready: {watching}Ctrl-C stops the nodes (state is kept)"
        ));
    }

    /// The event loop: reloads on changes until a signal.
    pub(super) fn serve(&mut self) -> Result<(), DevError> {
        loop {
            let ev = match self.pending.pop_front() {
                Some(ev) => ev,
                None => match self.rx.recv_timeout(Duration::from_millis(500)) {
                    Ok(ev) => ev,
                    Err(RecvTimeoutError::Timeout) => {
                        self.reap()?;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                },
            };
            match ev {
                DevEvent::Signal(_) => return Ok(()),
                DevEvent::Changed(paths, since) => {
                    let (paths, other) = watch::settle(&self.rx, paths);
                    self.pending.extend(other);
                    self.changed(&paths, since)?;
                }
                DevEvent::Control(request, reply) => {
                    let answer = self.command(request);
                    let _ = reply.send(answer);
                }
                DevEvent::Converged {
                    healed_at_ms,
                    outcome,
                } => self.converged(healed_at_ms, outcome),
            }
        }
    }

    /// Reports nodes that exited on their own; ends the session when all
    /// did (a node killed on purpose never ends it).
    fn reap(&mut self) -> Result<(), DevError> {
        let mut down = Vec::new();
        for n in &mut self.nodes {
            if self.dead.contains(&n.index) {
                continue;
            }
            if let Some(status) = n.exited() {
                self.console.error(&format!(
                    "node {} exited ({status}); its log is {}; `r {}` restarts it",
                    n.index,
                    n.home.join("node.log").display(),
                    n.index
                ));
                self.dead.push(n.index);
                down.push((n.index, status));
            }
        }
        if !down.is_empty() {
            for (index, why) in down {
                self.control
                    .publish(super::control::SessionEvent::NodeDown { index, why });
            }
            self.publish_view();
        }
        if self.dead.len() == self.nodes.len() && self.killed.is_empty() {
            return Err(DevError::Node(
                "every node exited; see the logs above".into(),
            ));
        }
        Ok(())
    }

    /// Handles saved files: Rust reloads the app on the nodes; then the
    /// front end is rebuilt (with the new bindings, if the app changed) and
    /// the pages reloaded.
    fn changed(&mut self, paths: &[PathBuf], since: Instant) -> Result<(), DevError> {
        let (web, app): (Vec<PathBuf>, Vec<PathBuf>) = paths.iter().cloned().partition(|p| {
            self.pages
                .as_ref()
                .is_some_and(|pg| p.starts_with(&pg.frontend.dir))
        });
        let reloaded = !app.is_empty() && self.reload(&app, since)?;
        if web.is_empty() && !reloaded {
            return Ok(());
        }
        let (Some(pages), Some(built)) = (&self.pages, &self.app) else {
            return Ok(());
        };
        if !reloaded {
            self.console.info(&format!(
                "{} changed; rebuilding the front end",
                self.shown(&web)
            ));
        }
        if let Some((_, took)) = pages.rebuild(&built.package, &built.bindings, &self.console) {
            let reason = if reloaded { "app" } else { "web" };
            let n = pages.reload.reload(reason);
            self.console.ok(&format!(
                "front end rebuilt in {}{}; {n} open page{} reloaded, {} after the save",
                secs(took),
                if reloaded {
                    " with the new bindings"
                } else {
                    ""
                },
                if n == 1 { "" } else { "s" },
                secs(since.elapsed())
            ));
        }
        Ok(())
    }

    /// The first few changed paths, relative to the project.
    pub(super) fn shown(&self, paths: &[PathBuf]) -> String {
        let names: Vec<String> = paths
            .iter()
            .take(3)
            .map(|p| {
                p.strip_prefix(&self.project.dir)
                    .unwrap_or(p)
                    .display()
                    .to_string()
            })
            .collect();
        let more = paths.len().saturating_sub(3);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("{}{more}", names.join(", "))
    }

    /// Stops every node (idempotent).
    pub(super) fn stop(&mut self) {
        if self.nodes.is_empty() {
            return;
        }
        self.console
            .info(&format!("stopping {} nodes", self.nodes.len()));
        stop_all(&mut self.nodes, STOP_GRACE);
        self.nodes.clear();
        // No control server after this: `cargo mero net` must say so.
        if let Some(net) = &mut self.network {
            net.control = None;
            let _ = net.save(&self.dev_dir);
        }
        self.console.ok(&format!(
            "stopped; the network is saved in {} (`cargo mero dev` resumes it, --clean starts over)",
            self.dev_dir.display()
        ));
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        stop_all(&mut self.nodes, STOP_GRACE);
    }
}

impl From<mpsc::RecvError> for DevError {
    fn from(_: mpsc::RecvError) -> Self {
        DevError::Interrupted
    }
}

pub(super) fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

pub(super) fn ws_base(url: &str) -> String {
    url.replacen("http://", "ws://", 1)
}

pub(super) fn ws_url(url: &str, context: &str, token: &str) -> String {
    format!("{}/ws?context={context}&token={token}", ws_base(url))
}
