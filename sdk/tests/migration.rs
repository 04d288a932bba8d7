//! Upgrades on the native test host (`Replica::upgrade`, `Network::upgrade`),
//! decided as the node decides them: the same schema keeps the state, a
//! compatible change keeps it too, a migration runs once on the upgrading
//! replica and travels as one delta, and a change old state cannot be read
//! under without a migration is refused with the node's message. A failed
//! migration, of any kind, changes nothing.

use mero_abi::CallErrorKind;
use mero_sdk::testing::{Network, Replica, UpgradeError, UpgradeFailed, UpgradePlan, upgrade_plan};
use serde_json::{Value, json};

/// Version 1: notes as plain strings, and a count of edits.
mod v1 {
    use mero_sdk::app;
    use mero_sdk::collections::{Counter, UnorderedMap};

    #[app::state]
    pub struct Notes {
        notes: UnorderedMap<String, String>,
        edits: Counter,
    }

    #[app::logic]
    impl Notes {
        #[app::init]
        pub fn init() -> Self {
            Self {
                notes: UnorderedMap::new(),
                edits: Counter::new(),
            }
        }

        pub fn put(&mut self, key: String, text: String) {
            self.notes.insert(key, text);
            self.edits.increment();
        }

        pub fn get(&self, key: String) -> Option<String> {
            self.notes.get(&key)
        }

        pub fn count(&self) -> usize {
            self.notes.len()
        }
    }
}

/// The same schema as v1, with one more method: nothing to migrate.
mod same {
    use mero_sdk::app;
    use mero_sdk::collections::{Counter, UnorderedMap};

    #[app::state]
    pub struct Notes {
        notes: UnorderedMap<String, String>,
        edits: Counter,
    }

    #[app::logic]
    impl Notes {
        #[app::init]
        pub fn init() -> Self {
            Self {
                notes: UnorderedMap::new(),
                edits: Counter::new(),
            }
        }

        pub fn shout(&self, key: String) -> Option<String> {
            self.notes.get(&key).map(|t| t.to_uppercase())
        }
    }
}

/// v1 plus a set of tags: a new collection reads as empty, so no
/// migration is needed.
mod tagged {
    use mero_sdk::app;
    use mero_sdk::collections::{Counter, UnorderedMap, UnorderedSet};

    #[app::state]
    pub struct Notes {
        notes: UnorderedMap<String, String>,
        edits: Counter,
        tags: UnorderedSet<String>,
    }

    #[app::logic]
    impl Notes {
        #[app::init]
        pub fn init() -> Self {
            Self {
                notes: UnorderedMap::new(),
                edits: Counter::new(),
                tags: UnorderedSet::new(),
            }
        }

        pub fn get(&self, key: String) -> Option<String> {
            self.notes.get(&key)
        }

        pub fn tags(&self) -> Vec<String> {
            self.tags.to_vec()
        }
    }
}

/// A register old state has no value for, and no migration: refused.
mod unmigrated {
    use mero_sdk::app;
    use mero_sdk::collections::{Counter, LwwRegister, UnorderedMap};

    #[app::state]
    pub struct Notes {
        notes: UnorderedMap<String, String>,
        edits: Counter,
        title: LwwRegister<String>,
    }

    #[app::logic]
    impl Notes {
        #[app::init]
        pub fn init() -> Self {
            Self {
                notes: UnorderedMap::new(),
                edits: Counter::new(),
                title: LwwRegister::new(String::new()),
            }
        }

        pub fn title(&self) -> String {
            self.title.get().clone()
        }
    }
}

/// Version 2: each note records its word count, the store has a title,
/// and the migration counts how often it ran.
mod v2 {
    use mero_sdk::collections::{Counter, LwwRegister, UnorderedMap};
    use mero_sdk::{app, migration};

    #[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
    pub struct Note {
        pub text: String,
        pub words: usize,
    }

    impl Note {
        fn new(text: String) -> Self {
            let words = text.split_whitespace().count();
            Self { text, words }
        }
    }

    #[app::state(version = 2)]
    pub struct Notes {
        notes: UnorderedMap<String, Note>,
        edits: Counter,
        title: LwwRegister<String>,
        migrations: Counter,
    }

    #[app::logic]
    impl Notes {
        #[app::init]
        pub fn init() -> Self {
            Self {
                notes: UnorderedMap::new(),
                edits: Counter::new(),
                title: LwwRegister::new("notes".into()),
                migrations: Counter::new(),
            }
        }

        #[app::migrate]
        pub fn migrate() -> Self {
            let old: UnorderedMap<String, String> = migration::field("notes");
            let mut notes: UnorderedMap<String, Note> = migration::field("notes");
            let entries = old.entries();
            let n = entries.len();
            for (key, text) in entries {
                notes.insert(key, Note::new(text));
            }
            let mut migrations = Counter::new();
            migrations.increment();
            Self {
                notes,
                edits: migration::field("edits"),
                title: LwwRegister::new(format!("{n} notes migrated")),
                migrations,
            }
        }

        pub fn put(&mut self, key: String, text: String) {
            self.notes.insert(key, Note::new(text));
            self.edits.increment();
        }

        pub fn get(&self, key: String) -> Option<Note> {
            self.notes.get(&key)
        }

        pub fn count(&self) -> usize {
            self.notes.len()
        }

        pub fn title(&self) -> String {
            self.title.get().clone()
        }

        pub fn edits(&self) -> i64 {
            self.edits.value()
        }

        pub fn migrations(&self) -> i64 {
            self.migrations.value()
        }
    }
}

/// Migrations that fail after writing: with an error, a panic, an event.
mod broken {
    use mero_sdk::collections::{Counter, LwwRegister, UnorderedMap};
    use mero_sdk::{app, migration};

    macro_rules! version {
        ($module:ident, $failure:expr) => {
            pub mod $module {
                use super::*;

                #[app::state(version = 2, emits = Event)]
                pub struct Notes {
                    notes: UnorderedMap<String, String>,
                    edits: Counter,
                    title: LwwRegister<String>,
                }

                #[app::event]
                pub enum Event {
                    Migrated { notes: usize },
                }

                #[app::logic]
                impl Notes {
                    #[app::init]
                    pub fn init() -> Self {
                        Self {
                            notes: UnorderedMap::new(),
                            edits: Counter::new(),
                            title: LwwRegister::new(String::new()),
                        }
                    }

                    /// Writes first, so a failure has something to undo.
                    #[app::migrate]
                    pub fn migrate() -> app::Result<Self> {
                        let mut notes: UnorderedMap<String, String> = migration::field("notes");
                        notes.insert("written by the migration".into(), "x".into());
                        let n = notes.len();
                        let failure: fn(usize) -> app::Result<()> = $failure;
                        failure(n)?;
                        Ok(Self {
                            notes,
                            edits: migration::field("edits"),
                            title: LwwRegister::new("done".into()),
                        })
                    }
                }
            }
        };
    }

    version!(errs, |n| Err(app::Error::msg(format!(
        "{n} notes is too many"
    ))));
    version!(panics, |n| panic!("cannot migrate {n} notes"));
    version!(emits, |n| {
        app::emit!(Event::Migrated { notes: n });
        Ok(())
    });
}

fn notes(n: usize) -> Replica<v1::Notes> {
    let mut r = Replica::new(0);
    r.init(json!({})).unwrap();
    for i in 0..n {
        let args = json!({"key": format!("k{i}"), "text": format!("note number {i}")});
        r.execute("put", args).unwrap();
    }
    r
}

#[test]
fn plans_follow_the_nodes_rules() {
    assert_eq!(
        upgrade_plan::<v1::Notes, same::Notes>(),
        Ok(UpgradePlan::Keep)
    );
    let Ok(UpgradePlan::Compatible(diff)) = upgrade_plan::<v1::Notes, tagged::Notes>() else {
        panic!("a new collection needs no migration");
    };
    assert_eq!(diff.lines(), ["+ tags: UnorderedSet<String>"]);
    let Ok(UpgradePlan::Migrate(diff)) = upgrade_plan::<v1::Notes, v2::Notes>() else {
        panic!("v2 has a migration");
    };
    assert!(diff.needs_migration());
    let Err(UpgradeError::NeedsMigration(diff)) = upgrade_plan::<v1::Notes, unmigrated::Notes>()
    else {
        panic!("a register without a value and no migration is refused");
    };
    assert_eq!(diff.changes.len(), 1, "{diff:?}");
    // A migration runs whenever the schema differs, even when old state
    // could be read without it (as on the node).
    assert!(matches!(
        upgrade_plan::<tagged::Notes, v2::Notes>(),
        Ok(UpgradePlan::Migrate(_))
    ));
    // Back from v2 to v1: the version changes, and v1 has no migration.
    assert!(matches!(
        upgrade_plan::<v2::Notes, v1::Notes>(),
        Err(UpgradeError::NeedsMigration(_))
    ));
}

#[test]
fn the_same_or_a_compatible_schema_keeps_the_state_and_writes_nothing() {
    let mut r = notes(2);
    r.take_deltas();
    let before = r.state_json();
    let mut same = r.upgrade::<same::Notes>().unwrap();
    assert_eq!(same.state_json(), before);
    assert!(same.take_deltas().is_empty());
    assert_eq!(
        same.query("shout", json!({"key": "k1"})).unwrap(),
        "NOTE NUMBER 1"
    );
    // The old app's methods are gone: the replica runs the new ABI.
    let err = same
        .execute("put", json!({"key": "a", "text": "b"}))
        .unwrap_err();
    assert_eq!(err.kind, CallErrorKind::UnknownMethod);

    let mut tagged = same.upgrade::<tagged::Notes>().unwrap();
    assert_eq!(tagged.state_json(), before);
    assert!(tagged.take_deltas().is_empty());
    assert_eq!(tagged.query("tags", json!({})).unwrap(), json!([]));
    assert_eq!(
        tagged.query("get", json!({"key": "k0"})).unwrap(),
        "note number 0"
    );
}

#[test]
fn an_unreadable_change_without_a_migration_is_refused_with_the_nodes_message() {
    let mut r = notes(2);
    r.take_deltas();
    let before = r.state_json();
    let Err(UpgradeFailed {
        error,
        unchanged: mut r,
    }) = r.upgrade::<unmigrated::Notes>()
    else {
        panic!("the upgrade must be refused");
    };
    let msg = error.to_string();
    // The node's 409 message: what changed, and what to write.
    assert!(msg.contains("title: LwwRegister<String>"), "{msg}");
    assert!(msg.contains("#[app::migrate]"), "{msg}");
    assert!(
        matches!(&error, UpgradeError::NeedsMigration(d) if msg == d.explain()),
        "{msg}"
    );
    assert_eq!(r.state_json(), before);
    assert!(r.take_deltas().is_empty());
    // Still the old app, working.
    r.execute("put", json!({"key": "k9", "text": "still v1"}))
        .unwrap();
    assert_eq!(r.query("count", json!({})).unwrap(), 3);
}

#[test]
fn a_migration_transforms_the_state_as_one_delta_of_the_upgrading_replica() {
    let mut r = notes(3);
    r.take_deltas();
    let mut r = r.upgrade::<v2::Notes>().unwrap();
    let deltas = r.take_deltas();
    assert_eq!(deltas.len(), 1, "the migration's ops are one delta");
    assert!(deltas[0].payload().events.is_empty());
    assert!(!deltas[0].payload().update.is_empty());
    assert_eq!(r.query("title", json!({})).unwrap(), "3 notes migrated");
    assert_eq!(
        r.query("get", json!({"key": "k2"})).unwrap(),
        json!({"text": "note number 2", "words": 3})
    );
    // Kept fields keep their data; the new app writes in the new shape.
    assert_eq!(r.query("edits", json!({})).unwrap(), 3);
    r.execute("put", json!({"key": "new", "text": "a b c d"}))
        .unwrap();
    assert_eq!(
        r.query("get", json!({"key": "new"})).unwrap(),
        json!({"text": "a b c d", "words": 4})
    );
    assert_eq!(r.query("migrations", json!({})).unwrap(), 1);
}

#[test]
fn a_network_migrates_once_and_converges() {
    for seed in 0..8 {
        let mut net = Network::<v1::Notes>::new(3);
        for i in 0..3 {
            let args = json!({"key": format!("n{i}"), "text": "x ".repeat(i + 1)});
            net.replica(i).execute("put", args).unwrap();
        }
        net.deliver_shuffled(seed);
        // Replica 1 writes once more, delivered only to replica 2 before
        // replica 0 upgrades: replica 0 migrates without it.
        net.replica(1)
            .execute("put", json!({"key": "late", "text": "one two"}))
            .unwrap();
        let late = net.replica(1).take_deltas().remove(0);
        net.replica(2).apply(&late);
        // Replica 0 writes once more, delivered to no one: the others get
        // it with the upgrade, as its causal past.
        net.replica(0)
            .execute("put", json!({"key": "early", "text": "a b c d"}))
            .unwrap();

        let mut net = net.upgrade::<v2::Notes>(0).unwrap();
        // Every replica switched at the upgrade: each holds the migrated
        // entries of what replica 0 had, without another delivery.
        for i in 0..3 {
            let title = net.replica(i).query("title", json!({})).unwrap();
            assert_eq!(title, "4 notes migrated", "replica {i}, seed {seed}");
            let n2 = net.replica(i).query("get", json!({"key": "n2"})).unwrap();
            assert_eq!(n2, json!({"text": "x x x ", "words": 3}));
            let early = net
                .replica(i)
                .query("get", json!({"key": "early"}))
                .unwrap();
            assert_eq!(early, json!({"text": "a b c d", "words": 4}));
        }
        // Only the upgrading replica wrote anything for the upgrade.
        for i in 1..3 {
            assert!(net.replica(i).take_deltas().is_empty(), "replica {i}");
        }
        net.replica(2)
            .execute("put", json!({"key": "after", "text": "new shape"}))
            .unwrap();
        // The late write reaches replica 0 after its upgrade (it left the
        // network's log when taken above).
        net.replica(0).apply(&late);
        net.deliver_shuffled(seed + 100);
        net.assert_converged();
        for i in 0..3 {
            let r = net.replica(i);
            assert_eq!(r.query("migrations", json!({})).unwrap(), 1, "exactly once");
            assert_eq!(r.query("count", json!({})).unwrap(), 6);
            assert_eq!(
                r.query("get", json!({"key": "after"})).unwrap(),
                json!({"text": "new shape", "words": 2})
            );
            // As on nodes, an old-app write the upgrading replica had not
            // seen stays as the old app wrote it: v2 cannot read it.
            assert!(r.query("get", json!({"key": "late"})).is_err());
        }
    }
}

#[test]
fn a_refused_network_upgrade_leaves_every_replica_as_it_was() {
    let mut net = Network::<v1::Notes>::new(2);
    net.replica(0)
        .execute("put", json!({"key": "a", "text": "b"}))
        .unwrap();
    net.deliver_shuffled(1);
    let before: Vec<Value> = (0..2).map(|i| net.replica(i).state_json()).collect();
    let Err(UpgradeFailed { error, unchanged }) = net.upgrade::<broken::errs::Notes>(1) else {
        panic!("the migration fails");
    };
    let mut net = *unchanged;
    assert!(matches!(error, UpgradeError::Migration(_)), "{error}");
    for (i, state) in before.iter().enumerate() {
        assert_eq!(&net.replica(i).state_json(), state, "replica {i}");
    }
    // The network still runs v1 and still replicates.
    net.replica(1)
        .execute("put", json!({"key": "c", "text": "d"}))
        .unwrap();
    net.deliver_shuffled(2);
    net.assert_converged();
    assert_eq!(net.replica(0).query("count", json!({})).unwrap(), 2);
}

/// Upgrades `r` to `N`, expecting the migration to fail; checks that it
/// left no trace and returns the error and the replica.
fn failed_migration<N>(r: Replica<v1::Notes>) -> (UpgradeError, Replica<v1::Notes>)
where
    N: mero_sdk::__private::AppState + mero_sdk::__private::AppLogic,
{
    let before = r.state_json();
    let Err(UpgradeFailed {
        error,
        unchanged: mut r,
    }) = r.upgrade::<N>()
    else {
        panic!("the migration must fail");
    };
    assert_eq!(r.state_json(), before, "{error}");
    assert!(r.take_deltas().is_empty(), "{error}");
    assert!(r.emitted().is_empty(), "{error}");
    // Still the old app, and its next delta carries only its own write.
    r.execute("put", json!({"key": "after", "text": "v1 still"}))
        .unwrap();
    assert_eq!(r.take_deltas().len(), 1);
    (error, *r)
}

#[test]
fn a_failing_migration_changes_nothing_and_says_why() {
    let mut r = notes(2);
    r.take_deltas();
    let (error, r) = failed_migration::<broken::errs::Notes>(r);
    let UpgradeError::Migration(e) = &error else {
        panic!("{error}");
    };
    assert_eq!(e.kind, CallErrorKind::App);
    assert_eq!(
        e.message,
        "the migration failed, nothing changed: 3 notes is too many"
    );

    let (error, r) = failed_migration::<broken::panics::Notes>(r);
    let UpgradeError::Migration(e) = &error else {
        panic!("{error}");
    };
    assert_eq!(e.kind, CallErrorKind::Panic);
    assert!(
        e.message
            .starts_with("the migration failed, nothing changed: cannot migrate 4 notes"),
        "{}",
        e.message
    );

    // A migration runs on one node: an event from it is refused, as the
    // node refuses it (its exact message).
    let (error, mut r) = failed_migration::<broken::emits::Notes>(r);
    assert_eq!(
        error.to_string(),
        "a migration cannot emit events (it runs on one node); nothing changed"
    );
    assert_eq!(r.query("count", json!({})).unwrap(), 3);
    // A migration that succeeds still can.
    let mut v2 = r.upgrade::<v2::Notes>().unwrap();
    assert_eq!(v2.query("title", json!({})).unwrap(), "3 notes migrated");
    assert_eq!(v2.query("migrations", json!({})).unwrap(), 1);
}
