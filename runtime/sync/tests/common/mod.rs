//! A member of a context for the protocol tests: a [`Replica`] over a Loro
//! doc, with a "disk" of the deltas it accepted (what survives a restart).
#![allow(dead_code)]

use std::collections::HashMap;

use loro::{ExportMode, LoroDoc};
use mero_engine::{ContextState, DeltaPayload};
use mero_sync::access::{Invite, Join, context_id};
use mero_sync::ids::{AppHash, ContextId, DeltaId, MemberKey};
use mero_sync::replica::Outcome;
use mero_sync::{
    ContextKey, Engine, InvitationToken, MemberSecret, Op, Reject, Replica, Role, SignedDelta,
};

/// The app hash every test delta names.
pub const APP: AppHash = AppHash([7; 32]);

/// The state engine: a Loro doc writing as its member's peer id.
pub struct Doc {
    pub doc: LoroDoc,
    peer: u64,
}

impl Doc {
    /// An empty doc writing as `secret`'s member.
    pub fn default_for(secret: &MemberSecret) -> Self {
        Self::new(ContextState::peer_id_for(&secret.public().0))
    }

    fn new(peer: u64) -> Self {
        let doc = LoroDoc::new();
        doc.set_peer_id(peer).unwrap();
        Self { doc, peer }
    }
}

impl Engine for Doc {
    fn peer_of(&self, author: &MemberKey) -> u64 {
        ContextState::peer_id_for(&author.0)
    }
    fn import(&mut self, update: &[u8], owner: Option<&MemberKey>) -> Result<(), Reject> {
        let before = self.doc.oplog_frontiers();
        self.doc
            .import(update)
            .map_err(|e| Reject::Apply(e.to_string()))?;
        let Some(author) = owner else {
            return Ok(());
        };
        if let Err(e) = mero_engine::owned::check_imported(&self.doc, update, &author.0) {
            let snapshot = self
                .doc
                .export(ExportMode::SnapshotAt {
                    version: std::borrow::Cow::Borrowed(&before),
                })
                .unwrap();
            self.doc = LoroDoc::from_snapshot(&snapshot).unwrap();
            self.doc.set_peer_id(self.peer).unwrap();
            return Err(Reject::NotOwner(e.to_string()));
        }
        Ok(())
    }
    fn rebuild(&mut self, updates: &[Vec<u8>]) -> Result<(), String> {
        let fresh = Doc::new(self.peer);
        for u in updates {
            // Taken op ids: skipped, as the contract says.
            let _ = fresh.doc.import(u);
        }
        *self = fresh;
        Ok(())
    }
    fn load(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let doc = LoroDoc::from_snapshot(snapshot).map_err(|e| e.to_string())?;
        if doc.is_shallow() {
            return Err("shallow".into());
        }
        doc.set_peer_id(self.peer).map_err(|e| e.to_string())?;
        self.doc = doc;
        Ok(())
    }
    fn version(&self) -> std::collections::BTreeMap<u64, u32> {
        self.doc
            .oplog_vv()
            .iter()
            .map(|(p, c)| (*p, *c as u32))
            .collect()
    }
}

/// One member's node.
pub struct Peer {
    pub secret: MemberSecret,
    pub creator: MemberKey,
    pub replica: Replica,
    pub doc: Doc,
    pub disk: Vec<SignedDelta>,
    pub index: HashMap<DeltaId, usize>,
    /// Epoch keys this peer was given (token) or learned, for restarts.
    pub keys: Vec<(DeltaId, ContextKey)>,
    /// Openers besides its member secret (an invitation secret).
    pub openers: Vec<MemberSecret>,
}

impl Peer {
    fn empty(secret: MemberSecret, ctx: ContextId, creator: MemberKey) -> Self {
        let peer = ContextState::peer_id_for(&secret.public().0);
        let mut replica = Replica::new(ctx, creator).with_max_pending(64);
        replica.add_opener(secret.clone());
        Self {
            secret,
            creator,
            replica,
            doc: Doc::new(peer),
            disk: Vec::new(),
            index: HashMap::new(),
            keys: Vec::new(),
            openers: Vec::new(),
        }
    }

    /// A new context's creator, with its `init` delta applied.
    pub fn create(salt: u8) -> Self {
        let secret = MemberSecret::generate();
        let creator = secret.public();
        let ctx = context_id(&creator, &[salt; 32]);
        let mut p = Self::empty(secret, ctx, creator);
        let key = ContextKey::generate();
        p.replica
            .add_key(mero_sync::delta::GENESIS_EPOCH, key.clone());
        p.keys.push((mero_sync::delta::GENESIS_EPOCH, key));
        p.write(|d| d.get_map("m").insert("created", true).unwrap())
            .unwrap();
        p
    }

    /// Someone holding `token`, not yet joined.
    pub fn invited(token: &InvitationToken) -> Self {
        let mut p = Self::empty(MemberSecret::generate(), token.context, token.creator);
        for (epoch, key) in token.epoch_keys() {
            p.replica.add_key(epoch, key.clone());
            p.keys.push((epoch, key));
        }
        let invite = MemberSecret::from_bytes(&token.secret);
        p.replica.add_opener(invite.clone());
        p.openers.push(invite);
        p
    }

    pub fn key(&self) -> MemberKey {
        self.secret.public()
    }

    pub fn ctx(&self) -> ContextId {
        self.replica.context()
    }

    fn store(&mut self, d: &SignedDelta) {
        self.index.insert(d.id(), self.disk.len());
        self.disk.push(d.clone());
    }

    /// Authors `op`; stores it on success.
    pub fn author(&mut self, op: Op) -> Result<SignedDelta, Reject> {
        let peer = self.doc.peer;
        let (_, d) = self.replica.author(&self.secret, op, APP, peer)?;
        self.store(&d);
        self.learn_keys();
        Ok(d)
    }

    fn learn_keys(&mut self) {
        for (e, k) in self.replica.keys() {
            if !self.keys.iter().any(|(x, _)| x == e) {
                self.keys.push((*e, k.clone()));
            }
        }
    }

    /// Changes the doc with `f` and authors the change as a call delta.
    /// On refusal the doc is rebuilt from what was accepted.
    pub fn write(&mut self, f: impl FnOnce(&LoroDoc)) -> Result<SignedDelta, Reject> {
        let before = self.doc.doc.oplog_vv();
        f(&self.doc.doc);
        self.doc.doc.commit();
        let update = self.doc.doc.export(ExportMode::updates(&before)).unwrap();
        let r = self.author(Op::Call(DeltaPayload {
            update,
            events: vec![],
        }));
        if r.is_err() {
            self.rebuild();
        }
        r
    }

    /// Rebuilds the doc from the disk in canonical order.
    pub fn rebuild(&mut self) {
        let (disk, index) = (&self.disk, &self.index);
        let source = |id: &DeltaId| index.get(id).map(|i| disk[*i].clone());
        self.replica.rebuild(&mut self.doc, &source).unwrap();
    }

    /// Opens an invitation.
    pub fn invite(
        &mut self,
        role: Role,
        uses: u32,
        expires_at_ms: u64,
    ) -> (SignedDelta, InvitationToken) {
        let secret = MemberSecret::generate();
        let d = self
            .author(Op::Invite(Invite {
                key: secret.public(),
                role,
                uses,
                expires_at_ms,
            }))
            .expect("an admin invites");
        let epoch = self.replica.access().epoch();
        let token = InvitationToken {
            context: self.ctx(),
            creator: self.creator,
            salt: [0; 32],
            app: APP,
            invite: d.id(),
            secret: secret.to_bytes(),
            epoch,
            key: self.replica.key(&epoch).unwrap().0,
            heads: self.replica.dag().heads(),
            expires_at_ms,
            addrs: vec![],
            past: InvitationToken::new_past(self.replica.keys(), &epoch).unwrap(),
        };
        (d, token)
    }

    /// Joins with `token` (whose invitation must be applied here).
    pub fn join(&mut self, token: &InvitationToken, at_ms: u64) -> Result<SignedDelta, Reject> {
        let invite = MemberSecret::from_bytes(&token.secret);
        let join = Join::new(&self.ctx(), &self.key(), token.invite, &invite, at_ms);
        self.author(Op::Join(join))
    }

    /// Receives deltas; stores what applied, rebuilds when told to.
    pub fn receive(&mut self, deltas: Vec<SignedDelta>) -> Outcome {
        let out = self.replica.receive(deltas, &mut self.doc);
        for (_, d, _) in &out.applied {
            self.store(d);
        }
        if out.rebuild {
            self.rebuild();
        }
        self.learn_keys();
        out
    }

    /// Receives everything `other` accepted, in its order.
    pub fn sync_from(&mut self, other: &Peer) -> Outcome {
        self.receive(other.disk.clone())
    }

    /// Loses everything in memory and restores from the disk and keys.
    pub fn restart(&mut self) {
        let secret = self.secret.clone();
        let mut fresh = Self::empty(secret, self.ctx(), self.creator);
        for (e, k) in &self.keys {
            fresh.replica.add_key(*e, k.clone());
        }
        for o in &self.openers {
            fresh.replica.add_opener(o.clone());
        }
        fresh.keys = self.keys.clone();
        fresh.openers = self.openers.clone();
        let disk = std::mem::take(&mut self.disk);
        fresh
            .replica
            .restore(&disk, 0, &mut fresh.doc, &|_: &DeltaId| None)
            .unwrap();
        for d in &disk {
            fresh.store(d);
        }
        *self = fresh;
    }

    /// The state as a JSON-ish value.
    pub fn state(&self) -> loro::LoroValue {
        self.doc.doc.get_deep_value()
    }
}

/// The reasons of an outcome's refusals, duplicates left out.
pub fn reasons(out: &Outcome) -> Vec<&'static str> {
    out.rejected
        .iter()
        .map(|(_, r)| r.label())
        .filter(|r| *r != "duplicate")
        .collect()
}
