//! `cargo mero dev` end to end: a real session with three nodes, edits
//! reloaded into every node with state kept, a syntax error that leaves the
//! old code running, and no node outliving the session (SIGINT or SIGKILL);
//! and a `--template web` project whose page every node serves, which
//! reloads when the front end or the app is rebuilt.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cargo_mero::client::{CallKind, NodeClient};
use serde_json::json;
use support::{Dev, add_view, http_get, new_project, process_gone, wait_for};

const RELOAD: Duration = Duration::from_secs(300);

#[test]
fn dev_network_reloads_keeps_state_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "dev-kv", "kv-store");
    let mut dev = Dev::start(&project, &["--nodes", "3", "--clean"]);
    let net = dev.network();
    assert_eq!(net.nodes.len(), 3);

    // A write on node 1 is visible on nodes 2 and 3.
    dev.call(
        &net,
        1,
        CallKind::Execute,
        "set",
        json!({"key": "hello", "value": "world"}),
    )
    .unwrap();
    for i in [2, 3] {
        wait_for(Duration::from_secs(10), "replication", || {
            let v = dev
                .call(&net, i, CallKind::Query, "get", json!({"key": "hello"}))
                .ok()?;
            (v == json!("world")).then_some(())
        });
    }

    // A new method reaches all three nodes; earlier state is intact.
    add_view(&project, "answer", 42);
    for i in 1..=3 {
        wait_for(RELOAD, "the new method on every node", || {
            let v = dev
                .call(&net, i, CallKind::Query, "answer", json!({}))
                .ok()?;
            (v == json!(42)).then_some(())
        });
        let v = dev.call(&net, i, CallKind::Query, "get", json!({"key": "hello"}));
        assert_eq!(v.unwrap(), json!("world"));
    }
    dev.wait_output("+ answer(&self) -> i64", RELOAD);

    // A syntax error: shown, and the old code keeps answering.
    let lib = project.join("src/lib.rs");
    let good = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{good}\nfn broken( {{\n")).unwrap();
    dev.wait_output("build failed", RELOAD);
    assert!(
        dev.output().contains("unclosed delimiter"),
        "{}",
        dev.output()
    );
    for i in 1..=3 {
        let v = dev.call(&net, i, CallKind::Query, "answer", json!({}));
        assert_eq!(v.unwrap(), json!(42));
    }
    // Fixing it reloads.
    std::fs::write(&lib, &good).unwrap();
    add_view(&project, "fixed", 7);
    for i in 1..=3 {
        wait_for(RELOAD, "the fix on every node", || {
            let v = dev
                .call(&net, i, CallKind::Query, "fixed", json!({}))
                .ok()?;
            (v == json!(7)).then_some(())
        });
    }

    // A new register field without a migration: existing state has no
    // value for it, so the reload is refused with the schema diff and what
    // to write, and the old code keeps answering.
    let src = std::fs::read_to_string(&lib).unwrap();
    let with_title = src
        .replacen(
            "    writes: Counter,\n}",
            "    writes: Counter,\n    title: LwwRegister<String>,\n}",
            1,
        )
        .replacen(
            "            writes: Counter::new(),\n",
            "            writes: Counter::new(),\n            title: LwwRegister::new(\"untitled\".into()),\n",
            1,
        )
        .replacen(
            "    /// How many writes all nodes made together.",
            "    /// The title.\n    pub fn title(&self) -> String {\n        self.title.get().clone()\n    }\n\n    /// How many writes all nodes made together.",
            1,
        );
    assert_ne!(with_title, src, "the template changed: update this test");
    std::fs::write(&lib, &with_title).unwrap();
    dev.wait_output("not reloaded", RELOAD);
    let out = dev.output();
    assert!(out.contains("state schema changes:"), "{out}");
    assert!(out.contains("+ title: LwwRegister<String>"), "{out}");
    assert!(out.contains("#[app::migrate]"), "{out}");
    for i in 1..=3 {
        let v = dev.call(&net, i, CallKind::Query, "fixed", json!({}));
        assert_eq!(v.unwrap(), json!(7));
    }
    // With a migration it reloads, state kept, and every method works.
    let migrated = with_title.replacen(
        "    /// The title.",
        "    /// Gives existing state its title.\n    #[app::migrate]\n    pub fn migrate() -> Self {\n        Self {\n            items: mero_sdk::migration::field(\"items\"),\n            writes: mero_sdk::migration::field(\"writes\"),\n            title: LwwRegister::new(\"migrated\".into()),\n        }\n    }\n\n    /// The title.",
        1,
    );
    std::fs::write(&lib, &migrated).unwrap();
    for i in 1..=3 {
        wait_for(RELOAD, "the migrated app on every node", || {
            let v = dev
                .call(&net, i, CallKind::Query, "title", json!({}))
                .ok()?;
            (v == json!("migrated")).then_some(())
        });
        let v = dev.call(&net, i, CallKind::Query, "get", json!({"key": "hello"}));
        assert_eq!(v.unwrap(), json!("world"));
    }
    dev.wait_output("state migrated by #[app::migrate]", RELOAD);

    // SIGINT: every node is gone within seconds.
    let pids: Vec<u32> = dev.network().nodes.iter().map(|n| n.pid).collect();
    dev.signal(libc::SIGINT);
    wait_for(
        Duration::from_secs(15),
        "the nodes to stop after SIGINT",
        || pids.iter().all(|&p| process_gone(p)).then_some(()),
    );
    let status = wait_for(Duration::from_secs(15), "dev to exit", || {
        dev.child.try_wait().unwrap()
    });
    assert!(status.success(), "{}", dev.output());

    // Running it again resumes the same network and state.
    let dev = Dev::start(&project, &["--nodes", "3"]);
    assert!(
        dev.output().contains("resuming context"),
        "{}",
        dev.output()
    );
    let resumed = dev.network();
    assert_eq!(resumed.context, net.context);
    let v = dev.call(&resumed, 3, CallKind::Query, "get", json!({"key": "hello"}));
    assert_eq!(v.unwrap(), json!("world"));

    // A second session in another project runs side by side.
    let other = new_project(dir.path(), "dev-counter", "counter");
    let side = Dev::start(&other, &["--nodes", "2", "--no-watch", "--clean"]);
    let side_net = side.network();
    side.call(&side_net, 1, CallKind::Execute, "add", json!({"by": 5}))
        .unwrap();
    wait_for(Duration::from_secs(10), "the side network", || {
        let v = side
            .call(&side_net, 2, CallKind::Query, "value", json!({}))
            .ok()?;
        (v == json!(5)).then_some(())
    });
    let v = dev.call(&resumed, 1, CallKind::Query, "get", json!({"key": "hello"}));
    assert_eq!(v.unwrap(), json!("world"));
    drop(side);

    if std::env::var_os("MERO_TEST_SHOW").is_some() {
        eprintln!("{}", dev.output());
    }
    // SIGKILL: the session cannot clean up, yet its nodes exit too.
    let pids: Vec<u32> = resumed.nodes.iter().map(|n| n.pid).collect();
    dev.signal(libc::SIGKILL);
    wait_for(
        Duration::from_secs(15),
        "the nodes to exit after SIGKILL",
        || pids.iter().all(|&p| process_gone(p)).then_some(()),
    );
}

/// The reload stream of a dev session, read as a page would.
struct ReloadStream {
    stream: TcpStream,
    seen: String,
}

impl ReloadStream {
    fn open(url: &str) -> Self {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = TcpStream::connect(host).unwrap();
        write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut s = Self {
            stream,
            seen: String::new(),
        };
        s.wait_n("event: hello", 1, Duration::from_secs(10));
        s
    }

    /// Waits until `needle` has arrived `count` times in all.
    fn wait_n(&mut self, needle: &str, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while self.seen.matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} (x{count}) on the reload stream: {}",
                self.seen
            );
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the reload stream closed: {}", self.seen),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => {} // timeout: read again
            }
        }
    }
}

/// The client token in a page URL.
fn page_token(url: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .unwrap()
        .to_owned()
}

#[test]
fn dev_serves_the_front_end_on_every_node_and_reloads_the_pages() {
    if std::env::var_os("MERO_SKIP_BROWSER").is_some() {
        eprintln!("MERO_SKIP_BROWSER is set: skipping the web dev test (it needs Node.js)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "dev-web", "web");
    let mut dev = Dev::start(&project, &["--nodes", "2", "--clean"]);
    let net = dev.network();
    let reload_url = net.reload_url.clone().expect("a reload URL");
    let main_js = |i: usize| http_get(&format!("{}/app/main.js", net.nodes[i].rpc_url));

    // Each node serves the page at the URL printed for it, with a client
    // token of that node: two users of one app.
    for n in &net.nodes {
        let page = n.page_url.clone().expect("a page URL");
        assert!(dev.output().contains(&page), "{}", dev.output());
        let (status, html) = http_get(&page);
        assert_eq!(status, 200, "{html}");
        assert!(
            html.contains("<title>dev-web</title>") && html.contains(&reload_url),
            "{html}"
        );
        let (status, js) = main_js(n.index - 1);
        assert_eq!(status, 200);
        assert!(
            js.contains(&net.app),
            "the bundle lacks the running app's bindings"
        );
    }
    let token1 = page_token(net.nodes[0].page_url.as_deref().unwrap());
    let page1 = NodeClient::new(&net.nodes[0].rpc_url, Some(&token1));
    let id = page1
        .call(
            CallKind::Execute,
            &net.context,
            "add",
            &json!({"text": "from page 1"}),
        )
        .unwrap();
    assert!(id.is_string(), "{id}");
    wait_for(Duration::from_secs(10), "the item on node 2", || {
        let items = dev
            .call(&net, 2, CallKind::Query, "items", json!({}))
            .ok()?;
        (items[0][1] == "from page 1").then_some(())
    });
    // The token is node 1's: node 2 does not take it (a GET, so the
    // refusal cannot race a request body).
    let (status, body) = http_get(&format!(
        "{}/events?context={}&token={token1}",
        net.nodes[1].rpc_url, net.context
    ));
    assert_eq!(status, 401, "{body}");

    // Node 1's and node 2's pages in a browser: two users of one list.
    let script = support::ts_packages().join("web_pages.mjs");
    let out = std::process::Command::new("node")
        .arg(&script)
        .args([
            net.nodes[0].page_url.as_deref().unwrap(),
            net.nodes[1].page_url.as_deref().unwrap(),
            project.join("web/src/main.ts").to_str().unwrap(),
        ])
        .output()
        .expect("running node (Node.js); scripts/test installs it, or set MERO_SKIP_BROWSER=1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("web pages test passed"),
        "the browser test of the pages failed; the session said:\n{}",
        dev.output()
    );
    let items = dev
        .call(&net, 1, CallKind::Query, "items", json!({}))
        .unwrap();
    assert!(items.to_string().contains("from the first user"), "{items}");

    // Saving the page's code rebuilds the front end and reloads the pages.
    let mut reloads = ReloadStream::open(&reload_url);
    let main_ts = project.join("web/src/main.ts");
    let good = std::fs::read_to_string(&main_ts).unwrap();
    let edited = good.replace("Write something first.", "Type something first.");
    assert_ne!(edited, good, "the template changed: update this test");
    std::fs::write(&main_ts, &edited).unwrap();
    reloads.wait_n("\"reason\":\"web\"", 1, RELOAD);
    for i in 0..2 {
        assert!(main_js(i).1.contains("Type something first."));
    }
    dev.wait_output("front end rebuilt", RELOAD);

    // A type error: shown, and the pages keep what they had.
    std::fs::write(
        &main_ts,
        format!("{edited}\nconst wrong: number = \"x\";\n"),
    )
    .unwrap();
    dev.wait_output("`npm run build` failed", RELOAD);
    assert!(dev.output().contains("TS2322"), "{}", dev.output());
    assert!(main_js(0).1.contains("Type something first."));
    std::fs::write(&main_ts, &edited).unwrap();
    reloads.wait_n("\"reason\":\"web\"", 2, RELOAD);

    // Saving Rust code reloads the app, regenerates the bindings and
    // reloads the pages with them.
    let lib = project.join("src/lib.rs");
    let src = std::fs::read_to_string(&lib).unwrap();
    let marker = "    /// How many items are not done yet.";
    assert!(
        src.contains(marker),
        "the template changed: update this test"
    );
    let with_view = src.replacen(
        marker,
        &format!("    /// Added by a test.\n    pub fn total(&self) -> u32 {{\n        self.items.len() as u32\n    }}\n\n{marker}"),
        1,
    );
    std::fs::write(&lib, &with_view).unwrap();
    reloads.wait_n("\"reason\":\"app\"", 1, RELOAD);
    let generated = project.join("web/src/generated/dev-web.ts");
    let ts = std::fs::read_to_string(&generated).unwrap();
    assert!(ts.contains("total(): Promise<number>"), "{ts}");
    let app = dev.network().app;
    assert_ne!(app, net.app);
    assert!(ts.contains(&app));
    for i in 0..2 {
        assert!(
            main_js(i).1.contains(&app),
            "node {} serves stale bindings",
            i + 1
        );
    }
    dev.wait_output("with the new bindings", RELOAD);

    // A changed signature: the app reloads, and the page's code no longer
    // type-checks against the new bindings, which the session says.
    let changed = with_view.replacen(
        "pub fn add(&mut self, text: String)",
        "pub fn add(&mut self, text: String, pinned: bool)",
        1,
    );
    assert_ne!(changed, with_view, "the template changed: update this test");
    let failures = dev.output().matches("`npm run build` failed").count();
    std::fs::write(
        &lib,
        changed.replacen(
            "let text = text.trim()",
            "let _ = pinned;\n        let text = text.trim()",
            1,
        ),
    )
    .unwrap();
    dev.wait_output_n("`npm run build` failed", failures + 1, RELOAD);
    let ts = std::fs::read_to_string(&generated).unwrap();
    assert!(
        ts.contains("add(args: { text: string; pinned: boolean }): Promise<string>"),
        "{ts}"
    );
    let out = dev.output();
    let tsc = out
        .rsplit("`npm run build` failed")
        .nth(1)
        .unwrap_or_default();
    assert!(
        tsc.contains("src/main.ts") && tsc.contains("'pinned'"),
        "no type error about `pinned` before the failure:\n{out}"
    );
    // Passing the new argument fixes the page.
    std::fs::write(
        &main_ts,
        edited.replace(
            "add({ text: input.value })",
            "add({ text: input.value, pinned: false })",
        ),
    )
    .unwrap();
    reloads.wait_n("\"reason\":\"web\"", 3, RELOAD);
    let v = page1.call(
        CallKind::Execute,
        &net.context,
        "add",
        &json!({"text": "pinned", "pinned": true}),
    );
    assert!(v.is_ok(), "{v:?}");
    if std::env::var_os("MERO_TEST_SHOW").is_some() {
        eprintln!("{}", dev.output());
    }
}
