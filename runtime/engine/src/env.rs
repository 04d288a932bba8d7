//! What a call runs with: its identity, inputs, limits and the node-provided
//! sources of randomness, private storage and blobs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Whether a call may change replicated state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMode {
    /// A view or a query: any attempt to change state fails the call.
    View,
    /// A mutating call: a successful change becomes a delta.
    Mutate,
}

/// Per-call size limits enforced by the engine.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Largest return value (JSON bytes).
    pub max_return_bytes: usize,
    /// Total bytes of log lines.
    pub max_log_bytes: usize,
    /// Total bytes of event payloads.
    pub max_event_bytes: usize,
    /// Most collection handles one call may hold (detached collections
    /// included).
    pub max_handles: usize,
    /// Most bytes one call may write: keys, values and text it stores, and
    /// its private-storage writes, plus a fixed cost per write for the
    /// operation itself. Bounds the host memory a call can fill and the
    /// size of the delta it makes.
    pub max_write_bytes: usize,
    /// Most blob bytes one call may read, over all its reads (one read is
    /// also at most this much): bounds the host memory blob reads fill.
    pub max_blob_read_bytes: usize,
    /// Most cross-context calls one call may make (its callees' own calls
    /// count against theirs).
    pub max_xcalls: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            max_return_bytes: 4 << 20,
            max_log_bytes: 64 << 10,
            max_event_bytes: 1 << 20,
            max_handles: 1 << 20,
            max_write_bytes: 8 << 20,
            max_blob_read_bytes: 8 << 20,
            max_xcalls: 64,
        }
    }
}

/// Node-private storage: per context, per node, never replicated.
///
/// Reads go to the implementation; writes are buffered by the call and handed
/// back in [`CallOutcome::private_writes`](crate::CallOutcome::private_writes), so
/// a failed call writes nothing.
pub trait PrivateStorage: Send + Sync {
    /// Reads a key.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

/// Private storage with nothing in it.
#[derive(Debug, Default)]
pub struct NoPrivateStorage;

impl PrivateStorage for NoPrivateStorage {
    fn get(&self, _key: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// The context's blobs, as a call may read them (`BlobId::read` in the SDK).
/// The node reads its blob store; the engine does no IO itself.
pub trait BlobSource: Send + Sync {
    /// Up to `len` bytes of blob `id` from `offset`, with the blob's size;
    /// `Missing` if this node does not hold the blob (yet).
    fn read(&self, id: &[u8; 32], offset: u64, len: u32) -> mero_abi::host::BlobAnswer;
}

/// A blob source that holds nothing.
#[derive(Debug, Default)]
pub struct NoBlobs;

impl BlobSource for NoBlobs {
    fn read(&self, id: &[u8; 32], _offset: u64, _len: u32) -> mero_abi::host::BlobAnswer {
        mero_abi::host::BlobAnswer::Missing {
            message: format!(
                "{} is not available: this host stores no blobs",
                mero_abi::blob::format(id)
            ),
        }
    }
}

/// Other contexts, as a call may call them (`mero_sdk::xcall`). The node
/// runs the callee under its own policy and lock and decides when its
/// changes commit; the engine only passes the request on.
pub trait CrossContext: Send + Sync {
    /// Runs `method` of context `context` with JSON `args`, as a view or
    /// (`mutate`) as a change that commits with the caller. `Ok` holds the
    /// callee's outcome: its JSON result, or the JSON [`mero_abi::CallError`]
    /// it failed with. `Err` refuses the call itself (unknown context,
    /// limits, a cycle), which fails the caller.
    fn call(
        &self,
        context: &[u8; 32],
        method: &str,
        args: &[u8],
        mutate: bool,
    ) -> Result<Result<Vec<u8>, Vec<u8>>, mero_abi::CallError>;
}

/// No other contexts: every cross-context call is refused with `why`.
#[derive(Debug, Clone)]
pub struct NoCrossContext(pub &'static str);

impl Default for NoCrossContext {
    fn default() -> Self {
        Self("this host runs one context; cross-context calls need a node")
    }
}

impl CrossContext for NoCrossContext {
    fn call(
        &self,
        _context: &[u8; 32],
        _method: &str,
        _args: &[u8],
        _mutate: bool,
    ) -> Result<Result<Vec<u8>, Vec<u8>>, mero_abi::CallError> {
        Err(mero_abi::CallError::new(
            mero_abi::CallErrorKind::Host,
            self.0,
        ))
    }
}

/// Fills buffers with random bytes (the node uses the OS; tests use a seed).
pub type RandomSource = Box<dyn FnMut(&mut [u8]) + Send>;

/// Everything a call needs besides the state itself.
pub struct CallEnv {
    /// The context's id.
    pub context_id: [u8; 32],
    /// The executing member's public key.
    pub executor: [u8; 32],
    /// Wall-clock time of the call, nanoseconds since the Unix epoch.
    pub time_nanos: u64,
    /// The JSON arguments object.
    pub input: Vec<u8>,
    /// View or mutating.
    pub mode: CallMode,
    /// Size limits.
    pub limits: CallLimits,
    /// Node-private storage of this context.
    pub private: Arc<dyn PrivateStorage>,
    /// The context's blobs.
    pub blobs: Arc<dyn BlobSource>,
    /// The other contexts this call may call.
    pub xcall: Arc<dyn CrossContext>,
    /// Random bytes for `env::random_bytes`.
    pub random: RandomSource,
}

/// An event emitted by a call. It travels inside the call's delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmittedEvent {
    /// The event variant's name.
    pub kind: String,
    /// The payload as JSON text.
    pub data: String,
    /// Method receiving nodes run after applying the delta, if any.
    pub handler: Option<String>,
}
