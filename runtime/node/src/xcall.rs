//! Cross-context calls: a method of one context calls a method of another
//! context this node is a member of (`mero_sdk::xcall`) and gets its reply.
//!
//! The callee runs at once, on the caller's thread, under the callee's own
//! lock, policy (`#[app::xcall]` methods only) and member role. A view
//! changes nothing. A mutating callee's change stays in its replica,
//! unpublished, and the context stays *reserved* for the calling call
//! (every other use of it waits) until the caller is done:
//!
//! - the caller fails (or the caller's own delta cannot be made): every
//!   callee change is undone ([`mero_engine::ContextState::abandon`]);
//! - the caller succeeds: each callee's delta is authored and staged, and
//!   goes into the caller's RocksDB write batch ([`Batch::append`]), so one
//!   write commits the caller and its callees or none of them; the group
//!   commit persists that call before running the next one. If the write
//!   fails, the callees reload from the store like the caller.
//!
//! Then the reservations end and the callees' deltas are published.
//!
//! Limits, so no call can wedge the node: a chain spans at most
//! `[limits] xcall_depth` contexts; a context never calls one that is
//! already in its chain (itself included), which would wait on its own
//! lock; a callee held by another call is waited for at most
//! `[limits] xcall_busy_ms`, so two calls that call into each other's
//! contexts at once fail instead of waiting forever; a call makes at most
//! [`mero_engine::CallLimits::max_xcalls`] calls; the whole tree of callees
//! shares one budget of calls and of bytes written, and callees (and waits
//! for busy ones) get only what is left of the first caller's time.
//!
//! Who may call: only calls a client of this node made (and their callees)
//! may call other contexts: handlers run because of peers' deltas. And only
//! a context running an app this node's operator installed (the admin API,
//! `cargo mero deploy`/`dev`) may call: an upgrade another node's admin
//! made arrives from a peer, and does not carry the right to act in this
//! node's other contexts until this node's operator installs the same app.
//!
//! This module must not publish or persist anything itself: the caller's
//! commit does, through [`Callees`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use mero_abi::{CallError, CallErrorKind};
use mero_engine::policy::CallKind;
use mero_engine::{CallMark, CallMode, CrossContext, DeltaPayload};
use mero_sync::Op;

use crate::context::{Effects, Staged};
use crate::error::NodeError;
use crate::ids::{AppHash, ContextId};
use crate::node::Node;
use crate::slot::ContextSlot;
use crate::store::{Batch, Store};

/// A fresh id for one call: what its reservations are held under.
pub(crate) fn next_call() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A callee change that succeeded and waits for its caller's outcome.
struct Pending {
    slot: Arc<ContextSlot>,
    app: AppHash,
    /// Its state change, where it made one.
    change: Option<(CallMark, DeltaPayload)>,
    private_writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// What a whole tree of calls may still do in other contexts.
#[derive(Debug)]
struct Budget {
    /// Cross-context calls.
    calls: usize,
    /// Bytes callees may write (their deltas' and private writes' sizes).
    bytes: usize,
}

/// One call's way to other contexts: the [`CrossContext`] its session
/// holds. Each callee gets a link of its own, one context deeper.
pub(crate) struct Link {
    node: Weak<Node>,
    /// The top caller's call id: every reservation in its tree.
    call: u64,
    /// The contexts locked up this chain, the caller last.
    chain: Vec<ContextId>,
    /// Why this call may not call other contexts, if it may not.
    refused: Option<&'static str>,
    /// Whether callees may change state (the caller may).
    mutate: bool,
    /// Callee changes made through this link, in order (a callee's own
    /// callees before it).
    done: Mutex<Vec<Pending>>,
    /// Every context reserved in this call's tree.
    reserved: Arc<Mutex<Vec<Arc<ContextSlot>>>>,
    /// When the top call's time is up: its callees, and its waits for
    /// busy callees, get only what is left of it.
    deadline: Instant,
    /// What the whole tree may still do.
    budget: Arc<Mutex<Budget>>,
}

impl Link {
    /// The link of a call of context `ctx` that `origin` asked for, which
    /// may run for `timeout`.
    pub fn top(
        node: &Node,
        ctx: ContextId,
        app: &AppHash,
        mode: CallMode,
        origin: CallKind,
    ) -> Arc<Self> {
        let limits = &node.config().limits;
        let refused = match origin {
            CallKind::Execute | CallKind::Query | CallKind::CrossExecute | CallKind::CrossQuery => {
                None
            }
            CallKind::Handler => Some(
                "a handler cannot call other contexts: it runs because of a peer's delta, and no peer may make this node act in another context",
            ),
            CallKind::Internal | CallKind::Init => {
                Some("only a client's call may call other contexts")
            }
        }
        .or_else(|| untrusted(node, app));
        Arc::new(Self {
            node: node.me(),
            call: next_call(),
            chain: vec![ctx],
            refused,
            mutate: mode == CallMode::Mutate,
            done: Mutex::default(),
            reserved: Arc::default(),
            deadline: Instant::now() + Duration::from_millis(limits.call_timeout_ms),
            budget: Arc::new(Mutex::new(Budget {
                calls: mero_engine::CallLimits::default().max_xcalls,
                bytes: limits.max_call_write_bytes,
            })),
        })
    }

    /// Bytes a callee may write: what the tree has left, at most `cap`.
    pub fn write_budget(&self, cap: usize) -> usize {
        self.budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
            .min(cap)
    }

    /// Milliseconds left of the top call's time (at least 1).
    pub fn remaining_ms(&self) -> u64 {
        let left = self.deadline.saturating_duration_since(Instant::now());
        u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// A link without access to other contexts (upgrades, migrations).
    pub fn none(ctx: ContextId, why: &'static str) -> Arc<Self> {
        Arc::new(Self {
            node: Weak::new(),
            call: next_call(),
            chain: vec![ctx],
            refused: Some(why),
            mutate: false,
            done: Mutex::default(),
            reserved: Arc::default(),
            deadline: Instant::now(),
            budget: Arc::new(Mutex::new(Budget {
                calls: 0,
                bytes: usize::MAX,
            })),
        })
    }

    fn child(&self, ctx: ContextId, mode: CallMode, refused: Option<&'static str>) -> Arc<Self> {
        let mut chain = self.chain.clone();
        chain.push(ctx);
        Arc::new(Self {
            node: self.node.clone(),
            call: self.call,
            chain,
            refused,
            mutate: mode == CallMode::Mutate,
            done: Mutex::default(),
            reserved: self.reserved.clone(),
            deadline: self.deadline,
            budget: self.budget.clone(),
        })
    }

    fn take_done(&self) -> Vec<Pending> {
        std::mem::take(&mut *self.done.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether a callee changed state through this link.
    pub fn changed(&self) -> bool {
        !self
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// The caller failed: undoes every callee change, latest first, and
    /// ends the reservations.
    pub fn abandon(&self) {
        abandon(self.call, self.take_done());
        self.release();
    }

    /// Ends every reservation of this call's tree.
    fn release(&self) {
        let slots =
            std::mem::take(&mut *self.reserved.lock().unwrap_or_else(PoisonError::into_inner));
        for slot in slots {
            slot.release(self.call);
        }
    }

    /// The caller succeeded: authors each callee's delta and stages it with
    /// the callee's commit and private writes in a batch of its own. On
    /// failure nothing is kept: every callee reloads from the store and the
    /// reservations end.
    pub fn commit(&self, node: &Node) -> Result<Callees, NodeError> {
        let done = self.take_done();
        let mut callees: Vec<Callee> = Vec::new();
        for p in &done {
            if !callees.iter().any(|c| Arc::ptr_eq(&c.slot, &p.slot)) {
                callees.push(Callee {
                    call: self.call,
                    slot: p.slot.clone(),
                    batch: Some(node.db().batch()),
                    fx: Effects::default(),
                    staged: None,
                    db: node.db().clone(),
                });
            }
        }
        if let Err(e) = self.stage_all(node, done, &mut callees) {
            for c in &callees {
                reload(node, &c.slot, self.call);
            }
            self.release();
            return Err(e);
        }
        let reserved =
            std::mem::take(&mut *self.reserved.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(Callees {
            staged: callees,
            reserved: reserved.into_iter().map(|s| (self.call, s)).collect(),
        })
    }

    fn stage_all(
        &self,
        node: &Node,
        done: Vec<Pending>,
        callees: &mut [Callee],
    ) -> Result<(), NodeError> {
        for p in done {
            let c = callees
                .iter_mut()
                .find(|c| Arc::ptr_eq(&c.slot, &p.slot))
                .expect("every pending context has its callee");
            let batch = c.batch.as_mut().expect("not joined yet");
            let mut rt = c.slot.lock_for(Some(self.call))?;
            if let Some((_, payload)) = p.change {
                let events = payload.events.clone();
                let (id, d) = rt.author(Op::Call(payload), p.app, node.db(), batch)?;
                c.fx.call_events(id, rt.meta.member, true, events, false);
                c.fx.publish.push(d);
            }
            for (k, v) in &p.private_writes {
                batch.private(node.db(), &rt.id, k, v.as_deref());
            }
        }
        for c in callees.iter_mut().filter(|c| !c.fx.publish.is_empty()) {
            let mut rt = c.slot.lock_for(Some(self.call))?;
            let batch = c.batch.as_mut().expect("not joined yet");
            c.staged = Some(rt.stage(node.db(), batch, node.policy(), &mut c.fx)?);
        }
        Ok(())
    }
}

impl Drop for Link {
    /// A link dropped with changes still pending (a panic in between)
    /// undoes them and ends its reservations, so no context stays held.
    fn drop(&mut self) {
        let done = self.take_done();
        if !done.is_empty() {
            abandon(self.call, done);
        }
        self.release();
    }
}

/// Why a context running `app` may not call other contexts, if it may not.
fn untrusted(node: &Node, app: &AppHash) -> Option<&'static str> {
    (!node.trusts(app)).then_some(
        "this context runs an app this node's operator did not install (it came from a peer, with an upgrade): install it on this node (POST /admin/apps) to let it call other contexts",
    )
}

fn reload(node: &Node, slot: &ContextSlot, call: u64) {
    if let Ok(mut rt) = slot.lock_for(Some(call)) {
        rt.reload(node.db());
    }
}

/// Undoes callee changes, latest first.
fn abandon(call: u64, done: Vec<Pending>) {
    for p in done.into_iter().rev() {
        let Some((mark, _)) = p.change else {
            continue;
        };
        let Ok(mut rt) = p.slot.lock_for(Some(call)) else {
            continue;
        };
        if let Err(e) = rt.state.abandon(mark) {
            p.slot.set_aside(e.to_string());
        }
    }
}

fn refusal(kind: CallErrorKind, message: String) -> CallError {
    CallError::new(kind, message)
}

impl CrossContext for Link {
    fn call(
        &self,
        context: &[u8; 32],
        method: &str,
        args: &[u8],
        mutate: bool,
    ) -> Result<Result<Vec<u8>, Vec<u8>>, CallError> {
        if let Some(why) = self.refused {
            return Err(refusal(CallErrorKind::Host, why.into()));
        }
        let Some(node) = self.node.upgrade() else {
            return Err(refusal(
                CallErrorKind::Host,
                "the node is shutting down".into(),
            ));
        };
        let id = ContextId(*context);
        if self.chain.contains(&id) {
            let path: Vec<String> = self
                .chain
                .iter()
                .chain([&id])
                .map(ToString::to_string)
                .collect();
            return Err(refusal(
                CallErrorKind::Host,
                format!(
                    "context {id} is already in this chain of calls ({}): a context cannot call itself or one of its callers",
                    path.join(" → ")
                ),
            ));
        }
        let limits = &node.config().limits;
        if self.chain.len() >= limits.xcall_depth {
            return Err(refusal(
                CallErrorKind::Limit,
                format!(
                    "a chain of cross-context calls spans at most {} contexts ([limits] xcall_depth)",
                    limits.xcall_depth
                ),
            ));
        }
        {
            let mut budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
            if budget.calls == 0 {
                return Err(refusal(
                    CallErrorKind::Limit,
                    format!(
                        "a call and its callees make at most {} cross-context calls in all",
                        mero_engine::CallLimits::default().max_xcalls
                    ),
                ));
            }
            budget.calls -= 1;
        }
        let slot = node.context(&id).map_err(|e| match e {
            NodeError::UnknownContext(_) => refusal(
                CallErrorKind::Host,
                format!("this node is not a member of context {id}"),
            ),
            e => refusal(CallErrorKind::Host, e.to_string()),
        })?;
        let busy = Instant::now() + Duration::from_millis(limits.xcall_busy_ms);
        let mut rt = match slot.try_lock_for(self.call, busy.min(self.deadline)) {
            Ok(Some(rt)) => rt,
            Ok(None) if busy > self.deadline => {
                return Err(refusal(
                    CallErrorKind::Timeout,
                    format!(
                        "the call ran out of time waiting for context {id}, busy with other calls"
                    ),
                ));
            }
            Ok(None) => {
                return Err(refusal(
                    CallErrorKind::Timeout,
                    format!(
                        "context {id} stayed busy with other calls for {} ms ([limits] xcall_busy_ms); try again",
                        limits.xcall_busy_ms
                    ),
                ));
            }
            Err(e) => return Err(refusal(CallErrorKind::Host, e.to_string())),
        };
        let kind = match mutate && self.mutate {
            true => CallKind::CrossExecute,
            false => CallKind::CrossQuery,
        };
        let (module, mode) = match node.callable(&rt, method, args, kind) {
            Ok(x) => x,
            Err(e) => return Ok(Err(reply_error(e))),
        };
        let link = self.child(id, mode, untrusted(&node, &module.hash));
        let ran = node.run_session(&mut rt, &module, method, args, mode, link.clone());
        let nested = link.take_done();
        let ran = match ran {
            Ok(ran) => ran,
            Err(e) => {
                drop(rt);
                abandon(self.call, nested);
                return Ok(Err(reply_error(e)));
            }
        };
        let outcome = ran.outcome;
        let change = outcome.mark.zip(outcome.delta);
        let written = change.as_ref().map_or(0, |(_, p)| p.update.len())
            + outcome
                .private_writes
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
        {
            let mut budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
            budget.bytes = budget.bytes.saturating_sub(written);
        }
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let here = change.is_some() || !outcome.private_writes.is_empty();
        let reserve = here || !nested.is_empty();
        done.extend(nested);
        if here {
            done.push(Pending {
                slot: slot.clone(),
                app: module.hash,
                change,
                private_writes: outcome.private_writes,
            });
        }
        if reserve {
            slot.reserve(self.call);
            self.reserved
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(slot.clone());
        }
        Ok(Ok(ran.json))
    }
}

/// A callee's failure as its caller reads it.
fn reply_error(e: NodeError) -> Vec<u8> {
    let err = match e {
        NodeError::Call(e) => e,
        e => CallError::new(CallErrorKind::Host, e.to_string()),
    };
    serde_json::to_vec(&err).unwrap_or_default()
}

/// A callee staged to commit in its caller's write.
struct Callee {
    /// The call it is reserved for.
    call: u64,
    slot: Arc<ContextSlot>,
    /// Its writes, until they join the caller's batch.
    batch: Option<Batch>,
    /// Its deltas to publish and stream items to announce.
    fx: Effects,
    /// Its commit, when it made deltas (not only private writes).
    staged: Option<Staged>,
    /// The store, to reload from if the callee is dropped unwritten.
    db: Arc<Store>,
}

/// The callees of a change's calls, staged in its write until the write
/// ends ([`written`](Self::written)).
#[derive(Default)]
pub struct Callees {
    staged: Vec<Callee>,
    /// Reserved contexts and the call each is reserved for.
    reserved: Vec<(u64, Arc<ContextSlot>)>,
}

impl std::fmt::Debug for Callees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callees")
            .field("staged", &self.staged.len())
            .field("reserved", &self.reserved.len())
            .finish()
    }
}

impl Callees {
    /// Moves the callees' writes into the caller's batch, and keeps the
    /// rest for [`written`](Self::written).
    pub(crate) fn join(&mut self, mut more: Callees, batch: &mut Batch) {
        for mut c in more.staged.drain(..) {
            if let Some(b) = c.batch.take() {
                batch.append(b);
            }
            self.staged.push(c);
        }
        self.reserved.append(&mut more.reserved);
    }

    /// The caller's write ended (`ok`): each callee publishes its deltas
    /// and announces its stream items, or reloads from the store; then its
    /// reservation ends. Publishing first keeps every context's stream ids
    /// and deltas in order: the next change of the callee comes after.
    pub(crate) fn written(&mut self, node: &Node, ok: bool) {
        for mut c in self.staged.drain(..) {
            if ok {
                node.finish(c.slot.id(), std::mem::take(&mut c.fx), None);
            } else if let Some(staged) = c.staged
                && let Ok(mut rt) = c.slot.lock_for(Some(c.call))
            {
                rt.unstage(node.db(), &mut c.fx, staged);
            }
        }
        for (call, slot) in self.reserved.drain(..) {
            slot.release(call);
        }
    }
}

impl Drop for Callees {
    /// Callees dropped before their write ended (a panic in between)
    /// reload and end their reservations.
    fn drop(&mut self) {
        for c in self.staged.drain(..) {
            if let Ok(mut rt) = c.slot.lock_for(Some(c.call)) {
                rt.reload(&c.db);
            }
        }
        for (call, slot) in self.reserved.drain(..) {
            slot.release(call);
        }
    }
}
