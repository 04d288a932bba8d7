//! Shared test support: build apps with the real `cargo mero build`, run real
//! `merod` processes on OS-picked loopback ports, talk HTTP to them.
#![allow(dead_code)]

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

/// Builds an app of this workspace with `cargo mero build`; once per process.
pub fn build_app(manifest: &str) -> Vec<u8> {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>> =
        OnceLock::new();
    // Held for the whole build: concurrent tests must not read a module
    // another test's build is still writing.
    let mut cache = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(b) = cache.get(manifest) {
        return b.clone();
    }
    // A target dir of its own: the outer `cargo test` may still hold the main one.
    let target = bin_dir().join("../mero-test-wasm");
    let out = Command::new(cargo_mero())
        .args(["mero", "build", "--json", "--manifest-path"])
        .arg(workspace().join(manifest))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("running cargo mero build");
    assert!(
        out.status.success(),
        "cargo mero build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("--json output");
    let wasm = std::fs::read(report["wasm"].as_str().unwrap()).unwrap();
    cache.insert(manifest.to_owned(), wasm.clone());
    wasm
}

/// A `merod` child process; killed when dropped.
pub struct NodeProc {
    pub home: PathBuf,
    pub url: String,
    pub token: String,
    child: Child,
}

impl NodeProc {
    /// Initializes a home in `dir` and starts a node there.
    pub fn init_and_start(dir: &Path) -> Self {
        let status = Command::new(env!("CARGO_BIN_EXE_merod"))
            .args(["init", "--listen", "127.0.0.1:0", "--home"])
            .arg(dir)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "merod init failed");
        Self::start(dir)
    }

    /// Starts a node on an existing home and waits until it serves.
    pub fn start(home: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_merod"))
            .args(["run", "--home"])
            .arg(home)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning merod");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("merod listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("merod did not start serving within 60 s");
            }
        };
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
