//! kv-store: a replicated key-value store, the reference mero example.
//!
//! Every member node holds the whole map; a `set` on one node reaches the
//! others as a delta, and concurrent writes to the same key resolve to the
//! last writer. Keys can also carry tags, a nested set per key that merges
//! when several nodes tag the same key at once.

use mero_sdk::app;
use mero_sdk::collections::{Counter, LwwRegister, UnorderedMap, UnorderedSet};

/// The replicated state.
#[app::state(emits = Event)]
pub struct KvStore {
    items: UnorderedMap<String, LwwRegister<String>>,
    tags: UnorderedMap<String, UnorderedSet<String>>,
    writes: Counter,
}

/// What changed, pushed to subscribers of every member node.
#[app::event]
pub enum Event {
    /// A key was set.
    Inserted { key: String, value: String },
    /// A key was removed.
    Removed { key: String },
}

#[app::logic]
impl KvStore {
    /// Creates an empty store.
    #[app::init]
    pub fn init() -> Self {
        Self {
            items: UnorderedMap::new(),
            tags: UnorderedMap::new(),
            writes: Counter::new(),
        }
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: String, value: String) -> app::Result<()> {
        if key.is_empty() {
            app::bail!("key must not be empty");
        }
        app::log!("set {key}");
        self.items
            .insert(key.clone(), LwwRegister::new(value.clone()));
        self.writes.increment();
        app::emit!(Event::Inserted { key, value });
        Ok(())
    }

    /// The value at `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        self.items.get(key).map(LwwRegister::into_inner)
    }

    /// Removes `key`; fails if it is absent.
    pub fn remove(&mut self, key: &str) -> app::Result<String> {
        let Some(old) = self.items.get(key) else {
            app::bail!("no such key: {key}");
        };
        self.items.remove(key);
        self.tags.remove(key);
        self.writes.increment();
        app::emit!(Event::Removed {
            key: key.to_owned()
        });
        Ok(old.into_inner())
    }

    /// Every entry, ordered by key.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.items
            .entries()
            .into_iter()
            .map(|(k, v)| (k, v.into_inner()))
            .collect()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the store has no keys.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds a tag to `key`. Tags from different nodes merge.
    pub fn tag(&mut self, key: String, tag: String) {
        self.tags.ensure(key).insert(tag);
    }

    /// The tags of `key`.
    pub fn tags(&self, key: &str) -> Vec<String> {
        self.tags.get(key).map(|s| s.to_vec()).unwrap_or_default()
    }

    /// How many writes all nodes made together.
    pub fn writes(&self) -> i64 {
        self.writes.value()
    }
}
