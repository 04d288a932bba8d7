//! Fixtures shared by the fuzz targets (`fuzz_targets/*.rs`) and the seed
//! generator (`examples/seeds.rs`): fixed keys and members of one context,
//! a receiving node's replica, a small history to answer catch-up from, a
//! state to run host calls on, and the input formats of the targets.
//!
//! Everything is deterministic (fixed secrets, fixed nonces), so a crash
//! found once reproduces from its input alone.

use std::collections::HashMap;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use mero_abi::host::{ContainerKind, HostRequest, SlotIn};
use mero_engine::{
    CallEnv, CallLimits, CallMode, ContextState, DeltaPayload, NoPrivateStorage, Session,
};
use mero_sync::access::{Invite, Join, context_id};
use mero_sync::delta::{DeltaBody, GENESIS_EPOCH};
use mero_sync::ids::{AppHash, ContextId, DeltaId, MemberKey};
use mero_sync::protocol::DeltaSource;
use mero_sync::replica::Outcome;
use mero_sync::{ContextKey, MemberSecret, Op, Replica, Role, SignedDelta};

/// Installs the panic hook of the fuzz targets (call it from `init:`).
///
/// libfuzzer-sys aborts on every panic, caught or not. But
/// `ContextState::import` catches the panics of Loro's decoder on malformed
/// updates and refuses those updates, so a panic raised inside Loro (or its
/// column codec) only prints a line and unwinds; if nothing catches it,
/// libfuzzer-sys still aborts when it leaves the target. Any other panic
/// aborts at once, as usual.
pub fn abort_on_panics_but_caught_crdt_ones() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let file = info.location().map_or("", |l| l.file());
        if file.contains("/loro") || file.contains("/serde_columnar") {
            eprintln!("CRDT engine panic (caught by mero-engine, or fatal below): {info}");
            return;
        }
        default(info);
        std::process::abort();
    }));
}

/// The domain deltas are signed under (`mero_sync::delta`).
pub const SIGNING_DOMAIN: &[u8] = b"mero-delta-v2";
/// The app every fixture delta names.
pub const APP: AppHash = AppHash([4; 32]);
/// The salt of the fixture context.
pub const SALT: [u8; 32] = [2; 32];
/// Most deltas of one input re-signed as a member would (signing costs).
pub const MAX_FORGED: usize = 32;

/// The context's creator (its first admin).
pub fn creator() -> MemberSecret {
    MemberSecret::from_bytes(&[1; 32])
}

/// The node that receives in the targets (not yet a member).
pub fn receiver() -> MemberSecret {
    MemberSecret::from_bytes(&[5; 32])
}

/// The one-time key of the history's invitation.
pub fn invite_secret() -> MemberSecret {
    MemberSecret::from_bytes(&[6; 32])
}

/// The member that joins in the history.
pub fn joiner() -> MemberSecret {
    MemberSecret::from_bytes(&[7; 32])
}

/// The fixture context.
pub fn context() -> ContextId {
    context_id(&creator().public(), &SALT)
}

/// The key of the context's first epoch.
pub fn epoch_key() -> ContextKey {
    ContextKey([3; 32])
}

/// A state engine writing as `member`.
pub fn state_of(member: &MemberKey) -> ContextState {
    ContextState::new(ContextState::peer_id_for(&member.0))
}

/// What a call runs with, deterministic.
pub fn call_env(mode: CallMode, input: &[u8]) -> CallEnv {
    CallEnv {
        context_id: context().0,
        executor: creator().public().0,
        time_nanos: 1_700_000_000_000_000_000,
        input: input.to_vec(),
        mode,
        limits: CallLimits::default(),
        private: Arc::new(NoPrivateStorage),
        blobs: Arc::new(mero_engine::NoBlobs),
        xcall: Arc::new(mero_engine::NoCrossContext::default()),
        random: Box::new(|b| b.fill(7)),
    }
}

/// Seals like [`ContextKey::seal`] (nonce ‖ XChaCha20-Poly1305 ciphertext)
/// with a nonce derived from the plaintext, so re-signed inputs are
/// deterministic.
pub fn seal(key: &ContextKey, plain: &[u8], aad: &[u8]) -> Vec<u8> {
    let nonce: [u8; 24] = mero_sync::ids::sha256(plain)[..24]
        .try_into()
        .expect("24 bytes");
    let mut out = nonce.to_vec();
    let ct = XChaCha20Poly1305::new((&key.0).into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .expect("encryption of an in-memory buffer cannot fail");
    out.extend(ct);
    out
}

/// Sets the checksum of a Loro blob (bytes 16..20: xxh32 of everything
/// after them), as anyone crafting an update would.
pub fn fix_loro_checksum(blob: &mut [u8]) {
    if blob.len() >= 22 && blob.starts_with(b"loro") {
        let sum = xxhash_rust::xxh32::xxh32(&blob[20..], u32::from_le_bytes(*b"LORO"));
        blob[16..20].copy_from_slice(&sum.to_le_bytes());
    }
}

/// The deltas of one input as a hostile *member* sends them: each
/// header's author becomes `signer`, the payload bytes are taken as the
/// plaintext operation and sealed with the epoch key under the header, and
/// the delta is signed. A parent naming an earlier input delta's original
/// id is rewritten to its new id, so inputs can express chains. Loro
/// checksums are left as they are (crafted updates are `loro_update`'s).
pub fn as_member(signer: &MemberSecret, deltas: &[SignedDelta]) -> Vec<SignedDelta> {
    let key = epoch_key();
    let mut renamed: HashMap<DeltaId, DeltaId> = HashMap::new();
    let mut out = Vec::new();
    for d in deltas.iter().take(MAX_FORGED) {
        let mut header = d.body.header.clone();
        header.author = signer.public();
        for p in &mut header.parents {
            if let Some(new) = renamed.get(p) {
                *p = *new;
            }
        }
        let payload = seal(&key, &d.body.payload, &header.aad());
        let body = DeltaBody { header, payload };
        let id = body.id();
        let signature = signer.sign(SIGNING_DOMAIN, &id.0);
        renamed.insert(d.id(), id);
        out.push(SignedDelta { body, signature });
    }
    out
}

/// A node's replica of the fixture context with its state and the deltas
/// it accepted, driven as the node drives it.
pub struct Node {
    /// The replica.
    pub replica: Replica,
    /// Its state engine.
    pub state: ContextState,
    /// Accepted deltas, by id (the node's store).
    pub stored: HashMap<DeltaId, SignedDelta>,
}

impl Node {
    /// A node that holds the first epoch's key and opens keys sealed to
    /// `member` (as a joining node does with the token).
    pub fn new(member: &MemberSecret) -> Self {
        let mut replica = Replica::new(context(), creator().public());
        replica.add_key(GENESIS_EPOCH, epoch_key());
        replica.add_opener(member.clone());
        Self {
            replica,
            state: state_of(&member.public()),
            stored: HashMap::new(),
        }
    }

    /// Receives deltas as `Node::receive` does: store what applied,
    /// rebuild when told to, make evidence of new forks.
    pub fn receive(&mut self, deltas: Vec<SignedDelta>) -> Outcome {
        let out = self.replica.receive(deltas, &mut self.state);
        for (id, d, _) in &out.applied {
            self.stored.insert(*id, d.clone());
        }
        let stored = &self.stored;
        let source = |id: &DeltaId| stored.get(id).cloned();
        if out.rebuild {
            // A delta that is not stored is an error, not a panic.
            let _ = self.replica.rebuild(&mut self.state, &source);
        }
        for fork in &out.forks {
            let _ = self.replica.evidence(fork, &source);
        }
        out
    }

    /// Authors `op` as `author`; stores it.
    pub fn author(&mut self, author: &MemberSecret, op: Op) -> SignedDelta {
        let peer = ContextState::peer_id_for(&author.public().0);
        let (id, d) = self
            .replica
            .author(author, op, APP, peer)
            .expect("the fixture's deltas are valid");
        self.stored.insert(id, d.clone());
        d
    }

    /// Runs a mutating call that sets `key` in the root map `items` on this
    /// node's state; the payload of its delta.
    pub fn write(&mut self, key: &str, value: &str) -> DeltaPayload {
        let mut s = self.state.begin(call_env(CallMode::Mutate, b"{}"));
        let json = serde_json::to_vec(value).expect("JSON");
        let map = handle(&mut s, "items", ContainerKind::Map);
        s.dispatch(HostRequest::MapInsert {
            map,
            key,
            value: SlotIn::Value(&json),
        })
        .expect("insert");
        s.dispatch(HostRequest::Return {
            ok: true,
            data: b"null",
        })
        .expect("return");
        let out = self.state.finish(s, None);
        out.result.expect("the call succeeds");
        out.delta.expect("a change makes a delta")
    }
}

fn handle(s: &mut Session, name: &str, kind: ContainerKind) -> u32 {
    match s.dispatch(HostRequest::Root { name, kind }) {
        Ok(mero_abi::host::HostResponse::Handle(h)) => h,
        other => panic!("expected a handle, got {other:?}"),
    }
}

/// A small history of the fixture context: the creator's calls, an
/// invitation, a join with it and the joiner's call, as the creator's node
/// holds it.
pub struct History {
    /// The creator's node, with every delta applied.
    pub node: Node,
    /// Every delta, in log order.
    pub deltas: Vec<SignedDelta>,
}

impl History {
    /// Builds it (a few signatures; deterministic but for nonces).
    pub fn build() -> Self {
        let (admin, joiner, invite) = (creator(), joiner(), invite_secret());
        let mut node = Node::new(&admin);
        let mut deltas = Vec::new();
        for (k, v) in [("a", "1"), ("b", "2")] {
            let p = node.write(k, v);
            deltas.push(node.author(&admin, Op::Call(p)));
        }
        let inv = node.author(
            &admin,
            Op::Invite(Invite {
                key: invite.public(),
                role: Role::Writer,
                uses: 1,
                expires_at_ms: u64::MAX,
            }),
        );
        deltas.push(inv.clone());
        let mut other = Node::new(&joiner);
        other.replica.add_opener(invite.clone());
        let out = other.receive(deltas.clone());
        assert_eq!(out.applied.len(), deltas.len(), "{:?}", out.rejected);
        let join = Join::new(&context(), &joiner.public(), inv.id(), &invite, 1);
        let mut theirs = vec![other.author(&joiner, Op::Join(join))];
        let p = other.write("c", "3");
        theirs.push(other.author(&joiner, Op::Call(p)));
        let out = node.receive(theirs.clone());
        assert_eq!(out.applied.len(), theirs.len(), "{:?}", out.rejected);
        deltas.extend(theirs);
        let p = node.write("d", "4");
        deltas.push(node.author(&admin, Op::Call(p)));
        Self { node, deltas }
    }

    /// Where answers read stored deltas from.
    pub fn source(&self) -> impl DeltaSource + '_ {
        |id: &DeltaId| self.node.stored.get(id).cloned()
    }
}

/// Splits a host-call input into requests: each starts with its length
/// byte (255: the rest of the input).
pub fn split_requests(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = if len == u8::MAX {
            rest.len()
        } else {
            usize::from(len).min(rest.len())
        };
        let (req, rest) = rest.split_at(len);
        out.push(req);
        data = rest;
    }
    out
}

/// Joins requests into the input format of [`split_requests`].
pub fn join_requests(reqs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in reqs {
        let len = u8::try_from(r.len())
            .ok()
            .filter(|l| *l < u8::MAX)
            .expect("a seed request under 255 bytes");
        out.push(len);
        out.extend_from_slice(r);
    }
    out
}

/// The state host calls start from: a snapshot holding one of each
/// collection kind, nested collections and a register field.
pub fn base_snapshot() -> Vec<u8> {
    use HostRequest as R;
    let mut state = state_of(&creator().public());
    let mut s = state.begin(call_env(CallMode::Mutate, b"{}"));
    let items = handle(&mut s, "items", ContainerKind::Map);
    for (k, v) in [("a", "1"), ("b", "\"two\""), ("c", "[1,2,{\"x\":null}]")] {
        s.dispatch(R::MapInsert {
            map: items,
            key: k,
            value: SlotIn::Value(v.as_bytes()),
        })
        .expect("insert");
    }
    let nested = s
        .dispatch(R::MapEnsure {
            map: items,
            key: "nested",
            kind: ContainerKind::List,
        })
        .expect("ensure");
    let mero_abi::host::HostResponse::Handle(nested) = nested else {
        panic!("a handle")
    };
    s.dispatch(R::ListInsert {
        list: nested,
        index: 0,
        value: SlotIn::Value(b"true"),
    })
    .expect("list insert");
    let list = handle(&mut s, "list", ContainerKind::List);
    for i in 0..3u32 {
        let v = i.to_string();
        s.dispatch(R::ListInsert {
            list,
            index: i,
            value: SlotIn::Value(v.as_bytes()),
        })
        .expect("list insert");
    }
    let text = handle(&mut s, "text", ContainerKind::Text);
    s.dispatch(R::TextInsert {
        text,
        pos: 0,
        s: "héllo",
    })
    .expect("text");
    let counter = handle(&mut s, "count", ContainerKind::Counter);
    s.dispatch(R::CounterAdd { counter, by: 3 })
        .expect("counter");
    s.dispatch(R::RootValueSet {
        name: "owner",
        value: b"\"me\"",
    })
    .expect("register");
    s.dispatch(R::Return {
        ok: true,
        data: b"null",
    })
    .expect("return");
    state.finish(s, None).result.expect("the call succeeds");
    state.snapshot().expect("snapshot")
}

/// The snapshot the creator's node of `h` serves a joiner
/// (`mero_sync::snapshot`): checkpoint, control deltas, signed frontier
/// and state.
pub fn snapshot_of(h: &History) -> mero_sync::snapshot::Snapshot {
    let r = &h.node.replica;
    let checkpoint = r.checkpoint();
    let control = checkpoint
        .control
        .iter()
        .map(|pos| h.deltas[*pos as usize].clone())
        .collect();
    let frontier = mero_sync::snapshot::frontier_ids(r.dag())
        .iter()
        .map(|id| mero_sync::delta::SignedHeader::of(&h.node.stored[id]))
        .collect();
    mero_sync::snapshot::Snapshot {
        checkpoint,
        control,
        frontier,
        state: h.node.state.snapshot().expect("the state exports"),
    }
}

/// Installs `s`, cut and signed by the creator, as a node holding the
/// first epoch's key and the invitation would (no invitation heads).
pub fn install_signed(
    s: &mero_sync::snapshot::Snapshot,
) -> Result<mero_sync::snapshot::Installed, mero_sync::snapshot::SnapshotError> {
    use mero_sync::snapshot::{self, SnapshotLimits, Target};
    let (manifest, parts) = snapshot::build(s, &creator());
    let target = Target {
        context: context(),
        creator: creator().public(),
        heads: Vec::new(),
    };
    let limits = SnapshotLimits {
        max_bytes: 64 << 20,
        replica: mero_sync::replica::Limits::default(),
    };
    let mut state = state_of(&receiver().public());
    snapshot::install(
        &target,
        &manifest,
        &parts,
        [(GENESIS_EPOCH, epoch_key())],
        vec![receiver(), invite_secret()],
        &limits,
        &mut state,
    )
}
