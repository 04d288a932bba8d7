//! A context's replicated state and the commit/rollback rule of a call.

use std::borrow::Cow;

use loro::{ExportMode, Frontiers, LoroDoc, VersionVector};
use mero_abi::{CallError, CallErrorKind};
use serde::{Deserialize, Serialize};

use crate::env::{CallEnv, CallMode, EmittedEvent};
use crate::error::EngineError;
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
}

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
    const HEADER: usize = 22;
    const UPDATES_MODE: [u8; 2] = [0, 4];
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
        for _ in 0..3 {
            leb(&mut block).ok_or_else(|| bad("block fields"))?;
        }
        let header_len = leb(&mut block).ok_or_else(|| bad("header length"))? as usize;
        let mut header = block
            .get(..header_len)
            .ok_or_else(|| bad("truncated header"))?;
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
}

impl ContextState {
    /// An empty state writing as `peer`.
    pub fn new(peer: u64) -> Self {
        let doc = LoroDoc::new();
        configure(&doc, peer);
        Self { doc, peer }
    }

    /// Restores a state from [`snapshot`](Self::snapshot) bytes.
    pub fn from_snapshot(bytes: &[u8], peer: u64) -> Result<Self, EngineError> {
        let doc = LoroDoc::from_snapshot(bytes)?;
        configure(&doc, peer);
        Ok(Self { doc, peer })
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
    pub fn import(&mut self, update: &[u8]) -> Result<bool, EngineError> {
        let status = self.doc.import(update)?;
        Ok(status.pending.is_none())
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
            for (name, value) in roots.iter() {
                if name == FIELDS_ROOT {
                    if let serde_json::Value::Object(fields) = loro_to_json(value) {
                        out.extend(fields);
                    }
                } else if matches!(value, loro::LoroValue::Double(v) if *v == 0.0) {
                    // A root counter at zero: whether Loro lists it depends
                    // on whether this replica happened to materialize it, so
                    // treat it as absent, like other empty roots.
                } else {
                    out.insert(name.clone(), loro_to_json(value));
                }
            }
        }
        serde_json::Value::Object(out)
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
        let output = match output {
            Ok(bytes) => bytes,
            Err(err) => {
                if let Err(e) = self.rollback(&parts.start) {
                    // The doc may still hold the failed operations: continuing
                    // would replicate them. The owner must reload the replica.
                    panic!("state rollback failed, the replica must be reloaded: {e}");
                }
                return CallOutcome {
                    result: Err(err),
                    delta: None,
                    logs: parts.logs,
                    private_writes: Vec::new(),
                };
            }
        };
        let delta = if parts.mode == CallMode::Mutate {
            self.commit(&parts.start_vv, parts.events)
        } else {
            None
        };
        CallOutcome {
            result: Ok(output),
            delta,
            logs: parts.logs,
            private_writes: parts.private_writes.into_iter().collect(),
        }
    }

    fn commit(&self, start_vv: &VersionVector, events: Vec<EmittedEvent>) -> Option<DeltaPayload> {
        self.doc.commit();
        let changed = self.doc.oplog_vv() != *start_vv;
        if !changed && events.is_empty() {
            return None;
        }
        let update = if changed {
            self.doc
                .export(ExportMode::updates(start_vv))
                .expect("exporting committed local updates cannot fail")
        } else {
            Vec::new()
        };
        Some(DeltaPayload { update, events })
    }

    /// Restores the doc to `start`. Loro has no public transaction abort, so
    /// on this rare path the doc is rebuilt from a snapshot at the start
    /// version; the success path never copies anything.
    fn rollback(&mut self, start: &Frontiers) -> Result<(), EngineError> {
        if self.doc.get_pending_txn_len() == 0 {
            return Ok(());
        }
        self.doc.commit();
        let bytes = self
            .doc
            .export(ExportMode::SnapshotAt {
                version: Cow::Borrowed(start),
            })
            .map_err(|e| EngineError::Encode(e.to_string()))?;
        let doc = LoroDoc::from_snapshot(&bytes)?;
        configure(&doc, self.peer);
        self.doc = doc;
        Ok(())
    }
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
