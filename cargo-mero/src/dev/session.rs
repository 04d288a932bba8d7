//! One dev session: the network's lifecycle and the reload loop.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use mero_abi::AppAbi;
use mero_abi::diff::AbiDiff;
use mero_abi::schema::SchemaDiff;
use serde_json::Value;

use super::console::Console;
use super::nodes::{NodeProcess, stop_all};
use super::pages::{self, Pages};
use super::{DevError, DevEvent, DevOptions, watch};
use crate::build::web::Frontend;
use crate::build::{self, BuildError, BuildOutput, Project};
use crate::client::NodeClient;
use crate::network::{self, DevNetwork, DevNode};

/// How long nodes get to agree after a change.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long nodes get to stop before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub(super) struct Session {
    opts: DevOptions,
    console: Console,
    project: Project,
    dev_dir: PathBuf,
    rx: Receiver<DevEvent>,
    interrupted: Arc<AtomicBool>,
    /// Held for the session: one `dev` per project network.
    _lock: std::fs::File,
    nodes: Vec<NodeProcess>,
    /// Indexes of nodes that exited on their own.
    dead: Vec<usize>,
    context: String,
    app: Option<BuildOutput>,
    /// What `network.json` holds; written at start and after each reload.
    network: Option<DevNetwork>,
    /// Events that arrived while another was being handled.
    pending: VecDeque<DevEvent>,
    /// The front end, when the app has one (`web/`).
    pages: Option<Pages>,
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevError + '_ {
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

/// Placeholder arguments for an example call of `m`.
fn example_args(m: &mero_abi::MethodAbi) -> Value {
    let mut args = serde_json::Map::new();
    for p in &m.params {
        let v = match p.ty.trim_start_matches('&') {
            "str" | "String" => Value::from(p.name.as_str()),
            "bool" => Value::from(true),
            "f32" | "f64" => Value::from(1.5),
            t if t.starts_with('u') || t.starts_with('i') => Value::from(1),
            _ => Value::Null,
        };
        args.insert(p.name.clone(), v);
    }
    Value::Object(args)
}

impl Session {
    pub(super) fn open(
        opts: DevOptions,
        rx: Receiver<DevEvent>,
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
        Ok(Self {
            pages,
            opts,
            console,
            project,
            dev_dir,
            rx,
            interrupted,
            _lock: lock,
            nodes: Vec::new(),
            dead: Vec::new(),
            context: String::new(),
            app: None,
            network: None,
            pending: VecDeque::new(),
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

    fn check_interrupted(&self) -> Result<(), DevError> {
        if self.interrupted.load(Ordering::SeqCst) {
            return Err(DevError::Interrupted);
        }
        Ok(())
    }

    /// The API clients of the nodes still running, in index order.
    fn clients(&self) -> Vec<&NodeClient> {
        self.nodes
            .iter()
            .filter(|n| !self.dead.contains(&n.index))
            .map(|n| &n.client)
            .collect()
    }

    /// Builds the app behind a spinner; compiler output is shown only when
    /// the code does not compile.
    fn build(&self) -> Result<BuildOutput, BuildError> {
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
        let static_dir = self.pages.as_ref().map(|p| p.serve_dir.clone());

        let filter = std::env::var("MERO_NODE_LOG")
            .unwrap_or_else(|_| self.opts.verbosity.node_filter().to_owned());
        let started = Instant::now();
        for index in 1..=self.opts.nodes {
            self.check_interrupted()?;
            let home = self.dev_dir.join(format!("node{index}"));
            let bootstrap: Vec<String> = self.nodes.iter().map(|n| n.p2p.clone()).collect();
            let node = NodeProcess::start(
                &self.opts.exe,
                index,
                &home,
                &bootstrap,
                &filter,
                static_dir.as_deref(),
                &self.console,
            )?;
            self.nodes.push(node);
        }
        self.console.info(&format!(
            "{} nodes up in {}",
            self.nodes.len(),
            secs(started.elapsed())
        ));

        // No node has died yet: positions in `nodes` are positions in `clients()`.
        let first = &self.nodes[0].client;
        let resumed = saved.and_then(|s| first.context(&s.context).ok().map(|_| s.context));
        match resumed {
            Some(ctx) => {
                self.console.info(&format!("resuming context {ctx}"));
                let missing: Vec<usize> = (1..self.nodes.len())
                    .filter(|&i| self.nodes[i].client.context(&ctx).is_err())
                    .collect();
                self.context = ctx;
                self.join(&missing)?;
                let first = &self.nodes[0].client;
                let current = first.context(&self.context)?.app.0;
                if current != built.hash {
                    self.install(&built)?;
                    first.upgrade(&self.context, &built.hash)?;
                }
            }
            None => {
                self.install(&built)?;
                let info = first.create_context(&built.hash)?;
                self.context = info.id.0;
                let all: Vec<usize> = (1..self.nodes.len()).collect();
                self.join(&all)?;
            }
        }
        self.converge(&built.hash)?;
        self.app = Some(built);
        self.network = Some(self.describe()?);
        self.save()?;
        self.announce();
        for node in &self.nodes {
            subscribe_events(node, &self.context, &self.console);
        }
        Ok(())
    }

    /// Installs the module on every node at once, so none has to fetch it.
    fn install(&self, built: &BuildOutput) -> Result<(), DevError> {
        let wasm = std::fs::read(&built.wasm).map_err(io(&built.wasm))?;
        let clients = self.clients();
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

    /// Invites nodes (by position in [`Self::clients`]) from node 1.
    fn join(&self, which: &[usize]) -> Result<(), DevError> {
        let clients = self.clients();
        for &i in which {
            let invitation = clients[0].invite(&self.context)?;
            clients[i].join(&invitation)?;
        }
        Ok(())
    }

    /// Waits until every live node runs `app` in the context and all share
    /// one heads digest.
    fn converge(&self, app: &str) -> Result<(), DevError> {
        let clients = self.clients();
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            self.check_interrupted()?;
            let mut states = Vec::new();
            for c in &clients {
                let info = c.context(&self.context).ok();
                let sync = c.sync_status(&self.context).ok();
                states.push((
                    info.as_ref().is_some_and(|i| i.app == app && !i.joining),
                    sync.map(|s| s.digest),
                ));
            }
            let agreed = states.iter().all(|(ready, d)| *ready && *d == states[0].1);
            if agreed {
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
            nodes.push(DevNode {
                index: n.index,
                rpc_url: n.url.clone(),
                ws_url: ws_url(&n.url, &self.context, &n.token),
                admin_token: n.token.clone(),
                home: n.home.clone(),
                peer_id: n.p2p.rsplit("/p2p/").next().unwrap_or_default().to_owned(),
                p2p: n.p2p.clone(),
                member_key: info.member.0,
                pid: n.pid(),
                page_url: match &self.pages {
                    Some(_) => {
                        let token = pages::client_token(&n.url, &n.token, &self.context)?;
                        Some(pages::page_url(&n.url, &self.context, &token, n.index))
                    }
                    None => None,
                },
            });
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
        })
    }

    fn save(&self) -> Result<(), DevError> {
        let net = self.network.as_ref().expect("saved after start");
        net.save(&self.dev_dir)
            .map_err(io(&self.dev_dir.join(network::NETWORK_FILE)))
    }

    /// Prints where everything is and how to call it.
    fn announce(&self) {
        let net = self.network.as_ref().expect("announced after start");
        let app = self.app.as_ref().expect("announced after a build");
        let mut t = String::from("\n");
        let rows: Vec<[String; 4]> = net
            .nodes
            .iter()
            .map(|n| {
                [
                    n.index.to_string(),
                    n.rpc_url.clone(),
                    format!("{}/ws", ws_base(&n.rpc_url)),
                    n.member_key.clone(),
                ]
            })
            .collect();
        let header = ["node", "RPC URL", "WebSocket", "member key"].map(str::to_owned);
        let width = |c: usize| {
            rows.iter()
                .chain([&header])
                .map(|r| r[c].len())
                .max()
                .unwrap_or(0)
        };
        let (w0, w1, w2) = (width(0), width(1), width(2));
        for r in std::iter::once(&header).chain(&rows) {
            t += &format!("  {:<w0$}  {:<w1$}  {:<w2$}  {}\n", r[0], r[1], r[2], r[3]);
        }
        t += &format!(
            "\n  context  {}\n  app      {} ({})\n",
            net.context, net.app, app.package
        );
        t += &format!(
            "  network  {}\n",
            self.dev_dir.join(network::NETWORK_FILE).display()
        );
        if self.pages.is_some() {
            t += "\n  pages    one user per node (open two side by side); they reload on save\n";
            for n in &net.nodes {
                if let Some(url) = &n.page_url {
                    t += &format!("    node {}  {url}\n", n.index);
                }
            }
        }
        // The mutating method with the most parameters shows the most;
        // handlers and private methods are for nodes, not clients.
        let example = app
            .abi
            .kinds()
            .filter(|(_, kind)| *kind == mero_abi::abi::MethodKind::Mutating)
            .map(|(m, _)| m)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .max_by_key(|m| m.params.len());
        if let Some(m) = example {
            let args = example_args(m);
            let n1 = &net.nodes[0];
            t += &format!("\n  try  cargo mero call {} '{args}' --node 1\n", m.name);
            let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
                "params": {"context": net.context, "method": m.name, "args": args}});
            t += &format!(
                "       curl -s {}/jsonrpc -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{body}'\n",
                n1.rpc_url, n1.admin_token
            );
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
            }
        }
    }

    /// Reports nodes that exited on their own.
    fn reap(&mut self) -> Result<(), DevError> {
        for n in &mut self.nodes {
            if self.dead.contains(&n.index) {
                continue;
            }
            if let Some(status) = n.exited() {
                self.console.error(&format!(
                    "node {} exited ({status}); its log is {}",
                    n.index,
                    n.home.join("node.log").display()
                ));
                self.dead.push(n.index);
            }
        }
        if self.dead.len() == self.nodes.len() {
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
    fn shown(&self, paths: &[PathBuf]) -> String {
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

    /// Rebuilds the app and reloads it on the nodes; returns whether they
    /// now run new code.
    fn reload(&mut self, paths: &[PathBuf], since: Instant) -> Result<bool, DevError> {
        self.console
            .info(&format!("{} changed; rebuilding", self.shown(paths)));
        let t0 = Instant::now();
        let built = match self.build() {
            Ok(b) => b,
            Err(BuildError::Compile { .. }) => {
                self.console.error(
                    "build failed: the nodes keep running the previous code; fix the error and save",
                );
                return Ok(false);
            }
            Err(e) => {
                self.console.error(&format!("build failed: {e}"));
                return Ok(false);
            }
        };
        let build_time = t0.elapsed();
        let old = self.app.as_ref().expect("reloads follow the first build");
        if old.hash == built.hash {
            self.console.info(&format!(
                "built in {}; the module did not change",
                secs(build_time)
            ));
            return Ok(false);
        }
        let diff = AbiDiff::between(&old.abi, &built.abi);
        let schema = SchemaDiff::between(&old.abi.state, &built.abi.state);
        if schema.needs_migration() && built.abi.migrate.is_none() {
            show_diff(&self.console, &diff, &schema, &built.abi);
            self.console.error(&format!(
                "not reloaded: {}\nthe nodes keep running the previous code",
                schema.explain()
            ));
            return Ok(false);
        }
        let t1 = Instant::now();
        let swap = self.install(&built).and_then(|()| {
            let t = Instant::now();
            self.clients()[0].upgrade(&self.context, &built.hash)?;
            Ok(t)
        });
        let upgraded_at = match swap {
            Ok(t) => t,
            Err(e) => {
                self.console.error(&format!(
                    "the nodes refused the new code ({e}); they keep running the previous code"
                ));
                return Ok(false);
            }
        };
        let install_time = upgraded_at - t1;
        self.converge(&built.hash)?;
        let converge_time = upgraded_at.elapsed();
        show_diff(&self.console, &diff, &schema, &built.abi);
        if !schema.is_empty() && built.abi.migrate.is_some() {
            self.console
                .info("state migrated by #[app::migrate], once, in the upgrade");
        }
        self.console.ok(&format!(
            "reloaded on {} nodes in {} after the save (build {}, install {}, upgrade and agree {}); app {}",
            self.clients().len(),
            secs(since.elapsed()),
            secs(build_time),
            secs(install_time),
            secs(converge_time),
            short(&built.hash)
        ));
        if let Some(net) = &mut self.network {
            net.app = built.hash.clone();
        }
        self.app = Some(built);
        self.save().map(|()| true)
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

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

fn ws_base(url: &str) -> String {
    url.replacen("http://", "ws://", 1)
}

fn ws_url(url: &str, context: &str, token: &str) -> String {
    format!("{}/ws?context={context}&token={token}", ws_base(url))
}

fn show_diff(console: &Console, diff: &AbiDiff, schema: &SchemaDiff, abi: &AppAbi) {
    if diff.is_empty() {
        console.info(&format!("ABI unchanged ({} methods)", abi.methods.len()));
    } else {
        console.info("ABI changes:");
        for line in diff.to_string().lines() {
            console.raw(&format!("           {line}"));
        }
    }
    if !schema.is_empty() {
        console.info("state schema changes:");
        for line in schema.lines() {
            console.raw(&format!("           {line}"));
        }
    }
}

/// Prints the context's events as `node` delivers them (until it stops).
fn subscribe_events(node: &NodeProcess, context: &str, console: &Console) {
    let url = ws_url(&node.url, context, &node.token);
    let console = console.clone();
    let index = node.index;
    std::thread::spawn(move || {
        let Ok((mut ws, _)) = tungstenite::connect(url.as_str()) else {
            return;
        };
        while let Ok(msg) = ws.read() {
            let tungstenite::Message::Text(text) = msg else {
                continue;
            };
            let Ok(msg) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            // Notifications: {"method": "event", "params": <item>}.
            let ev = &msg["params"];
            if msg["method"] == "event"
                && let Some(kind) = ev["kind"].as_str()
            {
                console.event(
                    index,
                    kind,
                    &ev["data"].to_string(),
                    ev["local"].as_bool().unwrap_or(false),
                );
            }
        }
    });
}
