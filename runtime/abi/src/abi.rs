//! The app ABI document.
//!
//! The SDK macros describe the app piece by piece (each macro sees one item),
//! writing [`Fragment`]s into the [`ABI_FRAGMENT_SECTION`](crate::ABI_FRAGMENT_SECTION)
//! custom section. [`AppAbi::from_fragments`] assembles them; `cargo mero build`
//! stores the result in [`ABI_SECTION`](crate::ABI_SECTION), and the node reads it
//! to learn which exports are views, which method is `init`, which are
//! private or handlers ([`MethodKind`]), what events exist, and what errors
//! methods fail with ([`ErrorAbi`]).

use serde::{Deserialize, Serialize};

/// Whether a method may change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mutability {
    /// `&self`: reads only; never produces a delta.
    View,
    /// `&mut self`: may change state; a change becomes a delta.
    Mutating,
}

/// One parameter of a method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamAbi {
    /// Parameter name: the key in the JSON arguments object.
    pub name: String,
    /// Rust type as written in the source.
    #[serde(rename = "type")]
    pub ty: String,
}

/// One exported method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodAbi {
    /// Export name.
    pub name: String,
    /// View or mutating.
    pub mutability: Mutability,
    /// Whether this is the `#[app::init]` constructor.
    #[serde(default)]
    pub init: bool,
    /// Parameters, in order.
    pub params: Vec<ParamAbi>,
    /// Success type (Rust source text), `()` when none.
    pub returns: String,
    /// Whether the method returns `app::Result` and so may fail with an app error.
    #[serde(default)]
    pub fallible: bool,
    /// `#[app::private]`: only the node itself and event handlers call it,
    /// never clients.
    #[serde(default, skip_serializing_if = "is_false")]
    pub private: bool,
    /// `#[app::xcall]`: other contexts on a member's node may call it
    /// (cross-context calls, see `mero_sdk::xcall`). Without the mark, a
    /// method is refused to them.
    #[serde(default, skip_serializing_if = "is_false")]
    pub xcall: bool,
    /// The `#[app::error]` enum its `Err` holds (in [`AppAbi::errors`]);
    /// `None` for an untyped `app::Error` or an infallible method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Who may call a method, derived from [`MethodAbi`] and the events that
/// name handlers ([`AppAbi::kind`]). Earlier kinds win: a private handler
/// is a `Handler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    /// The `#[app::init]` constructor: runs once, when a context is created.
    Init,
    /// The handler an event names: runs on the nodes that receive the event.
    Handler,
    /// `#[app::private]`: called by the node itself, never by clients.
    Private,
    /// A `&self` method clients may `query` or `execute`.
    View,
    /// A `&mut self` method clients may `execute`.
    Mutating,
}

/// One variant of an `#[app::error]` enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorVariantAbi {
    /// Variant name: the error's `kind`.
    pub name: String,
    /// Its stable code (`#[code(n)]`, else [`derived_code`](crate::error::derived_code)).
    pub code: u32,
    /// Its fields (`0`, `1`, ... for a tuple variant; none for a unit one):
    /// the error's `data`.
    pub fields: Vec<FieldAbi>,
}

/// An `#[app::error]` enum: what the methods returning it can fail with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAbi {
    /// Enum name, as [`MethodAbi::error`] names it.
    pub name: String,
    /// Its variants, in source order.
    pub variants: Vec<ErrorVariantAbi>,
}

/// One field of a struct-like item (state field or event variant field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldAbi {
    /// Field name (or index for tuple fields).
    pub name: String,
    /// Rust type as written in the source.
    #[serde(rename = "type")]
    pub ty: String,
}

/// One event variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventAbi {
    /// Variant name (the event's `kind`).
    pub name: String,
    /// Payload fields.
    pub fields: Vec<FieldAbi>,
    /// Method receiving nodes run after applying the delta, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
}

/// The state struct.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateAbi {
    /// Struct name.
    pub name: String,
    /// Fields: each is a root collection or register.
    pub fields: Vec<FieldAbi>,
    /// Name of the event enum the state emits, if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emits: Option<String>,
    /// The schema version the app declares (`#[app::state(version = N)]`);
    /// 0 if none. Changing it makes an upgrade run the migration
    /// ([`crate::schema`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The app's `#[app::migrate]` function: exported as [`MIGRATE_EXPORT`],
/// never callable by clients; an upgrade to this app from one with another
/// schema runs it once, in the upgrade delta.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateAbi {
    /// The Rust function's name.
    pub name: String,
    /// Whether it returns `app::Result<Self>` and so may refuse to migrate.
    #[serde(default)]
    pub fallible: bool,
}

/// The export an `#[app::migrate]` function is reachable under (reserved:
/// app methods cannot start with `__`).
pub const MIGRATE_EXPORT: &str = "__mero_migrate";

/// The full ABI of an app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppAbi {
    /// Host-call protocol version the app was built for.
    pub protocol: u32,
    /// The state struct.
    pub state: StateAbi,
    /// Exported methods, sorted by name.
    pub methods: Vec<MethodAbi>,
    /// Events, sorted by name.
    pub events: Vec<EventAbi>,
    /// `#[app::error]` enums, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorAbi>,
    /// The state migration, if the app has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<MigrateAbi>,
}

/// A piece of the ABI written by one macro invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fragment", rename_all = "snake_case")]
pub enum Fragment {
    /// From `#[app::state]`.
    State(StateAbi),
    /// From `#[app::logic]`.
    Methods {
        /// The methods of one impl block.
        methods: Vec<MethodAbi>,
    },
    /// From `#[app::event]`.
    Events {
        /// Enum name.
        name: String,
        /// Its variants.
        events: Vec<EventAbi>,
    },
    /// From `#[app::error]`.
    Errors(ErrorAbi),
    /// From `#[app::migrate]` inside `#[app::logic]`.
    Migrate(MigrateAbi),
}

/// Why an ABI could not be assembled or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiError(pub String);

impl std::fmt::Display for AbiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AbiError {}

impl AppAbi {
    /// Assembles an ABI from the concatenated fragment section bytes.
    ///
    /// ```
    /// use mero_abi::abi::{AppAbi, Fragment, MethodAbi, Mutability, StateAbi};
    /// let init = MethodAbi {
    ///     name: "init".into(),
    ///     mutability: Mutability::Mutating,
    ///     init: true,
    ///     params: vec![],
    ///     returns: "()".into(),
    ///     fallible: false,
    ///     private: false,
    ///     xcall: false,
    ///     error: None,
    /// };
    /// let mut bytes = Vec::new();
    /// for frag in [
    ///     Fragment::State(StateAbi { name: "App".into(), ..Default::default() }),
    ///     Fragment::Methods { methods: vec![init] },
    /// ] {
    ///     bytes.extend(serde_json::to_vec(&frag).unwrap());
    ///     bytes.push(b'\n');
    /// }
    /// let abi = AppAbi::from_fragments(&bytes).unwrap();
    /// assert_eq!(abi.state.name, "App");
    /// assert!(abi.init().is_some());
    /// // An app without a state struct is refused.
    /// assert!(AppAbi::from_fragments(b"").is_err());
    /// ```
    pub fn from_fragments(bytes: &[u8]) -> Result<Self, AbiError> {
        let mut abi = AppAbi {
            protocol: crate::PROTOCOL_VERSION,
            ..Default::default()
        };
        let mut saw_state = false;
        for line in bytes.split(|b| *b == b'\n') {
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let frag: Fragment = serde_json::from_slice(line)
                .map_err(|e| AbiError(format!("malformed ABI fragment: {e}")))?;
            match frag {
                Fragment::State(s) => {
                    if saw_state {
                        return Err(AbiError(format!(
                            "more than one #[app::state] (second: {})",
                            s.name
                        )));
                    }
                    saw_state = true;
                    abi.state = s;
                }
                Fragment::Methods { methods } => abi.methods.extend(methods),
                Fragment::Events { events, .. } => abi.events.extend(events),
                Fragment::Errors(e) => abi.errors.push(e),
                Fragment::Migrate(m) => {
                    if let Some(first) = &abi.migrate {
                        return Err(AbiError(format!(
                            "more than one #[app::migrate] ({} and {})",
                            first.name, m.name
                        )));
                    }
                    abi.migrate = Some(m);
                }
            }
        }
        if !saw_state {
            return Err(AbiError(
                "no #[app::state] found: an app needs exactly one state struct".into(),
            ));
        }
        abi.sort()?;
        abi.link()?;
        if abi.methods.iter().filter(|m| m.init).count() != 1 {
            return Err(AbiError(
                "an app needs exactly one #[app::init] method in its #[app::logic] impl".into(),
            ));
        }
        Ok(abi)
    }

    /// Sorts methods and events by name, as [`method`](Self::method)
    /// needs, refusing a method exported twice. An assembled ABI read from
    /// a module goes through this too: the module may come from a peer, and
    /// an unsorted list would hide methods from lookups.
    pub(crate) fn sort(&mut self) -> Result<(), AbiError> {
        self.methods.sort_by(|a, b| a.name.cmp(&b.name));
        self.events.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = self.methods.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(AbiError(format!(
                "method `{}` is exported twice",
                w[0].name
            )));
        }
        Ok(())
    }

    /// Finds a method by export name.
    pub fn method(&self, name: &str) -> Option<&MethodAbi> {
        self.methods
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.methods[i])
    }

    /// The `#[app::init]` method.
    pub fn init(&self) -> Option<&MethodAbi> {
        self.methods.iter().find(|m| m.init)
    }
}

/// The kind of `m`, given whether an event names it as its handler.
fn method_kind(m: &MethodAbi, handler: bool) -> MethodKind {
    if m.init {
        MethodKind::Init
    } else if handler {
        MethodKind::Handler
    } else if m.private {
        MethodKind::Private
    } else if m.mutability == Mutability::View {
        MethodKind::View
    } else {
        MethodKind::Mutating
    }
}

/// Method kinds and errors: what a client may call and what it may get back.
impl AppAbi {
    /// Who may call `method`. `mero_engine::policy` decides calls by it.
    ///
    /// ```
    /// use mero_abi::abi::{AppAbi, EventAbi, MethodAbi, MethodKind, Mutability};
    /// let m = |name: &str, private| MethodAbi {
    ///     name: name.into(),
    ///     mutability: Mutability::Mutating,
    ///     init: false,
    ///     params: vec![],
    ///     returns: "()".into(),
    ///     fallible: false,
    ///     private,
    ///     xcall: false,
    ///     error: None,
    /// };
    /// let abi = AppAbi {
    ///     methods: vec![m("on_posted", false), m("post", false), m("tidy", true)],
    ///     events: vec![EventAbi { name: "Posted".into(), fields: vec![], handler: Some("on_posted".into()) }],
    ///     ..AppAbi::default()
    /// };
    /// assert_eq!(abi.kind(&abi.methods[0]), MethodKind::Handler);
    /// assert_eq!(abi.kind(&abi.methods[1]), MethodKind::Mutating);
    /// assert_eq!(abi.kind(&abi.methods[2]), MethodKind::Private);
    /// ```
    pub fn kind(&self, method: &MethodAbi) -> MethodKind {
        method_kind(method, self.handled_event(&method.name).is_some())
    }

    /// Every method with its kind, reading the events once (where
    /// [`kind`](Self::kind) per method would read them once per method).
    pub fn kinds(&self) -> impl Iterator<Item = (&MethodAbi, MethodKind)> {
        let handlers: std::collections::BTreeSet<&str> = self
            .events
            .iter()
            .filter_map(|e| e.handler.as_deref())
            .collect();
        self.methods
            .iter()
            .map(move |m| (m, method_kind(m, handlers.contains(m.name.as_str()))))
    }

    /// The first event whose handler is `method`, if any.
    pub fn handled_event(&self, method: &str) -> Option<&EventAbi> {
        self.events
            .iter()
            .find(|e| e.handler.as_deref() == Some(method))
    }

    /// The `#[app::error]` enum `method` fails with, if it names one.
    pub fn error_of(&self, method: &MethodAbi) -> Option<&ErrorAbi> {
        let name = method.error.as_deref()?;
        self.errors.iter().find(|e| e.name == name)
    }

    /// Checks what the pieces say about each other once assembled: error
    /// enums are unique by name and their codes unique within an enum, a
    /// method's error names one of them (else it is untyped: a
    /// `Result<T, E>` whose `E` is no `#[app::error]`), and every handler an
    /// event names is an exported method other than `init`.
    fn link(&mut self) -> Result<(), AbiError> {
        self.errors.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = self.errors.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(AbiError(format!(
                "two #[app::error] enums are named `{}`; rename one",
                w[0].name
            )));
        }
        for e in &self.errors {
            let mut codes: Vec<(u32, &str)> = e
                .variants
                .iter()
                .map(|v| (v.code, v.name.as_str()))
                .collect();
            codes.sort();
            if let Some(w) = codes.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(AbiError(format!(
                    "`{}::{}` and `{}::{}` have the same code {}",
                    e.name, w[0].1, e.name, w[1].1, w[0].0
                )));
            }
        }
        let known: Vec<String> = self.errors.iter().map(|e| e.name.clone()).collect();
        for m in &mut self.methods {
            if let Some(ty) = &m.error {
                // The type as written may carry a path: `errors::KvError`.
                let last = ty.rsplit("::").next().unwrap_or(ty).to_owned();
                m.error = known.contains(&last).then_some(last);
            }
        }
        for e in &self.events {
            if let Some(h) = &e.handler
                && self.method(h).is_none_or(|m| m.init)
            {
                return Err(AbiError(format!(
                    "event `{}` names handler `{h}`, which is not a method of the #[app::logic] impl",
                    e.name
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragments(frags: &[serde_json::Value]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for f in frags {
            bytes.extend(serde_json::to_vec(f).unwrap());
            bytes.push(b'\n');
        }
        bytes
    }

    fn state() -> serde_json::Value {
        serde_json::json!({"fragment": "state", "name": "App", "fields": []})
    }

    fn method(name: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut m = serde_json::json!({"name": name, "mutability": "mutating", "params": [], "returns": "()"});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    }

    #[test]
    fn an_abi_written_before_kinds_and_errors_still_parses() {
        let old = r#"{"protocol":1,"state":{"name":"App","fields":[]},
            "methods":[{"name":"get","mutability":"view","init":false,"params":[],"returns":"()","fallible":true}],
            "events":[]}"#;
        let abi: AppAbi = serde_json::from_str(old).unwrap();
        let get = &abi.methods[0];
        assert!(!get.private && get.error.is_none() && abi.errors.is_empty());
        assert_eq!(abi.kind(get), MethodKind::View);
        // And a method that is neither private nor typed serializes as before.
        let again = serde_json::to_value(get).unwrap();
        assert!(again.get("private").is_none() && again.get("error").is_none());
    }

    #[test]
    fn errors_are_linked_to_the_methods_that_return_them() {
        let errors = serde_json::json!({"fragment": "errors", "name": "KvError", "variants": [
            {"name": "NotFound", "code": 1001, "fields": [{"name": "key", "type": "String"}]},
            {"name": "Full", "code": 17, "fields": []}]});
        let methods = serde_json::json!({"fragment": "methods", "methods": [
            method("init", serde_json::json!({"init": true})),
            method("remove", serde_json::json!({"fallible": true, "error": "errors::KvError"})),
            method("parse", serde_json::json!({"fallible": true, "error": "std::num::ParseIntError"})),
            method("tidy", serde_json::json!({"private": true})),
        ]});
        let abi = AppAbi::from_fragments(&fragments(&[state(), errors, methods])).unwrap();
        let remove = abi.method("remove").unwrap();
        assert_eq!(remove.error.as_deref(), Some("KvError"));
        assert_eq!(abi.error_of(remove).unwrap().variants[0].code, 1001);
        // Not an #[app::error] enum: the method fails untyped.
        assert_eq!(abi.method("parse").unwrap().error, None);
        assert_eq!(abi.kind(abi.method("tidy").unwrap()), MethodKind::Private);
        assert_eq!(abi.kind(abi.init().unwrap()), MethodKind::Init);
    }

    #[test]
    fn inconsistent_pieces_are_refused() {
        let init = || serde_json::json!({"fragment": "methods", "methods": [method("init", serde_json::json!({"init": true}))]});
        let same_code = serde_json::json!({"fragment": "errors", "name": "E", "variants": [
            {"name": "A", "code": 5, "fields": []}, {"name": "B", "code": 5, "fields": []}]});
        let err = AppAbi::from_fragments(&fragments(&[state(), init(), same_code])).unwrap_err();
        assert!(err.0.contains("same code 5"), "{err}");
        let e = serde_json::json!({"fragment": "errors", "name": "E", "variants": []});
        let err = AppAbi::from_fragments(&fragments(&[state(), init(), e.clone(), e])).unwrap_err();
        assert!(err.0.contains("two #[app::error] enums"), "{err}");
        let events = |handler: &str| {
            serde_json::json!({"fragment": "events", "name": "Event", "events": [
                {"name": "Posted", "fields": [], "handler": handler}]})
        };
        for handler in ["missing", "init"] {
            let err = AppAbi::from_fragments(&fragments(&[state(), init(), events(handler)]))
                .unwrap_err();
            assert!(err.0.contains("names handler"), "{err}");
        }
    }
}
