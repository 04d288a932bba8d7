//! Node processes: a home made with `init`, `run --dev` on loopback, the
//! ready lines read from its output, and a stop that always reaps.
//!
//! A node started here gets SIGTERM when the thread that started it ends,
//! even if the test process is killed (Linux `PR_SET_PDEATHSIG`), so a
//! crashed test leaves no node behind. The flip side: a network must be
//! used on the thread that created it, or nodes die with their creator.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::TestnetError;
use crate::locate::NodeCommand;

/// How long a node may take to print its ready lines.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Output lines kept per node for error messages (older ones are dropped).
const KEPT_LINES: usize = 200;

/// Called with (node index, line) for every line a node prints.
pub type OnLine = Arc<dyn Fn(usize, &str) + Send + Sync>;

/// What to start.
pub struct Spawn<'a> {
    /// What runs nodes.
    pub command: &'a NodeCommand,
    /// 1-based node number (for messages and `on_line`).
    pub index: usize,
    /// The node's home (made by [`init_home`]).
    pub home: &'a Path,
    /// HTTP port on 127.0.0.1 (0: the OS picks).
    pub http_port: u16,
    /// libp2p TCP port on 127.0.0.1 (0: the OS picks).
    pub p2p_port: u16,
    /// Peers to dial (multiaddrs with `/p2p/`).
    pub bootstrap: &'a [String],
    /// `RUST_LOG` for the node.
    pub log_filter: &'a str,
    /// Sees every output line.
    pub on_line: Option<OnLine>,
}

/// A running node process.
pub struct NodeProcess {
    /// HTTP API base URL.
    pub url: String,
    /// libp2p address with `/p2p/<peer id>`.
    pub p2p: String,
    child: Child,
    lines: Arc<Mutex<VecDeque<String>>>,
}

/// Creates a node home on loopback with `sync_interval_ms`; returns its
/// admin token.
pub fn init_home(cmd: &NodeCommand, home: &Path, sync_ms: u64) -> Result<String, TestnetError> {
    // `--home` belongs to `init` and to `config`, before its action.
    let run = |command: &str, args: &[&str]| -> Result<String, TestnetError> {
        let out = cmd
            .command()
            .arg(command)
            .arg("--home")
            .arg(home)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                TestnetError::Node(format!("cannot run {}: {e}", cmd.program.display()))
            })?;
        if !out.status.success() {
            return Err(TestnetError::Node(format!(
                "`{} {command} {}` failed for {}: {}",
                cmd.program.display(),
                args.join(" "),
                home.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    run(
        "init",
        &[
            "--listen",
            "127.0.0.1:0",
            "--p2p-listen",
            "/ip4/127.0.0.1/tcp/0",
        ],
    )?;
    run(
        "config",
        &["set", "network.sync_interval_ms", &sync_ms.to_string()],
    )?;
    let token = run("config", &["get", "auth.admin_token"])?;
    Ok(token.trim_matches('"').to_owned())
}

/// Ties the child to the thread that starts it (see the module doc).
#[cfg(target_os = "linux")]
fn tie_to_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn tie_to_parent(_cmd: &mut std::process::Command) {}

enum Ready {
    Http(String),
    P2p(String),
}

impl NodeProcess {
    /// Starts `merod run --dev` and waits for its ready lines (60 s).
    pub fn start(s: Spawn<'_>) -> Result<Self, TestnetError> {
        let mut cmd = s.command.command();
        cmd.args(["run", "--dev", "--listen"])
            .arg(format!("127.0.0.1:{}", s.http_port))
            .arg("--p2p-listen")
            .arg(format!("/ip4/127.0.0.1/tcp/{}", s.p2p_port))
            .arg("--home")
            .arg(s.home);
        for b in s.bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        cmd.env("RUST_LOG", s.log_filter)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        tie_to_parent(&mut cmd);
        let index = s.index;
        let mut child = cmd
            .spawn()
            .map_err(|e| TestnetError::Node(format!("cannot start node {index}: {e}")))?;
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        let streams = [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ];
        for stream in streams {
            let (tx, lines, on_line) = (tx.clone(), lines.clone(), s.on_line.clone());
            std::thread::spawn(move || read_lines(index, stream, &tx, &lines, on_line));
        }
        drop(tx);
        let mut node = NodeProcess {
            url: String::new(),
            p2p: String::new(),
            child,
            lines,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while node.url.is_empty() || node.p2p.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ready::Http(u)) => node.url = u,
                Ok(Ready::P2p(a)) if node.p2p.is_empty() => node.p2p = a,
                Ok(Ready::P2p(_)) => {}
                Err(e) => {
                    node.kill();
                    let why = match e {
                        mpsc::RecvTimeoutError::Timeout => "did not start within 60 s",
                        mpsc::RecvTimeoutError::Disconnected => "exited before serving",
                    };
                    return Err(node.start_failure(s.command, index, why));
                }
            }
        }
        Ok(node)
    }

    fn start_failure(&self, cmd: &NodeCommand, index: usize, why: &str) -> TestnetError {
        let out = self.recent_output();
        if out.contains("unexpected argument '--dev'") {
            return TestnetError::NoDevMode(format!(
                "{} has no `run --dev`; it is older than mero-testnet {}",
                cmd.program.display(),
                env!("CARGO_PKG_VERSION")
            ));
        }
        TestnetError::Node(format!(
            "node {index} ({}) {why}; its output:\n{out}",
            cmd.program.display()
        ))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines the node printed.
    pub fn recent_output(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Whether the process has ended.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&self) {
        #[cfg(unix)]
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }
}

fn read_lines(
    index: usize,
    stream: Box<dyn std::io::Read + Send>,
    ready: &mpsc::Sender<Ready>,
    lines: &Mutex<VecDeque<String>>,
    on_line: Option<OnLine>,
) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if let Some(url) = line.strip_prefix("merod listening on ") {
            let _ = ready.send(Ready::Http(url.trim().to_owned()));
        } else if let Some(addr) = line.strip_prefix("merod p2p listening on ") {
            let _ = ready.send(Ready::P2p(addr.trim().to_owned()));
        }
        if let Some(f) = &on_line {
            f(index, &line);
        }
        let mut kept = lines.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() == KEPT_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
}

impl Drop for NodeProcess {
    /// A node dropped without [`stop_all`] (a failed start) is killed:
    /// never left running.
    fn drop(&mut self) {
        self.kill();
    }
}

/// SIGTERMs every process, waits up to `grace` for them to end, SIGKILLs
/// the rest; returns when all are reaped.
pub fn stop_all(nodes: &mut [&mut NodeProcess], grace: Duration) {
    for n in nodes.iter() {
        n.terminate();
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && nodes.iter_mut().any(|n| !n.exited()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for n in nodes.iter_mut() {
        n.kill();
    }
}

/// The port of `http://127.0.0.1:PORT` or `/ip4/…/tcp/PORT/…`.
pub fn port_of(addr: &str) -> u16 {
    if let Some(rest) = addr.split("/tcp/").nth(1) {
        return rest
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
    }
    addr.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or(0)
}

/// `dir/node<i>`.
pub fn home_of(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("node{index}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_urls_and_multiaddrs() {
        assert_eq!(port_of("http://127.0.0.1:4123"), 4123);
        assert_eq!(port_of("/ip4/127.0.0.1/tcp/38211/p2p/12D3KooW"), 38211);
        assert_eq!(port_of("garbage"), 0);
    }
}
