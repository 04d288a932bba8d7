//! Dev nodes: `cargo-mero node run --dev` child processes that cannot
//! outlive the session, with their output teed to `node.log` and the
//! console. Dev mode gives the session fault injection on each node
//! (`/admin/dev/faults`); dev homes compare heads every 500 ms and let the
//! session's dashboard origin call them from a browser (CORS).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::DevError;
use super::console::Console;
use crate::client::NodeClient;

/// Loopback only, ports picked by the OS.
const HTTP_LISTEN: &str = "127.0.0.1:0";
const P2P_LISTEN: &str = "/ip4/127.0.0.1/tcp/0";
/// How often dev nodes compare heads with each peer: a quarter of the
/// default, so a partition or a heal shows within a second.
const DEV_SYNC_INTERVAL_MS: u64 = 500;

/// What every node of a session starts with.
pub struct Launch<'a> {
    /// The binary whose `node run` runs a node.
    pub exe: &'a Path,
    /// The nodes' `RUST_LOG`.
    pub log_filter: &'a str,
    /// Served under `/app/`, if given.
    pub static_dir: Option<&'a Path>,
    /// The dashboard's origin, allowed by CORS.
    pub cors_origin: &'a str,
    /// Where their output goes.
    pub console: &'a Console,
}

/// A running dev node.
pub struct NodeProcess {
    /// 1-based index.
    pub index: usize,
    /// Home directory.
    pub home: PathBuf,
    /// HTTP API base URL.
    pub url: String,
    /// libp2p address with `/p2p/<peer id>`.
    pub p2p: String,
    /// Admin token.
    pub token: String,
    /// The node's API, with the token.
    pub client: NodeClient,
    child: Child,
}

/// What the reader threads learn from the startup lines.
enum Ready {
    Http(String),
    P2p(String),
}

/// Makes the child die with us: its own process group (so a terminal's
/// Ctrl-C reaches only `cargo mero dev`, which stops nodes in order) and,
/// on Linux, SIGTERM when the parent dies, even by SIGKILL.
#[cfg(unix)]
fn tie_to_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setpgid(0, 0);
            #[cfg(target_os = "linux")]
            {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
            }
            let _ = parent;
            Ok(())
        });
    }
}

#[cfg(not(unix))]
fn tie_to_parent(_cmd: &mut Command) {}

/// Creates a node home unless it exists, points its `server.static_dir`
/// at `static_dir` (or at nothing), allows `cors_origin` and sets the dev
/// sync interval; returns its admin token.
pub fn init_home(
    exe: &Path,
    home: &Path,
    static_dir: Option<&Path>,
    cors_origin: &str,
) -> Result<String, DevError> {
    if !home.join(mero_node::config::CONFIG_FILE).is_file() {
        let out = Command::new(exe)
            .args([
                "node",
                "init",
                "--listen",
                HTTP_LISTEN,
                "--p2p-listen",
                P2P_LISTEN,
            ])
            .arg("--home")
            .arg(home)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| DevError::Node(format!("cannot run {}: {e}", exe.display())))?;
        if !out.status.success() {
            return Err(DevError::Node(format!(
                "`node init` failed for {}: {}",
                home.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    let bad = |e: mero_node::config::ConfigError| {
        DevError::Node(format!(
            "{}: {e}; `cargo mero dev --clean` starts over",
            home.display()
        ))
    };
    let mut cfg = mero_node::config::NodeConfig::load(home).map_err(bad)?;
    let origins = vec![cors_origin.to_owned()];
    let changed = cfg.server.static_dir.as_deref() != static_dir
        || cfg.server.cors_origins != origins
        || cfg.network.sync_interval_ms != DEV_SYNC_INTERVAL_MS;
    if changed {
        cfg.server.static_dir = static_dir.map(Path::to_owned);
        cfg.server.cors_origins = origins;
        cfg.network.sync_interval_ms = DEV_SYNC_INTERVAL_MS;
        cfg.save(home).map_err(bad)?;
    }
    Ok(cfg.auth.admin_token)
}

impl NodeProcess {
    /// Starts node `index` from `home` in dev mode and waits until it
    /// serves HTTP and listens for peers; `ports` (HTTP, p2p) are the ones
    /// to listen on, else the OS picks.
    pub fn start(
        launch: &Launch<'_>,
        index: usize,
        home: &Path,
        bootstrap: &[String],
        ports: Option<(u16, u16)>,
    ) -> Result<Self, DevError> {
        let Launch {
            exe,
            log_filter,
            static_dir,
            cors_origin,
            console,
        } = *launch;
        let token = init_home(exe, home, static_dir, cors_origin)?;
        let (http, p2p) = match ports {
            Some((h, p)) => (format!("127.0.0.1:{h}"), format!("/ip4/127.0.0.1/tcp/{p}")),
            None => (HTTP_LISTEN.to_owned(), P2P_LISTEN.to_owned()),
        };
        let mut cmd = Command::new(exe);
        cmd.args([
            "node",
            "run",
            "--dev",
            "--listen",
            &http,
            "--p2p-listen",
            &p2p,
        ])
        .arg("--home")
        .arg(home);
        for b in bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        cmd.env("RUST_LOG", log_filter)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        tie_to_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| DevError::Node(format!("cannot start node {index}: {e}")))?;

        let log_path = home.join("node.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| DevError::Node(format!("{}: {e}", log_path.display())))?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        for stream in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err),
        ] {
            let console = console.clone();
            let ready = ready_tx.clone();
            let mut log = log.try_clone().expect("log file handle");
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(log, "{line}");
                    if let Some(url) = line.strip_prefix("merod listening on ") {
                        let _ = ready.send(Ready::Http(url.trim().to_owned()));
                    } else if let Some(addr) = line.strip_prefix("merod p2p listening on ") {
                        let _ = ready.send(Ready::P2p(addr.trim().to_owned()));
                    }
                    console.node_line(index, &line);
                }
            });
        }
        drop(ready_tx);

        let (mut url, mut p2p) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while url.is_none() || p2p.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match ready_rx.recv_timeout(left) {
                Ok(Ready::Http(u)) => url = Some(u),
                Ok(Ready::P2p(a)) => p2p = p2p.or(Some(a)),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(DevError::Node(format!(
                        "node {index} did not start; see {}",
                        log_path.display()
                    )));
                }
            }
        }
        let url = url.expect("loop ends with both");
        Ok(Self {
            index,
            home: home.to_owned(),
            client: NodeClient::new(&url, Some(&token)),
            url,
            p2p: p2p.expect("loop ends with both"),
            token,
            child,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process ended, and how.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// The HTTP and p2p ports it listens on (for a restart on the same).
    pub fn ports(&self) -> (u16, u16) {
        let port = |s: &str| {
            s.trim_end_matches('/')
                .rsplit([':', '/'])
                .find_map(|p| p.parse().ok())
                .unwrap_or(0)
        };
        let p2p = self.p2p.split("/p2p/").next().unwrap_or_default();
        (port(&self.url), port(p2p))
    }

    /// Its libp2p peer id (kept across restarts).
    pub fn peer_id(&self) -> &str {
        self.p2p.rsplit("/p2p/").next().unwrap_or_default()
    }

    /// SIGKILLs it (no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn signal(&self, sig: i32) {
        #[cfg(unix)]
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
        #[cfg(not(unix))]
        let _ = sig;
    }
}

/// Stops nodes gracefully (SIGTERM), killing any still running after
/// `grace`. Returns when every process has been reaped.
pub fn stop_all(nodes: &mut [NodeProcess], grace: Duration) {
    #[cfg(unix)]
    for n in nodes.iter() {
        n.signal(libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && nodes.iter_mut().any(|n| n.exited().is_none()) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in nodes.iter_mut() {
        if n.exited().is_none() {
            let _ = n.child.kill();
        }
        let _ = n.child.wait();
    }
}
