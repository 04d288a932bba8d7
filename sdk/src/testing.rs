//! Native testing: run an app's logic in `cargo test` against the same state
//! engine the node uses, on one replica or on a small network of them.
//!
//! Calls by name follow the node's call policy (`mero_engine::policy`, the
//! same code): [`Replica::execute`] and [`Replica::query`] are what a client
//! may do, [`Replica::call_as_node`] what the node may do (private methods),
//! and handlers run on the replicas a delta is delivered to, never on its
//! author. [`Replica::mutate`] and [`Replica::view`] run Rust closures
//! against the state directly. [`Replica::upgrade`] and
//! [`Network::upgrade`] switch to another version of the app as a node's
//! upgrade does, running its `#[app::migrate]` once.
//!
//! ```
//! use mero_sdk::app;
//! use mero_sdk::collections::Counter;
//! use mero_sdk::testing::Network;
//!
//! #[app::state]
//! pub struct Votes { yes: Counter }
//!
//! #[app::logic]
//! impl Votes {
//!     #[app::init]
//!     pub fn init() -> Self { Self { yes: Counter::new() } }
//!     pub fn vote(&mut self) { self.yes.increment() }
//!     pub fn total(&self) -> i64 { self.yes.value() }
//! }
//!
//! # fn main() {
//! let mut net = Network::<Votes>::new(3);
//! net.replica(0).execute("vote", serde_json::json!({})).unwrap();
//! net.replica(1).mutate(|s| { s.vote(); Ok(()) }).unwrap();
//! net.replica(2).execute("vote", serde_json::json!({})).unwrap();
//! net.deliver_shuffled(42); // all deltas to all replicas, random order, some duplicated
//! net.assert_converged();
//! assert_eq!(net.replica(0).view(|s| s.total()).unwrap(), 3);
//! # }
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use mero_abi::AppAbi;
use mero_abi::abi::Fragment;
use mero_abi::host::HostResult;
use mero_abi::{CallError, CallErrorKind};
use mero_engine::policy;
use mero_engine::{
    CallEnv, CallLimits, CallMode, CallOutcome, ContextState, EmittedEvent, PrivateStorage, Session,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::__private::{AppLogic, AppState};
use crate::error::decode_tagged;

mod network;
pub(crate) mod upgrade;

pub use mero_engine::policy::CallKind;
pub use network::{Delta, Network};
pub use upgrade::{UpgradeError, UpgradeFailed, UpgradePlan, upgrade_plan};

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// Panic payload used to unwind out of app code when the host refuses a request.
#[derive(Debug)]
pub(crate) struct HostAbort(pub String);

pub(crate) fn with_session(f: impl FnOnce(&mut Session) -> HostResult) -> HostResult {
    SESSION.with_borrow_mut(|s| {
        let s = s.as_mut().expect(
            "mero collections and env are only usable inside a call: \
             run app code through mero_sdk::testing::Replica (execute, mutate or view)",
        );
        f(s)
    })
}

#[derive(Default)]
struct MemPrivate(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

impl PrivateStorage for MemPrivate {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.lock().unwrap().get(key).cloned()
    }
}

/// One replica of a context, running the app natively.
pub struct Replica<S> {
    state: ContextState,
    member: [u8; 32],
    private: Arc<MemPrivate>,
    rng: fastrand::Rng,
    clock: u64,
    produced: Vec<Delta>,
    events: Vec<EmittedEvent>,
    logs: Vec<String>,
    /// What the node would read from the module: methods, and events
    /// (with their handlers) as far as the state's `emits` names them.
    abi: AppAbi,
    index: u8,
    seq: u64,
    /// Deltas of other replicas applied here, by (author, seq).
    seen: HashSet<(u8, u64)>,
    /// Applied deltas whose handlers wait for their causal past.
    waiting: Vec<Delta>,
    handler_failures: Vec<(String, CallError)>,
    _app: PhantomData<fn() -> S>,
}

impl<S: AppState + AppLogic> Replica<S> {
    /// A replica with an empty state, writing as member number `index`.
    pub fn new(index: u8) -> Self {
        let mut member = [0u8; 32];
        member[0] = index.wrapping_add(1);
        member[31] = 0x6d;
        Self {
            state: ContextState::new(ContextState::peer_id_for(&member)),
            member,
            private: Arc::default(),
            rng: fastrand::Rng::with_seed(u64::from(index) + 1),
            clock: 1_700_000_000_000_000_000,
            produced: Vec::new(),
            events: Vec::new(),
            logs: Vec::new(),
            abi: native_abi::<S>(),
            index,
            seq: 0,
            seen: HashSet::new(),
            waiting: Vec::new(),
            handler_failures: Vec::new(),
            _app: PhantomData,
        }
    }

    /// Runs the `#[app::init]` method with `args`, as a node does when it
    /// creates the context (`execute` refuses `init`).
    pub fn init(&mut self, args: Value) -> Result<Value, CallError> {
        let init = self
            .abi
            .init()
            .expect("the app has an #[app::init] method")
            .name
            .clone();
        self.call(CallKind::Init, &init, args)
    }

    /// Calls a method as a client's JSON-RPC `execute` would: views run
    /// read-only, and `init`, private methods and handlers are refused.
    pub fn execute(&mut self, method: &str, args: Value) -> Result<Value, CallError> {
        self.call(CallKind::Execute, method, args)
    }

    /// Calls a view as a client's JSON-RPC `query` would: a mutating method
    /// is refused.
    pub fn query(&mut self, method: &str, args: Value) -> Result<Value, CallError> {
        self.call(CallKind::Query, method, args)
    }

    /// Calls a method as the node itself: private methods too, `init` not.
    pub fn call_as_node(&mut self, method: &str, args: Value) -> Result<Value, CallError> {
        self.call(CallKind::Internal, method, args)
    }

    /// Calls `method` with JSON arguments as `kind` asks. What is refused,
    /// and the mode the rest runs in, is decided by the node's own policy
    /// (`mero_engine::policy`): arguments must be one JSON object (unknown
    /// fields are refused by the method), views cannot write.
    pub fn call(&mut self, kind: CallKind, method: &str, args: Value) -> Result<Value, CallError> {
        let input = serde_json::to_vec(&args).expect("JSON values serialize");
        self.call_bytes(kind, method, input)
    }

    fn call_bytes(
        &mut self,
        kind: CallKind,
        method: &str,
        input: Vec<u8>,
    ) -> Result<Value, CallError> {
        policy::check_args(kind, &input).map_err(|r| r.to_call_error())?;
        let mode = policy::decide(&self.abi, method, kind).map_err(|r| r.to_call_error())?;
        let entry = S::__methods()
            .iter()
            .find(|m| m.name == method)
            .ok_or_else(|| {
                CallError::new(
                    CallErrorKind::Host,
                    format!("`{method}` is in the ABI but not among the generated methods"),
                )
            })?;
        let call = entry.call;
        let outcome = self.run(mode, input, || crate::__private::run(call));
        let bytes = outcome.result?;
        serde_json::from_slice(&bytes).map_err(|e| {
            CallError::new(
                CallErrorKind::Host,
                format!("the method returned invalid JSON: {e}"),
            )
        })
    }

    /// Runs `f` against the state as a mutating call: an `Err` (or a panic)
    /// leaves no trace.
    pub fn mutate<R>(
        &mut self,
        f: impl FnOnce(&mut S) -> crate::app::Result<R>,
    ) -> Result<R, CallError> {
        self.typed(CallMode::Mutate, |s| f(s))
    }

    /// Runs `f` against the state read-only.
    pub fn view<R>(&mut self, f: impl FnOnce(&S) -> R) -> Result<R, CallError> {
        self.typed(CallMode::View, |s| Ok(f(s)))
    }

    fn typed<R>(
        &mut self,
        mode: CallMode,
        f: impl FnOnce(&mut S) -> crate::app::Result<R>,
    ) -> Result<R, CallError> {
        let mut out = None;
        let outcome = self.run(mode, b"{}".to_vec(), || {
            let mut state = S::__load();
            let res = f(&mut state).map_err(|e| e.into_call_error());
            let (ok, data) = match &res {
                Ok(_) => (true, b"null".to_vec()),
                Err(e) => (false, serde_json::to_vec(e).unwrap_or_default()),
            };
            crate::host::call(mero_abi::host::HostRequest::Return { ok, data: &data });
            out = res.ok();
        });
        outcome.result?;
        Ok(out.expect("a successful call produced its value"))
    }

    fn run(&mut self, mode: CallMode, input: Vec<u8>, body: impl FnOnce()) -> CallOutcome {
        self.clock += 1_000_000;
        let mut seed = self.rng.u64(..);
        let env = CallEnv {
            context_id: [0x42; 32],
            executor: self.member,
            time_nanos: self.clock,
            input,
            mode,
            limits: CallLimits::default(),
            private: self.private.clone(),
            blobs: crate::blob::source(),
            xcall: std::sync::Arc::new(mero_engine::NoCrossContext(
                "the native test host runs one context: test cross-context calls on nodes",
            )),
            random: Box::new(move |buf| {
                let mut rng = fastrand::Rng::with_seed(seed);
                buf.fill_with(|| rng.u8(..));
                seed = rng.u64(..);
            }),
        };
        let session = self.state.begin(env);
        SESSION.with_borrow_mut(|s| {
            assert!(s.is_none(), "mero test calls cannot nest");
            *s = Some(session);
        });
        let caught = catch_unwind(AssertUnwindSafe(body));
        let session = SESSION
            .with_borrow_mut(Option::take)
            .expect("the session outlives the call");
        let trap = caught.err().map(|payload| {
            let msg = if let Some(HostAbort(m)) = payload.downcast_ref::<HostAbort>() {
                m.clone()
            } else if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_owned()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "panic with a non-string payload".to_owned()
            };
            CallError::new(CallErrorKind::Panic, msg)
        });
        let outcome = self.state.finish(session, trap);
        self.logs.extend(outcome.logs.iter().cloned());
        if outcome.result.is_ok() {
            let mut private = self.private.0.lock().unwrap();
            for (k, v) in &outcome.private_writes {
                match v {
                    Some(v) => private.insert(k.clone(), v.clone()),
                    None => private.remove(k),
                };
            }
        }
        if let Some(delta) = &outcome.delta {
            self.events.extend(delta.events.iter().cloned());
            self.seq += 1;
            self.produced.push(Delta {
                author: self.index,
                seq: self.seq,
                after: self.state.version(),
                payload: delta.clone(),
            });
        }
        outcome
    }

    /// Applies a delta another replica produced (in any order, any number
    /// of times). As on a node, the handlers its events name in the app's
    /// ABI run here, once, as [`CallKind::Handler`] calls, when the delta and
    /// its whole causal past are here; never on its author. What they write
    /// is a delta of this replica's own.
    pub fn apply(&mut self, delta: &Delta) {
        self.import(delta);
        if delta.author == self.index || !self.seen.insert((delta.author, delta.seq)) {
            return;
        }
        self.waiting.push(delta.clone());
        self.run_ready_handlers();
    }

    /// Applies a delta without running its handlers, as a node that joins
    /// a context does with the history it catches up on.
    fn import(&mut self, delta: &Delta) {
        // A call that only emitted events has no update (nodes skip it too).
        if delta.payload.update.is_empty() {
            return;
        }
        self.state
            .import(&delta.payload.update)
            .expect("a delta from a replica of the same app imports");
    }

    /// Runs the handlers of every waiting delta whose causal past is here,
    /// earliest first (a delta's past holds fewer operations than any
    /// delta after it), as a node releases deltas in causal order.
    fn run_ready_handlers(&mut self) {
        let ops = |d: &Delta| d.after.values().map(|c| i64::from(*c)).sum::<i64>();
        loop {
            let have = self.state.version();
            let ready = self
                .waiting
                .iter()
                .enumerate()
                .filter(|(_, d)| have.includes_vv(&d.after))
                .min_by_key(|(_, d)| ops(d));
            let Some((i, _)) = ready else {
                return;
            };
            let delta = self.waiting.remove(i);
            for event in &delta.payload.events {
                self.run_handler(event);
            }
        }
    }

    /// Runs the handler of `event`: the one the ABI declares for its kind;
    /// for an event of an enum the state's `emits` does not name (so this
    /// host has no ABI of it), the one the event names, which this host
    /// then treats as declared.
    fn run_handler(&mut self, event: &EmittedEvent) {
        let declared = match self.abi.events.iter().find(|e| e.name == event.kind) {
            Some(e) => e.handler.clone(),
            None => {
                self.abi.events.push(mero_abi::abi::EventAbi {
                    name: event.kind.clone(),
                    fields: Vec::new(),
                    handler: event.handler.clone(),
                });
                event.handler.clone()
            }
        };
        let Some(method) = declared else { return };
        let args = event.data.clone().into_bytes();
        if let Err(e) = self.call_bytes(CallKind::Handler, &method, args) {
            self.handler_failures.push((method, e));
        }
    }

    /// Handlers that failed on this replica (a node logs these), in order:
    /// the method and its error.
    pub fn handler_failures(&self) -> &[(String, CallError)] {
        &self.handler_failures
    }

    /// The deltas this replica produced since the last call to this method.
    pub fn take_deltas(&mut self) -> Vec<Delta> {
        std::mem::take(&mut self.produced)
    }

    /// Events emitted by calls on this replica (handler runs included), in
    /// order, decoded as the app's event enum: `replica.events::<Event>()`.
    /// Panics if one does not decode as `E`.
    pub fn events<E: DeserializeOwned>(&self) -> Vec<E> {
        self.events
            .iter()
            .map(|e| {
                decode_tagged(&e.kind, serde_json::from_str(&e.data).ok()).unwrap_or_else(|err| {
                    panic!("event {} does not decode as the given type: {err}", e.kind)
                })
            })
            .collect()
    }

    /// Events emitted by calls on this replica, as the node stores them:
    /// kind, JSON payload, handler.
    pub fn emitted(&self) -> &[EmittedEvent] {
        &self.events
    }

    /// Log lines of calls on this replica, in order.
    pub fn logs(&self) -> &[String] {
        &self.logs
    }

    /// The state as JSON, as `merod` exports it.
    pub fn state_json(&self) -> Value {
        self.state.to_json()
    }

    /// The engine state (version vectors, snapshots).
    pub fn engine(&self) -> &ContextState {
        &self.state
    }
}

/// The app's typed error in a failed call: `Some` if the call failed with
/// a variant of `E` (an `#[app::error]` enum), `None` for any other failure.
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::AppError;
///
/// #[app::error]
/// #[derive(Debug, PartialEq)]
/// pub enum VoteError {
///     Closed { at: u64 },
/// }
///
/// let failed = VoteError::Closed { at: 7 }.to_call_error();
/// assert_eq!(mero_sdk::testing::typed_error(&failed), Some(VoteError::Closed { at: 7 }));
/// ```
pub fn typed_error<E: DeserializeOwned>(err: &CallError) -> Option<E> {
    let data = err.app_error()?;
    if data.kind == mero_abi::AppErrorData::UNTYPED && data.code == 0 {
        return None;
    }
    decode_tagged(&data.kind, Some(data.data)).ok()
}

/// The ABI the node would read from the app's module, from the fragments
/// the macros also keep for native builds: the state, the methods, and
/// the events of the state's `emits` enum.
fn native_abi<S: AppState + AppLogic>() -> AppAbi {
    let mut abi = AppAbi::default();
    for json in [S::__abi_state(), S::__abi_methods(), S::__abi_events()] {
        if json.is_empty() {
            continue;
        }
        match serde_json::from_str(json).expect("the macros write valid ABI fragments") {
            Fragment::State(state) => abi.state = state,
            Fragment::Methods { methods } => abi.methods.extend(methods),
            Fragment::Events { events, .. } => abi.events.extend(events),
            _ => {}
        }
    }
    abi.methods.sort_by(|a, b| a.name.cmp(&b.name));
    abi
}
