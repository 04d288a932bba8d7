//! The NAT test network of `scripts/netns/nat`, and nodes in it.

use std::path::Path;
use std::process::Command;

use super::{NodeProc, workspace};

/// The namespaces of one test run; removed when dropped, even on a failure.
pub struct Net {
    prefix: String,
}

/// The public host's address, and the NAT routers' (A's, B's).
pub const PUBLIC_IP: &str = "198.51.100.1";
pub const ROUTER_A_IP: &str = "198.51.100.11";

impl Net {
    /// Creates the network; `None` (with a note) when not root.
    pub fn up() -> Option<Self> {
        let root = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&root.stdout).trim() != "0" {
            eprintln!("skipped: network namespaces need root");
            return None;
        }
        let net = Net {
            prefix: format!("mn{}", std::process::id() % 100_000),
        };
        let ok = net
            .script("up")
            .status()
            .expect("scripts/netns/nat")
            .success();
        assert!(ok, "scripts/netns/nat up failed");
        Some(net)
    }

    fn script(&self, cmd: &str) -> Command {
        let mut c = Command::new(workspace().join("scripts/netns/nat"));
        c.args([cmd, &self.prefix]);
        c
    }

    /// The namespace of `host` (`pub`, `a` or `b`).
    pub fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// Starts a node on `host`, listening on TCP and QUIC port 4001 of `ip`
    /// (`0.0.0.0` behind a NAT: libp2p reuses a listen port for dials only
    /// from a listener of the same kind, and a hole punch needs the port
    /// the NAT mapped), with `extra` arguments of `merod run`.
    pub fn start(&self, host: &str, dir: &Path, ip: &str, extra: &[&str]) -> NodeProc {
        let tcp = format!("/ip4/{ip}/tcp/4001");
        let quic = format!("/ip4/{ip}/udp/4001/quic-v1");
        let mut args = vec!["--p2p-listen", &tcp, "--p2p-listen", &quic];
        args.extend_from_slice(extra);
        NodeProc::start_in(&self.ns(host), dir, &args)
    }

    /// Runs `f` on a thread inside `host`'s namespace: sockets it opens
    /// belong there (and keep working when handed to other threads).
    pub fn inside<T: Send + 'static>(
        &self,
        host: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let path = format!("/var/run/netns/{}", self.ns(host));
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("the namespace exists");
            use std::os::fd::AsRawFd;
            // SAFETY: setns on this thread only, with a valid namespace fd.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("the thread inside the namespace")
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = self.script("down").status();
    }
}
