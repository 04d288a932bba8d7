//! Acceptance: cross-context calls through real `merod` processes. A
//! method of one context calls methods of other contexts its node is a
//! member of: views answer at once; a mutating call commits on both
//! contexts (a delta in each, replicated to every member) or on neither;
//! chains, cycles, depth, handlers and views are limited as documented in
//! `docs/xcall.md`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::member::log;
use support::{NodeProc, build_app, wait_converged, wait_for};

const APP: &str = "runtime/fixtures/xcall-app/Cargo.toml";

/// Two nodes, each a member of contexts `a`, `b`, `c`, `d` and `e` of the
/// fixture (created on node 0).
struct Net {
    nodes: Vec<NodeProc>,
    ctx: Vec<String>,
    _dirs: Vec<tempfile::TempDir>,
}

fn net() -> Net {
    let wasm = build_app(APP);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let first = NodeProc::init_and_start(dirs[0].path());
    let second = NodeProc::init_and_join(dirs[1].path(), &[&first.p2p]);
    let app = first.install(&wasm);
    let ctx: Vec<String> = (0..5).map(|_| first.create_context(&app)).collect();
    for c in &ctx {
        second.join(&first.invite(c));
    }
    let nodes = vec![first, second];
    for c in &ctx {
        wait_converged(
            &nodes.iter().collect::<Vec<_>>(),
            c,
            Duration::from_secs(60),
        );
    }
    for n in &nodes {
        wait_for(Duration::from_secs(30), || {
            (n.send("GET", &format!("/admin/apps/{app}"), None, true).0 == 200).then_some(())
        })
        .expect("the app reaches every member");
    }
    Net {
        nodes,
        ctx,
        _dirs: dirs,
    }
}

impl Net {
    fn all(&self) -> Vec<&NodeProc> {
        self.nodes.iter().collect()
    }

    fn converge(&self) {
        for c in &self.ctx {
            wait_converged(&self.all(), c, Duration::from_secs(30));
        }
    }

    fn total(&self, node: usize, ctx: usize) -> i64 {
        self.nodes[node]
            .query(&self.ctx[ctx], "total", json!({}))
            .as_i64()
            .unwrap()
    }

    /// Every context's state and log length on node 0.
    fn snapshot(&self) -> Vec<(Value, usize)> {
        self.ctx
            .iter()
            .map(|c| (self.nodes[0].state(c), log(&self.nodes[0], c).len()))
            .collect()
    }

    /// An `execute` on node 0 that must fail; returns the error.
    fn fails(&self, ctx: usize, method: &str, args: Value) -> Value {
        let r = self.nodes[0].rpc("execute", &self.ctx[ctx], method, args);
        assert!(r.get("error").is_some(), "{method} should fail: {r}");
        r["error"].clone()
    }
}

#[test]
fn views_answer_and_mutating_calls_commit_on_both_contexts() {
    let n = net();
    let (a, b) = (&n.ctx[0], &n.ctx[1]);
    n.nodes[0].execute(b, "add", json!({"by": 5, "note": "seed"}));
    n.nodes[0].execute(a, "add", json!({"by": 100, "note": "seed"}));
    // A view of another context, from a query and from an execute.
    assert_eq!(
        n.nodes[0].query(a, "sum_with", json!({"other": b})),
        json!(105)
    );
    assert_eq!(
        n.nodes[0].execute(a, "sum_with", json!({"other": b})),
        json!(105)
    );

    let (la, lb) = (log(&n.nodes[0], a).len(), log(&n.nodes[0], b).len());
    let out = n.nodes[0].execute(
        a,
        "transfer",
        json!({"to": b, "by": 30, "fail_after": false}),
    );
    assert_eq!(out, json!(35), "the callee's typed result");
    assert_eq!(log(&n.nodes[0], a).len(), la + 1, "one delta in the caller");
    assert_eq!(log(&n.nodes[0], b).len(), lb + 1, "one delta in the callee");
    n.converge();
    for node in 0..2 {
        assert_eq!(n.total(node, 0), 70);
        assert_eq!(n.total(node, 1), 35);
        let notes = n.nodes[node].query(b, "notes", json!({}));
        assert_eq!(notes, json!([[format!("from {a}"), 30], ["seed", 5]]));
    }
    // One call into several contexts: each gets its own delta.
    let out = n.nodes[0].execute(a, "split", json!({"to": [b, &n.ctx[2]], "by": 1}));
    assert_eq!(out, json!([36, 1]));
    n.converge();
    assert_eq!((n.total(1, 0), n.total(1, 1), n.total(1, 2)), (68, 36, 1));

    // Both contexts' deltas were in one write: a node killed right after
    // the call has both.
    let (a, b) = (a.clone(), b.clone());
    let mut n = n;
    n.nodes[0].execute(
        &a,
        "transfer",
        json!({"to": b, "by": 8, "fail_after": false}),
    );
    n.nodes.remove(0).kill();
    n.nodes.insert(0, NodeProc::start(n._dirs[0].path()));
    assert_eq!((n.total(0, 0), n.total(0, 1)), (60, 44));
}

/// Acceptance: an xcall whose callee fails leaves neither context changed;
/// so does a caller that fails after its callee succeeded.
#[test]
fn an_xcall_whose_callee_fails_leaves_neither_context_changed() {
    let n = net();
    let (a, b) = (&n.ctx[0], &n.ctx[1]);
    n.nodes[0].execute(a, "add", json!({"by": 10, "note": "seed"}));
    n.converge();
    let before = n.snapshot();

    // The callee fails ("nothing to add"): the caller propagates it.
    let err = n.fails(
        0,
        "transfer",
        json!({"to": b, "by": 0, "fail_after": false}),
    );
    assert!(err.to_string().contains("nothing to add"), "{err}");
    assert_eq!(n.snapshot(), before, "neither context changed");

    // The callee succeeds, then the caller fails: the callee is undone.
    let err = n.fails(0, "transfer", json!({"to": b, "by": 4, "fail_after": true}));
    assert!(err.to_string().contains("failing on purpose"), "{err}");
    assert_eq!(n.snapshot(), before, "neither context changed");
    assert_eq!(n.total(0, 1), 0);

    // A chain that fails at its end undoes every context along it.
    let hops = json!([b, &n.ctx[2], "11111111111111111111111111111111"]);
    let err = n.fails(0, "relay", json!({"hops": hops, "by": 1}));
    assert!(err.to_string().contains("not a member"), "{err}");
    assert_eq!(n.snapshot(), before, "no context along the chain changed");

    // The undone changes leave nothing behind: later calls commit and
    // replicate, and every node agrees.
    n.nodes[0].execute(
        a,
        "transfer",
        json!({"to": b, "by": 3, "fail_after": false}),
    );
    n.converge();
    for node in 0..2 {
        assert_eq!((n.total(node, 0), n.total(node, 1)), (7, 3));
    }
}

#[test]
fn chains_cycles_depth_views_and_handlers_are_limited() {
    let n = net();
    let c = &n.ctx;
    // A chain within the depth limit (4 contexts): each adds.
    let out = n.nodes[0].execute(
        &c[0],
        "relay",
        json!({"hops": [&c[1], &c[2], &c[3]], "by": 2}),
    );
    assert_eq!(out, json!(2));
    n.converge();
    for i in 0..4 {
        assert_eq!(n.total(1, i), 2, "context {i}");
    }
    let before = n.snapshot();
    // One context more is refused, and nothing along the chain changes.
    let err = n.fails(
        0,
        "relay",
        json!({"hops": [&c[1], &c[2], &c[3], &c[4]], "by": 2}),
    );
    assert!(err.to_string().contains("xcall_depth"), "{err}");
    // Calling itself, or back into its chain, is refused.
    let err = n.fails(
        0,
        "transfer",
        json!({"to": &c[0], "by": 1, "fail_after": false}),
    );
    assert!(err.to_string().contains("already in this chain"), "{err}");
    let err = n.fails(0, "relay", json!({"hops": [&c[1], &c[0]], "by": 1}));
    assert!(err.to_string().contains("already in this chain"), "{err}");
    // A method the callee does not offer comes back as the callee's error.
    let out = n.nodes[0].execute(
        &c[0],
        "call_any",
        json!({"to": &c[1], "method": "local_add", "args": {"by": 1}}),
    );
    assert!(
        out["err"].as_str().unwrap().contains("#[app::xcall]"),
        "{out}"
    );
    // A view cannot make a mutating call.
    let r = n.nodes[0].rpc("query", &c[0], "sneaky", json!({"to": &c[1]}));
    assert!(r.to_string().contains("in a view"), "{r}");
    assert_eq!(n.snapshot(), before, "refused calls change nothing");

    // A handler, run on node 1 because of node 0's delta, may not call
    // other contexts: no peer makes this node act in another context.
    let calls_before = handler_errors(&n.nodes[1], &c[0]);
    n.nodes[0].execute(&c[0], "poke", json!({"to": &c[1]}));
    wait_for(Duration::from_secs(30), || {
        (handler_errors(&n.nodes[1], &c[0]) > calls_before).then_some(())
    })
    .expect("the handler on node 1 ran and failed");
    n.converge();
    assert_eq!(n.total(1, 1), 2, "the handler added nothing");
}

/// An app that arrived from a peer (with an upgrade, or a context joined)
/// may not act in this node's other contexts until this node's operator
/// installs it: another node's admin does not decide what runs in them.
#[test]
fn only_apps_this_nodes_operator_installed_call_other_contexts() {
    let n = net();
    let (a, b) = (&n.ctx[0], &n.ctx[1]);
    let args = json!({"to": b, "by": 1, "fail_after": false});
    // Node 1 fetched the app from node 0 when it joined.
    let r = n.nodes[1].rpc("execute", a, "transfer", args.clone());
    assert!(r.to_string().contains("did not install"), "{r}");
    let r = n.nodes[1].rpc("query", a, "sum_with", json!({"other": b}));
    assert!(r.to_string().contains("did not install"), "{r}");
    // Its operator installs the same app: now it may.
    n.nodes[1].install(&build_app(APP));
    assert_eq!(n.nodes[1].execute(a, "transfer", args), json!(1));
    n.converge();
    assert_eq!((n.total(0, 0), n.total(0, 1)), (-1, 1));
}

/// Failed calls of `ctx` on `node`, all codes.
fn handler_errors(node: &NodeProc, ctx: &str) -> u64 {
    node.metric_lines(|l| l.starts_with("mero_call_errors_total") && l.contains(ctx))
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Two callers that call into each other's contexts at once never wedge
/// the node: each call commits on both contexts or is refused as busy,
/// and the balances add up.
#[test]
fn calls_into_each_others_contexts_at_once_never_wedge() {
    let n = net();
    let (a, b) = (n.ctx[0].clone(), n.ctx[1].clone());
    let node = &n.nodes[0];
    let ok = std::sync::atomic::AtomicI64::new(0);
    std::thread::scope(|s| {
        for (from, to) in [(&a, &b), (&b, &a)] {
            for _ in 0..2 {
                let ok = &ok;
                s.spawn(move || {
                    for _ in 0..15 {
                        let r = node.rpc(
                            "execute",
                            from,
                            "transfer",
                            json!({"to": to, "by": 1, "fail_after": false}),
                        );
                        match r.get("error") {
                            None => {
                                ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Some(e) => assert!(e.to_string().contains("busy"), "{e}"),
                        }
                    }
                });
            }
        }
    });
    assert!(ok.into_inner() > 0, "some transfers went through");
    n.converge();
    assert_eq!(
        n.total(1, 0) + n.total(1, 1),
        0,
        "every transfer moved as much as it took"
    );
}

/// A node whose replica refuses one callee's delta when the caller commits
/// (`[replica] max_events_per_delta = 0`: `add` emits an event, which only
/// `Replica::author` counts) fails the caller. Every other callee of that
/// call must be left as the store holds it: not showing a change no write
/// holds, and still taking calls.
#[test]
fn a_callee_refused_at_commit_leaves_the_later_callees_as_stored() {
    let wasm = build_app(APP);
    let dir = tempfile::tempdir().unwrap();
    support::init_home(dir.path());
    let (ok, out) =
        support::merod_config(dir.path(), &["set", "replica.max_events_per_delta", "0"]);
    assert!(ok, "{out}");
    let node = NodeProc::start(dir.path());
    let app = node.install(&wasm);
    let ctx: Vec<String> = (0..3).map(|_| node.create_context(&app)).collect();
    let (a, b, c) = (&ctx[0], &ctx[1], &ctx[2]);
    let before: Vec<usize> = ctx.iter().map(|x| log(&node, x).len()).collect();

    // `b`'s delta is authored first and refused; `c`'s comes after it.
    let r = node.rpc("execute", a, "split", json!({"to": [b, c], "by": 1}));
    assert!(
        r.to_string().contains("a delta may carry 0"),
        "the callee's delta is refused: {r}"
    );
    let after: Vec<usize> = ctx.iter().map(|x| log(&node, x).len()).collect();
    assert_eq!(after, before, "nothing was written");
    assert_eq!(node.query(a, "total", json!({})), json!(0));
    assert_eq!(node.query(b, "total", json!({})), json!(0));
    assert_eq!(
        node.query(c, "total", json!({})),
        json!(0),
        "context c shows a change that no write holds"
    );
    // `c` must still author deltas (its op counter continues its last delta).
    let r = node.rpc("execute", c, "local_add", json!({"by": 5}));
    assert_eq!(r["result"]["output"], json!(5), "context c is wedged: {r}");
}

/// Writes a throwaway app crate (outside the workspace, against this
/// checkout's SDK and lock file) and builds it like the fixtures.
fn build_scratch_app(dir: &std::path::Path, lib: &str) -> Vec<u8> {
    let ws = support::workspace();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        r#"[package]
name = "xcall-scratch"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
mero-sdk = {{ path = {sdk:?} }}
serde_json = "1"

[workspace]
"#,
        sdk = ws.join("sdk").display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join("src/lib.rs"), lib).unwrap();
    std::fs::copy(ws.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    build_app(dir.join("Cargo.toml").to_str().unwrap())
}

/// An app whose offered methods write only node-private storage, or
/// recurse before calling further.
const SCRATCH: &str = r#"
use mero_sdk::app;
use mero_sdk::collections::Counter;
use mero_sdk::env;
use mero_sdk::xcall::{self, ContextId};

#[app::state(emits = Event)]
pub struct Scratch {
    hits: Counter,
}

#[app::event]
pub enum Event {
    Got { by: i64 },
}

#[app::logic]
impl Scratch {
    #[app::init]
    pub fn init() -> Self {
        Self { hits: Counter::new() }
    }

    /// Writes node-private storage only; offered to other contexts.
    #[app::xcall]
    pub fn stash(&mut self, key: String, value: String) {
        env::private::set(key.as_bytes(), value.as_bytes());
    }

    /// Reads node-private storage.
    pub fn peek(&self, key: String) -> Option<String> {
        env::private::get(key.as_bytes()).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Has `to` stash `key`.
    pub fn stash_in(&mut self, to: ContextId, key: String, value: String) -> app::Result<()> {
        xcall::call::<()>(&to, "stash", &serde_json::json!({ "key": key, "value": value }))?;
        Ok(())
    }

    /// Adds `by` and says so; offered to other contexts.
    #[app::xcall]
    pub fn got(&mut self, by: i64) -> i64 {
        self.hits.add(by);
        app::emit!(Event::Got { by });
        self.hits.value()
    }

    /// Has `to` add `by`.
    pub fn give(&mut self, to: ContextId, by: i64) -> app::Result<i64> {
        Ok(xcall::call(&to, "got", &serde_json::json!({ "by": by }))?)
    }

    /// Writes, then spins for `rounds` (until the call times out, if many).
    pub fn spin(&mut self, rounds: u64) -> u64 {
        self.hits.add(1);
        let mut x = 0u64;
        for i in 0..rounds {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        x
    }

    /// Recurses `depth` frames, then does the same in the first of `hops`.
    #[app::xcall]
    pub fn dive(&self, hops: Vec<ContextId>, depth: u64) -> u64 {
        down(&hops, depth, depth)
    }
}

fn down(hops: &[ContextId], n: u64, depth: u64) -> u64 {
    if n == 0 {
        return match hops.split_first() {
            Some((next, rest)) => {
                let args = serde_json::json!({ "hops": rest, "depth": depth });
                1 + xcall::view::<u64>(next, "dive", &args).unwrap_or(1000)
            }
            None => 0,
        };
    }
    std::hint::black_box(down(hops, std::hint::black_box(n - 1), depth))
}
"#;

/// One node with `n` contexts of the scratch app (built once per run).
fn scratch_node(n: usize) -> (tempfile::TempDir, NodeProc, Vec<String>) {
    static WASM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let wasm = WASM.get_or_init(|| {
        let scratch = tempfile::tempdir().unwrap();
        build_scratch_app(scratch.path(), SCRATCH)
    });
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::init_and_start(dir.path());
    let app = node.install(wasm);
    let ctx = (0..n).map(|_| node.create_context(&app)).collect();
    (dir, node, ctx)
}

/// A callee whose call changes only node-private storage succeeds, so its
/// writes must be kept like any callee's.
#[test]
fn a_callee_that_only_writes_private_storage_keeps_its_writes() {
    let (_dir, node, ctx) = scratch_node(2);
    let (a, b) = (ctx[0].clone(), ctx[1].clone());
    // Directly, the write is kept.
    node.execute(&b, "stash", json!({"key": "k0", "value": "direct"}));
    assert_eq!(
        node.query(&b, "peek", json!({"key": "k0"})),
        json!("direct")
    );
    // Through another context, the call succeeds...
    let r = node.rpc(
        "execute",
        &a,
        "stash_in",
        json!({"to": &b, "key": "k1", "value": "v"}),
    );
    assert!(r.get("error").is_none(), "{r}");
    // ...so its write must be there.
    assert_eq!(
        node.query(&b, "peek", json!({"key": "k1"})),
        json!("v"),
        "the callee's private write was dropped although the call succeeded"
    );
}

/// Whether a child process is still running (not exited, not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with(['R', 'S', 'D']))
        })
        .unwrap_or(false)
}

/// Each WASM instance may use its own `max_wasm_stack` of native stack, and
/// a chain of cross-context calls runs every instance on one thread: a
/// chain of `xcall_depth` contexts, each using its own allowance, must fail
/// as a call, never take the node down.
#[test]
fn a_chain_of_deep_callees_fails_as_a_call_not_as_the_node() {
    let (_dir, node, ctx) = scratch_node(4);
    // The deepest recursion one instance survives on its own.
    let fits = |depth: u64| {
        let r = node.rpc(
            "query",
            &ctx[0],
            "dive",
            json!({"hops": [], "depth": depth}),
        );
        r.get("error").is_none()
    };
    let (mut lo, mut hi) = (1u64, 1u64 << 22);
    assert!(
        fits(lo) && !fits(hi),
        "a single instance overflows its WASM stack"
    );
    let too_deep = node.rpc("query", &ctx[0], "dive", json!({"hops": [], "depth": hi}));
    eprintln!("{hi} frames: {too_deep}");
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) { lo = mid } else { hi = mid }
    }
    eprintln!("one instance survives a recursion {lo} frames deep");
    assert!(running(node.pid()));
    // Four contexts, each recursing close to its own allowance: the chain
    // answers (or fails as a call) at every depth.
    let hops = json!([&ctx[1], &ctx[2], &ctx[3]]);
    for pct in 95..=100 {
        let depth = lo * pct / 100;
        let args = json!({"hops": hops, "depth": depth});
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            node.rpc("query", &ctx[0], "dive", args)
        }));
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            running(node.pid()),
            "merod died on a chain of 4 contexts each recursing {depth} frames ({pct}% of one instance's allowance)"
        );
        eprintln!("{pct}%: {}", answer.unwrap());
    }
}

/// The `Got` amounts an SSE subscriber of `ctx` sees, until `last`.
fn sse_got_until(
    node: &NodeProc,
    ctx: &str,
    last: i64,
    connected: std::sync::mpsc::Sender<()>,
) -> Vec<i64> {
    use std::io::BufRead;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let resp = agent
        .get(format!("{}/events?context={ctx}", node.url))
        .header("Authorization", format!("Bearer {}", node.token))
        .call()
        .expect("SSE connects");
    assert_eq!(resp.status(), 200);
    connected.send(()).unwrap();
    let lines = std::io::BufReader::new(resp.into_body().into_reader()).lines();
    let mut seen = Vec::new();
    for line in lines {
        let line = line.expect("readable");
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let v: Value = serde_json::from_str(data.trim_start()).unwrap();
        if let Some(by) = v["data"]["by"].as_i64() {
            seen.push(by);
            if by == last {
                return seen;
            }
        }
    }
    seen
}

/// A callee's stream items are numbered when its caller commits; another
/// call of the callee context that commits after the reservation ended but
/// before the caller's group published them gets the next numbers. Every
/// subscriber of the callee context must still get every item.
#[test]
fn a_subscriber_of_the_callee_gets_its_events_when_the_callee_is_used_again_at_once() {
    let (_dir, node, ctx) = scratch_node(2);
    let (a, b) = (ctx[0].clone(), ctx[1].clone());
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let sub = s.spawn(|| sse_got_until(&node, &b, 100, tx));
        rx.recv().unwrap();
        // One group of `a`: a call into `b`, then a call that runs until
        // it times out. `b`'s reservation ends with the first call.
        let group = s.spawn(|| {
            let req = json!([
                {"jsonrpc": "2.0", "id": 1, "method": "execute",
                 "params": {"context": &a, "method": "give", "args": {"to": &b, "by": 1}}},
                {"jsonrpc": "2.0", "id": 2, "method": "execute",
                 "params": {"context": &a, "method": "spin", "args": {"rounds": u64::MAX}}},
            ]);
            node.send("POST", "/jsonrpc", Some(req.to_string().as_bytes()), true)
                .1
        });
        std::thread::sleep(Duration::from_millis(500));
        // Meanwhile `b` is called directly, and commits at once.
        assert_eq!(node.execute(&b, "got", json!({"by": 10})), json!(11));
        let answers = group.join().unwrap();
        assert_eq!(answers[0]["result"]["output"], json!(1), "{answers}");
        node.execute(&b, "got", json!({"by": 100}));
        let seen = sub.join().unwrap();
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            vec![1, 10, 100],
            "events the subscriber of b got, in order: {seen:?}"
        );
    });
}
