//! The node's values in the API's wire types (`mero-api`): every answer of
//! the HTTP API is serialized from those types, so the JSON has one
//! definition, shared with clients, the OpenAPI document and the
//! TypeScript client.
//!
//! The node's own structs keep typed ids (`mero-sync`); these functions are
//! the one place they become text. Each builds the wire struct field by
//! field, so a field added to a wire type does not compile until the node
//! fills it.

use std::collections::BTreeSet;

use mero_abi::CallError;
use mero_abi::error::AppErrorData;
use mero_api as api;
use mero_sync::Role;
use mero_sync::progress::PeerView;

use crate::context::ReceiveReport;
use crate::membership::MemberInfo;
use crate::net::handle::{NetStatus, PeerInfo, Peering};
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

/// A context's replication state, merged with what the swarm knows of its
/// peers; per-peer rows only `with_peers` (the admin route).
pub(crate) fn sync_status(s: &SyncStatus, net: &Peering, with_peers: bool) -> api::SyncStatus {
    let rows = peer_rows(s, net);
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
        heads_changed_at_ms: s.heads_changed_ms,
        summary: summary(&rows),
        peers: with_peers.then_some(rows),
    }
}

/// `(state, behind, ahead)` of a view.
fn view_numbers(v: Option<PeerView>) -> (api::SyncState, u64, u64) {
    use api::SyncState as S;
    match v {
        None => (S::Unknown, 0, 0),
        Some(PeerView::InSync) => (S::InSync, 0, 0),
        Some(PeerView::Behind { lacking }) => (S::Behind, lacking, 0),
        Some(PeerView::Ahead { extra }) => (S::Ahead, 0, extra),
        Some(PeerView::Diverged { lacking, extra }) => (S::Diverged, lacking, extra),
        Some(PeerView::Forked { .. }) => (S::Forked, 0, 0),
    }
}

/// One row per peer recorded for the context or connected and sharing it:
/// its last view, whether it is reachable now, its link fault and traffic.
fn peer_rows(s: &SyncStatus, net: &Peering) -> Vec<api::PeerSync> {
    let mut ids: BTreeSet<&str> = s.peers.iter().map(|(p, _)| p.as_str()).collect();
    ids.extend(net.sharing.iter().map(String::as_str));
    ids.into_iter()
        .map(|p| {
            let record = s.peers.iter().find(|(q, _)| q == p).map(|(_, r)| *r);
            let (mut state, behind, ahead) = view_numbers(record.and_then(|r| r.view));
            let connected = net.connected.contains(p);
            if !connected {
                state = api::SyncState::Unreachable;
            }
            let (sent, received) = net.traffic.get(p).cloned().unwrap_or_default();
            api::PeerSync {
                peer_id: p.to_owned(),
                state,
                behind,
                ahead,
                since_ms: record.map(|r| r.since_ms),
                last_exchange_ms: record.map(|r| r.last_exchange_ms),
                connected,
                unreachable_since_ms: if connected {
                    None
                } else {
                    net.down_since.get(p).copied()
                },
                link: net.faults.as_ref().and_then(|f| f.link(p)),
                sent,
                received,
            }
        })
        .collect()
}

/// The context's state against all its peers: forked if any is; behind
/// if a reachable one has more; in sync when every reachable one is;
/// ahead when reachable ones only lack; alone without peers; unreachable
/// when none is connected.
fn summary(rows: &[api::PeerSync]) -> api::SyncSummary {
    use api::SyncState as S;
    let reachable: Vec<&api::PeerSync> = rows.iter().filter(|r| r.connected).collect();
    let behind = reachable.iter().map(|r| r.behind).max().unwrap_or(0);
    let ahead = reachable.iter().map(|r| r.ahead).max().unwrap_or(0);
    let state = if rows.is_empty() {
        S::Alone
    } else if rows.iter().any(|r| r.state == S::Forked) {
        S::Forked
    } else if reachable.is_empty() {
        S::Unreachable
    } else if behind > 0 {
        S::Behind
    } else if reachable.iter().all(|r| r.state == S::InSync) {
        S::InSync
    } else if ahead > 0 {
        S::Ahead
    } else {
        S::Unknown
    };
    api::SyncSummary {
        state,
        behind,
        behind_since_ms: reachable
            .iter()
            .filter(|r| r.behind > 0)
            .filter_map(|r| r.since_ms)
            .min(),
        ahead,
        peers: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        reachable: u32::try_from(reachable.len()).unwrap_or(u32::MAX),
        last_exchange_ms: rows.iter().filter_map(|r| r.last_exchange_ms).max(),
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
        path: p.path.clone(),
        connections: p.connections.clone(),
        rtt_ms: p.rtt_ms,
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
        external_addrs: s.external_addrs.clone(),
        peers: peers(&s.peers),
        banned: s.banned.clone(),
        relays: s.relays.clone(),
        relay_service: s.relay_service.clone(),
        meet: s.meet.clone(),
        faults: s.faults.clone(),
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

/// A log entry's header as the API shows it.
pub(crate) fn dag_entry(
    pos: u64,
    delta: &crate::ids::DeltaId,
    h: &mero_sync::delta::DeltaHeader,
) -> api::DagEntry {
    use mero_sync::delta::OpKind;
    let kind = match h.kind {
        OpKind::Call => "call",
        OpKind::Join => "join",
        OpKind::Invite => "invite",
        OpKind::Revoke => "revoke",
        OpKind::Remove => "remove",
        OpKind::SetRole => "set_role",
        OpKind::Upgrade => "upgrade",
        OpKind::Rotate => "rotate",
        OpKind::Leave => "leave",
        OpKind::Evidence => "evidence",
    };
    api::DagEntry {
        pos,
        id: id(delta),
        author: id(&h.author),
        seq: h.seq,
        parents: ids(&h.parents),
        kind: kind.into(),
        app: id(&h.app),
    }
}
