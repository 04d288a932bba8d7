//! What an app can learn about the call it is running in, and node-private storage.

use mero_abi::host::{HostRequest, HostResponse};

use crate::host::{self, expect_response};

/// The id of the context (the running app instance) this call runs in.
pub fn context_id() -> [u8; 32] {
    bytes32(HostRequest::ContextId)
}

/// The public key of the member executing this call.
pub fn executor_id() -> [u8; 32] {
    bytes32(HostRequest::ExecutorId)
}

/// Wall-clock time of the call, in nanoseconds since the Unix epoch, as seen by
/// the executing node. Replicas do not agree on clocks: use it for display, not
/// for ordering.
pub fn time_now() -> u64 {
    expect_response!(host::call(HostRequest::TimeNanos), HostResponse::U64(t) => t)
}

/// Fills `buf` with random bytes from the executing node.
pub fn random_bytes(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(1 << 20) {
        let got = expect_response!(
            host::call(HostRequest::RandomBytes { len: chunk.len() as u32 }),
            HostResponse::Bytes(b) => b
        );
        chunk.copy_from_slice(&got);
    }
}

/// Records a log line (shown in the node's logs; see also [`app::log!`](crate::log)).
pub fn log(msg: &str) {
    host::call(HostRequest::Log { msg });
}

/// Storage private to this node and context: never replicated, never in a
/// delta. Writes made by a call that fails are discarded.
pub mod private {
    use super::*;

    /// Reads a key.
    pub fn get(key: &[u8]) -> Option<Vec<u8>> {
        expect_response!(
            host::call(HostRequest::PrivateGet { key }),
            HostResponse::OptBytes(b) => b
        )
    }

    /// Writes a key.
    pub fn set(key: &[u8], value: &[u8]) {
        host::call(HostRequest::PrivateSet {
            key,
            value: Some(value),
        });
    }

    /// Removes a key.
    pub fn remove(key: &[u8]) {
        host::call(HostRequest::PrivateSet { key, value: None });
    }
}

fn bytes32(req: HostRequest<'_>) -> [u8; 32] {
    let b = expect_response!(host::call(req), HostResponse::Bytes(b) => b);
    b.try_into()
        .unwrap_or_else(|_| host::corrupt("host returned an id that is not 32 bytes".into()))
}
