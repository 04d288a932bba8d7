//! Method calls, and group commit for the ones that change state.
//!
//! A query runs under its context's lock and writes nothing. An `execute`
//! joins its context's queue instead; whichever caller takes the lock next
//! runs everything queued, in order, and persists it in one RocksDB write
//! batch: one write, one metadata update, one `state` stream item and (in
//! `net`) one gossip message for the whole group, however many calls it
//! holds. Each caller still gets its own answer, and only once its delta is
//! persisted and published. A caller runs at most the group it found, never
//! work queued after it, so no caller is held up by a steady stream of others.
//!
//! This module must not hold a context's lock while effects run (publishing,
//! handlers: see [`Node::finish`]) or answer a call before it is persisted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use mero_abi::{CallError, CallErrorKind};
use mero_engine::policy::{self, Refusal};
use mero_engine::{CallEnv, CallLimits, CallMode};
use mero_sync::{Op, Role};
use tokio::sync::oneshot;

use crate::context::{ContextRuntime, Effects};
use crate::error::NodeError;
use crate::host::AppModule;
use crate::ids::ContextId;
use crate::node::{CallKind, CallOutput, Node, now_nanos};
use crate::store::Batch;
use crate::xcall::Link;

type Answer = Result<CallOutput, NodeError>;

/// One context on this node: its replica behind a lock, and the mutating
/// calls waiting for it.
pub(crate) struct ContextSlot {
    id: ContextId,
    /// This node's member key in the context (never changes): readable
    /// without the lock, by async handlers.
    pub member: crate::ids::MemberKey,
    rt: Mutex<ContextRuntime>,
    queue: Mutex<Queue>,
    /// Why the replica was set aside, once it was.
    quarantine: OnceLock<String>,
    /// The context is being deleted: every later use finds it unknown.
    gone: AtomicBool,
    /// The call whose cross-context change this context holds until the
    /// caller's write ([`crate::xcall`]): every other use waits.
    reserved: Mutex<Option<u64>>,
    /// Signalled when the reservation ends.
    released: Condvar,
}

#[derive(Default)]
struct Queue {
    calls: Vec<Queued>,
    /// A runner on the blocking pool is working through the queue
    /// ([`Node::execute`]); it clears this, under this lock, when it finds
    /// the queue empty.
    runner: bool,
}

impl ContextSlot {
    pub fn new(rt: ContextRuntime) -> Self {
        Self {
            id: rt.id,
            member: rt.meta.member,
            rt: Mutex::new(rt),
            queue: Mutex::default(),
            quarantine: OnceLock::new(),
            gone: AtomicBool::new(false),
            reserved: Mutex::new(None),
            released: Condvar::new(),
        }
    }

    /// The context's id.
    pub fn id(&self) -> ContextId {
        self.id
    }

    /// Marks the context deleted (or, if deleting failed, not).
    pub fn retire(&self, gone: bool) {
        self.gone.store(gone, Ordering::SeqCst);
    }

    /// Queues a call; `true` if the caller should start a runner.
    fn push(&self, call: Queued, start_runner: bool) -> bool {
        let mut q = self.queue.lock().unwrap();
        q.calls.push(call);
        start_runner && !std::mem::replace(&mut q.runner, true)
    }

    /// Locks the replica, unless it is quarantined: a panic while it was
    /// locked (the lock is poisoned), or a failure that left its state
    /// untrustworthy. Then every use fails with [`NodeError::Quarantined`]
    /// until the node restarts and reloads the context from its store.
    /// Waits while a cross-context call holds the context.
    pub fn lock(&self) -> Result<MutexGuard<'_, ContextRuntime>, NodeError> {
        self.lock_for(None)
    }

    /// [`lock`](Self::lock), passing the reservation of call `holder`.
    pub(crate) fn lock_for(
        &self,
        holder: Option<u64>,
    ) -> Result<MutexGuard<'_, ContextRuntime>, NodeError> {
        loop {
            self.wait_released(holder, None);
            let guard = self.rt.lock();
            // A reservation is only taken under the replica's lock: once
            // the lock is held and none is seen, none appears.
            if self.free_for(holder) {
                return self.admit(guard);
            }
        }
    }

    /// [`lock_for`](Self::lock_for) that gives up at `deadline` (`None`):
    /// for a cross-context call, whose own caller holds another context.
    pub(crate) fn try_lock_for(
        &self,
        holder: u64,
        deadline: Instant,
    ) -> Result<Option<MutexGuard<'_, ContextRuntime>>, NodeError> {
        loop {
            if !self.wait_released(Some(holder), Some(deadline)) {
                return Ok(None);
            }
            match self.rt.try_lock() {
                Ok(guard) if self.free_for(Some(holder)) => return self.admit(Ok(guard)).map(Some),
                Ok(_) => {}
                Err(std::sync::TryLockError::Poisoned(p)) => return self.admit(Err(p)).map(Some),
                Err(std::sync::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            }
        }
    }

    /// Holds the context for call `holder` until [`release`](Self::release);
    /// the caller holds its lock.
    pub(crate) fn reserve(&self, holder: u64) {
        *self.reserved.lock().unwrap_or_else(PoisonError::into_inner) = Some(holder);
    }

    /// Ends `holder`'s reservation, if it holds one.
    pub(crate) fn release(&self, holder: u64) {
        let mut r = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        if *r == Some(holder) {
            *r = None;
            self.released.notify_all();
        }
    }

    fn free_for(&self, holder: Option<u64>) -> bool {
        let r = *self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        r.is_none() || r == holder
    }

    /// Waits until no call but `holder` holds the context; `false` if
    /// `deadline` came first.
    fn wait_released(&self, holder: Option<u64>, deadline: Option<Instant>) -> bool {
        let mut r = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        while r.is_some() && *r != holder {
            r = match deadline {
                None => self
                    .released
                    .wait(r)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.released
                        .wait_timeout(r, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        true
    }

    fn admit<'a>(
        &self,
        locked: Result<MutexGuard<'a, ContextRuntime>, PoisonError<MutexGuard<'a, ContextRuntime>>>,
    ) -> Result<MutexGuard<'a, ContextRuntime>, NodeError> {
        if let Some(why) = self.quarantine.get() {
            return Err(NodeError::Quarantined(self.id, why.clone()));
        }
        let guard =
            locked.map_err(|_| self.set_aside("a panic while it was being changed".into()))?;
        if self.gone.load(Ordering::SeqCst) {
            return Err(NodeError::UnknownContext(self.id));
        }
        if let Some(why) = guard.failure() {
            return Err(self.set_aside(why.to_owned()));
        }
        Ok(guard)
    }

    /// Quarantines the context (the first reason sticks) and returns the
    /// error its users get.
    pub fn set_aside(&self, why: String) -> NodeError {
        if self.quarantine.set(why.clone()).is_ok() {
            tracing::error!(context = %self.id, "context quarantined: {why}");
        }
        NodeError::Quarantined(self.id, self.quarantine.get().cloned().unwrap_or(why))
    }

    /// Why the context is quarantined, if it is.
    pub fn quarantined(&self) -> Option<&str> {
        self.quarantine.get().map(String::as_str)
    }

    /// The replica, quarantined or not, once no cross-context call holds
    /// it: for deleting it.
    pub fn inspect_unreserved(&self) -> MutexGuard<'_, ContextRuntime> {
        loop {
            self.wait_released(None, None);
            let guard = self.inspect();
            if self.free_for(None) {
                return guard;
            }
        }
    }

    /// The replica for reading what it reports, quarantined or not.
    pub fn inspect(&self) -> MutexGuard<'_, ContextRuntime> {
        self.rt.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Queued {
    method: String,
    args: Vec<u8>,
    /// `Execute`, or `Handler` for a handler this node runs.
    kind: CallKind,
    started: Instant,
    reply: oneshot::Sender<Answer>,
}

impl Queued {
    fn new(method: String, args: Vec<u8>, kind: CallKind) -> (Self, oneshot::Receiver<Answer>) {
        let (reply, rx) = oneshot::channel();
        let started = Instant::now();
        let q = Self {
            method,
            args,
            kind,
            started,
            reply,
        };
        (q, rx)
    }
}

fn unanswered(ctx: &ContextId) -> NodeError {
    NodeError::Unpersisted(format!("the call to context {ctx} was dropped unanswered"))
}

/// One call of [`Node::call_many`].
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// The context.
    pub context: ContextId,
    /// The app method.
    pub method: String,
    /// Its JSON arguments.
    pub args: Vec<u8>,
    /// `execute` or `query`.
    pub kind: CallKind,
}

impl Node {
    /// Runs an `execute` without holding a thread while it waits: the call
    /// joins the context's queue, and a runner on tokio's blocking pool (one
    /// per context, started when none is active) works through the queue
    /// group by group. Returns once the delta is persisted and published.
    pub async fn execute(
        self: &Arc<Self>,
        ctx: &ContextId,
        method: String,
        args: Vec<u8>,
    ) -> Result<CallOutput, NodeError> {
        let slot = self.context(ctx)?;
        let (call, rx) = Queued::new(method, args, CallKind::Execute);
        if slot.push(call, true) {
            let (node, ctx) = (self.clone(), *ctx);
            tokio::task::spawn_blocking(move || node.run_as_runner(&ctx, &slot));
        }
        rx.await.unwrap_or_else(|_| Err(unanswered(ctx)))
    }

    /// Works through a context's queue until it is empty.
    fn run_as_runner(&self, ctx: &ContextId, slot: &ContextSlot) {
        /// If a call panics through the runner, the queue must not stay
        /// marked as served: fail what is queued and let the next caller
        /// start a runner.
        struct StandDown<'a>(&'a ContextSlot);
        impl Drop for StandDown<'_> {
            fn drop(&mut self) {
                if std::thread::panicking()
                    && let Ok(mut q) = self.0.queue.lock()
                {
                    q.runner = false;
                    q.calls.clear();
                }
            }
        }
        let _guard = StandDown(slot);
        while self.run_queue(ctx, slot, true) {}
    }

    /// Calls `method` on a context with JSON `args`. An `execute` returns
    /// once its delta is persisted and published. Blocks: not for async code.
    pub fn call(
        &self,
        ctx: &ContextId,
        method: &str,
        args: &[u8],
        kind: CallKind,
    ) -> Result<CallOutput, NodeError> {
        let req = CallRequest {
            context: *ctx,
            method: method.to_owned(),
            args: args.to_vec(),
            kind,
        };
        self.call_many(vec![req])
            .pop()
            .expect("one answer per call")
    }

    /// Runs calls in order and answers each. Consecutive `execute`s to a
    /// context are persisted as one group (with whatever other callers
    /// queued meanwhile); each still succeeds or fails on its own.
    pub fn call_many(&self, calls: Vec<CallRequest>) -> Vec<Answer> {
        enum Pending {
            Done(Answer),
            Waiting(ContextId, oneshot::Receiver<Answer>),
        }
        let mut pending = Vec::with_capacity(calls.len());
        // Contexts with calls queued by this batch and not yet run.
        let mut queued: Vec<(ContextId, Arc<ContextSlot>)> = Vec::new();
        for c in calls {
            let slot = match self.context(&c.context) {
                Ok(s) => s,
                Err(e) => {
                    pending.push(Pending::Done(Err(e)));
                    continue;
                }
            };
            match c.kind {
                CallKind::Query => {
                    // A query sees the batch's earlier writes.
                    if let Some(i) = queued.iter().position(|(id, _)| *id == c.context) {
                        let (id, s) = queued.swap_remove(i);
                        self.run_queue(&id, &s, false);
                    }
                    let started = Instant::now();
                    let answer = self.query(&slot, &c.method, &c.args);
                    self.count(&c.context, CallKind::Query, started, &answer);
                    pending.push(Pending::Done(answer));
                }
                CallKind::Execute | CallKind::Handler => {
                    let (call, rx) = Queued::new(c.method, c.args, c.kind);
                    slot.push(call, false);
                    if !queued.iter().any(|(id, _)| *id == c.context) {
                        queued.push((c.context, slot));
                    }
                    pending.push(Pending::Waiting(c.context, rx));
                }
            }
        }
        for (id, slot) in queued {
            self.run_queue(&id, &slot, false);
        }
        pending
            .into_iter()
            .map(|p| match p {
                Pending::Done(a) => a,
                // The group that took the call answers before its runner
                // returns, and every queued call is taken by `run_queue`
                // above or by a runner that got the lock first.
                Pending::Waiting(ctx, rx) => {
                    rx.blocking_recv().unwrap_or_else(|_| Err(unanswered(&ctx)))
                }
            })
            .collect()
    }

    fn count(&self, ctx: &ContextId, kind: CallKind, started: Instant, answer: &Answer) {
        if !matches!(answer, Err(NodeError::UnknownContext(_))) {
            let code = answer.as_ref().err().map(NodeError::call_code);
            self.metrics()
                .call(ctx, kind, started.elapsed().as_secs_f64(), code);
        }
    }

    fn query(&self, slot: &ContextSlot, method: &str, args: &[u8]) -> Answer {
        let mut rt = slot.lock()?;
        let kind = policy::CallKind::Query;
        let (module, mode) = self.callable(&rt, method, args, kind)?;
        let mut fx = Effects::default();
        let call = Call::new(&module, method, args, mode, kind);
        let (out, _) = self.run_call(&mut rt, call, None, &mut fx)?;
        Ok(out)
    }

    /// Takes the context's lock and runs every call queued for it as one
    /// group, then answers them. `false` if there was nothing to run (the
    /// calls of whoever queued them ran in another group); a `runner` then
    /// stands down.
    fn run_queue(&self, ctx: &ContextId, slot: &ContextSlot, runner: bool) -> bool {
        let locked = slot.lock();
        let calls = {
            let mut q = slot.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if q.calls.is_empty() {
                if runner {
                    q.runner = false;
                }
                return false;
            }
            std::mem::take(&mut q.calls)
        };
        let mut rt = match locked {
            Ok(rt) => rt,
            Err(e) => {
                for q in calls {
                    // Gone (deleted) or quarantined: each caller hears which.
                    let answer = Err(match &e {
                        NodeError::UnknownContext(c) => NodeError::UnknownContext(*c),
                        NodeError::Quarantined(c, why) => NodeError::Quarantined(*c, why.clone()),
                        other => NodeError::Quarantined(*ctx, other.to_string()),
                    });
                    self.count(ctx, q.kind, q.started, &answer);
                    let _ = q.reply.send(answer);
                }
                return true;
            }
        };
        let mut fx = Effects::default();
        let mut answers: Vec<Answer> = Vec::with_capacity(calls.len());
        let mut batch = self.db().batch();
        // Answers covered by the batch not yet written, and the deltas
        // they published.
        let (mut open, mut published) = (0, 0);
        for q in &calls {
            if let Some(why) = rt.state.broken() {
                answers.push(Err(NodeError::Quarantined(*ctx, why.to_owned())));
                continue;
            }
            let kind = policy_kind(q.kind);
            let answer = self
                .callable(&rt, &q.method, &q.args, kind)
                .and_then(|(m, mode)| {
                    let call = Call::new(&m, &q.method, &q.args, mode, kind);
                    self.run_call(&mut rt, call, Some(&mut batch), &mut fx)
                });
            // Later calls read private storage from the store, and may
            // call the contexts this one called: a call that wrote private
            // storage or changed another context is persisted (and its
            // callees released) before the next one runs.
            let flush = matches!(answer, Ok((_, true)));
            answers.push(answer.map(|(out, _)| out));
            if flush {
                let full = std::mem::replace(&mut batch, self.db().batch());
                self.persist(&mut rt, full, &mut fx, &mut answers[open..], published);
                (open, published) = (answers.len(), fx.publish.len());
            }
        }
        self.persist(&mut rt, batch, &mut fx, &mut answers[open..], published);
        if let Some(why) = rt.state.broken() {
            slot.set_aside(why.to_owned());
        }
        drop(rt);
        self.finish(*ctx, fx, None);
        for (q, answer) in calls.into_iter().zip(answers) {
            self.count(ctx, q.kind, q.started, &answer);
            // The caller may have given up waiting; nothing to do then.
            let _ = q.reply.send(answer);
        }
        true
    }

    /// Commits the group's batch. If that fails, every call it covered
    /// fails with the reason and nothing it did is published.
    fn persist(
        &self,
        rt: &mut ContextRuntime,
        batch: Batch,
        fx: &mut Effects,
        answers: &mut [Answer],
        published: usize,
    ) {
        if batch.is_empty() {
            return;
        }
        let written = rt.commit(self.db(), batch, self.policy(), fx);
        fx.callees.written(self, written.is_ok());
        if let Err(e) = written {
            fx.publish.truncate(published);
            let reason = e.to_string();
            for a in answers.iter_mut().filter(|a| a.is_ok()) {
                *a = Err(NodeError::Unpersisted(reason.clone()));
            }
        }
    }

    /// The context's app module and the mode `method` runs in, if it may be
    /// called this way now: the shared call policy ([`policy::decide`],
    /// which the SDK's test host runs too) decides from the app's ABI; this
    /// node adds only what it alone knows (joining, its member's role).
    pub(crate) fn callable(
        &self,
        rt: &ContextRuntime,
        method: &str,
        args: &[u8],
        kind: policy::CallKind,
    ) -> Result<(Arc<AppModule>, CallMode), NodeError> {
        if rt.meta.joining.is_some() {
            return Err(NodeError::Joining(rt.id));
        }
        let module = self.app(&rt.meta.app)?;
        policy::check_args(kind, args).map_err(refused)?;
        let mode = policy::decide(&module.abi, method, kind).map_err(refused)?;
        if mode == CallMode::Mutate
            && !rt
                .replica
                .access()
                .role(&rt.meta.member)
                .is_some_and(Role::writes)
        {
            return Err(NodeError::Forbidden(format!(
                "this node's member is not a writer in context {}; an admin can change its role",
                rt.id
            )));
        }
        Ok((module, mode))
    }

    /// What a call of `rt`'s app sees of the node: its context, member,
    /// clock, randomness, private storage, blobs, limits and, through
    /// `xcall`, the other contexts.
    pub(crate) fn call_env(
        &self,
        rt: &ContextRuntime,
        mode: CallMode,
        args: &[u8],
        xcall: Arc<Link>,
    ) -> CallEnv {
        let limits = &self.config().limits;
        CallEnv {
            context_id: rt.id.0,
            executor: rt.meta.member.0,
            time_nanos: now_nanos(),
            input: args.to_vec(),
            mode,
            limits: CallLimits {
                max_return_bytes: limits.max_return_bytes,
                max_write_bytes: xcall.write_budget(limits.max_call_write_bytes),
                max_handles: limits.max_call_handles,
                ..CallLimits::default()
            },
            private: rt.private.clone(),
            blobs: self.blob_source(rt),
            xcall,
            random: Box::new(|buf| {
                getrandom::fill(buf).expect("the OS random source is available")
            }),
        }
    }

    /// Runs one call's WASM and ends its session: the outcome, with its
    /// change (if any) applied to the replica but not yet authored.
    pub(crate) fn run_session(
        &self,
        rt: &mut ContextRuntime,
        module: &AppModule,
        method: &str,
        args: &[u8],
        mode: CallMode,
        link: Arc<Link>,
    ) -> Result<Ran, NodeError> {
        let limits = &self.config().limits;
        if args.len() > limits.max_request_bytes {
            return Err(NodeError::BadRequest(format!(
                "arguments are {} bytes; the node accepts at most {}",
                args.len(),
                limits.max_request_bytes
            )));
        }
        let timeout_ms = link.remaining_ms();
        let env = self.call_env(rt, mode, args, link);
        if self.config().testing.fail_rollback_method.as_deref() == Some(method) {
            rt.state.fail_next_rollback();
        }
        let session = rt.state.begin(env);
        let (session, trap) = self.host().call_within(module, session, method, timeout_ms);
        let mut outcome = rt.state.finish(session, trap);
        if let Some(why) = rt.state.broken() {
            return Err(NodeError::Quarantined(rt.id, why.to_owned()));
        }
        for line in &outcome.logs {
            tracing::info!(target: "app", context = %rt.id, method, "{line}");
        }
        let json =
            std::mem::replace(&mut outcome.result, Ok(Vec::new())).map_err(NodeError::Call)?;
        match serde_json::from_slice(&json) {
            Ok(output) => Ok(Ran {
                output,
                json,
                outcome,
            }),
            Err(e) => {
                undo(rt, outcome.mark.take());
                Err(NodeError::Call(CallError::new(
                    CallErrorKind::Host,
                    format!("the method returned invalid JSON: {e}"),
                )))
            }
        }
    }

    /// Runs one call. Its delta, its callees' deltas and its private
    /// writes are staged in `batch` (`None` for a view: nothing may be
    /// staged) and its events in `fx`; the caller commits. The flag says
    /// the call must be persisted before the next one runs: it wrote
    /// private storage or changed other contexts.
    pub(crate) fn run_call(
        &self,
        rt: &mut ContextRuntime,
        call: Call<'_>,
        batch: Option<&mut Batch>,
        fx: &mut Effects,
    ) -> Result<(CallOutput, bool), NodeError> {
        let link = Link::top(self, rt.id, &rt.meta.app, call.mode, call.origin);
        let ran = self.run_session(
            rt,
            call.module,
            call.method,
            call.args,
            call.mode,
            link.clone(),
        );
        let Some(batch) = batch else {
            // A view changed nothing, here or in a callee.
            link.abandon();
            return ran.map(|r| {
                (
                    CallOutput {
                        output: r.output,
                        delta: None,
                    },
                    false,
                )
            });
        };
        let Ran {
            output, outcome, ..
        } = ran.inspect_err(|_| link.abandon())?;
        // The callees' deltas first, each in a batch of its own that joins
        // this call's write.
        let mut callees = match link.changed() {
            true => Some(
                link.commit(self)
                    .inspect_err(|_| undo(rt, outcome.mark.clone()))?,
            ),
            false => {
                link.abandon();
                None
            }
        };
        let mut delta = None;
        if let Some(payload) = outcome.delta {
            let events = payload.events.clone();
            let (id, d) = match rt.author(Op::Call(payload), call.module.hash, self.db(), batch) {
                Ok(x) => x,
                Err(e) => {
                    if let Some(c) = &mut callees {
                        c.written(self, false);
                    }
                    undo(rt, outcome.mark);
                    return Err(e);
                }
            };
            fx.call_events(id, rt.meta.member, true, events, false);
            fx.publish.push(d);
            delta = Some(id);
        }
        for (k, v) in &outcome.private_writes {
            batch.private(self.db(), &rt.id, k, v.as_deref());
        }
        let mut flush = !outcome.private_writes.is_empty();
        if let Some(c) = callees {
            fx.callees.join(c, batch);
            flush = true;
        }
        Ok((CallOutput { output, delta }, flush))
    }
}

/// One app call to run: what [`Node::run_call`] needs besides the replica.
pub(crate) struct Call<'a> {
    module: &'a AppModule,
    method: &'a str,
    args: &'a [u8],
    mode: CallMode,
    /// Who asked: decides what the call may do in other contexts.
    origin: policy::CallKind,
}

impl<'a> Call<'a> {
    pub fn new(
        module: &'a AppModule,
        method: &'a str,
        args: &'a [u8],
        mode: CallMode,
        origin: policy::CallKind,
    ) -> Self {
        Self {
            module,
            method,
            args,
            mode,
            origin,
        }
    }
}

/// A call that ran: its JSON result, parsed and raw, and the rest of its
/// outcome.
pub(crate) struct Ran {
    pub output: serde_json::Value,
    pub json: Vec<u8>,
    pub outcome: mero_engine::CallOutcome,
}

/// Undoes a call that changed the replica but will not be published. A
/// failure leaves the replica broken, which quarantines the context.
fn undo(rt: &mut ContextRuntime, mark: Option<mero_engine::CallMark>) {
    if let Some(mark) = mark
        && rt.state.abandon(mark).is_err()
    {
        tracing::error!(context = %rt.id, "undoing a call failed; the context is set aside");
    }
}

/// The policy's name for who asks.
fn policy_kind(kind: CallKind) -> policy::CallKind {
    match kind {
        CallKind::Execute => policy::CallKind::Execute,
        CallKind::Query => policy::CallKind::Query,
        CallKind::Handler => policy::CallKind::Handler,
    }
}

/// A refused call as its caller hears it: a call error (a JSON-RPC error
/// with the refusal's kind), except a handler the app does not declare,
/// which only this node can ask for and which is a refusal of the node.
pub(crate) fn refused(r: Refusal) -> NodeError {
    match r {
        Refusal::NotAHandler { .. } => NodeError::Forbidden(r.to_string()),
        r => NodeError::Call(r.to_call_error()),
    }
}
