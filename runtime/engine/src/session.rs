//! One call in progress: the handle table and the semantics of every host request.
//!
//! This is the only implementation of host-function semantics. The node calls
//! [`Session::dispatch`] from its WASM import; the SDK's native test host calls
//! it directly.

use std::collections::BTreeMap;

use loro::{
    Container, ContainerTrait, Frontiers, LoroDoc, LoroMap, LoroMovableList, LoroText,
    ValueOrContainer, VersionVector,
};
use mero_abi::host::{
    ContainerKind, Handle, HostRequest, HostResponse, HostResult, SlotIn, SlotOut,
};

use crate::env::{CallEnv, CallMode, EmittedEvent};
use crate::error::EngineError;
use crate::sorted::{RangeQuery, SortedKeys};
use crate::state::{FIELDS_ROOT, valid_root_name};
use crate::tree;
use crate::value::{json_bytes_to_loro, loro_to_json_bytes};

mod collections;
mod store;

use store::{detached, list_insert_container, list_set_container, map_child, replace_contents};

/// Largest `RandomBytes` request.
const MAX_RANDOM_BYTES: u32 = 1 << 20;

/// A call in progress. Created by [`ContextState::begin`](crate::ContextState::begin).
pub struct Session {
    doc: LoroDoc,
    env: CallEnv,
    start: Frontiers,
    start_vv: VersionVector,
    handles: Vec<Container>,
    ret: Option<Result<Vec<u8>, Vec<u8>>>,
    panic: Option<String>,
    logs: Vec<String>,
    log_bytes: usize,
    events: Vec<EmittedEvent>,
    event_bytes: usize,
    private_writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Values and collections copied by storing collections, this call.
    copied: usize,
    /// Bytes written this call ([`CallLimits::max_write_bytes`](crate::CallLimits)).
    written: usize,
    /// Blob bytes read this call ([`CallLimits::max_blob_read_bytes`](crate::CallLimits)).
    blob_read: usize,
    /// Sorted keys of the maps read by key range this call.
    sorted: SortedKeys,
    /// Cross-context calls made this call ([`CallLimits::max_xcalls`](crate::CallLimits)).
    xcalls: usize,
}

/// What [`ContextState::finish`](crate::ContextState::finish) needs from a session.
pub(crate) struct SessionParts {
    pub start: Frontiers,
    pub start_vv: VersionVector,
    pub mode: CallMode,
    pub executor: [u8; 32],
    pub ret: Option<Result<Vec<u8>, Vec<u8>>>,
    pub panic: Option<String>,
    pub logs: Vec<String>,
    pub events: Vec<EmittedEvent>,
    pub private_writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Session {
    pub(crate) fn new(doc: LoroDoc, env: CallEnv, start: Frontiers) -> Self {
        let start_vv = doc.oplog_vv();
        Self {
            doc,
            env,
            start,
            start_vv,
            handles: Vec::new(),
            ret: None,
            panic: None,
            logs: Vec::new(),
            log_bytes: 0,
            events: Vec::new(),
            event_bytes: 0,
            private_writes: BTreeMap::new(),
            copied: 0,
            written: 0,
            blob_read: 0,
            sorted: SortedKeys::default(),
            xcalls: 0,
        }
    }

    pub(crate) fn into_parts(self) -> SessionParts {
        SessionParts {
            start: self.start,
            start_vv: self.start_vv,
            mode: self.env.mode,
            executor: self.env.executor,
            ret: self.ret,
            panic: self.panic,
            logs: self.logs,
            events: self.events,
            private_writes: self.private_writes,
        }
    }

    /// Executes one host request.
    pub fn dispatch(&mut self, req: HostRequest<'_>) -> HostResult {
        self.dispatch_inner(req).map_err(Into::into)
    }

    fn dispatch_inner(&mut self, req: HostRequest<'_>) -> Result<HostResponse, EngineError> {
        use HostRequest as R;
        use HostResponse as A;
        self.sorted.before(&req);
        let cost = write_cost(&req);
        if cost > 0 {
            self.written = self.written.saturating_add(cost);
            if self.written > self.env.limits.max_write_bytes {
                return Err(EngineError::Limit(format!(
                    "the call wrote more than {} bytes; split the work over several calls",
                    self.env.limits.max_write_bytes
                )));
            }
        }
        Ok(match req {
            R::Input => A::Bytes(self.env.input.clone()),
            R::Return { ok, data } => {
                if data.len() > self.env.limits.max_return_bytes {
                    return Err(EngineError::Limit(format!(
                        "return value is {} bytes; the node allows {}",
                        data.len(),
                        self.env.limits.max_return_bytes
                    )));
                }
                self.ret = Some(if ok {
                    Ok(data.to_vec())
                } else {
                    Err(data.to_vec())
                });
                A::Unit
            }
            R::Log { msg } => {
                self.log_bytes += msg.len();
                if self.log_bytes > self.env.limits.max_log_bytes {
                    return Err(EngineError::Limit(format!(
                        "logs exceed {} bytes in one call",
                        self.env.limits.max_log_bytes
                    )));
                }
                self.logs.push(msg.to_owned());
                A::Unit
            }
            R::Panic { msg } => {
                self.panic = Some(msg.to_owned());
                A::Unit
            }
            R::Emit {
                kind,
                data,
                handler,
            } => {
                self.check_writable("emit an event")?;
                self.event_bytes += kind.len() + data.len();
                if self.event_bytes > self.env.limits.max_event_bytes {
                    return Err(EngineError::Limit(format!(
                        "events exceed {} bytes in one call",
                        self.env.limits.max_event_bytes
                    )));
                }
                let data = std::str::from_utf8(data)
                    .map_err(|_| EngineError::invalid("event payload is not UTF-8 JSON"))?;
                self.events.push(EmittedEvent {
                    kind: kind.to_owned(),
                    data: data.to_owned(),
                    handler: handler.map(str::to_owned),
                });
                A::Unit
            }
            R::ContextId => A::Bytes(self.env.context_id.to_vec()),
            R::ExecutorId => A::Bytes(self.env.executor.to_vec()),
            R::TimeNanos => A::U64(self.env.time_nanos),
            R::RandomBytes { len } => {
                if len > MAX_RANDOM_BYTES {
                    return Err(EngineError::Limit(format!(
                        "at most {MAX_RANDOM_BYTES} random bytes per request"
                    )));
                }
                let mut buf = vec![0u8; len as usize];
                (self.env.random)(&mut buf);
                A::Bytes(buf)
            }
            R::BlobRead { id, offset, len } => self.blob_read(&id, offset, len)?,
            R::XCall {
                context,
                method,
                args,
                mutate,
            } => {
                if mutate {
                    self.check_writable("make a mutating cross-context call")?;
                }
                self.xcalls += 1;
                if self.xcalls > self.env.limits.max_xcalls {
                    return Err(EngineError::Limit(format!(
                        "a call may make at most {} cross-context calls",
                        self.env.limits.max_xcalls
                    )));
                }
                let reply = self
                    .env
                    .xcall
                    .call(&context, method, args, mutate)
                    .map_err(EngineError::XCall)?;
                A::Reply(reply)
            }
            R::PrivateGet { key } => A::OptBytes(match self.private_writes.get(key) {
                Some(v) => v.clone(),
                None => self.env.private.get(key),
            }),
            R::PrivateSet { key, value } => {
                self.check_writable("write private storage")?;
                self.private_writes
                    .insert(key.to_vec(), value.map(<[u8]>::to_vec));
                A::Unit
            }
            R::Root { name, kind } => {
                let c = self.root(name, kind)?;
                A::Handle(self.push(c)?)
            }
            R::RootValueGet { name } => {
                A::OptBytes(match self.doc.get_map(FIELDS_ROOT).get(name) {
                    Some(ValueOrContainer::Value(v)) => Some(loro_to_json_bytes(&v)),
                    _ => None,
                })
            }
            R::RootValueSet { name, value } => {
                self.check_writable("set a state field")?;
                self.doc
                    .get_map(FIELDS_ROOT)
                    .insert(name, json_bytes_to_loro(value)?)?;
                A::Unit
            }
            R::New { kind } => A::Handle(self.push(detached(kind))?),
            R::BindRoot { name, src } => {
                self.check_writable("initialize state")?;
                let src = self.get(src)?.clone();
                let root = self.root(name, kind_of(&src)?)?;
                // A migration keeps a field by storing the root it loaded.
                if src.id() != root.id() {
                    self.store(&src, &root)?;
                }
                A::Handle(self.push(root)?)
            }
            R::MapGet { map, key } => {
                let m = self.map(map, false)?;
                A::OptSlot(match m.get(key) {
                    Some(v) => Some(self.slot_out(v)?),
                    None => None,
                })
            }
            R::MapInsert { map, key, value } => {
                let m = self.map(map, true)?;
                match value {
                    SlotIn::Value(json) => {
                        m.insert(key, json_bytes_to_loro(json)?)?;
                        self.sorted.inserted(&m, key);
                        A::Unit
                    }
                    SlotIn::Container(src) => {
                        let src = self.get(src)?.clone();
                        let child = map_child(&m, key, kind_of(&src)?)?;
                        self.store(&src, &child)?;
                        A::Handle(self.push(child)?)
                    }
                }
            }
            R::MapEnsure { map, key, kind } => {
                let m = self.map(map, true)?;
                let child = match m.get(key) {
                    Some(ValueOrContainer::Container(c)) if kind_of(&c)? == kind => c,
                    _ => map_child(&m, key, kind)?,
                };
                self.sorted.inserted(&m, key);
                A::Handle(self.push(child)?)
            }
            R::MapRemove { map, key } => {
                let m = self.map(map, true)?;
                let present = m.get(key).is_some();
                if present {
                    m.delete(key)?;
                    self.sorted.removed(&m, key);
                }
                A::Bool(present)
            }
            R::MapContains { map, key } => A::Bool(self.map(map, false)?.get(key).is_some()),
            R::MapEntries { map } => {
                let m = self.map(map, false)?;
                let mut raw = Vec::with_capacity(m.len());
                m.for_each(|k, v| raw.push((k.to_owned(), v)));
                raw.sort_by(|a, b| a.0.cmp(&b.0));
                let mut out = Vec::with_capacity(raw.len());
                for (k, v) in raw {
                    out.push((k, self.slot_out(v)?));
                }
                A::Entries(out)
            }
            R::MapClear { map } => {
                let m = self.map(map, true)?;
                m.clear()?;
                self.sorted.cleared(&m);
                A::Unit
            }
            R::MapRange {
                map,
                from,
                to,
                prefix,
                limit,
                reverse,
                values,
            } => {
                let q = RangeQuery {
                    from,
                    to,
                    prefix,
                    limit: limit as usize,
                    reverse,
                };
                self.map_range(map, &q, values)?
            }
            R::Len { handle } => A::U64(match self.get(handle)? {
                Container::Map(m) => m.len(),
                Container::MovableList(l) => l.len(),
                Container::Text(t) => t.len_unicode(),
                Container::Tree(t) => tree::nodes(t).len(),
                Container::List(_) => {
                    return Err(EngineError::invalid("a counter has no length"));
                }
                _ => return Err(EngineError::invalid("unsupported collection kind")),
            } as u64),
            R::ListGet { list, index } => {
                let l = self.list(list, false)?;
                A::OptSlot(match l.get(index as usize) {
                    Some(v) => Some(self.slot_out(v)?),
                    None => None,
                })
            }
            R::ListInsert { list, index, value } => {
                let l = self.list(list, true)?;
                let index = index as usize;
                bounds(index, l.len() + 1, "insert")?;
                match value {
                    SlotIn::Value(json) => {
                        l.insert(index, json_bytes_to_loro(json)?)?;
                        A::Unit
                    }
                    SlotIn::Container(src) => {
                        let src = self.get(src)?.clone();
                        let child = list_insert_container(&l, index, kind_of(&src)?)?;
                        self.store(&src, &child)?;
                        A::Handle(self.push(child)?)
                    }
                }
            }
            R::ListSet { list, index, value } => {
                let l = self.list(list, true)?;
                let index = index as usize;
                bounds(index, l.len(), "set")?;
                match value {
                    SlotIn::Value(json) => {
                        l.set(index, json_bytes_to_loro(json)?)?;
                        A::Unit
                    }
                    SlotIn::Container(src) => {
                        let src = self.get(src)?.clone();
                        let child = list_set_container(&l, index, kind_of(&src)?)?;
                        self.store(&src, &child)?;
                        A::Handle(self.push(child)?)
                    }
                }
            }
            R::ListDelete { list, index, len } => {
                let l = self.list(list, true)?;
                let (index, len) = (index as usize, len as usize);
                if index.checked_add(len).is_none_or(|end| end > l.len()) {
                    return Err(EngineError::invalid(format!(
                        "cannot delete {len} items at index {index}: the list has {} items",
                        l.len()
                    )));
                }
                l.delete(index, len)?;
                A::Unit
            }
            R::ListMove { list, from, to } => {
                let l = self.list(list, true)?;
                bounds(from as usize, l.len(), "move from")?;
                bounds(to as usize, l.len(), "move to")?;
                l.mov(from as usize, to as usize)?;
                A::Unit
            }
            R::ListItems { list } => {
                let l = self.list(list, false)?;
                let mut raw = Vec::with_capacity(l.len());
                l.for_each(|v| raw.push(v));
                let mut out = Vec::with_capacity(raw.len());
                for v in raw {
                    out.push(self.slot_out(v)?);
                }
                A::Items(out)
            }
            r @ (R::CounterGet { .. } | R::CounterAdd { .. }) => self.counter_request(r)?,
            r @ (R::TreeCreate { .. }
            | R::TreeMove { .. }
            | R::TreeDelete { .. }
            | R::TreeChildren { .. }
            | R::TreeParent { .. }
            | R::TreeContains { .. }
            | R::TreeData { .. }
            | R::TreeNodes { .. }) => self.tree_request(r)?,
            R::TextGet { text } => A::Str(self.text(text, false)?.to_string()),
            R::TextInsert { text, pos, s } => {
                let t = self.text(text, true)?;
                bounds(pos as usize, t.len_unicode() + 1, "insert text")?;
                t.insert(pos as usize, s)?;
                A::Unit
            }
            R::TextDelete { text, pos, len } => {
                let t = self.text(text, true)?;
                let (pos, len) = (pos as usize, len as usize);
                if pos.checked_add(len).is_none_or(|end| end > t.len_unicode()) {
                    return Err(EngineError::invalid(format!(
                        "cannot delete {len} chars at {pos}: the text has {} chars",
                        t.len_unicode()
                    )));
                }
                t.delete(pos, len)?;
                A::Unit
            }
        })
    }

    fn check_writable(&self, what: &str) -> Result<(), EngineError> {
        if self.env.mode == CallMode::View {
            return Err(EngineError::ReadOnly(format!(
                "cannot {what} in a view: the method takes &self (or was called with `query`); \
                 take &mut self and call it with `execute`"
            )));
        }
        Ok(())
    }

    fn root(&self, name: &str, kind: ContainerKind) -> Result<Container, EngineError> {
        if name == FIELDS_ROOT || !valid_root_name(name) {
            return Err(EngineError::invalid(format!(
                "`{name}` is not a valid state field name"
            )));
        }
        Ok(match kind {
            ContainerKind::Map => Container::Map(self.doc.get_map(name)),
            ContainerKind::List => Container::MovableList(self.doc.get_movable_list(name)),
            ContainerKind::Text => Container::Text(self.doc.get_text(name)),
            ContainerKind::Counter => Container::List(self.doc.get_list(name)),
            ContainerKind::Tree => Container::Tree(self.doc.get_tree(name)),
        })
    }

    /// Makes `dst` hold what `src` holds ([`replace_contents`]).
    fn store(&mut self, src: &Container, dst: &Container) -> Result<(), EngineError> {
        replace_contents(src, dst, self.doc.peer_id(), &mut self.copied)
    }

    fn push(&mut self, c: Container) -> Result<Handle, EngineError> {
        if self.handles.len() >= self.env.limits.max_handles {
            return Err(EngineError::Limit(format!(
                "more than {} collection handles in one call",
                self.env.limits.max_handles
            )));
        }
        self.handles.push(c);
        Ok((self.handles.len() - 1) as Handle)
    }

    fn get(&self, h: Handle) -> Result<&Container, EngineError> {
        self.handles
            .get(h as usize)
            .ok_or_else(|| EngineError::invalid(format!("unknown collection handle {h}")))
    }

    /// Resolves a handle; `write` checks that attached state may change.
    fn target(&self, h: Handle, write: bool) -> Result<&Container, EngineError> {
        let c = self.get(h)?;
        if write && c.is_attached() {
            self.check_writable("change a collection")?;
        }
        Ok(c)
    }

    fn map(&self, h: Handle, write: bool) -> Result<LoroMap, EngineError> {
        match self.target(h, write)? {
            Container::Map(m) => Ok(m.clone()),
            _ => Err(EngineError::invalid(format!("handle {h} is not a map"))),
        }
    }

    fn list(&self, h: Handle, write: bool) -> Result<LoroMovableList, EngineError> {
        match self.target(h, write)? {
            Container::MovableList(l) => Ok(l.clone()),
            _ => Err(EngineError::invalid(format!("handle {h} is not a vector"))),
        }
    }

    fn text(&self, h: Handle, write: bool) -> Result<LoroText, EngineError> {
        match self.target(h, write)? {
            Container::Text(t) => Ok(t.clone()),
            _ => Err(EngineError::invalid(format!("handle {h} is not a text"))),
        }
    }

    fn slot_out(&mut self, v: ValueOrContainer) -> Result<SlotOut, EngineError> {
        Ok(match v {
            ValueOrContainer::Value(v) => SlotOut::Value(loro_to_json_bytes(&v)),
            ValueOrContainer::Container(c) => {
                let kind = kind_of(&c)?;
                SlotOut::Container(self.push(c)?, kind)
            }
        })
    }
}

fn bounds(index: usize, limit: usize, what: &str) -> Result<(), EngineError> {
    if index >= limit {
        return Err(EngineError::invalid(format!(
            "cannot {what} at index {index}: out of range (limit {limit})"
        )));
    }
    Ok(())
}

fn kind_of(c: &Container) -> Result<ContainerKind, EngineError> {
    Ok(match c {
        Container::Map(_) => ContainerKind::Map,
        Container::MovableList(_) => ContainerKind::List,
        Container::Text(_) => ContainerKind::Text,
        // Counters are plain lists ([`crate::counter`]); nothing else is.
        Container::List(_) => ContainerKind::Counter,
        Container::Tree(_) => ContainerKind::Tree,
        Container::Counter(_) => {
            return Err(EngineError::invalid(
                "state holds a floating-point counter, which mero no longer reads",
            ));
        }
        _ => return Err(EngineError::invalid("unsupported collection kind in state")),
    })
}

impl Session {
    /// A blob read, within the call's blob budget: the budget is charged
    /// with what was asked before the node reads, so no read can make the
    /// host hold more than the budget.
    fn blob_read(
        &mut self,
        id: &[u8; 32],
        offset: u64,
        len: u32,
    ) -> Result<HostResponse, EngineError> {
        let max = self.env.limits.max_blob_read_bytes;
        self.blob_read = self.blob_read.saturating_add(len as usize);
        if self.blob_read > max {
            return Err(EngineError::Limit(format!(
                "the call read more than {max} blob bytes; read large blobs in parts over several calls"
            )));
        }
        Ok(HostResponse::Blob(self.env.blobs.read(id, offset, len)))
    }
}

/// What a request counts against [`CallLimits::max_write_bytes`](crate::CallLimits):
/// the bytes it stores and a fixed cost for the operation. Events have a
/// budget of their own.
fn write_cost(req: &HostRequest<'_>) -> usize {
    /// About what one operation costs the state engine beyond its bytes.
    const OP: usize = 32;
    let slot = |v: &SlotIn<'_>| match v {
        SlotIn::Value(json) => json.len(),
        SlotIn::Container(_) => 0,
    };
    let bytes = match req {
        HostRequest::PrivateSet { key, value } => key.len() + value.map_or(0, <[u8]>::len),
        HostRequest::RootValueSet { name, value } => name.len() + value.len(),
        HostRequest::MapInsert { key, value, .. } => key.len() + slot(value),
        HostRequest::MapEnsure { key, .. } => key.len(),
        HostRequest::ListInsert { value, .. } | HostRequest::ListSet { value, .. } => slot(value),
        HostRequest::TextInsert { s, .. } => s.len(),
        HostRequest::Emit { .. } => return 0,
        r if r.mutates_state() => 0,
        _ => return 0,
    };
    bytes + OP
}
