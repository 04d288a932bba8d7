//! Upgrading test replicas to another version of the app, as a node's
//! upgrade does (`runtime/node/src/upgrade.rs`).
//!
//! The decision is the node's ([`upgrade_plan`], from `mero_abi::schema`):
//! the same state schema keeps the state as it is; a differing schema runs
//! the new app's `#[app::migrate]`, if it has one, once, on the upgrading
//! replica, and its ops travel to the others as one delta (the node's
//! `Op::Migrate`); a change old state cannot be read under, without a
//! migration, is refused with the node's error, and nothing changes.
//! [`Network::upgrade`] has an example.

use std::cell::Cell;
use std::marker::PhantomData;

use mero_abi::AppAbi;
use mero_abi::host::{HostError, HostRequest};
use mero_abi::schema::SchemaDiff;
use mero_abi::{CallError, CallErrorKind};
use mero_engine::CallMode;

use super::{Delta, Network, Replica, native_abi};
use crate::__private::{AppLogic, AppState};

/// The node's error for a migration that emitted an event.
const EVENTS_REFUSED: &str =
    "a migration cannot emit events (it runs on one node); nothing changed";

thread_local! {
    /// Whether a migration runs on this thread.
    static MIGRATING: Cell<bool> = const { Cell::new(false) };
    /// Whether the running migration tried to emit an event.
    static EMITTED: Cell<bool> = const { Cell::new(false) };
}

/// Refuses a host request the running migration may not make. The node
/// runs a migration to its end and refuses the upgrade if it emitted
/// events; here the first event fails it. Either way the upgrade fails with
/// the node's error and leaves no trace.
pub(crate) fn refuse_in_migration(req: &HostRequest<'_>) -> Result<(), HostError> {
    if matches!(req, HostRequest::Emit { .. }) && MIGRATING.get() {
        EMITTED.set(true);
        return Err(HostError {
            kind: CallErrorKind::Host,
            message: EVENTS_REFUSED.into(),
        });
    }
    Ok(())
}

/// Marks this thread as running a migration until dropped.
struct Migrating;

impl Migrating {
    fn start() -> Self {
        MIGRATING.set(true);
        EMITTED.set(false);
        Self
    }
}

impl Drop for Migrating {
    fn drop(&mut self) {
        MIGRATING.set(false);
    }
}

/// What upgrading from one app version to another does to the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradePlan {
    /// The state schemas are the same: the state is kept as it is.
    Keep,
    /// The schema changed in a way old state can be read under (fields
    /// added that start empty, fields removed) and the new app has no
    /// migration: the state is kept as it is.
    Compatible(SchemaDiff),
    /// The schema changed and the new app has an `#[app::migrate]`: it runs
    /// once, on the upgrading replica, and its ops go to the others.
    Migrate(SchemaDiff),
}

/// Why an upgrade was refused; the node refuses it for the same reasons,
/// with the same messages.
#[derive(Debug, Clone, PartialEq)]
pub enum UpgradeError {
    /// The state schema changed in a way old state cannot be read under and
    /// the new app has no `#[app::migrate]` (the node answers `409` with
    /// this message: what changed and what to write).
    NeedsMigration(SchemaDiff),
    /// The migration failed (returned an error, panicked, broke a limit or
    /// emitted an event): the node's call error, with its message.
    Migration(CallError),
    /// The state could not be rolled back after a failed migration; the
    /// node would quarantine the context.
    Broken(String),
}

impl std::fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpgradeError::NeedsMigration(diff) => f.write_str(&diff.explain()),
            UpgradeError::Migration(e) => f.write_str(&e.message),
            UpgradeError::Broken(why) => write!(
                f,
                "the replica's state can no longer be used (a node would quarantine the context): {why}"
            ),
        }
    }
}

impl std::error::Error for UpgradeError {}

/// A refused upgrade: why, and the replica or network as it was (a refused
/// upgrade changes nothing).
pub struct UpgradeFailed<T> {
    /// Why the upgrade was refused.
    pub error: UpgradeError,
    /// The replica or network, unchanged, still running the old app
    /// (boxed: a replica is large, and errors travel by value).
    pub unchanged: Box<T>,
}

impl<T> std::fmt::Debug for UpgradeFailed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeFailed")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Display for UpgradeFailed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the upgrade was refused: {}", self.error)
    }
}

impl<T> std::error::Error for UpgradeFailed<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// What upgrading a context from app `Old` to app `New` does, decided as
/// the node decides it: the same schema keeps the state; a differing one
/// runs `New`'s migration if it has one (even when old state could be
/// read without); else a change old state cannot be read under is refused.
pub fn upgrade_plan<Old, New>() -> Result<UpgradePlan, UpgradeError>
where
    Old: AppState + AppLogic,
    New: AppState + AppLogic,
{
    let diff = SchemaDiff::between(&native_abi::<Old>().state, &native_abi::<New>().state);
    if diff.is_empty() {
        Ok(UpgradePlan::Keep)
    } else if New::__migration().is_some() {
        Ok(UpgradePlan::Migrate(diff))
    } else if diff.needs_migration() {
        Err(UpgradeError::NeedsMigration(diff))
    } else {
        Ok(UpgradePlan::Compatible(diff))
    }
}

impl<S: AppState + AppLogic> Replica<S> {
    /// Switches this replica to app `N`, as a node's upgrade does: the
    /// state is kept, and migrated by `N`'s `#[app::migrate]` when
    /// [`upgrade_plan`] says so. The migration's ops are a delta of this
    /// replica's ([`take_deltas`](Self::take_deltas)), which other
    /// replicas apply like any other; [`Network::upgrade`] does that for
    /// a whole network. A refused upgrade gives the replica back unchanged.
    pub fn upgrade<N: AppState + AppLogic>(self) -> Result<Replica<N>, UpgradeFailed<Self>> {
        let plan = match upgrade_plan::<S, N>() {
            Ok(plan) => plan,
            Err(error) => {
                return Err(UpgradeFailed {
                    error,
                    unchanged: Box::new(self),
                });
            }
        };
        let old_abi = self.abi.clone();
        let mut new = self.with_app::<N>(native_abi::<N>());
        if matches!(plan, UpgradePlan::Migrate(_))
            && let Err(error) = new.migrate()
        {
            return Err(UpgradeFailed {
                error,
                unchanged: Box::new(new.with_app(old_abi)),
            });
        }
        Ok(new)
    }

    /// The same replica, running app `N` with ABI `abi`.
    fn with_app<N>(self, abi: AppAbi) -> Replica<N> {
        let Replica {
            state,
            member,
            private,
            rng,
            clock,
            produced,
            events,
            logs,
            abi: _,
            index,
            seq,
            seen,
            waiting,
            handler_failures,
            _app,
        } = self;
        Replica {
            state,
            member,
            private,
            rng,
            clock,
            produced,
            events,
            logs,
            abi,
            index,
            seq,
            seen,
            waiting,
            handler_failures,
            _app: PhantomData,
        }
    }

    /// Runs this app's migration over the state as a mutating call of this
    /// replica's member, as the upgrading node does. A failed migration
    /// leaves no trace.
    fn migrate(&mut self) -> Result<(), UpgradeError> {
        let migration =
            S::__migration().expect("upgrade_plan migrates only to an app with an #[app::migrate]");
        // The node keeps only a migration's ops: it runs on one node, so
        // what it writes to that node's private storage is dropped.
        let private = self.private.0.lock().unwrap().clone();
        let outcome = {
            let _migrating = Migrating::start();
            self.run(CallMode::Mutate, b"{}".to_vec(), || {
                crate::__private::run(migration)
            })
        };
        *self.private.0.lock().unwrap() = private;
        if let Some(why) = self.state.broken() {
            return Err(UpgradeError::Broken(why.to_owned()));
        }
        match outcome.result {
            Ok(_) => Ok(()),
            Err(_) if EMITTED.get() => Err(UpgradeError::Migration(CallError::new(
                CallErrorKind::Host,
                EVENTS_REFUSED,
            ))),
            Err(mut e) => {
                e.message = format!("the migration failed, nothing changed: {}", e.message);
                Err(UpgradeError::Migration(e))
            }
        }
    }
}

impl<S: AppState + AppLogic> Network<S> {
    /// Upgrades the context to app `N` from replica `on`, as an admin's
    /// node does: the migration, if [`upgrade_plan`] calls for one, runs
    /// there once. Every other replica first gets what replica `on` held
    /// (a node applies the upgrade delta only after its causal past,
    /// running their handlers under the old app), then switches to `N` and
    /// imports the migration's ops. Deltas replica `on` had not seen stay
    /// undelivered: old-app writes concurrent with the upgrade, which the
    /// next delivery brings to every replica, `on` included. A refused
    /// upgrade gives the network back unchanged.
    ///
    /// ```
    /// use mero_sdk::testing::{Network, UpgradePlan, upgrade_plan};
    /// use serde_json::json;
    ///
    /// mod v1 {
    ///     use mero_sdk::app;
    ///     use mero_sdk::collections::UnorderedMap;
    ///
    ///     #[app::state]
    ///     pub struct Prices { items: UnorderedMap<String, u64> }
    ///
    ///     #[app::logic]
    ///     impl Prices {
    ///         #[app::init]
    ///         pub fn init() -> Self { Self { items: UnorderedMap::new() } }
    ///         pub fn set(&mut self, item: String, cents: u64) { self.items.insert(item, cents); }
    ///     }
    /// }
    ///
    /// mod v2 {
    ///     use mero_sdk::collections::UnorderedMap;
    ///     use mero_sdk::{app, migration};
    ///
    ///     /// Version 2 stores prices as text, with their currency.
    ///     #[app::state(version = 2)]
    ///     pub struct Prices { items: UnorderedMap<String, String> }
    ///
    ///     #[app::logic]
    ///     impl Prices {
    ///         #[app::init]
    ///         pub fn init() -> Self { Self { items: UnorderedMap::new() } }
    ///
    ///         #[app::migrate]
    ///         pub fn migrate() -> Self {
    ///             let old: UnorderedMap<String, u64> = migration::field("items");
    ///             let mut items: UnorderedMap<String, String> = migration::field("items");
    ///             for (item, cents) in old.entries() {
    ///                 items.insert(item, format!("{}.{:02} EUR", cents / 100, cents % 100));
    ///             }
    ///             Self { items }
    ///         }
    ///
    ///         pub fn price(&self, item: String) -> Option<String> { self.items.get(&item) }
    ///     }
    /// }
    ///
    /// # fn main() {
    /// assert!(matches!(upgrade_plan::<v1::Prices, v2::Prices>(), Ok(UpgradePlan::Migrate(_))));
    /// let mut net = Network::<v1::Prices>::new(3);
    /// net.replica(1).execute("set", json!({"item": "tea", "cents": 250})).unwrap();
    /// net.deliver_shuffled(7);
    /// // Replica 0 runs the migration; the others import its ops.
    /// let mut net = net.upgrade::<v2::Prices>(0).unwrap();
    /// net.deliver_shuffled(8);
    /// net.assert_converged();
    /// assert_eq!(net.replica(2).query("price", json!({"item": "tea"})).unwrap(), "2.50 EUR");
    /// # }
    /// ```
    pub fn upgrade<N: AppState + AppLogic>(
        mut self,
        on: usize,
    ) -> Result<Network<N>, UpgradeFailed<Self>> {
        assert!(
            on < self.replicas.len(),
            "replica {on} is not in this network"
        );
        self.collect();
        let upgrader = self.replicas.remove(on);
        let mut upgraded = match upgrader.upgrade::<N>() {
            Ok(r) => r,
            Err(UpgradeFailed { error, unchanged }) => {
                self.replicas.insert(on, *unchanged);
                return Err(UpgradeFailed {
                    error,
                    unchanged: Box::new(self),
                });
            }
        };
        let past: Vec<&Delta> = self
            .log
            .iter()
            .filter(|d| d.author() == on || upgraded.seen.contains(&(d.author, d.seq)))
            .collect();
        let migration = upgraded.take_deltas();
        let mut replicas: Vec<Replica<N>> = std::mem::take(&mut self.replicas)
            .into_iter()
            .map(|mut r| {
                for d in &past {
                    r.apply(d);
                }
                let mut r = r.with_app::<N>(native_abi::<N>());
                for d in &migration {
                    r.apply(d);
                }
                r
            })
            .collect();
        replicas.insert(on, upgraded);
        let Network {
            mut log, delivered, ..
        } = self;
        log.extend(migration);
        Ok(Network {
            replicas,
            log,
            delivered,
        })
    }
}
