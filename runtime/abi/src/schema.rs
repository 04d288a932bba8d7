//! State schema changes between two app versions, and whether an upgrade
//! needs a migration.
//!
//! The schema is the state struct in the ABI ([`StateAbi`]): its fields'
//! names and types, and the version the app declares with
//! `#[app::state(version = N)]`. An upgrade whose schema differs runs the
//! new app's `#[app::migrate]` function, if it has one, as part of the
//! upgrade delta. Without one, only changes old state can be read under
//! are allowed:
//!
//! | change | without a migration |
//! |---|---|
//! | a field added whose type starts empty (a collection, `LwwRegister<Option<_>>`) | allowed |
//! | a field added as `LwwRegister<T>` (no value to read) | refused |
//! | a field removed (its data stays, unread) | allowed |
//! | a field's type changed | refused |
//! | the declared version changed | refused |

use crate::abi::{FieldAbi, StateAbi};

/// One difference between two state schemas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldChange {
    /// A field the old state does not have.
    Added {
        /// Field name.
        name: String,
        /// Its type.
        ty: String,
    },
    /// A field the new app no longer declares.
    Removed {
        /// Field name.
        name: String,
        /// Its old type.
        ty: String,
    },
    /// A field whose type changed.
    Retyped {
        /// Field name.
        name: String,
        /// The old type.
        from: String,
        /// The new type.
        to: String,
    },
    /// The declared schema version changed.
    Version {
        /// The old version (0: none declared).
        from: u32,
        /// The new version.
        to: u32,
    },
}

impl FieldChange {
    /// Whether old state cannot be read under the new schema without a
    /// migration.
    pub fn needs_migration(&self) -> bool {
        match self {
            FieldChange::Added { ty, .. } => starts_without_value(ty),
            FieldChange::Removed { .. } => false,
            FieldChange::Retyped { .. } | FieldChange::Version { .. } => true,
        }
    }
}

impl std::fmt::Display for FieldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldChange::Added { name, ty } if starts_without_value(ty) => write!(
                f,
                "+ {name}: {ty} (new, and existing state has no value for it)"
            ),
            FieldChange::Added { name, ty } => write!(f, "+ {name}: {ty}"),
            FieldChange::Removed { name, ty } => {
                write!(f, "- {name}: {ty} (its data stays, unread)")
            }
            FieldChange::Retyped { name, from, to } => write!(f, "~ {name}: {from} -> {to}"),
            FieldChange::Version { from, to } => write!(f, "~ schema version {from} -> {to}"),
        }
    }
}

/// A register field has no value until something writes it; collections
/// and optional registers read as empty.
fn starts_without_value(ty: &str) -> bool {
    // `a::b::Name<Args>` -> ("Name", "Args>")
    fn head(ty: &str) -> (&str, &str) {
        let (path, args) = ty.split_once('<').unwrap_or((ty, ""));
        (path.rsplit("::").next().unwrap_or(path).trim(), args)
    }
    let (outer, args) = head(ty.trim());
    outer == "LwwRegister" && head(args.trim()).0 != "Option"
}

/// The differences between the schema of a running app and a new one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaDiff {
    /// Every change, version first, then fields in the new order, then
    /// removed fields.
    pub changes: Vec<FieldChange>,
}

impl SchemaDiff {
    /// Compares `old` (the running app's state) with `new`.
    ///
    /// ```
    /// use mero_abi::abi::{FieldAbi, StateAbi};
    /// use mero_abi::schema::SchemaDiff;
    /// let field = |n: &str, t: &str| FieldAbi { name: n.into(), ty: t.into() };
    /// let old = StateAbi { fields: vec![field("items", "UnorderedMap<String, String>")], ..Default::default() };
    /// let mut new = old.clone();
    /// new.fields.push(field("tags", "UnorderedSet<String>"));
    /// // A new collection reads as empty: no migration needed.
    /// assert!(!SchemaDiff::between(&old, &new).needs_migration());
    /// new.fields.push(field("title", "LwwRegister<String>"));
    /// let diff = SchemaDiff::between(&old, &new);
    /// assert!(diff.needs_migration());
    /// assert!(diff.explain().contains("title"));
    /// ```
    pub fn between(old: &StateAbi, new: &StateAbi) -> Self {
        let mut changes = Vec::new();
        if old.version != new.version {
            changes.push(FieldChange::Version {
                from: old.version,
                to: new.version,
            });
        }
        let find = |fields: &[FieldAbi], name: &str| -> Option<String> {
            fields.iter().find(|f| f.name == name).map(|f| f.ty.clone())
        };
        for f in &new.fields {
            match find(&old.fields, &f.name) {
                None => changes.push(FieldChange::Added {
                    name: f.name.clone(),
                    ty: f.ty.clone(),
                }),
                Some(from) if from != f.ty => changes.push(FieldChange::Retyped {
                    name: f.name.clone(),
                    from,
                    to: f.ty.clone(),
                }),
                Some(_) => {}
            }
        }
        for f in &old.fields {
            if find(&new.fields, &f.name).is_none() {
                changes.push(FieldChange::Removed {
                    name: f.name.clone(),
                    ty: f.ty.clone(),
                });
            }
        }
        Self { changes }
    }

    /// Whether the schemas are the same.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether an upgrade across this diff needs an `#[app::migrate]`.
    pub fn needs_migration(&self) -> bool {
        self.changes.iter().any(FieldChange::needs_migration)
    }

    /// One line per change, for humans.
    pub fn lines(&self) -> Vec<String> {
        self.changes.iter().map(ToString::to_string).collect()
    }

    /// Why an upgrade without a migration is refused, and what to write.
    pub fn explain(&self) -> String {
        let mut out = String::from(
            "the state schema changed in a way existing state cannot be read under:\n",
        );
        for c in self.changes.iter().filter(|c| c.needs_migration()) {
            out.push_str("  ");
            out.push_str(&c.to_string());
            out.push('\n');
        }
        out.push_str(
            "add a migration to the #[app::logic] impl, which runs once, in the upgrade, on every node's state:\n\
             \n    #[app::migrate]\n    pub fn migrate() -> Self {\n        \
             // read the old fields with mero_sdk::migration::field / value\n        \
             Self { /* every field */ }\n    }\n\
             \nor declare a new register as LwwRegister<Option<T>> (it reads as None).",
        );
        out
    }
}
