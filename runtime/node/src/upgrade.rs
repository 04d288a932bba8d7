//! Upgrading a context to another app version, with a state migration when
//! the state schema changed.
//!
//! An upgrade is one control delta, so every member switches at the same
//! point of history. When the new app's state schema differs from the
//! running app's (`mero_abi::schema`), the upgrading node runs the new
//! app's `#[app::migrate]` export on its replica and ships the ops it made
//! inside that delta ([`Op::Migrate`]): the migration runs exactly once,
//! and every node imports the same ops, so every replica ends in the same
//! state. A schema change that old state cannot be read under, with no
//! migration, is refused before anything is written, with what changed and
//! what to write.

use mero_abi::abi::MIGRATE_EXPORT;
use mero_abi::schema::SchemaDiff;
use mero_abi::{CallError, CallErrorKind};
use mero_engine::CallMode;
use mero_sync::Op;

use crate::context::{ContextRuntime, Effects};
use crate::error::NodeError;
use crate::host::AppModule;
use crate::ids::{AppHash, ContextId};
use crate::node::{ContextInfo, Node, context_info};

impl Node {
    /// Switches a context to another installed app version; every member
    /// follows once it has the app (fetching and verifying it by hash).
    /// State is kept, and migrated by the new app's `#[app::migrate]` when
    /// the state schema changed. Only admins upgrade.
    pub fn upgrade(&self, ctx: &ContextId, app: &AppHash) -> Result<ContextInfo, NodeError> {
        let new = self.app(app)?;
        let slot = self.context(ctx)?;
        let mut rt = slot.lock()?;
        if rt.meta.joining.is_some() {
            return Err(NodeError::Joining(*ctx));
        }
        let old = self.app(&rt.meta.app)?;
        let diff = SchemaDiff::between(&old.abi.state, &new.abi.state);
        let op = if diff.is_empty() {
            Op::Upgrade { app: *app }
        } else if new.abi.migrate.is_some() {
            self.check_upgrade(&rt)?;
            let update = self.migrate(&mut rt, &new)?;
            Op::Migrate { app: *app, update }
        } else if diff.needs_migration() {
            return Err(NodeError::Conflict(diff.explain()));
        } else {
            Op::Upgrade { app: *app }
        };
        let migrated = matches!(op, Op::Migrate { .. });
        let mut fx = Effects::default();
        if let Err(e) = self.author_control(&mut rt, op, &mut fx) {
            if migrated {
                // The doc holds the migration's ops, which no delta carries.
                rt.reload(self.db());
            }
            return Err(e);
        }
        self.after_change(&mut rt, &mut fx);
        let info = context_info(&rt);
        self.announce(*ctx, &mut fx);
        drop(rt);
        self.finish(*ctx, fx, None);
        tracing::info!(context = %ctx, app = %app, migrated, schema = ?diff.lines(), "upgraded context");
        Ok(info)
    }

    /// Refuses an upgrade this node's member may not write, before the
    /// migration runs (it would be rolled back anyway).
    fn check_upgrade(&self, rt: &ContextRuntime) -> Result<(), NodeError> {
        let admin = rt
            .replica
            .access()
            .role(&rt.meta.member)
            .is_some_and(|r| r == mero_sync::Role::Admin);
        if admin {
            Ok(())
        } else {
            Err(NodeError::Forbidden(format!(
                "only admins upgrade context {}",
                rt.id
            )))
        }
    }

    /// Runs the new app's migration on `rt`'s state and returns the Loro
    /// update of the ops it made (empty if it changed nothing). A failed
    /// migration leaves no trace.
    fn migrate(&self, rt: &mut ContextRuntime, new: &AppModule) -> Result<Vec<u8>, NodeError> {
        let link = crate::xcall::Link::none(rt.id, "a migration cannot call other contexts");
        let env = self.call_env(rt, CallMode::Mutate, b"{}", link);
        let session = rt.state.begin(env);
        let timeout = self.config().limits.migration_timeout_ms;
        let (session, trap) = self
            .host()
            .call_within(new, session, MIGRATE_EXPORT, timeout);
        let outcome = rt.state.finish(session, trap);
        if let Some(why) = rt.state.broken() {
            return Err(NodeError::Quarantined(rt.id, why.to_owned()));
        }
        for line in &outcome.logs {
            tracing::info!(target: "app", context = %rt.id, method = MIGRATE_EXPORT, "{line}");
        }
        if let Err(mut e) = outcome.result {
            e.message = format!("the migration failed, nothing changed: {}", e.message);
            return Err(NodeError::Call(e));
        }
        let Some(payload) = outcome.delta else {
            return Ok(Vec::new());
        };
        if !payload.events.is_empty() {
            if !payload.update.is_empty() {
                rt.reload(self.db());
            }
            return Err(NodeError::Call(CallError::new(
                CallErrorKind::Host,
                "a migration cannot emit events (it runs on one node); nothing changed",
            )));
        }
        Ok(payload.update)
    }
}
