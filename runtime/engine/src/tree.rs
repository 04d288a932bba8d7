//! The movable tree behind `Tree`: Loro's tree CRDT, whose concurrent
//! moves never make a cycle (a move that would is ignored on every replica
//! alike), with ordered children (fractional indexes, on by default in
//! Loro, without jitter so no randomness is involved).
//!
//! Each node carries a Loro map (its "meta" map); the SDK keeps the node's
//! value in it. Everything here is checked before Loro sees it: Loro's own
//! move can leave its child index inconsistent when it fails half way (a
//! move under the node's own subtree), so such moves never reach it.
//!
//! Node operations need an attached tree. Loro's detached trees skip those
//! checks (a detached move can make a cycle), and their node ids change
//! when the tree is stored anyway; a detached tree only receives copies.

use std::collections::VecDeque;

use loro::{LoroMap, LoroTree, TreeID, TreeParentId};
use mero_abi::host::{NodeId, TreePlace};

use crate::error::EngineError;

/// Creates a node at `at`.
pub(crate) fn create(t: &LoroTree, at: TreePlace) -> Result<NodeId, EngineError> {
    attached(t, "create a node")?;
    let (parent, index) = resolve(t, at, None)?;
    let id = match index {
        Some(i) => t.create_at(parent, i)?,
        None => t.create(parent)?,
    };
    Ok(node_id(id))
}

/// Moves `node` (with its subtree) to `to`.
pub(crate) fn mov(t: &LoroTree, node: NodeId, to: TreePlace) -> Result<(), EngineError> {
    attached(t, "move a node")?;
    let target = tree_id(node);
    if !alive(t, target) {
        return Err(no_node(node));
    }
    let (parent, index) = resolve(t, to, Some(target))?;
    // Loro would refuse a move under the node itself or its subtree, but
    // only after changing its index of children: refused here first.
    let mut up = parent;
    while let TreeParentId::Node(p) = up {
        if p == target {
            return Err(EngineError::invalid(format!(
                "cannot move node {} under itself or one of its descendants",
                display(node)
            )));
        }
        up = t.parent(p).unwrap_or(TreeParentId::Root);
    }
    match index {
        Some(i) => t.mov_to(target, parent, i)?,
        None => t.mov(target, parent)?,
    }
    Ok(())
}

/// Deletes `node` and its subtree; whether it was in the tree.
pub(crate) fn delete(t: &LoroTree, node: NodeId) -> Result<bool, EngineError> {
    attached(t, "delete a node")?;
    let id = tree_id(node);
    if !alive(t, id) {
        return Ok(false);
    }
    t.delete(id)?;
    Ok(true)
}

/// The children of `parent` (`None`: the roots) in order; none for a
/// node that is not in the tree.
pub(crate) fn children(t: &LoroTree, parent: Option<NodeId>) -> Vec<NodeId> {
    let parent = match parent {
        Some(p) if !alive(t, tree_id(p)) => return Vec::new(),
        Some(p) => TreeParentId::Node(tree_id(p)),
        None => TreeParentId::Root,
    };
    t.children(parent)
        .unwrap_or_default()
        .into_iter()
        .map(node_id)
        .collect()
}

/// `None` if `node` is not in the tree, else its parent (`None`: a root).
pub(crate) fn parent(t: &LoroTree, node: NodeId) -> Option<Option<NodeId>> {
    let id = tree_id(node);
    if !alive(t, id) {
        return None;
    }
    match t.parent(id)? {
        TreeParentId::Node(p) => Some(Some(node_id(p))),
        _ => Some(None),
    }
}

/// Whether `node` is in the tree (created and not deleted, nor under a
/// deleted node).
pub(crate) fn contains(t: &LoroTree, node: NodeId) -> bool {
    alive(t, tree_id(node))
}

/// The data map of `node`, if it is in the tree.
pub(crate) fn data(t: &LoroTree, node: NodeId) -> Result<Option<LoroMap>, EngineError> {
    let id = tree_id(node);
    if !alive(t, id) {
        return Ok(None);
    }
    Ok(Some(t.get_meta(id)?))
}

/// Every node, depth first, each before its children, siblings in order.
pub(crate) fn nodes(t: &LoroTree) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut stack: Vec<TreeID> = t.roots().into_iter().rev().collect();
    while let Some(id) = stack.pop() {
        out.push(node_id(id));
        if let Some(kids) = t.children(TreeParentId::Node(id)) {
            stack.extend(kids.into_iter().rev());
        }
    }
    out
}

/// Replaces what `dst` shows with a copy of `src`'s nodes, in order, each
/// node's data map copied by `copy_node` (which also charges the node to
/// the call's copy budget). Copies get new node ids.
pub(crate) fn copy(
    src: &LoroTree,
    dst: &LoroTree,
    mut copy_node: impl FnMut(&LoroMap, &LoroMap) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    for root in dst.roots() {
        dst.delete(root)?;
    }
    // Breadth first, so each node is appended after its earlier siblings;
    // a queue rather than recursion, as a tree may be deep.
    let mut queue: VecDeque<(TreeID, TreeParentId)> = src
        .roots()
        .into_iter()
        .map(|r| (r, TreeParentId::Root))
        .collect();
    while let Some((from, parent)) = queue.pop_front() {
        let to = dst.create(parent)?;
        copy_node(&src.get_meta(from)?, &dst.get_meta(to)?)?;
        for child in src.children(TreeParentId::Node(from)).unwrap_or_default() {
            queue.push_back((child, TreeParentId::Node(to)));
        }
    }
    Ok(())
}

/// The data maps of the nodes of `t` (for the check that a collection is
/// not stored inside itself).
pub(crate) fn data_maps(t: &LoroTree) -> Vec<LoroMap> {
    nodes(t)
        .into_iter()
        .filter_map(|n| t.get_meta(tree_id(n)).ok())
        .collect()
}

/// Where `at` puts a node: its parent and index (`None`: last). `moving`
/// is the node being moved, if any: a sibling reference must be another
/// node, and its index counts the siblings without the moving node.
fn resolve(
    t: &LoroTree,
    at: TreePlace,
    moving: Option<TreeID>,
) -> Result<(TreeParentId, Option<usize>), EngineError> {
    match at {
        TreePlace::Under { parent, index } => {
            let parent = match parent {
                Some(p) if !alive(t, tree_id(p)) => return Err(no_node(p)),
                Some(p) => TreeParentId::Node(tree_id(p)),
                None => TreeParentId::Root,
            };
            let Some(index) = index else {
                return Ok((parent, None));
            };
            let mut len = t.children_num(parent).unwrap_or(0);
            if moving.is_some_and(|m| t.parent(m) == Some(parent)) {
                len -= 1;
            }
            let index = index as usize;
            if index > len {
                return Err(EngineError::invalid(format!(
                    "index {index} is out of range: the parent has {len} other children"
                )));
            }
            Ok((parent, Some(index)))
        }
        TreePlace::Before(sibling) | TreePlace::After(sibling) => {
            let sib = tree_id(sibling);
            if !alive(t, sib) {
                return Err(no_node(sibling));
            }
            if moving == Some(sib) {
                return Err(EngineError::invalid(format!(
                    "cannot place node {} next to itself",
                    display(sibling)
                )));
            }
            let parent = t.parent(sib).unwrap_or(TreeParentId::Root);
            let siblings: Vec<TreeID> = t
                .children(parent)
                .unwrap_or_default()
                .into_iter()
                .filter(|s| Some(*s) != moving)
                .collect();
            let pos = siblings
                .iter()
                .position(|s| *s == sib)
                .ok_or_else(|| no_node(sibling))?;
            let index = if matches!(at, TreePlace::After(_)) {
                pos + 1
            } else {
                pos
            };
            Ok((parent, Some(index)))
        }
    }
}

/// Whether `id` is a live node. Loro's detached trees answer "deleted" for
/// every node, and hold only live ones.
fn alive(t: &LoroTree, id: TreeID) -> bool {
    if t.is_attached() {
        t.is_node_deleted(&id) == Ok(false)
    } else {
        t.contains(id)
    }
}

fn attached(t: &LoroTree, what: &str) -> Result<(), EngineError> {
    if t.is_attached() {
        return Ok(());
    }
    Err(EngineError::invalid(format!(
        "cannot {what} in a tree that is not in state yet: store the Tree first \
         (node ids change when a tree is stored)"
    )))
}

fn no_node(n: NodeId) -> EngineError {
    EngineError::invalid(format!("no node {} in the tree", display(n)))
}

fn display(n: NodeId) -> String {
    format!("{}@{}", n.counter, n.peer)
}

fn tree_id(n: NodeId) -> TreeID {
    TreeID::new(n.peer, n.counter)
}

fn node_id(id: TreeID) -> NodeId {
    NodeId {
        peer: id.peer,
        counter: id.counter,
    }
}
