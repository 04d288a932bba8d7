//! Shared by cargo-mero's end-to-end tests and the reload benchmark: new
//! projects from templates, and `cargo mero dev` sessions as real processes
//! that are always stopped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cargo_mero::client::{CallKind, ClientError, NodeClient};
use cargo_mero::network::DevNetwork;
use serde_json::Value;

/// The cargo-mero binary under test.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cargo-mero"))
}

/// A target dir for generated projects, shared with the node's tests so
/// the SDK and its dependencies compile once (never the workspace's own
/// target dir: the outer `cargo test` holds its lock).
pub fn target_dir() -> PathBuf {
    exe().parent().unwrap().join("../mero-test-wasm")
}

/// Runs `cargo mero ARGS` in `cwd`, with the shared target dir.
pub fn cargo_mero(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(exe())
        .arg("mero")
        .args(args)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap()
}

/// `cargo mero new NAME --template T` in `parent`; returns the project dir.
pub fn new_project(parent: &Path, name: &str, template: &str) -> PathBuf {
    let out = cargo_mero(&["new", name, "--template", template], parent);
    assert!(
        out.status.success(),
        "new failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parent.join(name)
}

/// `cargo-mero/tests/ts`, with its npm packages (TypeScript, playwright-core)
/// installed: `npm ci` there unless they are.
pub fn ts_packages() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _once = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ts");
    let have = ["typescript", "playwright-core"]
        .iter()
        .all(|p| dir.join("node_modules").join(p).is_dir());
    if !have {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .output()
            .expect("running npm (Node.js 20 and npm; scripts/test installs them, or set MERO_SKIP_BROWSER=1)");
        assert!(
            out.status.success(),
            "npm ci in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// `GET url`: the status and the body as text.
pub fn http_get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let resp = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.into_body().read_to_string().unwrap())
}

/// Whether process `pid` is gone (reaped, or a zombie nobody reaped yet).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // Field 3, after the parenthesised name, is the state.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `cargo mero dev`, killed (with its nodes) when dropped.
pub struct Dev {
    pub child: Child,
    pub project: PathBuf,
    output: Arc<Mutex<String>>,
    /// Its stdin, when started with [`Dev::start_with_keys`].
    keys: Option<ChildStdin>,
}

/// Collects a child's stdout and stderr lines into one shared text.
pub fn capture(child: &mut std::process::Child) -> Arc<Mutex<String>> {
    let output = Arc::new(Mutex::new(String::new()));
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut o = output.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
            }
        });
    }
    output
}

impl Dev {
    /// Starts `cargo mero dev ARGS` in `project` and waits until it is ready.
    pub fn start(project: &Path, args: &[&str]) -> Dev {
        Self::start_inner(project, args, false)
    }

    /// Like [`Dev::start`], with stdin a pipe the session reads command
    /// lines from ([`Dev::send_line`]).
    pub fn start_with_keys(project: &Path, args: &[&str]) -> Dev {
        Self::start_inner(project, args, true)
    }

    fn start_inner(project: &Path, args: &[&str], keys: bool) -> Dev {
        let stdin = if keys { Stdio::piped() } else { Stdio::null() };
        let mut child = Command::new(exe())
            .args(["mero", "dev"])
            .args(args)
            .current_dir(project)
            .env("CARGO_TARGET_DIR", target_dir())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = capture(&mut child);
        let mut dev = Dev {
            keys: child.stdin.take(),
            child,
            project: project.to_owned(),
            output,
        };
        dev.wait_output("ready:", Duration::from_secs(600));
        dev
    }

    /// Types `line` (and Enter) into the session's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.keys.as_mut().expect("started with start_with_keys");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The dashboard URL the session printed (`http://127.0.0.1:P/#key=K`).
    pub fn dashboard_url(&self) -> Option<String> {
        self.output().lines().find_map(|l| {
            l.split_once("dashboard: ")
                .map(|(_, u)| u.trim().to_owned())
        })
    }

    /// Everything the session printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output contains `needle` `count` times in all.
    pub fn wait_output_n(&mut self, needle: &str, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.output().matches(needle).count() < count {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("cargo mero dev exited ({status}):\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "no `{needle}` (x{count}) in:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the output contains `needle`.
    pub fn wait_output(&mut self, needle: &str, limit: Duration) {
        self.wait_output_n(needle, 1, limit);
    }

    /// The network as `network.json` describes it.
    pub fn network(&self) -> DevNetwork {
        let project = cargo_mero::build::project(&cargo_mero::build::BuildOptions {
            manifest_path: Some(self.project.join("Cargo.toml")),
            target_dir: Some(target_dir()),
            ..Default::default()
        })
        .unwrap();
        DevNetwork::load(&cargo_mero::network::dev_dir(&project)).unwrap()
    }

    /// Calls `method` on node `index` (1-based).
    pub fn call(
        &self,
        net: &DevNetwork,
        index: usize,
        kind: CallKind,
        method: &str,
        args: Value,
    ) -> Result<Value, ClientError> {
        let n = net.node(index).unwrap();
        NodeClient::new(&n.rpc_url, Some(&n.admin_token)).call(kind, &net.context, method, &args)
    }

    /// Sends `sig` to the session.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // SIGTERM first so the nodes stop in order; the nodes also die
        // with the session if it is killed.
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Adds a view method `name` returning `value` to a kv-store project.
pub fn add_view(project: &Path, name: &str, value: i64) {
    let path = project.join("src/lib.rs");
    let src = std::fs::read_to_string(&path).unwrap();
    let marker = "    /// How many writes all nodes made together.";
    assert!(src.contains(marker), "not a kv-store project");
    let method = format!(
        "    /// Added by a test.\n    pub fn {name}(&self) -> i64 {{\n        {value}\n    }}\n\n"
    );
    std::fs::write(&path, src.replacen(marker, &format!("{method}{marker}"), 1)).unwrap();
}
