//! A context's replicated state and the commit/rollback rule of a call.

use std::borrow::Cow;

use loro::{ExportMode, Frontiers, LoroDoc, VersionVector};
use mero_abi::{CallError, CallErrorKind};
use serde::{Deserialize, Serialize};

use crate::env::{CallEnv, CallMode, EmittedEvent};
use crate::error::EngineError;
use crate::owned;
use crate::session::Session;
use crate::value::loro_to_json;

/// Name of the root map that holds the state struct's register fields.
pub(crate) const FIELDS_ROOT: &str = "$fields";

/// What a successful mutating call changed: the payload of its delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaPayload {
    /// Loro update bytes holding exactly the call's operations.
    pub update: Vec<u8>,
    /// Events the call emitted, in order.
    pub events: Vec<EmittedEvent>,
}

/// The result of one call.
#[derive(Debug)]
pub struct CallOutcome {
    /// JSON return value, or the structured error.
    pub result: Result<Vec<u8>, CallError>,
    /// The delta payload, for successful mutating calls that changed something
    /// or emitted events. `None` for views, no-ops and failures.
    pub delta: Option<DeltaPayload>,
    /// Log lines, kept even when the call failed.
    pub logs: Vec<String>,
    /// Node-private storage writes (`None` removes), empty when the call failed.
    pub private_writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Where the call started, for [`ContextState::abandon`]: set when it
    /// made a delta.
    pub mark: Option<CallMark>,
}

/// The point a committed call started from, so its change can still be
/// undone before its delta is published (a cross-context callee whose
/// caller failed).
#[derive(Debug, Clone)]
pub struct CallMark {
    start: Frontiers,
    start_vv: VersionVector,
    unpublished_from: Option<i32>,
    unpublished_bytes: usize,
}

/// Bytes of a Loro blob's header: `loro`, checksum, mode.
const HEADER: usize = 22;
/// The mode bytes of an update blob (the others are snapshots).
const UPDATES_MODE: [u8; 2] = [0, 4];

/// The ops an update holds, as Loro peer id → counters `start..end`, read
/// from the update's block headers without decoding its ops (receivers run
/// this on every delta, so it must cost far less than the import).
/// Anything but an update blob (a snapshot, garbage) is an error.
///
/// It reads Loro's update layout: a 22-byte header (`loro`, checksum, mode
/// 4), then blocks, each `leb128 len ‖ postcard block` whose first fields
/// are `counter_start, counter_len, lamport_start, lamport_len, n_changes`
/// and the change header, which starts with the block's peer table (the
/// block's own peer first). `tests::update_span_agrees_with_loro` checks it
/// against Loro's full decoder.
///
/// It also refuses a block whose change header claims more changes or
/// dependencies than its bytes can describe: Loro reserves memory for those
/// counts before reading them, so a crafted update of a hundred bytes could
/// make it ask for hundreds of gigabytes and abort the process (found by
/// `fuzz/fuzz_targets/delta.rs`). No real update is refused by it.
///
/// ```
/// use mero_engine::update_span;
/// let doc = loro::LoroDoc::new();
/// doc.set_peer_id(7).unwrap();
/// doc.get_map("m").insert("a", 1).unwrap();
/// doc.commit();
/// let update = doc.export(loro::ExportMode::all_updates()).unwrap();
/// assert_eq!(update_span(&update).unwrap(), vec![(7, 0, 1)]);
/// assert!(update_span(b"junk").is_err());
/// ```
pub fn update_span(update: &[u8]) -> Result<Vec<(u64, u32, u32)>, EngineError> {
    let bad = |why: &str| EngineError::Encode(format!("not a Loro update: {why}"));
    if update.len() < HEADER || &update[..4] != b"loro" {
        return Err(bad("no Loro header"));
    }
    if update[20..22] != UPDATES_MODE {
        return Err(bad("a snapshot or another kind of blob"));
    }
    let mut body = &update[HEADER..];
    let mut out: Vec<(u64, u32, u32)> = Vec::new();
    while !body.is_empty() {
        let len = leb(&mut body).ok_or_else(|| bad("block length"))? as usize;
        if len > body.len() {
            return Err(bad("truncated block"));
        }
        let (mut block, rest) = body.split_at(len);
        body = rest;
        let counter_start = leb(&mut block).ok_or_else(|| bad("counter"))?;
        let counter_len = leb(&mut block).ok_or_else(|| bad("counter length"))?;
        for _ in 0..2 {
            leb(&mut block).ok_or_else(|| bad("block fields"))?;
        }
        let changes = leb(&mut block).ok_or_else(|| bad("block fields"))?;
        let header_len = leb(&mut block).ok_or_else(|| bad("header length"))? as usize;
        let mut header = block
            .get(..header_len)
            .ok_or_else(|| bad("truncated header"))?;
        check_change_header(header, changes).map_err(bad)?;
        let peers = leb(&mut header).ok_or_else(|| bad("peer table"))?;
        let peer = header
            .get(..8)
            .filter(|_| peers > 0)
            .ok_or_else(|| bad("empty peer table"))?;
        let peer = u64::from_le_bytes(peer.try_into().expect("8 bytes"));
        let start = u32::try_from(counter_start).map_err(|_| bad("counter range"))?;
        let end = counter_start
            .checked_add(counter_len)
            .and_then(|e| u32::try_from(e).ok())
            .ok_or_else(|| bad("counter range"))?;
        match out.iter_mut().find(|(p, ..)| *p == peer) {
            Some((_, s, e)) => {
                *s = (*s).min(start);
                *e = (*e).max(end);
            }
            None => out.push((peer, start, end)),
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Bounds the counts Loro allocates for, up front, when it decodes a
/// block's change header (`decode_changes_header`): a real header holds a
/// length (one byte or more) for every change but the last, and a counter
/// (one bit or more, the first one bytes) for every dependency.
fn check_change_header(header: &[u8], changes: u64) -> Result<(), &'static str> {
    let limit = header.len() as u64 + 1;
    if changes > limit {
        return Err("more changes than the block header can describe");
    }
    match dependency_count(header, changes) {
        Some(deps) if deps > 8 * limit => {
            Err("more dependencies than the block header can describe")
        }
        Some(_) => Ok(()),
        None => {
            #[cfg(test)]
            UNREAD_HEADERS.with(|n| n.set(n.get() + 1));
            Ok(())
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Change headers [`dependency_count`] could not read, on this thread:
    /// a test checks that it reads every real one.
    pub(crate) static UNREAD_HEADERS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many dependencies (besides "the previous change of the block's
/// peer") the `changes` changes of a change header declare, read as Loro
/// lays it out: the peer table, a LEB128 length per change but the last,
/// the bool runs of "depends on its own previous change", then the
/// dependency counts as `serde_columnar` RLE (a zigzag run length, then one
/// value for a run or that many values for a literal). `None` if it does
/// not read so; Loro then refuses it itself.
fn dependency_count(mut h: &[u8], changes: u64) -> Option<u64> {
    let peers = leb(&mut h)?;
    h = h.get(usize::try_from(peers.checked_mul(8)?).ok()?..)?;
    for _ in 1..changes {
        leb(&mut h)?;
    }
    let mut seen = 0u64;
    while seen < changes {
        seen = seen.saturating_add(leb(&mut h)?);
    }
    let (mut seen, mut deps) = (0u64, 0u64);
    while seen < changes {
        let raw = leb(&mut h)?;
        let run = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
        let n = run.unsigned_abs().min(changes - seen);
        match run {
            0 => return None,
            1.. => {
                let value = leb(&mut h)?;
                deps = deps.saturating_add(value.saturating_mul(n));
            }
            _ => {
                for _ in 0..n {
                    deps = deps.saturating_add(leb(&mut h)?);
                }
            }
        }
        seen += n;
    }
    Some(deps)
}

/// Reads an unsigned LEB128 value of at most 64 bits.
fn leb(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(b & 0x7f).checked_shl(7 * i)?;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// One context's replica: a Loro document and the peer id it writes as.
///
/// ```
/// use mero_engine::ContextState;
/// let state = ContextState::new(7);
/// assert_eq!(state.to_json(), serde_json::json!({}));
/// ```
pub struct ContextState {
    doc: LoroDoc,
    peer: u64,
    /// Why this state can no longer be trusted (a rollback failed).
    broken: Option<String>,
    /// Test hook: the next rollback fails ([`Self::fail_next_rollback`]).
    fail_rollback: bool,
    /// This replica's own op counter from which its ops are in no delta
    /// yet (a failed call's ops and their reversal); `None`: all are.
    unpublished_from: Option<i32>,
    /// Encoded size of those ops, about.
    unpublished_bytes: usize,
}

/// Most bytes of failed calls' ops (and their reversals) held for the next
/// delta; a failed call that would pass it is rolled back the slow way, so
/// no delta grows past what receivers accept.
const MAX_UNPUBLISHED_BYTES: usize = 1 << 20;

impl ContextState {
    /// An empty state writing as `peer`.
    pub fn new(peer: u64) -> Self {
        let doc = LoroDoc::new();
        configure(&doc, peer);
        Self::with_doc(doc, peer)
    }

    fn with_doc(doc: LoroDoc, peer: u64) -> Self {
        Self {
            doc,
            peer,
            broken: None,
            fail_rollback: false,
            unpublished_from: None,
            unpublished_bytes: 0,
        }
    }

    /// Tells a restored state that this replica's deltas so far end at op
    /// counter `clock`: any own ops after it (a failed call and its
    /// reversal, caught in a snapshot) go out with the next delta.
    pub fn set_published(&mut self, clock: u32) {
        let own = self.doc.oplog_vv().get(&self.peer).copied().unwrap_or(0);
        let clock = i32::try_from(clock).unwrap_or(i32::MAX);
        self.unpublished_from = (own > clock).then_some(clock);
        self.unpublished_bytes = match self.unpublished_from {
            Some(c) => {
                let mut from = self.doc.oplog_vv();
                from.insert(self.peer, c);
                self.doc
                    .export(ExportMode::updates(&from))
                    .map_or(MAX_UNPUBLISHED_BYTES, |u| u.len())
            }
            None => 0,
        };
    }

    /// Why this state must not be used any more, if so: a failed call
    /// could not be rolled back, so the doc may hold its operations. The
    /// owner must stop using it (the node quarantines the context) and
    /// reload the state from its store.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Fault injection for tests: the next rollback of a failed call that
    /// wrote something fails, as a corrupt doc would make it.
    pub fn fail_next_rollback(&mut self) {
        self.fail_rollback = true;
    }

    /// Restores a state from [`snapshot`](Self::snapshot) bytes.
    pub fn from_snapshot(bytes: &[u8], peer: u64) -> Result<Self, EngineError> {
        let doc = LoroDoc::from_snapshot(bytes)?;
        configure(&doc, peer);
        Ok(Self::with_doc(doc, peer))
    }

    /// Whether the doc holds own ops no delta published yet (a failed
    /// call's, and their reversal): a snapshot of it is not what peers have.
    pub fn has_unpublished(&self) -> bool {
        self.unpublished_from.is_some()
    }

    /// Whether the doc leaves out history (a shallow snapshot).
    pub fn is_shallow(&self) -> bool {
        self.doc.is_shallow()
    }

    /// Derives a Loro peer id from a member key: stable per member, distinct
    /// across members with overwhelming probability.
    pub fn peer_id_for(member_key: &[u8; 32]) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&member_key[..8]);
        // PeerID::MAX is reserved by Loro.
        u64::from_le_bytes(b) & (u64::MAX >> 1)
    }

    /// The peer id this replica writes as.
    pub fn peer(&self) -> u64 {
        self.peer
    }

    /// Applies a delta payload's update (from this or another replica).
    /// Importing the same update twice is harmless. Returns `false` if
    /// some ops wait inside the doc for Loro dependencies that are not here
    /// yet (they apply once those arrive).
    /// An update [`update_span`] refuses is refused unread, and one the
    /// CRDT engine panics on is an error (see the body).
    pub fn import(&mut self, update: &[u8]) -> Result<bool, EngineError> {
        if update.get(20..HEADER) == Some(&UPDATES_MODE[..]) {
            update_span(update)?;
            // Loro panics on some malformed updates (found by the fuzz
            // targets `delta` and `gossip`: an index out of bounds in its
            // column decoder, an invalid root name), and a member could send
            // one. A panic poisons the doc's locks, so the update is first
            // decoded into an empty scratch doc, where a panic costs nothing
            // and is an error like any refused update (the scratch doc is
            // leaked then: dropping a poisoned doc panics again). Should the
            // real import still panic, the state is marked broken: its owner
            // must reload it.
            let scratch = LoroDoc::new();
            if let Err(why) = without_panic(|| scratch.import(update).map(|_| ())) {
                std::mem::forget(scratch);
                return Err(EngineError::Encode(format!(
                    "the update does not decode (the CRDT engine panicked: {why})"
                )));
            }
        }
        let status = match without_panic(|| self.doc.import(update)) {
            Ok(imported) => imported?,
            Err(why) => {
                let why = format!("importing an update panicked the CRDT engine: {why}");
                // Its locks are poisoned: every later use would panic too.
                let poisoned = std::mem::replace(&mut self.doc, LoroDoc::new());
                std::mem::forget(poisoned);
                configure(&self.doc, self.peer);
                self.broken = Some(why.clone());
                return Err(EngineError::Encode(why));
            }
        };
        Ok(status.pending.is_none())
    }

    /// [`import`](Self::import)s a call's update by `author` and checks
    /// that its ops touch owned entries only as `author` may
    /// ([`crate::owned`]); if not, the state is restored to what it was
    /// before the import (from a snapshot at that version: time
    /// proportional to the history, paid only for a forged delta) and the
    /// error is [`EngineError::NotOwner`].
    pub fn import_call(&mut self, update: &[u8], author: &[u8; 32]) -> Result<bool, EngineError> {
        let before = self.doc.oplog_frontiers();
        let complete = self.import(update)?;
        if let Err(e) = owned::check_imported(&self.doc, update, author) {
            self.restore(&before)?;
            return Err(e);
        }
        Ok(complete)
    }

    /// Replaces the doc with its state at `version`, history included.
    fn restore(&mut self, version: &Frontiers) -> Result<(), EngineError> {
        let bytes = self
            .doc
            .export(ExportMode::SnapshotAt {
                version: Cow::Borrowed(version),
            })
            .map_err(|e| EngineError::Encode(e.to_string()))?;
        let doc = LoroDoc::from_snapshot(&bytes)?;
        configure(&doc, self.peer);
        self.doc = doc;
        Ok(())
    }

    /// Replaces the whole state with `updates` imported in the given
    /// order into an empty doc. Used when the order matters: two forks of
    /// one author's chain reuse its op ids, and the first imported wins them.
    pub fn rebuild<'a>(&mut self, updates: impl IntoIterator<Item = &'a [u8]>) {
        let mut fresh = Self::new(self.peer);
        for u in updates {
            // An update whose op ids are taken (an equivocator's other
            // branch) is skipped.
            let _ = fresh.import(u);
        }
        fresh.fail_rollback = self.fail_rollback;
        *self = fresh;
    }

    /// A full snapshot (history and state) for fast restarts.
    pub fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.doc
            .export(ExportMode::Snapshot)
            .map_err(|e| EngineError::Encode(e.to_string()))
    }

    /// The state as JSON: one key per state field.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        if let loro::LoroValue::Map(roots) = self.doc.get_deep_value() {
            for (name, listed) in roots.iter() {
                if name == FIELDS_ROOT {
                    let fields = self.doc.get_map(FIELDS_ROOT).get_deep_value();
                    if let serde_json::Value::Object(fields) = loro_to_json(&fields) {
                        out.extend(fields);
                    }
                } else if let Some(value) = self.root_value(name, listed) {
                    let field = name.strip_prefix(owned::OWNED_PREFIX).unwrap_or(name);
                    out.insert(field.to_owned(), loro_to_json(&value));
                }
            }
        }
        serde_json::Value::Object(out)
    }

    /// The value of the root field `name`, if it holds anything. Roots are
    /// named by name *and* kind, but Loro's deep value (`listed`) shows one
    /// per name, and which one depends on what this replica happened to
    /// fetch (fetching a root writes nothing: a view may fetch `name` as
    /// another kind). So each kind mero uses is read, in a fixed order, and
    /// the first that holds something wins; `listed` stands for the kinds
    /// mero does not use. Empty roots and counters at zero are absent, as
    /// whether Loro lists them depends on what this replica fetched.
    fn root_value(&self, name: &str, listed: &loro::LoroValue) -> Option<loro::LoroValue> {
        use loro::LoroValue as V;
        if !valid_root_name(name) {
            return Some(listed.clone());
        }
        let holds = |v: &V| match v {
            V::Map(m) => !m.is_empty(),
            V::List(l) => !l.is_empty(),
            V::String(s) => !s.is_empty(),
            V::Double(d) => *d != 0.0,
            V::Null => false,
            _ => true,
        };
        [
            self.doc.get_map(name).get_deep_value(),
            self.doc.get_movable_list(name).get_deep_value(),
            V::from(self.doc.get_text(name).to_string()),
            // Counters are plain lists, trees Loro trees (see crate::counter, crate::tree).
            self.doc.get_list(name).get_deep_value(),
            self.doc.get_tree(name).get_value_with_meta(),
            V::Double(self.doc.get_counter(name).get()),
            listed.clone(),
        ]
        .into_iter()
        .find(holds)
    }

    /// The version vector: which operations of which peer this replica holds.
    pub fn version(&self) -> VersionVector {
        self.doc.oplog_vv()
    }

    /// Starts a call. Run the app against the returned session (directly or
    /// through WASM), then hand it to [`finish`](Self::finish).
    pub fn begin(&self, env: CallEnv) -> Session {
        Session::new(self.doc.clone(), env, self.doc.state_frontiers())
    }

    /// Ends a call: commits and exports the change on success; on any failure
    /// (`trap`, an app error, no return value) restores the state the call
    /// started from, so a failed call leaves no trace.
    pub fn finish(&mut self, session: Session, trap: Option<CallError>) -> CallOutcome {
        let parts = session.into_parts();
        // An error the app (or the SDK, on a refused host request) recorded
        // before trapping is the most precise; then a panic message; then the trap.
        let output = match (parts.ret, trap) {
            (Some(Ok(bytes)), None) => Ok(bytes),
            (Some(Err(bytes)), _) => Err(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                CallError::new(CallErrorKind::App, String::from_utf8_lossy(&bytes))
            })),
            (_, Some(trap)) => Err(match parts.panic {
                Some(msg) => CallError::new(CallErrorKind::Panic, msg),
                None => trap,
            }),
            (None, None) => Err(CallError::new(
                CallErrorKind::Host,
                "the method finished without returning a value (was it built with mero-sdk?)",
            )),
        };
        let output = output.and_then(|bytes| {
            if parts.mode == CallMode::Mutate {
                self.check_own_call(&parts.start_vv, &parts.executor)?;
            }
            Ok(bytes)
        });
        let output = match output {
            Ok(bytes) => bytes,
            Err(err) => {
                let result = match self.rollback(&parts.start, &parts.start_vv) {
                    Ok(()) => Err(err),
                    Err(e) => {
                        // The doc may still hold the failed operations:
                        // continuing would replicate them.
                        let why = format!("rolling back a failed call failed: {e}");
                        self.broken = Some(why.clone());
                        Err(CallError::new(CallErrorKind::Host, why))
                    }
                };
                return CallOutcome {
                    result,
                    delta: None,
                    logs: parts.logs,
                    private_writes: Vec::new(),
                    mark: None,
                };
            }
        };
        let mark = CallMark {
            start: parts.start,
            start_vv: parts.start_vv,
            unpublished_from: self.unpublished_from,
            unpublished_bytes: self.unpublished_bytes,
        };
        let delta = if parts.mode == CallMode::Mutate {
            self.commit(&mark.start_vv, parts.events)
        } else {
            None
        };
        CallOutcome {
            result: Ok(output),
            mark: delta.as_ref().map(|_| mark),
            delta,
            logs: parts.logs,
            private_writes: parts.private_writes.into_iter().collect(),
        }
    }

    /// Undoes a committed call whose delta was never published (its
    /// [`CallOutcome::mark`]), as a failed call is undone: the state is as
    /// before it, and the change and its reversal ride in this replica's
    /// next delta. Calls made after it must be abandoned first, latest
    /// first. An error leaves the replica [`broken`](Self::broken).
    pub fn abandon(&mut self, mark: CallMark) -> Result<(), EngineError> {
        // The call's delta took the unpublished ops before it; they are
        // unpublished again.
        self.unpublished_from = mark.unpublished_from;
        self.unpublished_bytes = mark.unpublished_bytes;
        self.rollback(&mark.start, &mark.start_vv).inspect_err(|e| {
            self.broken = Some(format!("undoing an abandoned call failed: {e}"));
        })
    }

    /// Refuses a call whose ops touch another member's owned entry
    /// ([`crate::owned`]): the same rule every receiver runs on its delta,
    /// so the author learns at once instead of every peer refusing it.
    fn check_own_call(
        &self,
        start_vv: &VersionVector,
        executor: &[u8; 32],
    ) -> Result<(), CallError> {
        if self.doc.get_pending_txn_len() == 0 {
            return Ok(());
        }
        self.doc.commit();
        let from = start_vv.get(&self.peer).copied().unwrap_or(0);
        let to = self.doc.oplog_vv().get(&self.peer).copied().unwrap_or(0);
        owned::check_ops(&self.doc, self.peer, from, to, &owned::owner_key(executor))
            .map_err(|e| CallError::new(CallErrorKind::Host, e.to_string()))
    }

    fn commit(
        &mut self,
        start_vv: &VersionVector,
        events: Vec<EmittedEvent>,
    ) -> Option<DeltaPayload> {
        self.doc.commit();
        let changed = self.doc.oplog_vv() != *start_vv;
        if !changed && events.is_empty() {
            return None;
        }
        let update = if changed {
            // With the ops of failed calls and their reversals, which no
            // delta carried yet: a delta's ops continue its author's last.
            let mut from = start_vv.clone();
            if let Some(c) = self.unpublished_from.take() {
                from.insert(self.peer, c);
            }
            self.unpublished_bytes = 0;
            self.doc
                .export(ExportMode::updates(&from))
                .expect("exporting committed local updates cannot fail")
        } else {
            Vec::new()
        };
        Some(DeltaPayload { update, events })
    }

    /// Restores the state to `start`, in time proportional to what the
    /// call did. Loro has no public transaction abort, so the failed ops
    /// are committed and then reverted by their inverse ops
    /// (`LoroDoc::revert_to`): the state is as before, and both changes go
    /// out with this replica's next delta (they cancel out everywhere).
    /// Should the revert fail, the doc is rebuilt from a snapshot at the
    /// start version, in time proportional to the history.
    fn rollback(&mut self, start: &Frontiers, start_vv: &VersionVector) -> Result<(), EngineError> {
        if self.doc.get_pending_txn_len() == 0 && self.doc.oplog_vv() == *start_vv {
            return Ok(());
        }
        if std::mem::take(&mut self.fail_rollback) {
            return Err(EngineError::Encode("injected rollback fault".into()));
        }
        self.doc.commit();
        let failed = self
            .doc
            .export(ExportMode::updates(start_vv))
            .map_or(usize::MAX, |u| u.len());
        // The reversal is about as big as what it reverses.
        let held = failed
            .saturating_mul(2)
            .saturating_add(self.unpublished_bytes);
        // All or nothing: if the revert fails, the doc is as it was.
        if held <= MAX_UNPUBLISHED_BYTES && self.doc.revert_to(start).is_ok() {
            self.doc.commit();
            let own = start_vv.get(&self.peer).copied().unwrap_or(0);
            self.unpublished_from.get_or_insert(own);
            self.unpublished_bytes = held;
            return Ok(());
        }
        self.restore(start)
    }
}

/// Runs `f`, turning a panic into its message.
fn without_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
}

/// Whether Loro accepts `name` as a root collection's name (it panics on
/// the others): not empty, no `/` or NUL, not in its namespace of
/// mergeable children.
pub(crate) fn valid_root_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with("🤝:") && !name.contains(['/', '\0'])
}

fn configure(doc: &LoroDoc, peer: u64) {
    doc.set_peer_id(peer)
        .expect("peer ids from peer_id_for are valid");
    // Reading a root collection materializes it locally without any op; hide
    // empty roots so the exported state is the same on every replica.
    doc.set_hide_empty_root_containers(true);
}

impl std::fmt::Debug for ContextState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextState")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}
