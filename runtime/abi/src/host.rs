//! Host-call messages.
//!
//! Every capability an app has (state collections, env, events, logs, private
//! storage, blob reads, returning a value) is one [`HostRequest`] variant. Collections are
//! addressed by [`Handle`]s: small integers valid for one call, handed out by
//! the host. Values cross the boundary as JSON text, because that is what app
//! arguments and return values already are and what the state engine stores
//! as structured (inspectable) values.

use serde::{Deserialize, Serialize};

/// A reference to a collection, valid for the duration of one call.
pub type Handle = u32;

/// The CRDT kind behind a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContainerKind {
    /// Key-value map (`UnorderedMap`, `UnorderedSet`).
    Map,
    /// Positional list supporting insert, delete, set and move (`Vector`).
    List,
    /// Collaborative text (`Text`).
    Text,
    /// Additive counter, exact over `i64` (`Counter`).
    Counter,
    /// Movable tree of nodes with ordered children (`Tree`).
    Tree,
}

/// A node of a tree collection: the id of the operation that created it,
/// the same on every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId {
    /// Peer id of the replica that created the node.
    pub peer: u64,
    /// That replica's operation counter at the creation.
    pub counter: i32,
}

/// Where a tree node goes, on creation or move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TreePlace {
    /// A child of `parent` (`None`: a root) at `index` among its other
    /// children (`None`: after them).
    Under {
        /// The parent node, or `None` for the top level.
        parent: Option<NodeId>,
        /// Position among the parent's children without the placed node.
        index: Option<u32>,
    },
    /// Just before this sibling, under its parent.
    Before(NodeId),
    /// Just after this sibling, under its parent.
    After(NodeId),
}

/// A slot's content on the way into the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SlotIn<'a> {
    /// A plain value, as JSON text.
    #[serde(borrow)]
    Value(&'a [u8]),
    /// A collection: its contents are merged into the slot's child collection.
    Container(Handle),
}

/// A slot's content on the way out of the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SlotOut {
    /// A plain value, as JSON text.
    Value(Vec<u8>),
    /// A collection, with a handle valid for this call.
    Container(Handle, ContainerKind),
}

/// A request from the app to its host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum HostRequest<'a> {
    /// The call's arguments (JSON object bytes). Answer: `Bytes`.
    Input,
    /// Sets the call's outcome: `ok` JSON value or a JSON `CallError`. Answer: `Unit`.
    Return {
        /// Whether the call succeeded.
        ok: bool,
        /// JSON payload.
        #[serde(borrow)]
        data: &'a [u8],
    },
    /// Records a log line. Answer: `Unit`.
    Log {
        /// The message.
        msg: &'a str,
    },
    /// Records the panic message before the guest traps. Answer: `Unit`.
    Panic {
        /// The panic message, with location.
        msg: &'a str,
    },
    /// Emits an event. Answer: `Unit`.
    Emit {
        /// Event variant name.
        kind: &'a str,
        /// Event payload, JSON text.
        #[serde(borrow)]
        data: &'a [u8],
        /// Method the receiving nodes run after applying the delta, if any.
        handler: Option<&'a str>,
    },
    /// The context id (32 bytes). Answer: `Bytes`.
    ContextId,
    /// The executor's member public key (32 bytes). Answer: `Bytes`.
    ExecutorId,
    /// Wall-clock time of the call in nanoseconds since the Unix epoch. Answer: `U64`.
    TimeNanos,
    /// `len` random bytes. Answer: `Bytes`.
    RandomBytes {
        /// How many bytes.
        len: u32,
    },
    /// Reads node-private storage. Answer: `OptBytes`.
    PrivateGet {
        /// Key.
        #[serde(borrow)]
        key: &'a [u8],
    },
    /// Writes node-private storage (`None` removes). Answer: `Unit`.
    PrivateSet {
        /// Key.
        #[serde(borrow)]
        key: &'a [u8],
        /// New value, or `None` to remove.
        #[serde(borrow)]
        value: Option<&'a [u8]>,
    },
    /// The root collection of the state field `name`. Answer: `Handle`.
    Root {
        /// Field name.
        name: &'a str,
        /// Collection kind.
        kind: ContainerKind,
    },
    /// Reads the root register `name`. Answer: `OptBytes` (JSON).
    RootValueGet {
        /// Field name.
        name: &'a str,
    },
    /// Writes the root register `name`. Answer: `Unit`.
    RootValueSet {
        /// Field name.
        name: &'a str,
        /// JSON value.
        #[serde(borrow)]
        value: &'a [u8],
    },
    /// A new, detached collection to fill and then store. Answer: `Handle`.
    New {
        /// Collection kind.
        kind: ContainerKind,
    },
    /// Merges the contents of `src` into the root collection `name`. Answer: `Handle`.
    BindRoot {
        /// Field name.
        name: &'a str,
        /// The detached collection to store.
        src: Handle,
    },
    /// Map lookup. Answer: `Slot`.
    MapGet {
        /// Map.
        map: Handle,
        /// Encoded key.
        key: &'a str,
    },
    /// Map insert (a collection merges into the key's child). Answer: `Handle` of
    /// the stored child for containers, `Unit` for values.
    MapInsert {
        /// Map.
        map: Handle,
        /// Encoded key.
        key: &'a str,
        /// New content.
        #[serde(borrow)]
        value: SlotIn<'a>,
    },
    /// The child collection at `key`, created empty if absent. Answer: `Handle`.
    MapEnsure {
        /// Map.
        map: Handle,
        /// Encoded key.
        key: &'a str,
        /// Collection kind.
        kind: ContainerKind,
    },
    /// Map removal. Answer: `Bool` (whether the key was present).
    MapRemove {
        /// Map.
        map: Handle,
        /// Encoded key.
        key: &'a str,
    },
    /// Whether the key is present. Answer: `Bool`.
    MapContains {
        /// Map.
        map: Handle,
        /// Encoded key.
        key: &'a str,
    },
    /// All entries, sorted by key. Answer: `Entries`.
    MapEntries {
        /// Map.
        map: Handle,
    },
    /// Removes every entry. Answer: `Unit`.
    MapClear {
        /// Map.
        map: Handle,
    },
    /// Number of entries or items of any collection (chars for text). Answer: `U64`.
    Len {
        /// Collection.
        handle: Handle,
    },
    /// List item. Answer: `OptSlot`.
    ListGet {
        /// List.
        list: Handle,
        /// Index.
        index: u32,
    },
    /// Inserts at `index` (`index == len` appends). Answer: `Unit` or `Handle`.
    ListInsert {
        /// List.
        list: Handle,
        /// Index.
        index: u32,
        /// Content.
        #[serde(borrow)]
        value: SlotIn<'a>,
    },
    /// Replaces the item at `index`. Answer: `Unit` or `Handle`.
    ListSet {
        /// List.
        list: Handle,
        /// Index.
        index: u32,
        /// Content.
        #[serde(borrow)]
        value: SlotIn<'a>,
    },
    /// Deletes `len` items from `index`. Answer: `Unit`.
    ListDelete {
        /// List.
        list: Handle,
        /// Index.
        index: u32,
        /// Count.
        len: u32,
    },
    /// Moves an item. Answer: `Unit`.
    ListMove {
        /// List.
        list: Handle,
        /// From index.
        from: u32,
        /// To index.
        to: u32,
    },
    /// All items in order. Answer: `Items`.
    ListItems {
        /// List.
        list: Handle,
    },
    /// Counter value, exactly. Answer: `I128`.
    CounterGet {
        /// Counter.
        counter: Handle,
    },
    /// Adds `by` (may be negative). Fails if the value would leave `i64`
    /// (unless it moves back towards it). Answer: `Unit`.
    CounterAdd {
        /// Counter.
        counter: Handle,
        /// Amount.
        by: i64,
    },
    /// Text content. Answer: `Str`.
    TextGet {
        /// Text.
        text: Handle,
    },
    /// Inserts at a char position. Answer: `Unit`.
    TextInsert {
        /// Text.
        text: Handle,
        /// Char position.
        pos: u32,
        /// Inserted text.
        s: &'a str,
    },
    /// Deletes `len` chars at a char position. Answer: `Unit`.
    TextDelete {
        /// Text.
        text: Handle,
        /// Char position.
        pos: u32,
        /// Char count.
        len: u32,
    },
    /// Reads up to `len` bytes of a blob of this context from `offset`
    /// (`len` 0: only its size). Answer: `Blob`. Reads are bounded per
    /// request and per call; a blob this node does not hold yet answers
    /// [`BlobAnswer::Missing`] (the node starts fetching it).
    BlobRead {
        /// The blob id (see [`crate::blob`]).
        id: [u8; 32],
        /// First byte.
        offset: u64,
        /// Most bytes wanted.
        len: u32,
    },
    /// Keys of a map in key order (bytewise), within `from..to` and
    /// starting with `prefix`, at most `limit`, from the low end (or the
    /// high end if `reverse`). Answer: `Entries` if `values`, else `Keys`.
    MapRange {
        /// Map.
        map: Handle,
        /// Lower bound (encoded key).
        #[serde(borrow)]
        from: std::ops::Bound<&'a str>,
        /// Upper bound (encoded key).
        #[serde(borrow)]
        to: std::ops::Bound<&'a str>,
        /// Only keys starting with this (`""`: all).
        prefix: &'a str,
        /// Most keys answered.
        limit: u32,
        /// Whether to answer the highest keys first.
        reverse: bool,
        /// Whether to answer the entries' contents too.
        values: bool,
    },
    /// Creates a tree node. Answer: `Node`.
    TreeCreate {
        /// Tree.
        tree: Handle,
        /// Where.
        at: TreePlace,
    },
    /// Moves a node with its subtree. Answer: `Unit`.
    TreeMove {
        /// Tree.
        tree: Handle,
        /// The node.
        node: NodeId,
        /// Where to.
        to: TreePlace,
    },
    /// Deletes a node with its subtree. Answer: `Bool` (whether it was in the tree).
    TreeDelete {
        /// Tree.
        tree: Handle,
        /// The node.
        node: NodeId,
    },
    /// Children in order (`parent` `None`: the roots). Answer: `Nodes`.
    TreeChildren {
        /// Tree.
        tree: Handle,
        /// The parent.
        parent: Option<NodeId>,
    },
    /// A node's parent. Answer: `Parent`.
    TreeParent {
        /// Tree.
        tree: Handle,
        /// The node.
        node: NodeId,
    },
    /// Whether a node is in the tree. Answer: `Bool`.
    TreeContains {
        /// Tree.
        tree: Handle,
        /// The node.
        node: NodeId,
    },
    /// A node's data map. Answer: `OptSlot` (a map; `None` if no such node).
    TreeData {
        /// Tree.
        tree: Handle,
        /// The node.
        node: NodeId,
    },
    /// Every node, depth first, parents before children. Answer: `Nodes`.
    TreeNodes {
        /// Tree.
        tree: Handle,
    },
    /// Calls method `method` of another context this node is a member of,
    /// as this node's member there (a cross-context call). Answer: `Reply`,
    /// the callee's result or its error; a refused call (limits, cycles,
    /// policy) fails the caller. A mutating call (`mutate`) commits with the
    /// caller or not at all.
    XCall {
        /// The callee context's id.
        context: [u8; 32],
        /// The callee's method (one it marks `#[app::xcall]`).
        method: &'a str,
        /// JSON arguments object.
        #[serde(borrow)]
        args: &'a [u8],
        /// Whether the callee may change its state (else it runs as a view).
        mutate: bool,
    },
}

/// The answer to [`HostRequest::BlobRead`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BlobAnswer {
    /// The blob's size and the bytes read (fewer than asked at its end).
    Bytes {
        /// The whole blob's size in bytes.
        size: u64,
        /// The bytes from the requested offset.
        bytes: Vec<u8>,
    },
    /// The node does not hold the blob (yet): why, and what happens next.
    Missing {
        /// A message for the caller.
        message: String,
    },
}

impl HostRequest<'_> {
    /// Whether this request changes replicated state (and so is refused in views).
    pub fn mutates_state(&self) -> bool {
        matches!(
            self,
            HostRequest::RootValueSet { .. }
                | HostRequest::BindRoot { .. }
                | HostRequest::MapInsert { .. }
                | HostRequest::MapEnsure { .. }
                | HostRequest::MapRemove { .. }
                | HostRequest::MapClear { .. }
                | HostRequest::ListInsert { .. }
                | HostRequest::ListSet { .. }
                | HostRequest::ListDelete { .. }
                | HostRequest::ListMove { .. }
                | HostRequest::CounterAdd { .. }
                | HostRequest::TreeCreate { .. }
                | HostRequest::TreeMove { .. }
                | HostRequest::TreeDelete { .. }
                | HostRequest::TextInsert { .. }
                | HostRequest::TextDelete { .. }
                | HostRequest::Emit { .. }
                | HostRequest::PrivateSet { .. }
                | HostRequest::XCall { mutate: true, .. }
        )
    }
}

/// The host's answer to a [`HostRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostResponse {
    /// Nothing to return.
    Unit,
    /// A flag.
    Bool(bool),
    /// An unsigned number.
    U64(u64),
    /// A signed number.
    I64(i64),
    /// Bytes.
    Bytes(Vec<u8>),
    /// Optional bytes.
    OptBytes(Option<Vec<u8>>),
    /// A string.
    Str(String),
    /// A collection handle.
    Handle(Handle),
    /// An optional slot.
    OptSlot(Option<SlotOut>),
    /// Map entries: encoded key and content.
    Entries(Vec<(String, SlotOut)>),
    /// List items.
    Items(Vec<SlotOut>),
    /// What a blob read found.
    Blob(BlobAnswer),
    /// A wide signed number (a counter's exact value).
    I128(i128),
    /// Encoded map keys.
    Keys(Vec<String>),
    /// A tree node.
    Node(NodeId),
    /// Tree nodes.
    Nodes(Vec<NodeId>),
    /// A node's parent: `None` if the node is not in the tree, `Some(None)` for a root.
    Parent(Option<Option<NodeId>>),
    /// A cross-context call's outcome: the callee's JSON result, or the
    /// error it failed with (which changed nothing in the callee) as a JSON
    /// [`CallError`](crate::CallError).
    Reply(Result<Vec<u8>, Vec<u8>>),
}

/// Why the host refused a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostError {
    /// How the call should fail because of it.
    pub kind: crate::CallErrorKind,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HostError {}

/// The encoded form of a host answer.
pub type HostResult = Result<HostResponse, HostError>;

/// Encodes a request (guest side).
pub fn encode_request(req: &HostRequest<'_>) -> Vec<u8> {
    postcard::to_allocvec(req).expect("host requests always encode")
}

/// Decodes a request (host side), borrowing from `bytes`.
pub fn decode_request(bytes: &[u8]) -> Result<HostRequest<'_>, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// Encodes an answer (host side).
pub fn encode_result(res: &HostResult) -> Vec<u8> {
    postcard::to_allocvec(res).expect("host answers always encode")
}

/// Decodes an answer (guest side).
pub fn decode_result(bytes: &[u8]) -> Result<HostResult, postcard::Error> {
    postcard::from_bytes(bytes)
}
