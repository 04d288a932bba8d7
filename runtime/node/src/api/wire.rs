//! The node's values in the API's wire types (`mero-api`): every answer of
//! the HTTP API is serialized from those types, so the JSON has one
//! definition, shared with clients, the OpenAPI document and the
//! TypeScript client.
//!
//! The node's own structs keep typed ids (`mero-sync`); these functions are
//! the one place they become text. Each builds the wire struct field by
//! field, so a field added to a wire type does not compile until the node
//! fills it.

use mero_abi::CallError;
use mero_abi::error::AppErrorData;
use mero_api as api;
use mero_sync::Role;

use crate::context::ReceiveReport;
use crate::membership::MemberInfo;
use crate::net::handle::{NetStatus, PeerInfo};
use crate::node::{AppInfo, CallOutput, ContextInfo};
use crate::sync::SyncStatus;
use crate::tokens::IssuedTokens;

/// An id's text.
pub(crate) fn id(v: &impl ToString) -> api::Id {
    api::Id(v.to_string())
}

fn ids<T: ToString>(v: &[T]) -> Vec<api::Id> {
    v.iter().map(id).collect()
}

/// A role.
pub(crate) fn role(r: Role) -> api::Role {
    match r {
        Role::Admin => api::Role::Admin,
        Role::Writer => api::Role::Writer,
        Role::Reader => api::Role::Reader,
    }
}

/// An installed app.
pub(crate) fn app(a: &AppInfo) -> api::AppInfo {
    api::AppInfo {
        hash: id(&a.hash),
        size: a.size as u64,
        name: a.name.clone(),
        methods: a.methods.clone(),
    }
}

/// A context.
pub(crate) fn context(c: &ContextInfo) -> api::ContextInfo {
    api::ContextInfo {
        id: id(&c.id),
        app: id(&c.app),
        member: id(&c.member),
        seq: c.seq,
        deltas: c.deltas,
        heads: ids(&c.heads),
        members: c.members as u64,
        joining: c.joining,
        pending_app: c.pending_app.as_ref().map(id),
        quarantined: c.quarantined.clone(),
    }
}

/// A context's replication state.
pub(crate) fn sync_status(s: &SyncStatus) -> api::SyncStatus {
    api::SyncStatus {
        context: id(&s.context),
        deltas: s.deltas,
        heads: ids(&s.heads),
        digest: s.digest.clone(),
        vector: s.vector.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        pending: s.pending as u64,
        rejected: s
            .rejected
            .iter()
            .map(|(k, n)| ((*k).to_owned(), *n))
            .collect(),
        joining: s.joining,
        forks: s.forks as u64,
    }
}

/// A member.
pub(crate) fn member(m: &MemberInfo) -> api::Member {
    api::Member {
        key: id(&m.key),
        role: role(m.role),
        invited_by: m.invited_by.as_ref().map(id),
        left: m.left,
        removed: m.removed,
        flagged: m.flagged.as_ref().map(|(a, b)| (id(a), id(b))),
        deltas: m.deltas,
        me: m.me,
    }
}

/// A client token pair.
pub(crate) fn tokens(t: IssuedTokens) -> api::Tokens {
    api::Tokens {
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        token_id: t.token_id,
        expires_at: t.expires_at,
        refresh_expires_at: t.refresh_expires_at,
    }
}

fn peer(p: &PeerInfo) -> api::Peer {
    api::Peer {
        peer_id: p.peer_id.clone(),
        contexts: ids(&p.contexts),
    }
}

/// Connected peers.
pub(crate) fn peers(p: &[PeerInfo]) -> Vec<api::Peer> {
    p.iter().map(peer).collect()
}

/// The network's state.
pub(crate) fn net_status(s: &NetStatus) -> api::NetStatus {
    api::NetStatus {
        peer_id: s.peer_id.clone(),
        listen_addrs: s.listen_addrs.clone(),
        peers: peers(&s.peers),
        banned: s.banned.clone(),
        paused: s.paused,
    }
}

/// What a receive did.
pub(crate) fn receive_report(r: &ReceiveReport) -> api::ReceiveReport {
    api::ReceiveReport {
        applied: r.applied as u64,
        rejected: r.rejected as u64,
        buffered: r.buffered as u64,
    }
}

/// A call's result.
pub(crate) fn call_result(out: CallOutput) -> api::CallResult {
    api::CallResult {
        output: out.output,
        delta: out.delta.as_ref().map(id),
    }
}

/// A failed call, as error `data`.
pub(crate) fn call_failure(e: &CallError) -> api::CallFailure {
    api::CallFailure {
        kind: e.kind,
        message: e.message.clone(),
        data: e.data.clone(),
    }
}

/// The app's own error, as the `data` of -32003.
pub(crate) fn app_error(e: AppErrorData) -> api::AppErrorData {
    api::AppErrorData {
        kind: e.kind,
        code: e.code,
        data: e.data,
    }
}

/// A value as JSON (every wire type serializes).
pub(crate) fn json(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("API types serialize")
}
