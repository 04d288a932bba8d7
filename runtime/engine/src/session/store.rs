//! Storing a collection into state: a collection value is copied into the
//! slot's child collection (the CRDTs have no "move this container here"),
//! and the children a slot gets.

use loro::{
    Container, ContainerID, ContainerTrait, LoroList, LoroMap, LoroMovableList, LoroText, LoroTree,
    ValueOrContainer,
};
use mero_abi::host::ContainerKind;

use super::kind_of;
use crate::error::EngineError;
use crate::{counter, tree};

/// A new detached collection of `kind`.
pub(super) fn detached(kind: ContainerKind) -> Container {
    match kind {
        ContainerKind::Map => Container::Map(LoroMap::new()),
        ContainerKind::List => Container::MovableList(LoroMovableList::new()),
        ContainerKind::Text => Container::Text(LoroText::new()),
        ContainerKind::Counter => Container::List(LoroList::new()),
        ContainerKind::Tree => Container::Tree(LoroTree::new()),
    }
}

/// The child collection at `key`. In attached maps it is a mergeable child, so
/// replicas that create the same child concurrently end up sharing it.
pub(super) fn map_child(
    m: &LoroMap,
    key: &str,
    kind: ContainerKind,
) -> Result<Container, EngineError> {
    if !m.is_attached() {
        return Ok(m.insert_container(key, detached(kind))?);
    }
    if matches!(m.get(key), Some(ValueOrContainer::Value(_))) {
        // A plain value cannot become a mergeable child in place.
        m.delete(key)?;
    }
    Ok(match kind {
        ContainerKind::Map => Container::Map(m.ensure_mergeable_map(key)?),
        ContainerKind::List => Container::MovableList(m.ensure_mergeable_movable_list(key)?),
        ContainerKind::Text => Container::Text(m.ensure_mergeable_text(key)?),
        ContainerKind::Counter => Container::List(m.ensure_mergeable_list(key)?),
        ContainerKind::Tree => Container::Tree(m.ensure_mergeable_tree(key)?),
    })
}

pub(super) fn list_insert_container(
    l: &LoroMovableList,
    index: usize,
    kind: ContainerKind,
) -> Result<Container, EngineError> {
    Ok(l.insert_container(index, detached(kind))?)
}

pub(super) fn list_set_container(
    l: &LoroMovableList,
    index: usize,
    kind: ContainerKind,
) -> Result<Container, EngineError> {
    Ok(l.set_container(index, detached(kind))?)
}

/// Makes `dst` hold what `src` holds. Only what `dst` shows locally is
/// cleared, so concurrent writes from other replicas into a shared (mergeable)
/// child survive.
///
/// `dst` must not be inside `src` (found by the fuzz target `host_request`:
/// storing a map under a key of its own copied it into itself forever).
/// Attached collections are checked up front; detached ones have no
/// identity to check, and a copy into itself stops at [`MAX_COPY_DEPTH`].
/// `copied` counts what the call copied, up to [`MAX_COPIED`]. A counter
/// is copied as this replica (`peer`) adding the difference.
pub(super) fn replace_contents(
    src: &Container,
    dst: &Container,
    peer: u64,
    copied: &mut usize,
) -> Result<(), EngineError> {
    if src.is_attached() && src.id() == dst.id() {
        return Ok(());
    }
    if src.is_attached() && dst.is_attached() && holds(src, &dst.id()) {
        return Err(EngineError::invalid(
            "cannot store a collection inside itself",
        ));
    }
    copy_contents(src, dst, 0, peer, copied)
}

/// Deepest nesting a stored collection is copied to.
const MAX_COPY_DEPTH: usize = 256;
/// Most values and collections one call may copy by storing collections
/// (each copy of a collection holding another doubles what is stored).
const MAX_COPIED: usize = 1 << 20;

/// Whether the attached collection `c` is `id` or holds it, at any depth.
fn holds(c: &Container, id: &ContainerID) -> bool {
    if c.id() == *id {
        return true;
    }
    let mut children = Vec::new();
    match c {
        Container::Map(m) => m.for_each(|_, v| children.extend(container(v))),
        Container::MovableList(l) => l.for_each(|v| children.extend(container(v))),
        Container::Tree(t) => children.extend(tree::data_maps(t).into_iter().map(Container::Map)),
        _ => {}
    }
    children.iter().any(|child| holds(child, id))
}

fn container(v: ValueOrContainer) -> Option<Container> {
    match v {
        ValueOrContainer::Container(c) => Some(c),
        ValueOrContainer::Value(_) => None,
    }
}

/// Counts one more copied item against [`MAX_COPIED`].
fn count(copied: &mut usize) -> Result<(), EngineError> {
    *copied += 1;
    if *copied > MAX_COPIED {
        return Err(EngineError::Limit(format!(
            "a call may copy at most {MAX_COPIED} values and collections"
        )));
    }
    Ok(())
}

fn copy_contents(
    src: &Container,
    dst: &Container,
    depth: usize,
    peer: u64,
    copied: &mut usize,
) -> Result<(), EngineError> {
    if depth > MAX_COPY_DEPTH {
        return Err(EngineError::Limit(format!(
            "collections nested deeper than {MAX_COPY_DEPTH} cannot be stored (or one was stored inside itself)"
        )));
    }
    match (src, dst) {
        (Container::Map(s), Container::Map(d)) => {
            d.clear()?;
            let mut entries = Vec::with_capacity(s.len());
            s.for_each(|k, v| entries.push((k.to_owned(), v)));
            for (k, v) in entries {
                match v {
                    ValueOrContainer::Value(v) => {
                        count(copied)?;
                        d.insert(&k, v)?;
                    }
                    ValueOrContainer::Container(c) => {
                        count(copied)?;
                        let child = map_child(d, &k, kind_of(&c)?)?;
                        copy_contents(&c, &child, depth + 1, peer, copied)?;
                    }
                }
            }
        }
        (Container::MovableList(s), Container::MovableList(d)) => {
            d.clear()?;
            let mut items = Vec::with_capacity(s.len());
            s.for_each(|v| items.push(v));
            for (i, v) in items.into_iter().enumerate() {
                match v {
                    ValueOrContainer::Value(v) => {
                        count(copied)?;
                        d.insert(i, v)?;
                    }
                    ValueOrContainer::Container(c) => {
                        count(copied)?;
                        let child = list_insert_container(d, i, kind_of(&c)?)?;
                        copy_contents(&c, &child, depth + 1, peer, copied)?;
                    }
                }
            }
        }
        (Container::Text(s), Container::Text(d)) => {
            let len = d.len_unicode();
            if len > 0 {
                d.delete(0, len)?;
            }
            d.insert(0, &s.to_string())?;
        }
        (Container::List(s), Container::List(d)) => counter::set(d, peer, counter::value(s)?)?,
        (Container::Tree(s), Container::Tree(d)) => tree::copy(s, d, |from, to| {
            count(copied)?;
            let (from, to) = (Container::Map(from.clone()), Container::Map(to.clone()));
            copy_contents(&from, &to, depth + 1, peer, copied)
        })?,
        _ => return Err(EngineError::invalid("collection kinds differ")),
    }
    Ok(())
}
