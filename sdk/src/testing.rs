//! Native testing: run an app's logic in `cargo test` against the same state
//! engine the node uses, on one replica or on a small network of them.
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
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use mero_abi::host::HostResult;
use mero_abi::{CallError, CallErrorKind};
use mero_engine::{
    CallEnv, CallLimits, CallMode, CallOutcome, ContextState, DeltaPayload, EmittedEvent,
    PrivateStorage, Session,
};
use serde_json::Value;

use crate::__private::{AppLogic, AppState};

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
    produced: Vec<DeltaPayload>,
    events: Vec<EmittedEvent>,
    logs: Vec<String>,
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
            _app: PhantomData,
        }
    }

    /// Runs the `#[app::init]` method with `args`.
    pub fn init(&mut self, args: Value) -> Result<Value, CallError> {
        let init = S::__methods()
            .iter()
            .find(|m| m.init)
            .expect("the app has an #[app::init] method");
        self.execute(init.name, args)
    }

    /// Calls a method by name with JSON arguments, exactly as a node would.
    /// Views run read-only.
    pub fn execute(&mut self, method: &str, args: Value) -> Result<Value, CallError> {
        let entry = S::__methods()
            .iter()
            .find(|m| m.name == method)
            .ok_or_else(|| {
                CallError::new(
                    CallErrorKind::UnknownMethod,
                    format!("no method `{method}`"),
                )
            })?;
        let mode = if entry.mutating {
            CallMode::Mutate
        } else {
            CallMode::View
        };
        let input = serde_json::to_vec(&args).expect("JSON values serialize");
        let call = entry.call;
        let outcome = self.run(mode, input, || crate::__private::run(call));
        outcome
            .result
            .map(|bytes| serde_json::from_slice(&bytes).unwrap_or(Value::Null))
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
            self.produced.push(delta.clone());
        }
        outcome
    }

    /// Applies a delta produced by another replica (in any order, any number of times).
    pub fn apply(&mut self, delta: &DeltaPayload) {
        self.state
            .import(&delta.update)
            .expect("a delta from a replica of the same app imports");
    }

    /// The deltas this replica produced since the last call to this method.
    pub fn take_deltas(&mut self) -> Vec<DeltaPayload> {
        std::mem::take(&mut self.produced)
    }

    /// Events emitted by calls on this replica, in order.
    pub fn events(&self) -> &[EmittedEvent] {
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

/// Several replicas of one context, with explicit delivery of their deltas.
pub struct Network<S> {
    replicas: Vec<Replica<S>>,
    /// Every delta ever produced, tagged with its author.
    log: Vec<(usize, DeltaPayload)>,
}

impl<S: AppState + AppLogic> Network<S> {
    /// `n` replicas; replica 0 runs `init` with `{}` and the others receive it.
    pub fn new(n: usize) -> Self {
        Self::with_init(n, Value::Object(Default::default()))
    }

    /// `n` replicas; replica 0 runs `init` with `args` and the others receive it.
    pub fn with_init(n: usize, args: Value) -> Self {
        assert!(n > 0 && n < 256, "a test network has 1 to 255 replicas");
        let mut replicas: Vec<Replica<S>> = (0..n).map(|i| Replica::new(i as u8)).collect();
        replicas[0].init(args).expect("init succeeds");
        let init = replicas[0].take_deltas();
        for r in &mut replicas[1..] {
            for d in &init {
                r.apply(d);
            }
        }
        Self {
            replicas,
            log: Vec::new(),
        }
    }

    /// Replica `i`.
    pub fn replica(&mut self, i: usize) -> &mut Replica<S> {
        &mut self.replicas[i]
    }

    /// Number of replicas.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Whether the network has no replicas (never: kept for API symmetry).
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    fn collect(&mut self) {
        for (i, r) in self.replicas.iter_mut().enumerate() {
            for d in r.take_deltas() {
                self.log.push((i, d));
            }
        }
    }

    /// Delivers every delta produced so far to every other replica, in a
    /// random order per replica (seeded), with some duplicated.
    pub fn deliver_shuffled(&mut self, seed: u64) {
        self.collect();
        let mut rng = fastrand::Rng::with_seed(seed);
        for (i, r) in self.replicas.iter_mut().enumerate() {
            let mut inbox: Vec<&DeltaPayload> = self
                .log
                .iter()
                .filter(|(author, _)| *author != i)
                .map(|(_, d)| d)
                .collect();
            let dups: Vec<&DeltaPayload> =
                inbox.iter().filter(|_| rng.u8(..) < 32).copied().collect();
            inbox.extend(dups);
            rng.shuffle(&mut inbox);
            for d in inbox {
                r.apply(d);
            }
        }
    }

    /// Panics unless every replica has the same state and version.
    pub fn assert_converged(&self) {
        let first = &self.replicas[0];
        for (i, r) in self.replicas.iter().enumerate().skip(1) {
            assert_eq!(
                first.state_json(),
                r.state_json(),
                "replica {i} diverged from replica 0"
            );
            assert_eq!(
                first.engine().version(),
                r.engine().version(),
                "replica {i} holds different operations than replica 0"
            );
        }
    }
}
