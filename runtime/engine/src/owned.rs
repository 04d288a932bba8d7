//! Owned entries: state that only one member may change, checked from the
//! operations themselves.
//!
//! An owned collection is a root map named [`OWNED_PREFIX`] + field name
//! whose keys are member keys (base58, as clients see them). The entry
//! under a member's key — a value, or collections nested under it by map
//! key — belongs to that member: an operation anywhere in it is allowed only
//! in a call *executed by* that member.
//!
//! The rule is decided from the operations and their containers' ids
//! alone, never from what else a replica holds, so every node decides a
//! delta the same way whatever it applied before (the receiving side of
//! `mero-sync` runs [`check_ops`] after importing a call's update and
//! restores the state if it fails). That works because everything under an
//! owned entry is addressed by name: a collection nested under a map key is
//! a Loro *mergeable* child whose id spells its parent's id and its key, so
//! the id of any container under `$owned:profiles` names the owner's key.
//! Containers with op-based ids (items of a list, tree nodes) would not, so
//! they may not be created under an owned entry at all — by induction no
//! owned state lives in a container whose id does not name its owner.
//!
//! Limits (docs/security.md, "Owned data"): the owner is the member who
//! *executed* the call, so a handler running on a receiving node writes
//! that node's member's entry; a member's entry cannot hold a `Vector` of
//! collections or a `Tree`; removed members' entries stay until an app
//! clears them (only their owner could), which an app can hide by reading
//! only current members' entries.

use loro::{ContainerID, ContainerType, IdSpan, LoroDoc, LoroValue};
use loro::{JsonListOp, JsonMapOp, JsonMovableListOp, JsonOpContent};

use crate::error::EngineError;

/// Prefix of the root map of an owned collection (`$owned:<field>`).
pub const OWNED_PREFIX: &str = "$owned:";

/// How an owned collection's entry is keyed: the owner's member key in
/// base58, the form the node's API shows member keys in.
///
/// ```
/// let key = mero_engine::owned::owner_key(&[1; 32]);
/// assert_eq!(bs58::decode(&key).into_vec().unwrap(), vec![1; 32]);
/// ```
pub fn owner_key(member: &[u8; 32]) -> String {
    bs58::encode(member).into_string()
}

/// Where a container sits relative to owned state.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    /// Not under any owned collection.
    Free,
    /// The owned collection's root map itself: each key is an owner.
    Root,
    /// Inside the entry of this owner.
    Entry(String),
}

/// Walks a container id up through mergeable parents to the container that
/// is not a mergeable child, remembering the first key below it.
fn place_of(id: &ContainerID) -> Place {
    let mut cur = id.clone();
    let mut first_key = None;
    while let Some((parent, key, _)) = cur.parse_mergeable() {
        first_key = Some(key);
        cur = parent;
    }
    match cur {
        ContainerID::Root { name, .. } if name.starts_with(OWNED_PREFIX) => match first_key {
            None => Place::Root,
            Some(k) => Place::Entry(k),
        },
        _ => Place::Free,
    }
}

/// Whether a stored value creates a container with an op-based id.
fn creates_container(v: &LoroValue) -> bool {
    matches!(v, LoroValue::Container(_))
}

/// Checks the ops of an update already imported into `doc` (see
/// [`check_ops`]), as a call executed by `author`.
pub fn check_imported(doc: &LoroDoc, update: &[u8], author: &[u8; 32]) -> Result<(), EngineError> {
    let owner = owner_key(author);
    for (peer, start, end) in crate::update_span(update)? {
        let clamp = |c: u32| i32::try_from(c).unwrap_or(i32::MAX);
        check_ops(doc, peer, clamp(start), clamp(end), &owner)?;
    }
    Ok(())
}

/// Checks that the ops of `peer` in counters `start..end` of `doc` touch
/// owned state only where `owner` may: its own entry, and there only by
/// name (see the module docs).
pub(crate) fn check_ops(
    doc: &LoroDoc,
    peer: u64,
    start: i32,
    end: i32,
    owner: &str,
) -> Result<(), EngineError> {
    if end <= start {
        return Ok(());
    }
    for change in doc.export_json_in_id_span(IdSpan::new(peer, start, end)) {
        for op in change.ops {
            check_op(&op.container, &op.content, owner)?;
        }
    }
    Ok(())
}

fn check_op(
    container: &ContainerID,
    content: &JsonOpContent,
    owner: &str,
) -> Result<(), EngineError> {
    let refuse = |what: String| Err(EngineError::NotOwner(what));
    let field = |id: &ContainerID| {
        let mut cur = id.clone();
        while let Some((parent, ..)) = cur.parse_mergeable() {
            cur = parent;
        }
        match cur {
            ContainerID::Root { name, .. } => {
                format!("`{}`", name.trim_start_matches(OWNED_PREFIX))
            }
            other => other.to_string(),
        }
    };
    match place_of(container) {
        Place::Free => Ok(()),
        Place::Root => match content {
            JsonOpContent::Map(JsonMapOp::Insert { key, value }) if key == owner => {
                if creates_container(value) {
                    refuse(format!(
                        "an owned entry cannot be a collection with an op-based id (in {})",
                        field(container)
                    ))
                } else {
                    Ok(())
                }
            }
            JsonOpContent::Map(JsonMapOp::Insert { key, .. } | JsonMapOp::Delete { key }) => {
                refuse(format!(
                    "the entry `{key}` of {} belongs to that member; this call runs as {owner}",
                    field(container)
                ))
            }
            _ => refuse(format!("{} takes only map operations", field(container))),
        },
        Place::Entry(key) if key != owner => refuse(format!(
            "the entry `{key}` of {} belongs to that member; this call runs as {owner}",
            field(container)
        )),
        Place::Entry(_) => {
            let nested = match content {
                JsonOpContent::Map(JsonMapOp::Insert { value, .. }) => creates_container(value),
                JsonOpContent::List(JsonListOp::Insert { value, .. })
                | JsonOpContent::MovableList(JsonMovableListOp::Insert { value, .. }) => {
                    value.iter().any(creates_container)
                }
                JsonOpContent::MovableList(JsonMovableListOp::Set { value, .. }) => {
                    creates_container(value)
                }
                JsonOpContent::Tree(_) => true,
                _ => false,
            };
            if nested || container.container_type() == ContainerType::Tree {
                refuse(format!(
                    "an owned entry can hold values and collections under map keys, not collections inside a list or a tree (in {})",
                    field(container)
                ))
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mero_abi::host::{ContainerKind, HostRequest as R, HostResponse as A, SlotIn};
    use serde_json::json;

    use super::{Place, owner_key, place_of};
    use crate::*;

    const ALICE: [u8; 32] = [0xa1; 32];
    const BOB: [u8; 32] = [0xb0; 32];

    fn state(member: &[u8; 32]) -> ContextState {
        ContextState::new(ContextState::peer_id_for(member))
    }

    /// Runs one call as `member` that writes `value` under `path` (the
    /// first element is the entry key of `$owned:profiles`; further
    /// elements are nested maps).
    fn write(
        st: &mut ContextState,
        member: &[u8; 32],
        path: &[&str],
        value: &str,
    ) -> Result<Option<DeltaPayload>, mero_abi::CallError> {
        let env = CallEnv {
            context_id: [1; 32],
            executor: *member,
            time_nanos: 0,
            input: b"{}".to_vec(),
            mode: CallMode::Mutate,
            limits: CallLimits::default(),
            private: Arc::new(NoPrivateStorage),
            blobs: Arc::new(NoBlobs),
            xcall: Arc::new(crate::NoCrossContext::default()),
            random: Box::new(|b| b.fill(7)),
        };
        let mut s = st.begin(env);
        let A::Handle(mut map) = s
            .dispatch(R::Root {
                name: "$owned:profiles",
                kind: ContainerKind::Map,
            })
            .unwrap()
        else {
            panic!()
        };
        for key in &path[..path.len() - 1] {
            let A::Handle(h) = s
                .dispatch(R::MapEnsure {
                    map,
                    key,
                    kind: ContainerKind::Map,
                })
                .unwrap()
            else {
                panic!()
            };
            map = h;
        }
        let json = serde_json::to_vec(value).unwrap();
        s.dispatch(R::MapInsert {
            map,
            key: path[path.len() - 1],
            value: SlotIn::Value(&json),
        })
        .unwrap();
        s.dispatch(R::Return {
            ok: true,
            data: b"null",
        })
        .unwrap();
        let out = st.finish(s, None);
        out.result.map(|_| out.delta)
    }

    #[test]
    fn a_call_writes_only_its_executors_entry() {
        let (alice, bob) = (owner_key(&ALICE), owner_key(&BOB));
        let mut st = state(&ALICE);
        write(&mut st, &ALICE, &[&alice], "ada").unwrap();
        let before = st.to_json();
        let err = write(&mut st, &ALICE, &[&bob], "forged").unwrap_err();
        assert!(err.message.contains("belongs to that member"), "{err:?}");
        let err = write(&mut st, &ALICE, &[&bob, "bio"], "forged").unwrap_err();
        assert!(err.message.contains("belongs to that member"), "{err:?}");
        assert_eq!(st.to_json(), before, "a refused call leaves no trace");
        assert_eq!(st.to_json(), json!({"profiles": {&alice: "ada"}}));
    }

    #[test]
    fn a_nested_entry_is_its_owners() {
        let alice = owner_key(&ALICE);
        let mut st = state(&ALICE);
        write(&mut st, &ALICE, &[&alice, "links", "web"], "https://a").unwrap();
        assert_eq!(
            st.to_json(),
            json!({"profiles": {alice: {"links": {"web": "https://a"}}}})
        );
    }

    /// Bob's node is modified to write Alice's entry as Bob: every
    /// receiver refuses the update and keeps the state it had.
    #[test]
    fn receivers_refuse_a_forged_write_and_keep_their_state() {
        let (alice, bob) = (owner_key(&ALICE), owner_key(&BOB));
        let mut a = state(&ALICE);
        let mut b = state(&BOB);
        let mut receiver = ContextState::new(99);
        let first = write(&mut a, &ALICE, &[&alice, "name"], "ada")
            .unwrap()
            .unwrap();
        for st in [&mut b, &mut receiver] {
            st.import_call(&first.update, &ALICE).unwrap();
        }
        // A forging node: writes as Bob's peer with Alice as executor, so its
        // own check passes, then ships the update as Bob's.
        let forged = write(&mut b, &ALICE, &[&alice, "name"], "mallory")
            .unwrap()
            .unwrap();
        let before = receiver.to_json();
        let err = receiver.import_call(&forged.update, &BOB).unwrap_err();
        assert!(matches!(err, EngineError::NotOwner(_)), "{err}");
        assert_eq!(receiver.to_json(), before);
        // Refused means absent: Bob's next honest delta (whose ops continue
        // the forged ones) cannot apply either, but Bob's entry written by a
        // fresh honest replica of Bob is accepted.
        let mut honest_bob = state(&BOB);
        honest_bob.import_call(&first.update, &ALICE).unwrap();
        let own = write(&mut honest_bob, &BOB, &[&bob], "bob")
            .unwrap()
            .unwrap();
        receiver.import_call(&own.update, &BOB).unwrap();
        assert_eq!(
            receiver.to_json(),
            json!({"profiles": {alice: {"name": "ada"}, bob: "bob"}})
        );
    }

    #[test]
    fn places_follow_mergeable_ids() {
        use loro::{ContainerID, ContainerType};
        let root = ContainerID::new_root("$owned:p", ContainerType::Map);
        assert_eq!(place_of(&root), Place::Root);
        let entry = ContainerID::new_mergeable(&root, "ab>c/d", ContainerType::Map);
        assert_eq!(place_of(&entry), Place::Entry("ab>c/d".into()));
        let deeper = ContainerID::new_mergeable(&entry, "x", ContainerType::Text);
        assert_eq!(place_of(&deeper), Place::Entry("ab>c/d".into()));
        let free = ContainerID::new_root("items", ContainerType::Map);
        assert_eq!(
            place_of(&ContainerID::new_mergeable(&free, "k", ContainerType::Map)),
            Place::Free
        );
    }
}
