//! A member of a context played by the test process itself: it joins
//! through a real invitation and then crafts whatever deltas an attacker
//! would, with its own `mero_sync::Replica` to know the honest next fields.

use mero_engine::{ContextState, DeltaPayload, EmittedEvent};
use mero_sync::access::Join;
use mero_sync::delta::Draft;
use mero_sync::ids::{AppHash, ContextId};
use mero_sync::{ContextKey, InvitationToken, MemberSecret, Op, Replica, SignedDelta};
use serde_json::{Value, json};

use super::NodeProc;

/// A member whose node is this test.
pub struct Member {
    pub secret: MemberSecret,
    pub replica: Replica,
    pub state: ContextState,
    pub ctx: ContextId,
    pub app: AppHash,
}

impl Member {
    /// Joins `ctx` through an invitation from `node` and sends its join there.
    pub fn join(node: &NodeProc, ctx: &str, app: &str) -> Self {
        Self::join_with(node, app, &node.invite(ctx))
    }

    /// [`join`](Self::join) with a given invitation token.
    pub fn join_with(node: &NodeProc, app: &str, token: &str) -> Self {
        let token: InvitationToken = token.parse().unwrap();
        let secret = MemberSecret::generate();
        let mut replica = Replica::new(token.context, token.creator);
        replica.add_key(token.epoch, ContextKey(token.key));
        let invite = MemberSecret::from_bytes(&token.secret);
        replica.add_opener(invite.clone());
        replica.add_opener(secret.clone());
        let state = ContextState::new(ContextState::peer_id_for(&secret.public().0));
        let mut m = Self {
            secret,
            replica,
            state,
            ctx: token.context,
            app: app.parse().unwrap(),
        };
        m.sync(node);
        let me = m.secret.public();
        let join = Join::new(&m.ctx, &me, token.invite, &invite, 1);
        let d = m.author(Op::Join(join));
        let report = m.send(node, &[d]);
        assert_eq!(report["applied"], 1, "the join applies: {report}");
        m
    }

    /// Receives every delta `node` has.
    pub fn sync(&mut self, node: &NodeProc) {
        let deltas = log(node, &self.ctx.to_string());
        self.replica.receive(deltas, &mut self.state);
    }

    /// Makes (and records) an honest delta of `op`.
    pub fn author(&mut self, op: Op) -> SignedDelta {
        let peer = self.state.peer();
        self.replica
            .author(&self.secret, op, self.app, peer)
            .expect("an allowed delta")
            .1
    }

    /// The honest next header fields.
    pub fn draft(&self) -> Draft {
        self.replica.draft(&self.secret.public(), self.app)
    }

    /// The current epoch key.
    pub fn key(&self) -> ContextKey {
        self.replica.current_key().unwrap().clone()
    }

    /// A delta with these header fields and op, signed by this member,
    /// not recorded (for forks and forgeries).
    pub fn craft(&self, draft: Draft, op: &Op) -> SignedDelta {
        SignedDelta::create(&self.secret, &self.key(), draft, op)
    }

    /// Posts deltas to `node`'s import endpoint (the checks of gossip).
    pub fn send(&self, node: &NodeProc, deltas: &[SignedDelta]) -> Value {
        let hexes: Vec<String> = deltas.iter().map(|d| hex::encode(d.to_bytes())).collect();
        node.post(
            &format!("/admin/contexts/{}/deltas", self.ctx),
            json!(hexes),
        )
    }
}

/// Every delta of `ctx` that `node` holds, in its log order.
pub fn log(node: &NodeProc, ctx: &str) -> Vec<SignedDelta> {
    log_page(node, ctx, 1000)
}

/// The deltas `node` holds among the first `limit` positions of `ctx`'s log.
pub fn log_page(node: &NodeProc, ctx: &str, limit: usize) -> Vec<SignedDelta> {
    let log = node.get(&format!("/admin/contexts/{ctx}/deltas?limit={limit}"));
    log["deltas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| SignedDelta::from_bytes(&hex::decode(h.as_str().unwrap()).unwrap()).unwrap())
        .collect()
}

/// A call payload of `update` (Loro bytes) and `events`.
pub fn call(update: Vec<u8>, events: Vec<EmittedEvent>) -> Op {
    Op::Call(DeltaPayload { update, events })
}

/// Loro ops as peer `peer` from counter `from` on: `n` keys set in root map `map`.
pub fn ops(peer: u64, from: u32, map: &str, n: usize, value: i64) -> Vec<u8> {
    let doc = loro::LoroDoc::new();
    doc.set_peer_id(peer).unwrap();
    // Burn counters up to `from` in a scratch container, then export only
    // the new ops.
    for i in 0..from {
        doc.get_map("scratch").insert(&format!("s{i}"), 0).unwrap();
    }
    doc.commit();
    let before = doc.oplog_vv();
    for i in 0..n {
        doc.get_map(map).insert(&format!("k{i}"), value).unwrap();
    }
    doc.commit();
    doc.export(loro::ExportMode::updates(&before)).unwrap()
}
