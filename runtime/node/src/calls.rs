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
//! handlers: see [`Node::finish`]; only stream items are announced under it,
//! to keep their order) or answer a call before it is persisted.

use std::sync::{Arc, PoisonError};
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
use crate::slot::ContextSlot;
use crate::store::Batch;
use crate::xcall::Link;

type Answer = Result<CallOutput, NodeError>;

/// The calls waiting for a context (see [`Node::execute`]).
#[derive(Default)]
pub(crate) struct Queue {
    calls: Vec<Queued>,
    /// A runner on the blocking pool is working through the queue
    /// ([`Node::execute`]); it clears this, under this lock, when it finds
    /// the queue empty.
    runner: bool,
}

impl Queue {
    /// Nothing is queued and no runner is active.
    pub(crate) fn idle(&self) -> bool {
        self.calls.is_empty() && !self.runner
    }
}

impl ContextSlot {
    /// Queues a call; `true` if the caller should start a runner.
    fn push(&self, call: Queued, start_runner: bool) -> bool {
        let mut q = self.queue.lock().unwrap();
        q.calls.push(call);
        start_runner && !std::mem::replace(&mut q.runner, true)
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
        self.announce(*ctx, &mut fx);
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
