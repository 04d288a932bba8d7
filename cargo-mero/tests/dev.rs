//! `cargo mero dev` end to end: a real session with three nodes, edits
//! reloaded into every node with state kept, a syntax error that leaves the
//! old code running, and no node outliving the session (SIGINT or SIGKILL).

mod support;

use std::time::Duration;

use cargo_mero::client::CallKind;
use serde_json::json;
use support::{Dev, add_view, new_project, process_gone, wait_for};

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
