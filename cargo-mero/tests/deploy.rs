//! `cargo mero deploy` and `call` against a separately started node.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cargo_mero::client::NodeClient;
use serde_json::Value;
use support::{add_view, cargo_mero, exe, new_project, wait_for};

/// `merod` (built next to cargo-mero by `scripts/test`), else the same
/// node embedded as `cargo-mero node`.
fn node_command() -> Command {
    let merod = exe().with_file_name("merod");
    if merod.is_file() {
        Command::new(merod)
    } else {
        let mut c = Command::new(exe());
        c.args(["mero", "node"]);
        c
    }
}

/// A separately started node, killed on drop.
struct Node {
    child: Child,
    url: String,
    token: String,
    log: std::path::PathBuf,
}

impl Node {
    fn start(home: &std::path::Path) -> Node {
        let init = node_command()
            .args(["init", "--listen", "127.0.0.1:0"])
            .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--home"])
            .arg(home)
            .output()
            .unwrap();
        assert!(init.status.success());
        let token = mero_node::config::NodeConfig::load(home)
            .unwrap()
            .auth
            .admin_token;
        let log = home.join("out.log");
        let child = node_command()
            .args(["run", "--home"])
            .arg(home)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = wait_for(Duration::from_secs(30), "the node to listen", || {
            let text = std::fs::read_to_string(&log).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("merod listening on "))
                .map(str::to_owned)
        });
        Node {
            child,
            url,
            token,
            log,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.log;
    }
}

fn json_out(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `cargo mero deploy --node URL --token T EXTRA...` in `project`.
fn deploy(
    url: &str,
    token: &str,
    extra: &[&str],
    project: &std::path::Path,
) -> std::process::Output {
    let mut args = vec!["deploy", "--node", url, "--token", token];
    args.extend_from_slice(extra);
    cargo_mero(&args, project)
}

#[test]
fn deploys_creates_upgrades_with_state_kept_and_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"));
    let project = new_project(dir.path(), "deploy-kv", "kv-store");
    let token = node.token.as_str();

    let first = json_out(&deploy(
        &node.url,
        token,
        &["--new-context", "--json"],
        &project,
    ));
    assert_eq!(first["action"], "created");
    let ctx = first["context"].as_str().unwrap().to_owned();
    let remote = [
        "--url",
        node.url.as_str(),
        "--token",
        token,
        "--context",
        ctx.as_str(),
    ];
    let call = |args: &[&str]| {
        let mut all = vec!["call"];
        all.extend_from_slice(args);
        all.extend_from_slice(&remote);
        cargo_mero(&all, &project)
    };
    json_out(&call(&["set", r#"{"key":"kept","value":"yes"}"#, "--json"]));

    add_view(&project, "version", 2);
    let second = json_out(&deploy(
        &node.url,
        token,
        &["--context", &ctx, "--json"],
        &project,
    ));
    assert_eq!(second["action"], "upgraded");
    assert_eq!(second["context"], ctx.as_str());
    assert_ne!(second["app"], first["app"]);
    assert_eq!(json_out(&call(&["version", "--json"]))["output"], 2);
    let kept = json_out(&call(&["get", r#"{"key":"kept"}"#, "--json"]));
    assert_eq!(kept["output"], "yes");
    assert_eq!(kept["via"], "query");

    // Failures: one line that says what to do, nothing deployed.
    let stderr = |o: std::process::Output| {
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = stderr(deploy(&node.url, "wrong", &["--new-context"], &project));
    assert!(
        err.contains("refused the token") && err.contains("--token"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let apps = NodeClient::new(&node.url, Some(token))
        .node_status()
        .unwrap();
    assert_eq!(apps.contexts, 1, "a failed deploy changed the node");

    let down = deploy("http://127.0.0.1:1", "x", &[], &project);
    assert!(stderr(down).contains("cannot reach the node"));
    let missing = ["--context", "11111111111111111111111111111111"];
    assert!(stderr(deploy(&node.url, token, &missing, &project)).contains("has no context"));
    assert!(stderr(call(&["nope"])).contains("has no method `nope`"));
}
