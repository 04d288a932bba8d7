//! The native test host follows the node's call policy
//! (`mero_engine::policy`): who may call which method, in which mode, with
//! which arguments; handlers run on the receiving replicas; events decode
//! as the app's enum.

use mero_abi::CallErrorKind;
use mero_sdk::app;
use mero_sdk::collections::{Counter, LwwRegister, UnorderedMap};
use mero_sdk::testing::{CallKind, Network, Replica};
use serde_json::{Value, json};

#[app::state(emits = Event)]
pub struct Room {
    posts: UnorderedMap<String, LwwRegister<String>>,
    /// Per executing replica (member key, hex): handler runs.
    seen: UnorderedMap<String, Counter>,
    nested: UnorderedMap<String, UnorderedMap<String, LwwRegister<String>>>,
    tidied: Counter,
}

#[app::event]
#[derive(Debug, PartialEq)]
pub enum Event {
    /// Receivers count it in the private handler `on_posted`.
    #[handler(on_posted)]
    Posted {
        id: String,
        text: String,
    },
    /// Receivers run the public (but still client-proof) `on_pinged`.
    #[handler(on_pinged)]
    Pinged(u32),
    Cleared,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[app::logic]
impl Room {
    #[app::init]
    pub fn init() -> Self {
        let mut nested = UnorderedMap::new();
        nested.insert("x".to_owned(), UnorderedMap::new());
        Self {
            posts: UnorderedMap::new(),
            seen: UnorderedMap::new(),
            nested,
            tidied: Counter::new(),
        }
    }

    pub fn post(&mut self, id: String, text: String) {
        self.posts
            .insert(id.clone(), LwwRegister::new(text.clone()));
        app::emit!(Event::Posted { id, text });
    }

    pub fn ping(&mut self, n: u32) {
        app::emit!(Event::Pinged(n));
    }

    pub fn clear(&mut self) {
        self.posts.clear();
        app::emit!(Event::Cleared);
    }

    #[app::private]
    pub fn on_posted(&mut self, id: String, text: String) {
        let _ = (id, text);
        self.seen
            .ensure(hex(&mero_sdk::env::executor_id()))
            .increment();
    }

    pub fn on_pinged(&mut self) {}

    /// Private and not a handler: only the node calls it.
    #[app::private]
    fn tidy(&mut self) -> i64 {
        self.tidied.increment();
        self.tidied.value()
    }

    /// A private view.
    #[app::private]
    #[app::view]
    pub fn audit(&self) -> i64 {
        self.tidied.value()
    }

    #[app::view]
    pub fn get(&self, id: String) -> Option<String> {
        self.posts.get(&id).map(|v| v.get().clone())
    }

    /// A view that tries to write through a nested handle.
    #[app::view]
    pub fn sneaky(&self) -> bool {
        if let Some(mut inner) = self.nested.get("x") {
            inner.insert("sneaky".into(), LwwRegister::new("write".into()));
        }
        true
    }

    pub fn seen(&self) -> Vec<(String, i64)> {
        self.seen
            .entries()
            .into_iter()
            .map(|(k, v)| (k, v.value()))
            .collect()
    }
}

fn room() -> Replica<Room> {
    let mut r = Replica::new(0);
    r.init(json!({})).unwrap();
    r
}

fn refused(r: Result<Value, mero_abi::CallError>) -> (CallErrorKind, String) {
    let e = r.unwrap_err();
    (e.kind, e.message)
}

#[test]
fn init_runs_once_at_creation_and_never_through_execute() {
    let mut r = room();
    let (kind, msg) = refused(r.execute("init", json!({})));
    assert_eq!(kind, CallErrorKind::UnknownMethod);
    assert!(msg.contains("constructor"), "{msg}");
    let (kind, _) = refused(r.call_as_node("init", json!({})));
    assert_eq!(kind, CallErrorKind::UnknownMethod);
    // And creation runs nothing but the constructor.
    let mut fresh = Replica::<Room>::new(1);
    let (kind, msg) = refused(fresh.call(CallKind::Init, "post", json!({})));
    assert_eq!(kind, CallErrorKind::UnknownMethod);
    assert!(msg.contains("not the app's #[app::init]"), "{msg}");
}

#[test]
fn private_methods_and_handlers_are_not_for_clients() {
    let mut r = room();
    for method in ["tidy", "audit"] {
        for kind in [CallKind::Execute, CallKind::Query] {
            let (k, msg) = refused(r.call(kind, method, json!({})));
            assert_eq!(k, CallErrorKind::UnknownMethod, "{method} {kind:?}");
            assert!(msg.contains("private"), "{msg}");
        }
    }
    for method in ["on_posted", "on_pinged"] {
        let (_, msg) = refused(r.execute(method, json!({"id": "a", "text": "b"})));
        assert!(msg.contains("handler of event"), "{msg}");
    }
    // The node may call private methods, in their own mode.
    assert_eq!(r.call_as_node("tidy", json!({})).unwrap(), 1);
    assert_eq!(r.call_as_node("audit", json!({})).unwrap(), 1);
    // A handler call names a declared handler, nothing else.
    let (_, msg) = refused(r.call(CallKind::Handler, "tidy", json!({})));
    assert!(msg.contains("not a handler"), "{msg}");
    // An unknown method lists only what a client may call.
    let (kind, msg) = refused(r.execute("nope", json!({})));
    assert_eq!(kind, CallErrorKind::UnknownMethod);
    assert!(
        msg.ends_with("it has: clear, get, ping, post, seen, sneaky"),
        "{msg}"
    );
}

#[test]
fn views_run_read_only_and_queries_only_run_views() {
    let mut r = room();
    let before = r.state_json();
    for kind in [CallKind::Execute, CallKind::Query, CallKind::Internal] {
        let (k, _) = refused(r.call(kind, "sneaky", json!({})));
        assert_eq!(k, CallErrorKind::Mutability, "{kind:?}");
    }
    assert_eq!(r.state_json(), before);
    assert!(r.take_deltas().len() == 1, "only init wrote");
    let (k, msg) = refused(r.query("post", json!({"id": "a", "text": "b"})));
    assert_eq!(k, CallErrorKind::Mutability);
    assert!(msg.contains("execute"), "{msg}");
    // A view may be executed; it still writes nothing.
    assert_eq!(r.execute("get", json!({"id": "a"})).unwrap(), Value::Null);
    assert!(r.take_deltas().is_empty());
}

#[test]
fn arguments_are_checked_as_a_node_checks_them() {
    let mut r = room();
    for args in [json!(["a", "b"]), json!("a"), json!(null), json!(1)] {
        let (k, msg) = refused(r.execute("post", args.clone()));
        assert_eq!(k, CallErrorKind::InvalidArgs, "{args}");
        assert!(msg.contains("JSON object"), "{msg}");
    }
    let (k, _) = refused(r.execute("post", json!({"id": "a", "text": "b", "extra": 1})));
    assert_eq!(k, CallErrorKind::InvalidArgs);
    let (k, _) = refused(r.execute("post", json!({"id": "a"})));
    assert_eq!(k, CallErrorKind::InvalidArgs);
    r.execute("post", json!({"id": "a", "text": "b"})).unwrap();
}

#[test]
fn handlers_run_on_the_receivers_never_on_the_author() {
    for seed in 0..10 {
        let mut net = Network::<Room>::new(3);
        net.replica(0)
            .execute("post", json!({"id": "a", "text": "hi"}))
            .unwrap();
        net.replica(2)
            .execute("post", json!({"id": "b", "text": "yo"}))
            .unwrap();
        // The author ran nothing.
        assert_eq!(net.replica(0).query("seen", json!({})).unwrap(), json!([]));
        net.deliver_shuffled(seed);
        net.assert_converged();
        let seen: Vec<(String, i64)> =
            serde_json::from_value(net.replica(1).query("seen", json!({})).unwrap()).unwrap();
        // Replica 1 received both posts, replicas 0 and 2 one each: the
        // handler ran once per receipt, on the receiver.
        let mut counts: Vec<i64> = seen.iter().map(|(_, n)| *n).collect();
        counts.sort();
        assert_eq!(counts, [1, 1, 2], "seed {seed}: {seen:?}");
        for i in 0..3 {
            assert!(net.replica(i).handler_failures().is_empty());
        }
    }
}

#[test]
fn a_handler_waits_for_the_causal_past_of_its_delta() {
    let mut net = Network::<Room>::new(2);
    net.replica(0)
        .execute("post", json!({"id": "a", "text": "1"}))
        .unwrap();
    net.replica(0)
        .execute("post", json!({"id": "b", "text": "2"}))
        .unwrap();
    let deltas = net.replica(0).take_deltas();
    assert_eq!(deltas.len(), 2);
    let r = net.replica(1);
    // The second delta first: its causal past is missing, so nothing runs.
    r.apply(&deltas[1]);
    r.apply(&deltas[1]);
    assert_eq!(r.query("seen", json!({})).unwrap(), json!([]));
    // Then the first: both handlers run, once each.
    r.apply(&deltas[0]);
    r.apply(&deltas[0]);
    let seen = r.query("seen", json!({})).unwrap();
    assert_eq!(seen[0][1], json!(2), "{seen}");
    assert_eq!(
        r.take_deltas().len(),
        2,
        "each handler run is a delta of its own"
    );
}

#[test]
fn a_handler_refusing_its_event_is_recorded() {
    // `on_pinged` takes no argument; `Pinged(u32)` carries one, so every
    // receiver refuses to run it (as a node would log).
    let mut net = Network::<Room>::new(2);
    net.replica(0).execute("ping", json!({"n": 3})).unwrap();
    net.deliver_shuffled(1);
    let failures = net.replica(1).handler_failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, "on_pinged");
    assert_eq!(failures[0].1.kind, CallErrorKind::InvalidArgs);
    assert!(net.replica(0).handler_failures().is_empty());
}

#[test]
fn events_decode_as_the_apps_enum() {
    let mut r = room();
    r.execute("post", json!({"id": "a", "text": "hi"})).unwrap();
    r.execute("ping", json!({"n": 7})).unwrap();
    r.execute("clear", json!({})).unwrap();
    assert_eq!(
        r.events::<Event>(),
        [
            Event::Posted {
                id: "a".into(),
                text: "hi".into()
            },
            Event::Pinged(7),
            Event::Cleared,
        ]
    );
    assert_eq!(r.emitted()[1].data, "7");
}
