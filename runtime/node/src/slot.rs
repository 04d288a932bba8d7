//! One context on this node ([`ContextSlot`]): its replica behind a lock,
//! the calls queued for it, the cross-context call that may hold it, and
//! why it was quarantined. The replica is loaded from the store when it is
//! first used and set aside again when it stays idle ([`crate::cold`]);
//! [`ContextSlot::lock`] hides the difference from its users.
//!
//! This module guards replicas; it must not run calls (`calls`) or decide
//! anything about deltas (`mero-sync`).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LockResult, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use crate::calls::Queue;
use crate::cold::{Cold, Residency};
use crate::context::ContextRuntime;
use crate::error::NodeError;
use crate::ids::ContextId;
use crate::node::now_ms;

/// A context's replica as the node holds it.
pub(crate) enum Resident {
    /// In memory: the DAG, access views, state and keys.
    Loaded(Box<ContextRuntime>),
    /// Only what answers without the replica; loaded on first use.
    Cold(Box<Cold>),
}

/// One context on this node: its replica behind a lock, and the mutating
/// calls waiting for it.
pub(crate) struct ContextSlot {
    id: ContextId,
    /// This node's member key in the context (never changes): readable
    /// without the lock, by async handlers.
    pub member: crate::ids::MemberKey,
    rt: Mutex<Resident>,
    pub(crate) queue: Mutex<Queue>,
    /// Why the replica was set aside, once it was.
    quarantine: OnceLock<String>,
    /// The context is being deleted: every later use finds it unknown.
    gone: AtomicBool,
    /// The call whose cross-context change this context holds until the
    /// caller's write ([`crate::xcall`]): every other use waits.
    reserved: Mutex<Option<u64>>,
    /// Signalled when the reservation ends.
    released: Condvar,
    /// Where a cold replica is loaded from.
    residency: Arc<Residency>,
    /// When the replica was last locked (ms since the epoch).
    last_used: AtomicU64,
}

/// A locked, loaded replica ([`ContextSlot::lock`]).
pub(crate) struct Loaded<'a>(MutexGuard<'a, Resident>);

impl Deref for Loaded<'_> {
    type Target = ContextRuntime;
    fn deref(&self) -> &ContextRuntime {
        match &*self.0 {
            Resident::Loaded(rt) => rt,
            // A `Loaded` is only made of a guard whose replica was loaded,
            // and nothing unloads it while the guard is held.
            Resident::Cold(_) => unreachable!("a Loaded guard over a cold replica"),
        }
    }
}

impl DerefMut for Loaded<'_> {
    fn deref_mut(&mut self) -> &mut ContextRuntime {
        match &mut *self.0 {
            Resident::Loaded(rt) => rt,
            Resident::Cold(_) => unreachable!("a Loaded guard over a cold replica"),
        }
    }
}

impl ContextSlot {
    /// A slot holding a loaded replica.
    pub fn new(rt: ContextRuntime, residency: Arc<Residency>) -> Self {
        let (id, member) = (rt.id, rt.meta.member);
        Self::with(id, member, Resident::Loaded(Box::new(rt)), residency)
    }

    /// A slot holding a cold replica.
    pub fn cold(id: ContextId, cold: Cold, residency: Arc<Residency>) -> Self {
        let member = cold.meta.member;
        Self::with(id, member, Resident::Cold(Box::new(cold)), residency)
    }

    fn with(
        id: ContextId,
        member: crate::ids::MemberKey,
        resident: Resident,
        residency: Arc<Residency>,
    ) -> Self {
        Self {
            id,
            member,
            rt: Mutex::new(resident),
            queue: Mutex::default(),
            quarantine: OnceLock::new(),
            gone: AtomicBool::new(false),
            reserved: Mutex::new(None),
            released: Condvar::new(),
            residency,
            last_used: AtomicU64::new(now_ms()),
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

    /// Locks the replica, loading it if it is cold, unless it is
    /// quarantined: a panic while it was locked (the lock is poisoned), or
    /// a failure that left its state untrustworthy. Then every use fails
    /// with [`NodeError::Quarantined`] until the node restarts and reloads
    /// the context from its store. Waits while a cross-context call holds
    /// the context.
    pub fn lock(&self) -> Result<Loaded<'_>, NodeError> {
        self.lock_for(None)
    }

    /// [`lock`](Self::lock), passing the reservation of call `holder`.
    pub(crate) fn lock_for(&self, holder: Option<u64>) -> Result<Loaded<'_>, NodeError> {
        let guard = self.locked(holder)?;
        self.load(guard)
    }

    /// The replica as it is, cold or loaded, under the same rules as
    /// [`lock`](Self::lock): for answers a cold replica can give.
    pub fn peek(&self) -> Result<MutexGuard<'_, Resident>, NodeError> {
        self.locked(None)
    }

    fn locked(&self, holder: Option<u64>) -> Result<MutexGuard<'_, Resident>, NodeError> {
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
    ) -> Result<Option<Loaded<'_>>, NodeError> {
        loop {
            if !self.wait_released(Some(holder), Some(deadline)) {
                return Ok(None);
            }
            let guard = match self.rt.try_lock() {
                Ok(guard) if self.free_for(Some(holder)) => self.admit(Ok(guard))?,
                Ok(_) => continue,
                Err(std::sync::TryLockError::Poisoned(p)) => self.admit(Err(p))?,
                Err(std::sync::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                    std::thread::sleep(std::time::Duration::from_micros(200));
                    continue;
                }
            };
            return self.load(guard).map(Some);
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
        locked: LockResult<MutexGuard<'a, Resident>>,
    ) -> Result<MutexGuard<'a, Resident>, NodeError> {
        if let Some(why) = self.quarantine.get() {
            return Err(NodeError::Quarantined(self.id, why.clone()));
        }
        let guard =
            locked.map_err(|_| self.set_aside("a panic while it was being changed".into()))?;
        if self.gone.load(Ordering::SeqCst) {
            return Err(NodeError::UnknownContext(self.id));
        }
        if let Resident::Loaded(rt) = &*guard
            && let Some(why) = rt.failure()
        {
            return Err(self.set_aside(why.to_owned()));
        }
        Ok(guard)
    }

    /// The replica behind a [`peek`](Self::peek), loaded if it is cold.
    /// Unlike [`lock`](Self::lock), a replica already loaded is not marked
    /// used: periodic digest rounds alone do not keep it in memory.
    pub fn promote<'a>(&self, guard: MutexGuard<'a, Resident>) -> Result<Loaded<'a>, NodeError> {
        match &*guard {
            Resident::Loaded(_) => Ok(Loaded(guard)),
            Resident::Cold(_) => self.load(guard),
        }
    }

    /// Loads the replica behind `guard` if it is cold; a replica that does
    /// not load is quarantined.
    /// Counts as a use: what only [`peek`](Self::peek)s (digests, status)
    /// does not keep a replica loaded.
    fn load<'a>(&self, mut guard: MutexGuard<'a, Resident>) -> Result<Loaded<'a>, NodeError> {
        self.last_used.store(now_ms(), Ordering::Relaxed);
        if let Resident::Cold(cold) = &mut *guard {
            match self.residency.load(self.id, cold) {
                Ok(rt) => *guard = Resident::Loaded(Box::new(rt)),
                Err(e) => {
                    return Err(
                        self.set_aside(format!("it could not be loaded from the store: {e}"))
                    );
                }
            }
        }
        Ok(Loaded(guard))
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

    /// The replica, cold or not, quarantined or not, once no cross-context
    /// call holds it: for deleting it.
    pub fn inspect_unreserved(&self) -> MutexGuard<'_, Resident> {
        loop {
            self.wait_released(None, None);
            let guard = self.inspect();
            if self.free_for(None) {
                return guard;
            }
        }
    }

    /// The replica as it is, for reading what it reports, quarantined or not.
    pub fn inspect(&self) -> MutexGuard<'_, Resident> {
        self.rt.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`inspect`](Self::inspect), loading a cold replica.
    pub fn inspect_loaded(&self) -> Result<Loaded<'_>, NodeError> {
        self.load(self.inspect())
    }

    /// Makes the replica cold if it has been idle since `idle_before` (ms
    /// since the epoch) and nothing is under way in it; never waits for a
    /// lock. Returns whether it did.
    pub(crate) fn evict_if_idle(&self, idle_before: u64) -> bool {
        if !self.idle_since(idle_before) || !self.queue.try_lock().is_ok_and(|q| q.idle()) {
            return false;
        }
        let Ok(mut guard) = self.rt.try_lock() else {
            return false;
        };
        // Again under the replica's lock, which every use, reservation and
        // deletion takes: one may have begun since the first look. A call
        // queued meanwhile waits for this lock and loads the replica again.
        if !self.idle_since(idle_before) {
            return false;
        }
        let Resident::Loaded(rt) = &mut *guard else {
            return false;
        };
        match self.residency.evict(rt) {
            Some(cold) => {
                *guard = Resident::Cold(Box::new(cold));
                true
            }
            None => false,
        }
    }

    /// Not used since `idle_before`, not held by a cross-context call, not
    /// quarantined or deleted.
    fn idle_since(&self, idle_before: u64) -> bool {
        self.quarantine.get().is_none()
            && !self.gone.load(Ordering::SeqCst)
            && self.last_used.load(Ordering::Relaxed) <= idle_before
            && self.free_for(None)
    }
}
