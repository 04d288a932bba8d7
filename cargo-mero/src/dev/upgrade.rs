//! The app reload of a dev session: rebuild, show the ABI and state schema
//! diffs, install on every running node, upgrade the context on the first
//! one, wait until the nodes it can reach agree, and record it all as a
//! [`ReloadRecord`] for the dashboard.
//!
//! A reload never ends the session: a failed build or a refused upgrade
//! leaves the old code running, and nodes behind a partition (or killed)
//! are not waited for; they switch when they catch up.

use std::path::PathBuf;
use std::time::Instant;

use mero_abi::AppAbi;
use mero_abi::diff::AbiDiff;
use mero_abi::schema::SchemaDiff;
use mero_testnet::converge::now_ms;

use super::DevError;
use super::console::Console;
use super::control::{ReloadRecord, SessionEvent};
use super::session::{Session, secs, short};
use crate::build::BuildError;

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

impl Session {
    /// Rebuilds the app and reloads it on the nodes; returns whether they
    /// now run new code.
    pub(super) fn reload(&mut self, paths: &[PathBuf], since: Instant) -> Result<bool, DevError> {
        self.console
            .info(&format!("{} changed; rebuilding", self.shown(paths)));
        let mut record = ReloadRecord::default();
        let t0 = Instant::now();
        let built = match self.build() {
            Ok(b) => b,
            Err(e) => {
                let why = match &e {
                    BuildError::Compile { .. } => "the app does not compile".to_owned(),
                    other => other.to_string(),
                };
                self.console.error(&format!(
                    "build failed: {why}; the nodes keep running the previous code; fix it and save"
                ));
                record.error = Some(format!("build failed: {why}"));
                self.record(record);
                return Ok(false);
            }
        };
        let build_time = t0.elapsed();
        record.build_ms = ms(build_time);
        record.app = Some(built.hash.clone());
        let old = self.app.as_ref().expect("reloads follow the first build");
        if old.hash == built.hash {
            self.console.info(&format!(
                "built in {}; the module did not change",
                secs(build_time)
            ));
            return Ok(false);
        }
        let diff = AbiDiff::between(&old.abi, &built.abi);
        let schema = SchemaDiff::between(&old.abi.state, &built.abi.state);
        if !diff.is_empty() {
            record.abi_diff = diff.to_string().lines().map(str::to_owned).collect();
        }
        record.schema_diff = schema.lines();
        if schema.needs_migration() && built.abi.migrate.is_none() {
            show_diff(&self.console, &diff, &schema, &built.abi);
            self.console.error(&format!(
                "not reloaded: {}\nthe nodes keep running the previous code",
                schema.explain()
            ));
            record.error = Some(format!("not reloaded: {}", schema.explain()));
            self.record(record);
            return Ok(false);
        }
        let t1 = Instant::now();
        let first = self.alive().map(|n| n.index).next();
        let swap = self.install(&built, None).and_then(|()| {
            let t = Instant::now();
            let first = first
                .and_then(|i| self.node(i))
                .ok_or_else(|| DevError::Node("no node runs; `r N` restarts one".into()))?;
            first.client.upgrade(&self.context, &built.hash)?;
            Ok(t)
        });
        let upgraded_at = match swap {
            Ok(t) => t,
            Err(e) => {
                self.console.error(&format!(
                    "the nodes refused the new code ({e}); they keep running the previous code"
                ));
                record.error = Some(format!("the nodes refused the new code: {e}"));
                self.record(record);
                return Ok(false);
            }
        };
        let install_time = upgraded_at - t1;
        record.install_ms = ms(install_time);
        let reachable = self.reachable();
        let agreed = self.converge(&built.hash, &reachable);
        let converge_time = upgraded_at.elapsed();
        record.agree_ms = ms(converge_time);
        show_diff(&self.console, &diff, &schema, &built.abi);
        if !schema.is_empty() && built.abi.migrate.is_some() {
            self.console
                .info("state migrated by #[app::migrate], once, in the upgrade");
        }
        let unreached = self.nodes.len() - reachable.len();
        let others = if unreached > 0 {
            format!("; {unreached} node(s) killed or partitioned switch when they catch up")
        } else {
            String::new()
        };
        match agreed {
            Ok(()) => self.console.ok(&format!(
                "reloaded on {} nodes in {} after the save (build {}, install {}, upgrade and agree {}); app {}{others}",
                reachable.len(),
                secs(since.elapsed()),
                secs(build_time),
                secs(install_time),
                secs(converge_time),
                short(&built.hash)
            )),
            Err(DevError::Interrupted) => return Err(DevError::Interrupted),
            Err(e) => {
                self.console
                    .error(&format!("upgraded, but the nodes have not agreed yet: {e}"));
                record.error = Some(e.to_string());
            }
        }
        record.ok = true;
        if let Some(net) = &mut self.network {
            net.app = built.hash.clone();
        }
        self.app = Some(built);
        self.record(record);
        self.save().map(|()| true)
    }

    /// Keeps a reload for `/session` and tells the dashboard.
    fn record(&mut self, mut record: ReloadRecord) {
        record.at_ms = now_ms();
        self.reloads.push(record.clone());
        // A long session keeps only the recent ones.
        if self.reloads.len() > 100 {
            self.reloads.remove(0);
        }
        self.control
            .publish(SessionEvent::Reload { reload: record });
        self.publish_view();
    }
}

/// Prints the ABI and state schema changes of a reload.
pub(super) fn show_diff(console: &Console, diff: &AbiDiff, schema: &SchemaDiff, abi: &AppAbi) {
    if diff.is_empty() {
        console.info(&format!("ABI unchanged ({} methods)", abi.methods.len()));
    } else {
        console.info("ABI changes:");
        for line in diff.to_string().lines() {
            console.raw(&format!("           {line}"));
        }
    }
    if !schema.is_empty() {
        console.info("state schema changes:");
        for line in schema.lines() {
            console.raw(&format!("           {line}"));
        }
    }
}
