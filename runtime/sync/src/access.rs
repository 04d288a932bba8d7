//! Who may do what in a context: members and roles, invitations, key
//! epochs, the app version and flagged equivocators, as every node derives
//! them from the DAG.
//!
//! An [`Access`] is the fold of the *control* deltas (every kind but
//! [`Op::Call`]) in a causal past, in `(height, id)` order. A received delta
//! is judged against the access of its own causal past and nothing else, so
//! every node that has the delta decides the same, whatever else it has
//! seen and in whatever order. Where two control deltas are concurrent
//! (two admins removing each other, two joins racing for a single-use
//! invitation) the fold order decides: the later one is checked against a
//! state that already holds the earlier one, and has no effect if it is no
//! longer allowed.
//!
//! This module must not look at clocks or arrival order.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::crypto::{self, MemberSecret};
use crate::dag::Reject;
use crate::delta::{DeltaHeader, GENESIS_EPOCH, Op};
use crate::ids::{AppHash, ContextId, DeltaId, MemberKey, sha256};

const JOIN_DOMAIN: &[u8] = b"mero-join-v1";

/// The id of a context created by `creator` with `salt`.
pub fn context_id(creator: &MemberKey, salt: &[u8; 32]) -> ContextId {
    let mut b = b"mero-context".to_vec();
    b.extend_from_slice(&creator.0);
    b.extend_from_slice(salt);
    ContextId(sha256(&b))
}

/// What a member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Invite, revoke, remove, change roles, upgrade, rotate keys; and write.
    Admin,
    /// Change the state (method calls).
    Writer,
    /// Receive and read; may not write.
    Reader,
}

impl Role {
    /// Whether this role may change the state.
    pub fn writes(self) -> bool {
        matches!(self, Role::Admin | Role::Writer)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Admin => "admin",
            Role::Writer => "writer",
            Role::Reader => "reader",
        })
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "writer" => Ok(Role::Writer),
            "reader" => Ok(Role::Reader),
            _ => Err(format!(
                "`{s}` is not a role (expected admin, writer or reader)"
            )),
        }
    }
}

/// The body of an [`Op::Invite`]: an invitation the DAG knows about, so
/// every node can count its uses and see it revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// Public half of the invitation's one-time key; the token carries the
    /// secret half, which signs the joiner's key ([`Join::proof`]).
    pub key: MemberKey,
    /// The role a joiner gets.
    pub role: Role,
    /// How many joins it admits.
    pub uses: u32,
    /// Expiry, ms since the Unix epoch, checked against the join's own
    /// signed time.
    pub expires_at_ms: u64,
}

/// The body of an [`Op::Join`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// The [`Op::Invite`] delta.
    pub invite: DeltaId,
    /// When the joiner says it joined (ms since the Unix epoch); at most
    /// the invitation's expiry.
    pub joined_at_ms: u64,
    /// The invitation key's signature over the context and the joiner's
    /// member key: only a holder of the token can make it, and it admits
    /// only this key.
    pub proof: Vec<u8>,
}

impl Join {
    /// A join of `joiner` to `context` with the invitation `invite`, whose
    /// secret key is `secret`.
    pub fn new(
        context: &ContextId,
        joiner: &MemberKey,
        invite: DeltaId,
        secret: &MemberSecret,
        joined_at_ms: u64,
    ) -> Self {
        Self {
            invite,
            joined_at_ms,
            proof: secret.sign(JOIN_DOMAIN, &join_message(context, joiner)),
        }
    }
}

fn join_message(context: &ContextId, joiner: &MemberKey) -> Vec<u8> {
    let mut m = context.0.to_vec();
    m.extend_from_slice(&joiner.0);
    m
}

/// Whether a member is still in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// A member.
    Active,
    /// It left.
    Left,
    /// An admin removed it.
    Removed,
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its role.
    pub role: Role,
    /// Who invited it (`None` for the creator).
    pub invited_by: Option<MemberKey>,
    /// The invitation key it joined with: it can open what is sealed to it.
    pub via: Option<MemberKey>,
    /// Whether it is still a member.
    pub standing: Standing,
}

impl Member {
    /// Whether it is a member now.
    pub fn active(&self) -> bool {
        self.standing == Standing::Active
    }
}

/// An invitation as the DAG knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteState {
    /// The admin who made it.
    pub by: MemberKey,
    /// What it says.
    pub invite: Invite,
    /// Joins it admitted.
    pub used: u32,
    /// Whether an admin revoked it.
    pub revoked: bool,
}

impl InviteState {
    /// Whether it still admits a join.
    pub fn open(&self) -> bool {
        !self.revoked && self.used < self.invite.uses
    }
}

/// A context's access state at some causal cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    context: ContextId,
    members: BTreeMap<MemberKey, Member>,
    invites: BTreeMap<DeltaId, InviteState>,
    epoch: DeltaId,
    /// Keys that can open the current epoch's key: members it was sealed
    /// to, and invitation keys (their joiners hold the secret).
    readers: BTreeSet<MemberKey>,
    app: Option<AppHash>,
    flagged: BTreeMap<MemberKey, (DeltaId, DeltaId)>,
}

impl Access {
    /// A new context's access: its creator, an admin, alone.
    pub fn genesis(context: ContextId, creator: MemberKey) -> Self {
        let mut members = BTreeMap::new();
        members.insert(
            creator,
            Member {
                role: Role::Admin,
                invited_by: None,
                via: None,
                standing: Standing::Active,
            },
        );
        Self {
            context,
            members,
            invites: BTreeMap::new(),
            epoch: GENESIS_EPOCH,
            readers: BTreeSet::from([creator]),
            app: None,
            flagged: BTreeMap::new(),
        }
    }

    /// Every member, including those who left or were removed.
    pub fn members(&self) -> impl Iterator<Item = (&MemberKey, &Member)> {
        self.members.iter()
    }

    /// One member.
    pub fn member(&self, key: &MemberKey) -> Option<&Member> {
        self.members.get(key)
    }

    /// The role of an active member.
    pub fn role(&self, key: &MemberKey) -> Option<Role> {
        self.members.get(key).filter(|m| m.active()).map(|m| m.role)
    }

    /// The invitations made so far.
    pub fn invites(&self) -> &BTreeMap<DeltaId, InviteState> {
        &self.invites
    }

    /// The current key epoch: every delta made on this state seals with it.
    pub fn epoch(&self) -> DeltaId {
        self.epoch
    }

    /// Keys the current epoch key was given to.
    pub fn readers(&self) -> &BTreeSet<MemberKey> {
        &self.readers
    }

    /// The app the latest upgrade chose, if any.
    pub fn app(&self) -> Option<AppHash> {
        self.app
    }

    /// Members shown to have equivocated, with the two deltas.
    pub fn flagged(&self) -> &BTreeMap<MemberKey, (DeltaId, DeltaId)> {
        &self.flagged
    }

    /// Whether `author` may make a delta doing `op` on this state.
    pub fn check(&self, header: &DeltaHeader, op: &Op) -> Result<(), Reject> {
        let author = &header.author;
        if self.flagged.contains_key(author) {
            return Err(Reject::Flagged);
        }
        if let Op::Join(join) = op {
            return self.check_join(header, join);
        }
        let Some(role) = self.role(author) else {
            return Err(Reject::NotMember(format!("{author} is not a member")));
        };
        let admin = |what: &str| {
            if role == Role::Admin {
                Ok(())
            } else {
                Err(Reject::Forbidden(format!(
                    "only admins may {what}; {author} is a {role}"
                )))
            }
        };
        match op {
            Op::Call(_) if role.writes() => Ok(()),
            Op::Call(_) => Err(Reject::Forbidden(format!(
                "{author} is a reader and may not write"
            ))),
            Op::Invite(i) => {
                admin("invite")?;
                if self.members.contains_key(&i.key) || i.uses == 0 {
                    return Err(Reject::Invalid("an invitation needs a fresh key and uses"));
                }
                Ok(())
            }
            Op::Revoke { invite } => {
                admin("revoke invitations")?;
                match self.invites.get(invite) {
                    Some(i) if !i.revoked => Ok(()),
                    _ => Err(Reject::Invalid("no such open invitation")),
                }
            }
            Op::Remove { member, .. } => {
                admin("remove members")?;
                if member == author || self.role(member).is_none() {
                    return Err(Reject::Invalid("removes another current member"));
                }
                Ok(())
            }
            Op::SetRole { member, .. } => {
                admin("change roles")?;
                self.role(member)
                    .map(|_| ())
                    .ok_or(Reject::Invalid("sets the role of a current member"))
            }
            Op::Upgrade { app } | Op::Migrate { app, .. } => {
                admin("upgrade")?;
                if *app != header.app {
                    return Err(Reject::Invalid("an upgrade names its app in its header"));
                }
                Ok(())
            }
            Op::Rotate { .. } => admin("rotate keys"),
            Op::Leave => Ok(()),
            Op::Evidence(e) => match e.forker(&self.context) {
                Some(forker) if self.members.contains_key(&forker) => Ok(()),
                _ => Err(Reject::Invalid("evidence of equivocation by a member")),
            },
            Op::Join(_) => unreachable!("checked above"),
        }
    }

    fn check_join(&self, header: &DeltaHeader, join: &Join) -> Result<(), Reject> {
        let bad = |why: &str| Err(Reject::NotMember(format!("invalid join: {why}")));
        if self.members.contains_key(&header.author) {
            return bad("the author is or was a member already");
        }
        if header.seq != 1 {
            return bad("a join must be the author's first delta");
        }
        let Some(inv) = self.invites.get(&join.invite) else {
            return bad("no such invitation in the join's causal past");
        };
        if inv.revoked {
            return bad("the invitation was revoked");
        }
        if inv.used >= inv.invite.uses {
            return bad("the invitation was used up");
        }
        if join.joined_at_ms > inv.invite.expires_at_ms {
            return bad("the invitation expired");
        }
        if self.role(&inv.by) != Some(Role::Admin) {
            return bad("the inviter is no longer an admin");
        }
        let message = join_message(&self.context, &header.author);
        if !crypto::verify(&inv.invite.key, JOIN_DOMAIN, &message, &join.proof) {
            return bad("the proof is not the invitation key's signature over this joiner");
        }
        Ok(())
    }

    /// Applies a control delta `id` that [`check`](Self::check) allowed.
    pub fn apply(&mut self, id: DeltaId, header: &DeltaHeader, op: &Op) {
        let author = header.author;
        match op {
            Op::Call(_) => {}
            Op::Join(join) => {
                let Some(inv) = self.invites.get_mut(&join.invite) else {
                    return;
                };
                inv.used += 1;
                let member = Member {
                    role: inv.invite.role,
                    invited_by: Some(inv.by),
                    via: Some(inv.invite.key),
                    standing: Standing::Active,
                };
                self.members.insert(author, member);
            }
            Op::Invite(invite) => {
                // Its token carries the current epoch key.
                self.readers.insert(invite.key);
                let state = InviteState {
                    by: author,
                    invite: invite.clone(),
                    used: 0,
                    revoked: false,
                };
                self.invites.insert(id, state);
            }
            Op::Revoke { invite } => {
                if let Some(i) = self.invites.get_mut(invite) {
                    i.revoked = true;
                }
            }
            Op::Remove { member, keys } => {
                if let Some(m) = self.members.get_mut(member) {
                    m.standing = Standing::Removed;
                }
                self.new_epoch(id, keys.recipients());
            }
            Op::SetRole { member, role } => {
                if let Some(m) = self.members.get_mut(member) {
                    m.role = *role;
                }
            }
            Op::Upgrade { app } | Op::Migrate { app, .. } => self.app = Some(*app),
            Op::Rotate { keys } => self.new_epoch(id, keys.recipients()),
            Op::Leave => {
                if let Some(m) = self.members.get_mut(&author) {
                    m.standing = Standing::Left;
                }
            }
            Op::Evidence(e) => {
                if let Some(forker) = e.forker(&self.context) {
                    self.flagged.entry(forker).or_insert((e.a.id(), e.b.id()));
                }
            }
        }
    }

    /// [`check`](Self::check), then [`apply`](Self::apply) if allowed: how
    /// a control delta enters a fold that merges concurrent histories.
    pub fn fold(&mut self, id: DeltaId, header: &DeltaHeader, op: &Op) {
        if self.check(header, op).is_ok() {
            self.apply(id, header, op);
        }
    }

    fn new_epoch<'a>(&mut self, id: DeltaId, readers: impl Iterator<Item = &'a MemberKey>) {
        self.epoch = id;
        self.readers = readers.copied().collect();
    }

    /// Whether the current epoch key is held by someone who should not read
    /// (a member who left or was removed, a revoked invitation, anyone
    /// unknown) or not held by a member: then an admin starts a new epoch.
    pub fn rotation_due(&self) -> bool {
        let covered = |m: &Member, key: &MemberKey| {
            self.readers.contains(key) || m.via.is_some_and(|v| self.readers.contains(&v))
        };
        if self
            .members
            .iter()
            .any(|(k, m)| m.active() && !covered(m, k))
        {
            return true;
        }
        self.readers.iter().any(|r| {
            if let Some(m) = self.members.get(r) {
                return !m.active();
            }
            // An invitation key may read while the invitation is open (its
            // holder may join anyway) or while a member who joined with it
            // is still in.
            let Some(invite) = self.invites.values().find(|i| i.invite.key == *r) else {
                return true;
            };
            let joiner_in = self
                .members
                .values()
                .any(|m| m.via == Some(*r) && m.active());
            invite.revoked || !(invite.open() || joiner_in)
        })
    }

    /// Who a new epoch key goes to: every current member, and every open
    /// invitation (so its joiner can read what was written meanwhile).
    pub fn rotation_readers(&self, except: Option<&MemberKey>) -> Vec<MemberKey> {
        let members = self
            .members
            .iter()
            .filter(|(k, m)| m.active() && Some(*k) != except)
            .map(|(k, _)| *k);
        let invites = self
            .invites
            .values()
            .filter(|i| i.open())
            .map(|i| i.invite.key);
        members.chain(invites).collect()
    }
}
