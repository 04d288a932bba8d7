use std::marker::PhantomData;

use mero_abi::host::{
    self as abi, ContainerKind, Handle, HostRequest, HostResponse, SlotOut, TreePlace,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Collection, SlotAt, StoreValue, container_impls, len_of};
use crate::host::{self, expect_response};

/// Key of a node's value in its data map (as exported state shows it).
const VALUE: &str = "value";

/// A movable tree (folders, outlines, boards): nodes with ordered children,
/// each holding a `T` (a plain value or a collection).
///
/// Built on Loro's movable tree CRDT: concurrent moves on different
/// replicas never make a cycle (of two moves that together would, the one
/// ordered later is ignored on every replica alike), a node has one parent
/// everywhere, and concurrent inserts among the same siblings interleave
/// deterministically. Deleting a node deletes its subtree; a move of a
/// deleted node, or under one, is refused.
///
/// Nodes are named by [`NodeId`]s, stable across replicas and storable
/// anywhere (they serialize as `"<counter>@<peer>"`). A tree holds nodes
/// only once it is in state: create nodes in a stored tree (a state field,
/// or a tree read back from a map), since storing a tree copies it and
/// gives the copies new ids.
///
/// In exported state a tree reads as Loro shows it: the list of roots,
/// each node with `id`, `parent`, `index`, `fractional_index`, `meta`
/// (`{"value": ...}`) and its `children`, nested.
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::collections::{NodeId, Tree};
///
/// #[app::state]
/// pub struct Outline { items: Tree<String> }
///
/// #[app::logic]
/// impl Outline {
///     #[app::init]
///     pub fn init() -> Self { Self { items: Tree::new() } }
///     pub fn add(&mut self, parent: Option<NodeId>, text: String) -> NodeId {
///         self.items.create(parent, text)
///     }
///     pub fn indent(&mut self, node: NodeId, under: NodeId) {
///         self.items.mov(node, Some(under), 0);
///     }
///     pub fn titles(&self, parent: Option<NodeId>) -> Vec<String> {
///         let children = self.items.children(parent);
///         children.into_iter().filter_map(|c| self.items.get(c)).collect()
///     }
/// }
///
/// # fn main() {
/// use serde_json::json;
/// let mut r = mero_sdk::testing::Replica::<Outline>::new(0);
/// r.init(json!({})).unwrap();
/// let a = r.execute("add", json!({"parent": null, "text": "groceries"})).unwrap();
/// let b = r.execute("add", json!({"parent": null, "text": "milk"})).unwrap();
/// r.execute("indent", json!({"node": b, "under": a})).unwrap();
/// assert_eq!(r.execute("titles", json!({"parent": null})).unwrap(), json!(["groceries"]));
/// assert_eq!(r.execute("titles", json!({"parent": a})).unwrap(), json!(["milk"]));
/// # }
/// ```
pub struct Tree<T> {
    pub(crate) handle: Handle,
    _types: PhantomData<fn() -> T>,
}

impl<T> Collection for Tree<T> {
    const KIND: ContainerKind = ContainerKind::Tree;
    fn from_handle(handle: Handle) -> Self {
        Self {
            handle,
            _types: PhantomData,
        }
    }
}

container_impls!(Tree<T> where T: StoreValue);

impl<T: StoreValue> Tree<T> {
    /// A new, empty tree. Store it in state before adding nodes.
    pub fn new() -> Self {
        Self::new_detached()
    }

    /// Creates a node holding `value` as the last child of `parent` (`None`:
    /// the last root). Fails the call if `parent` is not in the tree.
    pub fn create(&mut self, parent: Option<NodeId>, value: T) -> NodeId {
        self.create_placed(under(parent, None), value)
    }

    /// Creates a node at `index` among `parent`'s children. Fails the call
    /// if `parent` is not in the tree or `index` is past its children.
    pub fn create_at(&mut self, parent: Option<NodeId>, index: usize, value: T) -> NodeId {
        self.create_placed(under(parent, Some(index)), value)
    }

    /// Creates a node just before `sibling`, under its parent.
    pub fn create_before(&mut self, sibling: NodeId, value: T) -> NodeId {
        self.create_placed(TreePlace::Before(sibling.0), value)
    }

    /// Creates a node just after `sibling`, under its parent.
    pub fn create_after(&mut self, sibling: NodeId, value: T) -> NodeId {
        self.create_placed(TreePlace::After(sibling.0), value)
    }

    fn create_placed(&mut self, at: TreePlace, value: T) -> NodeId {
        let id = expect_response!(
            host::call(HostRequest::TreeCreate { tree: self.handle, at }),
            HostResponse::Node(id) => NodeId(id)
        );
        self.set(id, value);
        id
    }

    /// The value of `node`, if it is in the tree. For a collection, a
    /// handle to the stored one.
    pub fn get(&self, node: NodeId) -> Option<T> {
        let data = self.data(node)?;
        expect_response!(
            host::call(HostRequest::MapGet { map: data, key: VALUE }),
            HostResponse::OptSlot(slot) => slot.map(|s| T::__from_slot_at(s, SlotAt::Map(data, VALUE.to_owned())))
        )
    }

    /// Replaces the value of `node`. Fails the call if it is not in the tree.
    pub fn set(&mut self, node: NodeId, value: T) {
        let data = self.data_or_fail(node);
        value.__with_slot(|value| {
            host::call(HostRequest::MapInsert {
                map: data,
                key: VALUE,
                value,
            })
        });
    }

    /// Moves `node` (with its subtree) to `index` among `parent`'s children
    /// (`None`: the roots), counted without `node`. Fails the call if a node
    /// is not in the tree, the index is past the children, or `parent` is
    /// `node` or under it.
    pub fn mov(&mut self, node: NodeId, parent: Option<NodeId>, index: usize) {
        self.move_to(node, under(parent, Some(index)));
    }

    /// Moves `node` to be the last child of `parent` (`None`: the last root).
    pub fn mov_last(&mut self, node: NodeId, parent: Option<NodeId>) {
        self.move_to(node, under(parent, None));
    }

    /// Moves `node` just before `sibling`, under its parent.
    pub fn mov_before(&mut self, node: NodeId, sibling: NodeId) {
        self.move_to(node, TreePlace::Before(sibling.0));
    }

    /// Moves `node` just after `sibling`, under its parent.
    pub fn mov_after(&mut self, node: NodeId, sibling: NodeId) {
        self.move_to(node, TreePlace::After(sibling.0));
    }

    fn move_to(&mut self, node: NodeId, to: TreePlace) {
        host::call(HostRequest::TreeMove {
            tree: self.handle,
            node: node.0,
            to,
        });
    }

    /// Deletes `node` and its subtree; returns whether it was in the tree.
    pub fn delete(&mut self, node: NodeId) -> bool {
        expect_response!(
            host::call(HostRequest::TreeDelete { tree: self.handle, node: node.0 }),
            HostResponse::Bool(b) => b
        )
    }

    /// Whether `node` is in the tree (created here and not deleted, nor
    /// under a deleted node).
    pub fn contains(&self, node: NodeId) -> bool {
        expect_response!(
            host::call(HostRequest::TreeContains { tree: self.handle, node: node.0 }),
            HostResponse::Bool(b) => b
        )
    }

    /// The parent of `node`: `None` for a root, or a node not in the tree.
    pub fn parent(&self, node: NodeId) -> Option<NodeId> {
        expect_response!(
            host::call(HostRequest::TreeParent { tree: self.handle, node: node.0 }),
            HostResponse::Parent(p) => p.flatten().map(NodeId)
        )
    }

    /// The children of `parent` in order (`None`: the roots); none if
    /// `parent` is not in the tree.
    pub fn children(&self, parent: Option<NodeId>) -> Vec<NodeId> {
        expect_response!(
            host::call(HostRequest::TreeChildren { tree: self.handle, parent: parent.map(|p| p.0) }),
            HostResponse::Nodes(n) => n.into_iter().map(NodeId).collect()
        )
    }

    /// The top-level nodes in order.
    pub fn roots(&self) -> Vec<NodeId> {
        self.children(None)
    }

    /// Every node, depth first: each node before its children, siblings in order.
    pub fn nodes(&self) -> Vec<NodeId> {
        expect_response!(
            host::call(HostRequest::TreeNodes { tree: self.handle }),
            HostResponse::Nodes(n) => n.into_iter().map(NodeId).collect()
        )
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        len_of(self.handle)
    }

    /// Whether the tree has no nodes.
    pub fn is_empty(&self) -> bool {
        self.roots().is_empty()
    }

    fn data(&self, node: NodeId) -> Option<Handle> {
        expect_response!(
            host::call(HostRequest::TreeData { tree: self.handle, node: node.0 }),
            HostResponse::OptSlot(slot) => slot.map(|s| match s {
                SlotOut::Container(h, ContainerKind::Map) => h,
                other => host::corrupt(format!("unexpected node data {other:?}")),
            })
        )
    }

    fn data_or_fail(&self, node: NodeId) -> Handle {
        self.data(node).unwrap_or_else(|| {
            host::fail(abi::HostError {
                kind: mero_abi::CallErrorKind::Host,
                message: format!("no node {node} in the tree"),
            })
        })
    }
}

impl<T: StoreValue + Collection> Tree<T> {
    /// The collection of `node`, created empty if absent. Fails the call if
    /// the node is not in the tree.
    pub fn ensure(&mut self, node: NodeId) -> T {
        let data = self.data_or_fail(node);
        T::from_handle(expect_response!(
            host::call(HostRequest::MapEnsure { map: data, key: VALUE, kind: T::KIND }),
            HostResponse::Handle(h) => h
        ))
    }
}

fn under(parent: Option<NodeId>, index: Option<usize>) -> TreePlace {
    TreePlace::Under {
        parent: parent.map(|p| p.0),
        index: index.map(|i| u32::try_from(i).unwrap_or(u32::MAX)),
    }
}

/// A node of a [`Tree`]: the same on every replica. Serializes (in app
/// arguments, return values and state) as the string `"<counter>@<peer>"`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(abi::NodeId);

impl NodeId {
    /// The replica (Loro peer id) that created the node.
    pub fn peer(&self) -> u64 {
        self.0.peer
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.0.counter, self.0.peer)
    }
}

impl std::fmt::Debug for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// A string that is not a [`NodeId`] (`"<counter>@<peer>"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNodeIdError(String);

impl std::fmt::Display for ParseNodeIdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` is not a tree node id (expected <counter>@<peer>)",
            self.0
        )
    }
}

impl std::error::Error for ParseNodeIdError {}

impl std::str::FromStr for NodeId {
    type Err = ParseNodeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseNodeIdError(s.chars().take(64).collect());
        let (counter, peer) = s.split_once('@').ok_or_else(err)?;
        Ok(NodeId(abi::NodeId {
            peer: peer.parse().map_err(|_| err())?,
            counter: counter.parse().map_err(|_| err())?,
        }))
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_round_trip_as_strings() {
        let id = NodeId(abi::NodeId {
            peer: u64::MAX >> 1,
            counter: 42,
        });
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"42@{}\"", u64::MAX >> 1));
        assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), id);
        for bad in ["", "42", "@1", "1@", "x@1", "1@-1", "99999999999@1"] {
            assert!(bad.parse::<NodeId>().is_err(), "{bad}");
        }
    }
}
