//! Shared test support: build apps with the real `cargo mero build`, run real
//! `merod` processes on OS-picked loopback ports, talk HTTP to them.
#![allow(dead_code)]

pub mod bench;
pub mod events;
pub mod member;
pub mod netns;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_merod"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The `cargo-mero` binary built alongside `merod`.
pub fn cargo_mero() -> PathBuf {
    let p = bin_dir().join("cargo-mero");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build --release --workspace --bins)",
        p.display()
    );
    p
}

/// A context of the app at `manifest` on an in-process node: builds and
/// installs the app, creates the context with `{}` as `init` arguments.
pub fn context_of(node: &mero_node::Node, manifest: &str) -> mero_node::ids::ContextId {
    let app = node.install_app(&build_app(manifest)).unwrap();
    node.create_context(&app.hash, b"{}").unwrap().id
}

/// Builds an app of this workspace with `cargo mero build`; once per process.
pub fn build_app(manifest: &str) -> Vec<u8> {
    build_app_with(manifest, &[])
}

/// [`build_app`] with cargo features enabled.
pub fn build_app_with(manifest: &str, features: &[&str]) -> Vec<u8> {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>> =
        OnceLock::new();
    // Held for the whole build: concurrent tests must not read a module
    // another test's build is still writing.
    let mut cache = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let cache_key = format!("{manifest}+{}", features.join(","));
    if let Some(b) = cache.get(&cache_key) {
        return b.clone();
    }
    // A target dir of its own: the outer `cargo test` may still hold the main
    // one. One per feature set: test binaries build concurrently.
    let target = bin_dir().join(format!("../mero-test-wasm{}", features.join("-")));
    let mut cmd = Command::new(cargo_mero());
    cmd.args(["mero", "build", "--json", "--manifest-path"])
        .arg(workspace().join(manifest))
        .arg("--target-dir")
        .arg(&target);
    for f in features {
        cmd.args(["--features", f]);
    }
    let out = cmd.output().expect("running cargo mero build");
    assert!(
        out.status.success(),
        "cargo mero build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("--json output");
    let wasm = std::fs::read(report["wasm"].as_str().unwrap()).unwrap();
    cache.insert(cache_key, wasm.clone());
    wasm
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

/// A `merod` child process; killed when dropped.
pub struct NodeProc {
    pub home: PathBuf,
    pub url: String,
    pub token: String,
    /// The node's libp2p address (with `/p2p/<peer id>`).
    pub p2p: String,
    /// The network namespace it runs in ([`NodeProc::start_in`]).
    netns: Option<String>,
    child: Child,
}

impl NodeProc {
    /// Initializes a home in `dir` and starts a node there.
    pub fn init_and_start(dir: &Path) -> Self {
        Self::init_and_join(dir, &[])
    }

    /// Starts a node on an existing home and waits until it serves.
    pub fn start(home: &Path) -> Self {
        Self::start_with(home, &[])
    }

    /// Initializes a home in `dir` and starts a node connected to `bootstrap`.
    pub fn init_and_join(dir: &Path, bootstrap: &[&str]) -> Self {
        init_home(dir);
        Self::start_with(dir, bootstrap)
    }

    /// Starts a node on an existing home, on loopback, dialing `bootstrap`.
    pub fn start_with(home: &Path, bootstrap: &[&str]) -> Self {
        Self::start_args(home, bootstrap, &[])
    }

    /// Initializes a home in `dir` and starts a dev-mode node (`--dev`:
    /// fault injection) connected to `bootstrap`.
    pub fn init_and_join_dev(dir: &Path, bootstrap: &[&str]) -> Self {
        init_home(dir);
        Self::start_args(dir, bootstrap, &["--dev"])
    }

    /// Starts a node on an existing home, on loopback, dialing `bootstrap`,
    /// with `extra` arguments of `merod run` (such as `--dev`).
    pub fn start_args(home: &Path, bootstrap: &[&str], extra: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_merod"));
        cmd.args(["run", "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--home"])
            .arg(home)
            .args(extra);
        for b in bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        Self::launch(cmd, home, None)
    }

    /// Starts a node on an existing home inside the network namespace
    /// `netns`, with `args` of `merod run` (its listen addresses among
    /// them); the test talks to its API from inside the namespace too.
    pub fn start_in(netns: &str, home: &Path, args: &[&str]) -> Self {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            netns,
            env!("CARGO_BIN_EXE_merod"),
            "run",
            "--home",
        ])
        .arg(home)
        .args(args);
        Self::launch(cmd, home, Some(netns.to_owned()))
    }

    fn launch(mut cmd: Command, home: &Path, netns: Option<String>) -> Self {
        let mut child = cmd
            .env(
                "RUST_LOG",
                std::env::var("MERO_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning merod");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("merod p2p listening on ") {
                    let _ = tx.send((true, addr.to_owned()));
                }
                if let Some(url) = line.strip_prefix("merod listening on ") {
                    let _ = tx.send((false, url.to_owned()));
                }
            }
        });
        let (mut url, mut p2p) = (None, None);
        while url.is_none() || p2p.is_none() {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok((true, a)) => p2p = Some(a),
                Ok((false, u)) => url = Some(u),
                Err(_) => {
                    let _ = child.kill();
                    panic!("merod did not start serving within 60 s");
                }
            }
        }
        let (url, p2p) = (url.unwrap(), p2p.unwrap());
        let cfg = std::fs::read_to_string(home.join("config.toml")).unwrap();
        let token = cfg
            .lines()
            .find_map(|l| l.strip_prefix("admin_token = "))
            .unwrap()
            .trim_matches('"')
            .to_owned();
        Self {
            home: home.to_owned(),
            url,
            token,
            p2p,
            netns,
            child,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then wait for the process to be gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into()
    }

    /// A request with the admin token; returns (status, JSON body).
    pub fn send(&self, method: &str, path: &str, body: Option<&[u8]>, auth: bool) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        if let Some(ns) = &self.netns {
            return self.send_in(ns, method, &url, body, auth);
        }
        let agent = Self::agent();
        let token = format!("Bearer {}", self.token);
        let resp = match (method, body) {
            ("GET", _) => {
                let mut r = agent.get(&url);
                if auth {
                    r = r.header("Authorization", &token);
                }
                r.call()
            }
            ("DELETE", _) => {
                let mut r = agent.delete(&url);
                if auth {
                    r = r.header("Authorization", &token);
                }
                r.call()
            }
            ("PUT", body) => {
                let mut r = agent.put(&url).header("Content-Type", "application/json");
                if auth {
                    r = r.header("Authorization", &token);
                }
                r.send(body.unwrap_or_default())
            }
            (_, body) => {
                let mut r = agent.post(&url).header("Content-Type", "application/json");
                if auth {
                    r = r.header("Authorization", &token);
                }
                r.send(body.unwrap_or_default())
            }
        }
        .expect("the node answers");
        let status = resp.status().as_u16();
        let text = resp.into_body().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// [`Self::send`] from inside the namespace `ns`, with curl.
    fn send_in(
        &self,
        ns: &str,
        method: &str,
        url: &str,
        body: Option<&[u8]>,
        auth: bool,
    ) -> (u16, Value) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "curl", "-sS", "-m", "60", "-X", method])
            .args([
                "-H",
                "Content-Type: application/json",
                "-w",
                "\n%{http_code}",
            ]);
        if auth {
            cmd.args(["-H", &format!("Authorization: Bearer {}", self.token)]);
        }
        if body.is_some() {
            cmd.args(["--data-binary", "@-"]);
        }
        let mut child = cmd
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl");
        if let Some(b) = body {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let (text, code) = text.rsplit_once('\n').expect("the node answers");
        (
            code.trim().parse().expect("an HTTP status"),
            serde_json::from_str(text).unwrap_or(Value::String(text.to_owned())),
        )
    }

    /// Installs an app; returns its hash.
    pub fn install(&self, wasm: &[u8]) -> String {
        let (status, body) = self.send("POST", "/admin/apps", Some(wasm), true);
        assert_eq!(status, 201, "install failed: {body}");
        body["hash"].as_str().unwrap().to_owned()
    }

    /// Creates a context; returns its id.
    pub fn create_context(&self, app: &str) -> String {
        let req = json!({"app": app}).to_string();
        let (status, body) = self.send("POST", "/admin/contexts", Some(req.as_bytes()), true);
        assert_eq!(status, 201, "create context failed: {body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// A JSON-RPC call; returns the whole response object.
    pub fn rpc(&self, rpc_method: &str, ctx: &str, method: &str, args: Value) -> Value {
        let req = json!({"jsonrpc": "2.0", "id": 1, "method": rpc_method,
            "params": {"context": ctx, "method": method, "args": args}});
        self.send("POST", "/jsonrpc", Some(req.to_string().as_bytes()), true)
            .1
    }

    /// `execute`, expecting success; returns the output.
    pub fn execute(&self, ctx: &str, method: &str, args: Value) -> Value {
        let r = self.rpc("execute", ctx, method, args);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"]["output"].clone()
    }

    /// `query`, expecting success; returns the output.
    pub fn query(&self, ctx: &str, method: &str, args: Value) -> Value {
        let r = self.rpc("query", ctx, method, args);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"]["output"].clone()
    }

    /// The context's exported state.
    pub fn state(&self, ctx: &str) -> Value {
        let (status, body) = self.send("GET", &format!("/admin/contexts/{ctx}/state"), None, true);
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

impl NodeProc {
    /// `GET` with the admin token, expecting 200; returns the body.
    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self.send("GET", path, None, true);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `POST` JSON with the admin token, expecting 2xx; returns the body.
    pub fn post(&self, path: &str, body: Value) -> Value {
        let (status, resp) = self.send("POST", path, Some(body.to_string().as_bytes()), true);
        assert!((200..300).contains(&status), "POST {path}: {status} {resp}");
        resp
    }

    /// `PUT` JSON with the admin token, expecting 200; returns the body.
    pub fn put(&self, path: &str, body: Value) -> Value {
        let (status, resp) = self.send("PUT", path, Some(body.to_string().as_bytes()), true);
        assert_eq!(status, 200, "PUT {path}: {resp}");
        resp
    }

    /// Replaces this dev-mode node's faults (`PUT /admin/dev/faults`).
    pub fn set_faults(&self, faults: Value) -> Value {
        self.put("/admin/dev/faults", faults)
    }

    /// Clears this dev-mode node's faults (`DELETE /admin/dev/faults`).
    pub fn heal(&self) -> Value {
        let (status, resp) = self.send("DELETE", "/admin/dev/faults", None, true);
        assert_eq!(status, 200, "DELETE /admin/dev/faults: {resp}");
        resp
    }

    /// This node's peer id (the last part of its p2p address).
    /// This node's member key in `ctx`.
    pub fn member_key(&self, ctx: &str) -> String {
        self.get(&format!("/admin/contexts/{ctx}"))["member"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn peer_id(&self) -> String {
        self.p2p.rsplit('/').next().unwrap_or_default().to_owned()
    }

    /// An invitation token to `ctx`.
    pub fn invite(&self, ctx: &str) -> String {
        self.post(&format!("/admin/contexts/{ctx}/invitations"), json!({}))["invitation"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Joins with an invitation token.
    pub fn join(&self, token: &str) {
        self.post("/admin/contexts/join", json!({ "invitation": token }));
    }

    /// The context's replication status.
    /// The lines of `/metrics` for which `keep` holds.
    pub fn metric_lines(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let (_, body) = self.send("GET", "/metrics", None, true);
        let text = body.as_str().unwrap_or_default();
        text.lines()
            .filter(|l| keep(l))
            .map(str::to_owned)
            .collect()
    }

    pub fn sync(&self, ctx: &str) -> Value {
        self.get(&format!("/admin/contexts/{ctx}/sync"))
    }

    /// `GET /admin/network`.
    pub fn network(&self) -> Value {
        self.get("/admin/network")
    }

    /// This node's `/admin/network` row for `peer`, while connected.
    pub fn peer_row(&self, peer: &str) -> Option<Value> {
        self.network()["peers"]
            .as_array()?
            .iter()
            .find(|p| p["peerId"] == json!(peer))
            .cloned()
    }

    /// Waits until a relay accepted this node's first slot; returns the
    /// circuit address peers reach it at.
    pub fn wait_circuit(&self) -> String {
        wait_for(Duration::from_secs(30), || {
            let net = self.network();
            if net["relays"][0]["accepted"] != json!(true) {
                return None;
            }
            net["listenAddrs"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .find(|s| s.contains("/p2p-circuit/"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no relay slot: {:#}", self.network()))
    }

    /// Waits until this node holds `app` (joiners fetch it from a peer).
    pub fn wait_app(&self, app: &str) {
        wait_for(Duration::from_secs(30), || {
            (self
                .send("GET", &format!("/admin/apps/{app}"), None, true)
                .0
                == 200)
                .then_some(())
        })
        .expect("the app reaches every member");
    }
}

/// Waits until every node has the same heads digest and state for `ctx`
/// (and no deltas waiting), or panics after `timeout` with what differs.
pub fn wait_converged(nodes: &[&NodeProc], ctx: &str, timeout: Duration) {
    let ok = wait_for(timeout, || {
        let syncs: Vec<Value> = nodes.iter().map(|n| n.sync(ctx)).collect();
        let same = syncs
            .iter()
            .all(|s| s["digest"] == syncs[0]["digest"] && s["joining"] == json!(false));
        same.then_some(())
    });
    if ok.is_none() {
        let report: Vec<Value> = nodes
            .iter()
            .map(|n| {
                let s = n.sync(ctx);
                json!({"deltas": s["deltas"], "pending": s["pending"], "vector": s["vector"], "rejected": s["rejected"]})
            })
            .collect();
        panic!("nodes did not converge within {timeout:?}: {report:#?}");
    }
    let first = nodes[0].state(ctx);
    for n in &nodes[1..] {
        assert_eq!(n.state(ctx), first, "same heads but different state");
    }
}

/// A write on each of `a` and `b` reaches the other (kv-store's `set`).
pub fn replicates_both_ways(a: &NodeProc, b: &NodeProc, ctx: &str) {
    a.execute(ctx, "set", json!({"key": "from-a", "value": "2"}));
    b.execute(ctx, "set", json!({"key": "from-b", "value": "3"}));
    wait_converged(&[a, b], ctx, Duration::from_secs(30));
    assert_eq!(b.query(ctx, "get", json!({"key": "from-a"})), json!("2"));
    assert_eq!(a.query(ctx, "get", json!({"key": "from-b"})), json!("3"));
}

/// Starts `n` nodes on loopback, connected to the first; the first creates a
/// context of `wasm`'s app and the others join it by invitation.
pub fn cluster(dirs: &[tempfile::TempDir], wasm: &[u8]) -> (Vec<NodeProc>, String, String) {
    cluster_with(dirs, wasm, false)
}

/// [`cluster`] of dev-mode nodes (`merod run --dev`) when `dev`.
pub fn cluster_with(
    dirs: &[tempfile::TempDir],
    wasm: &[u8],
    dev: bool,
) -> (Vec<NodeProc>, String, String) {
    let start = |dir: &Path, bootstrap: &[&str]| {
        if dev {
            NodeProc::init_and_join_dev(dir, bootstrap)
        } else {
            NodeProc::init_and_join(dir, bootstrap)
        }
    };
    let mut nodes = vec![start(dirs[0].path(), &[])];
    for dir in &dirs[1..] {
        let p2p = nodes[0].p2p.clone();
        nodes.push(start(dir.path(), &[&p2p]));
    }
    let (ctx, app) = share_context(&nodes, wasm);
    for n in &nodes {
        let members = n.get(&format!("/admin/contexts/{ctx}/members"));
        assert_eq!(members.as_array().unwrap().len(), dirs.len(), "{members}");
    }
    (nodes, ctx, app)
}

/// Node 1 installs `wasm`'s app and creates a context the others join by
/// invitation; waits until all converged and hold the app. Returns the
/// context and the app.
pub fn share_context(nodes: &[NodeProc], wasm: &[u8]) -> (String, String) {
    let app = nodes[0].install(wasm);
    let ctx = nodes[0].create_context(&app);
    for n in &nodes[1..] {
        n.join(&nodes[0].invite(&ctx));
    }
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    wait_converged(&refs, &ctx, Duration::from_secs(60));
    for n in nodes {
        n.wait_app(&app);
    }
    (ctx, app)
}

/// A plain HTTP exchange's answer.
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// A response header, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// Any request, with any headers; the body parsed as JSON when it is.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = agent
        .run(req.body(body.unwrap_or_default().to_vec()).unwrap())
        .expect("the node answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// Runs `merod config ...` on a home; returns (success, stdout + stderr).
pub fn merod_config(home: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_merod"))
        .arg("config")
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `n` temporary homes, each `merod init`ed ([`init_home`]).
pub fn init_homes(n: usize) -> Vec<tempfile::TempDir> {
    let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &dirs {
        init_home(d.path());
    }
    dirs
}

/// `merod init` in `dir` (loopback, port picked at start).
pub fn init_home(dir: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_merod"))
        .args(["init", "--listen", "127.0.0.1:0", "--home"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "merod init failed");
}
