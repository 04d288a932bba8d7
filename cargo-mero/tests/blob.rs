//! `cargo mero blob put | get` against a separately started node: the id
//! is the content's, a partial download continues where it stopped, a
//! file that is not the blob is caught.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cargo_mero::client::NodeClient;
use serde_json::Value;
use support::{cargo_mero, exe, wait_for};

/// A node started with `merod` next to cargo-mero (else `cargo-mero node`),
/// killed on drop.
struct Node {
    child: Child,
    url: String,
    token: String,
}

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

impl Node {
    fn start(home: &Path) -> Node {
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
        Node { child, url, token }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The blob fixture app, built with `cargo mero build`.
fn blob_app(cwd: &Path) -> Vec<u8> {
    let manifest = workspace().join("runtime/fixtures/blob-app/Cargo.toml");
    let out = cargo_mero(
        &[
            "build",
            "--json",
            "--manifest-path",
            manifest.to_str().unwrap(),
        ],
        cwd,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    std::fs::read(report["wasm"].as_str().unwrap()).unwrap()
}

#[test]
fn put_and_get_stream_resume_and_check_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"));
    let client = NodeClient::new(&node.url, Some(&node.token));
    let app = client
        .install_app(&blob_app(dir.path()), &mut |_| {})
        .unwrap();
    let ctx = client.create_context(app.hash.as_str()).unwrap().id.0;
    let remote = |verb: &str, extra: &[&str]| {
        let mut args = vec!["blob", verb];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--url", &node.url, "--token", &node.token]);
        args.extend_from_slice(&["--context", &ctx]);
        cargo_mero(&args, dir.path())
    };
    let json = |o: std::process::Output| -> Value {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };

    let data: Vec<u8> = (0..(5 << 20) + 3)
        .map(|i: u32| (i * 7 % 253) as u8)
        .collect();
    let file = dir.path().join("in.bin");
    std::fs::write(&file, &data).unwrap();
    let put = json(remote("put", &[file.to_str().unwrap(), "--json"]));
    let id = put["id"].as_str().unwrap().to_owned();
    assert_eq!(put["size"], data.len());
    assert_eq!(id, cargo_mero::blob::id_of_file(&file).unwrap().to_string());
    // Without --json the id alone goes to stdout, for scripts.
    let plain = remote("put", &[file.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&plain.stdout).trim(), id);

    let out = dir.path().join("out.bin");
    let got = json(remote("get", &[&id, "-o", out.to_str().unwrap(), "--json"]));
    assert_eq!(got["resumedFrom"], 0);
    assert_eq!(std::fs::read(&out).unwrap(), data);

    // Cut short: the next get continues from the end of what is there.
    let cut = (2 << 20) + 11;
    std::fs::write(&out, &data[..cut]).unwrap();
    let got = json(remote("get", &[&id, "-o", out.to_str().unwrap(), "--json"]));
    assert_eq!(got["resumedFrom"], cut);
    assert_eq!(std::fs::read(&out).unwrap(), data);
    // Already whole: nothing to fetch, still checked.
    let got = json(remote("get", &[&id, "-o", out.to_str().unwrap(), "--json"]));
    assert_eq!(got["resumedFrom"], data.len());

    // A partial file that is not the blob's start is caught at the end.
    let mut wrong = data[..cut].to_vec();
    wrong[5] ^= 0xff;
    std::fs::write(&out, &wrong).unwrap();
    let bad = remote("get", &[&id, "-o", out.to_str().unwrap()]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("does not hold") && err.contains("delete it"),
        "{err}"
    );

    // An unknown blob and a bad id: one line that says what is wrong.
    let missing = format!("blob:{}", "ab".repeat(32));
    let gone = remote(
        "get",
        &[&missing, "-o", dir.path().join("x").to_str().unwrap()],
    );
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("no member peer"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    let bad_id = remote("get", &["photo.png"]);
    assert!(String::from_utf8_lossy(&bad_id.stderr).contains("not a blob id"));
}
