//! The requests of the collections whose semantics live in modules of
//! their own: ordered map reads ([`crate::sorted`]), trees
//! ([`crate::tree`]) and exact counters ([`crate::counter`]).

use loro::{Container, LoroList, LoroTree};
use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse, SlotOut};

use super::Session;
use crate::error::EngineError;
use crate::sorted::RangeQuery;
use crate::{counter, tree};

impl Session {
    /// A page of a map's entries (or only keys) in key order.
    pub(super) fn map_range(
        &mut self,
        map: Handle,
        q: &RangeQuery<'_>,
        values: bool,
    ) -> Result<HostResponse, EngineError> {
        let m = self.map(map, false)?;
        let keys = self.sorted.range(&m, q);
        if !values {
            return Ok(HostResponse::Keys(keys));
        }
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            // Always present: the key cache follows the call's writes.
            if let Some(v) = m.get(&k) {
                out.push((k, self.slot_out(v)?));
            }
        }
        Ok(HostResponse::Entries(out))
    }

    /// A counter request.
    pub(super) fn counter_request(
        &mut self,
        req: HostRequest<'_>,
    ) -> Result<HostResponse, EngineError> {
        Ok(match req {
            HostRequest::CounterGet { counter } => {
                HostResponse::I128(counter::value(&self.counter(counter, false)?)?)
            }
            HostRequest::CounterAdd { counter, by } => {
                let c = self.counter(counter, true)?;
                counter::add(&c, self.doc.peer_id(), by)?;
                HostResponse::Unit
            }
            _ => return Err(EngineError::invalid("not a counter request")),
        })
    }

    /// A tree request.
    pub(super) fn tree_request(
        &mut self,
        req: HostRequest<'_>,
    ) -> Result<HostResponse, EngineError> {
        use HostRequest as R;
        use HostResponse as A;
        Ok(match req {
            R::TreeCreate { tree: h, at } => A::Node(tree::create(&self.tree(h, true)?, at)?),
            R::TreeMove { tree: h, node, to } => {
                tree::mov(&self.tree(h, true)?, node, to)?;
                A::Unit
            }
            R::TreeDelete { tree: h, node } => A::Bool(tree::delete(&self.tree(h, true)?, node)?),
            R::TreeChildren { tree: h, parent } => {
                A::Nodes(tree::children(&self.tree(h, false)?, parent))
            }
            R::TreeParent { tree: h, node } => A::Parent(tree::parent(&self.tree(h, false)?, node)),
            R::TreeContains { tree: h, node } => {
                A::Bool(tree::contains(&self.tree(h, false)?, node))
            }
            R::TreeData { tree: h, node } => match tree::data(&self.tree(h, false)?, node)? {
                Some(m) => A::OptSlot(Some(SlotOut::Container(
                    self.push(Container::Map(m))?,
                    ContainerKind::Map,
                ))),
                None => A::OptSlot(None),
            },
            R::TreeNodes { tree: h } => A::Nodes(tree::nodes(&self.tree(h, false)?)),
            _ => return Err(EngineError::invalid("not a tree request")),
        })
    }

    fn tree(&self, h: Handle, write: bool) -> Result<LoroTree, EngineError> {
        match self.target(h, write)? {
            Container::Tree(t) => Ok(t.clone()),
            _ => Err(EngineError::invalid(format!("handle {h} is not a tree"))),
        }
    }

    fn counter(&self, h: Handle, write: bool) -> Result<LoroList, EngineError> {
        match self.target(h, write)? {
            Container::List(c) => Ok(c.clone()),
            _ => Err(EngineError::invalid(format!("handle {h} is not a counter"))),
        }
    }
}
