use std::marker::PhantomData;

use mero_abi::host::{ContainerKind, Handle, HostRequest, HostResponse};

use super::{Collection, SlotAt, StateField, StoreValue};
use crate::host::{self, expect_response};

/// Prefix of an owned collection's root (see `mero_engine::owned`).
const OWNED_PREFIX: &str = "$owned:";

/// One entry per member, which only that member can change — enforced by
/// every node that receives the change, not only by the author's.
///
/// Entries are keyed by the member key (base58, as the node's API shows
/// members). A call writes only the entry of the member *executing* it
/// ([`set_mine`](Self::set_mine), [`mine_mut`](Self::mine_mut)); everyone
/// reads every entry. A delta forged to change another member's entry is
/// refused by every receiver and counted against its sender
/// (docs/security.md, "Owned data").
///
/// An entry is a value or a map-like collection (`UnorderedMap`,
/// `UnorderedSet`, `Counter`, `Text`, `Vector` of values); collections
/// inside a `Vector`, and trees, cannot be owned (their ids do not name
/// their owner, so receivers could not check them).
///
/// Only a state field can be owned (`profiles: OwnedMap<Profile>`).
///
/// ```
/// use mero_sdk::app;
/// use mero_sdk::collections::OwnedMap;
///
/// #[app::state]
/// pub struct Profiles {
///     profiles: OwnedMap<String>,
/// }
///
/// #[app::logic]
/// impl Profiles {
///     #[app::init]
///     pub fn init() -> Self {
///         Self { profiles: OwnedMap::new() }
///     }
///
///     pub fn set_name(&mut self, name: String) {
///         self.profiles.set_mine(name);
///     }
///
///     pub fn names(&self) -> Vec<(String, String)> {
///         self.profiles.entries()
///     }
/// }
///
/// # fn main() {
/// let mut node = mero_sdk::testing::Replica::<Profiles>::new(0);
/// node.init(serde_json::json!({})).unwrap();
/// node.execute("set_name", serde_json::json!({"name": "ada"})).unwrap();
/// let names = node.execute("names", serde_json::json!({})).unwrap();
/// assert_eq!(names[0][1], "ada");
/// # }
/// ```
pub struct OwnedMap<V> {
    handle: Handle,
    _types: PhantomData<fn() -> V>,
}

impl<V: StoreValue> OwnedMap<V> {
    /// An empty owned collection, for `#[app::init]`.
    pub fn new() -> Self {
        Self {
            handle: expect_response!(
                host::call(HostRequest::New { kind: ContainerKind::Map }),
                HostResponse::Handle(h) => h
            ),
            _types: PhantomData,
        }
    }

    /// The key of the member executing this call.
    pub fn me() -> String {
        bs58::encode(crate::env::executor_id()).into_string()
    }

    /// The executing member's entry.
    pub fn mine(&self) -> Option<V> {
        self.get(&Self::me())
    }

    /// The entry of `member` (a base58 member key).
    pub fn get(&self, member: &str) -> Option<V> {
        expect_response!(
            host::call(HostRequest::MapGet { map: self.handle, key: member }),
            HostResponse::OptSlot(slot) => slot.map(|s| V::__from_slot_at(s, SlotAt::Map(self.handle, member.to_owned())))
        )
    }

    /// Sets the executing member's entry.
    pub fn set_mine(&mut self, value: V) {
        let key = Self::me();
        value.__with_slot(|value| {
            host::call(HostRequest::MapInsert {
                map: self.handle,
                key: &key,
                value,
            })
        });
    }

    /// Removes the executing member's entry; returns whether it was there.
    pub fn remove_mine(&mut self) -> bool {
        let key = Self::me();
        expect_response!(
            host::call(HostRequest::MapRemove { map: self.handle, key: &key }),
            HostResponse::Bool(b) => b
        )
    }

    /// Every member's entry, ordered by member key.
    pub fn entries(&self) -> Vec<(String, V)> {
        expect_response!(
            host::call(HostRequest::MapEntries { map: self.handle }),
            HostResponse::Entries(entries) => entries
                .into_iter()
                .map(|(k, v)| {
                    let value = V::__from_slot_at(v, SlotAt::Map(self.handle, k.clone()));
                    (k, value)
                })
                .collect()
        )
    }

    /// How many members have an entry.
    pub fn len(&self) -> usize {
        super::len_of(self.handle)
    }

    /// Whether no member has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V: StoreValue + Collection> OwnedMap<V> {
    /// The executing member's entry as a collection, created empty if
    /// absent.
    pub fn mine_mut(&mut self) -> V {
        let key = Self::me();
        V::from_handle(expect_response!(
            host::call(HostRequest::MapEnsure { map: self.handle, key: &key, kind: V::KIND }),
            HostResponse::Handle(h) => h
        ))
    }
}

impl<V: StoreValue> Default for OwnedMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> std::fmt::Debug for OwnedMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnedMap(#{})", self.handle)
    }
}

fn root_name(name: &str) -> String {
    format!("{OWNED_PREFIX}{name}")
}

impl<V: StoreValue> StateField for OwnedMap<V> {
    fn __load(name: &'static str) -> Self {
        let name = root_name(name);
        Self {
            handle: expect_response!(
                host::call(HostRequest::Root { name: &name, kind: ContainerKind::Map }),
                HostResponse::Handle(h) => h
            ),
            _types: PhantomData,
        }
    }

    fn __store_init(self, name: &'static str) {
        let name = root_name(name);
        host::call(HostRequest::BindRoot {
            name: &name,
            src: self.handle,
        });
    }
}
