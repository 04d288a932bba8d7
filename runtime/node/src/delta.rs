//! Deltas: a successful mutating call, as it is stored (and, later, replicated).

use mero_engine::DeltaPayload;
use serde::{Deserialize, Serialize};

use crate::ids::{AppHash, ContextId, DeltaId, MemberKey, sha256};

/// One change to a context, made by one member.
///
/// Replication (signatures, payload encryption) builds on this record; on a
/// single node it is the unit of durability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// The context it changes.
    pub context: ContextId,
    /// The member that made it.
    pub author: MemberKey,
    /// The author's sequence number: 1, 2, 3, ...
    pub seq: u64,
    /// The DAG heads it was built on.
    pub parents: Vec<DeltaId>,
    /// Content hash of the WASM that produced it.
    pub app: AppHash,
    /// The Loro update and events.
    pub payload: DeltaPayload,
}

impl Delta {
    /// Hash of the delta's fields.
    pub fn id(&self) -> DeltaId {
        DeltaId(sha256(
            &postcard::to_allocvec(self).expect("deltas serialize"),
        ))
    }
}
