//! Call policy: who may call which app method, and in which mode it runs.
//!
//! This is the one implementation: the node decides every call through
//! [`decide`] (and [`check_args`]) before it runs it, and so does the SDK's
//! native test host, so an app's `cargo test` refuses exactly the calls a
//! node refuses. The decision depends only on the app's ABI, the method's
//! name and who asks ([`CallKind`]); whether this node's member may write is
//! a question of access, which the node answers on its own.

use mero_abi::abi::{AppAbi, MethodKind, Mutability};
use mero_abi::{CallError, CallErrorKind};

use crate::CallMode;

/// Who asks for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// A client's `execute` (admin or client token): views and mutating
    /// methods, never `init`, private methods or handlers.
    Execute,
    /// A client's `query`: views only.
    Query,
    /// The handler an event of a peer's delta names, run by a node that
    /// received the delta. Only methods some event names as its handler.
    Handler,
    /// The node itself: any method but `init`, private ones included.
    Internal,
    /// The `#[app::init]` constructor, once, when the context is created.
    Init,
    /// Another context's call on this node, as a view: `#[app::xcall]`
    /// views only.
    CrossQuery,
    /// Another context's call on this node that may change state:
    /// `#[app::xcall]` methods only.
    CrossExecute,
}

/// Why a call is refused before it runs: nothing ran, nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The app exports no method by that name.
    #[error("the app has no method `{method}`; it has: {available}")]
    UnknownMethod {
        /// The name asked for.
        method: String,
        /// The methods this kind of caller may call, comma-separated.
        available: String,
    },
    /// `init` asked for after creation.
    #[error("`{method}` is the constructor; it runs once, when the context is created")]
    Init {
        /// The constructor's name.
        method: String,
    },
    /// A creation that names a method other than the constructor.
    #[error("`{method}` is not the app's #[app::init] constructor")]
    NotInit {
        /// The name asked for.
        method: String,
    },
    /// A `query` of a method that may change state.
    #[error("`{method}` changes state; call it with `execute`, not `query`")]
    QueryOfMutating {
        /// The method.
        method: String,
    },
    /// A client asked for an `#[app::private]` method.
    #[error(
        "`{method}` is private to the app (#[app::private]): only the node and event handlers call it, never clients"
    )]
    Private {
        /// The method.
        method: String,
    },
    /// A client asked for an event's handler.
    #[error(
        "`{method}` is the handler of event `{event}`: it runs on the nodes that receive the event, and clients cannot call it"
    )]
    Handler {
        /// The method.
        method: String,
        /// The event naming it.
        event: String,
    },
    /// A handler run for a method no event names.
    #[error("`{method}` is not a handler the app declares")]
    NotAHandler {
        /// The method.
        method: String,
    },
    /// Another context asked for a method not marked `#[app::xcall]`.
    #[error(
        "`{method}` does not accept calls from other contexts; the callee's app marks the methods it offers them with #[app::xcall]"
    )]
    NotXCallable {
        /// The method.
        method: String,
    },
    /// The arguments are not one JSON object.
    #[error("arguments must be a JSON object keyed by parameter name: {reason}")]
    ArgsNotObject {
        /// What is wrong with them.
        reason: String,
    },
}

impl Refusal {
    /// The kind of call error the caller gets.
    pub fn kind(&self) -> CallErrorKind {
        match self {
            Refusal::QueryOfMutating { .. } => CallErrorKind::Mutability,
            Refusal::ArgsNotObject { .. } => CallErrorKind::InvalidArgs,
            Refusal::UnknownMethod { .. }
            | Refusal::Init { .. }
            | Refusal::NotInit { .. }
            | Refusal::Private { .. }
            | Refusal::Handler { .. }
            | Refusal::NotAHandler { .. }
            | Refusal::NotXCallable { .. } => CallErrorKind::UnknownMethod,
        }
    }

    /// The call error the caller gets: [`kind`](Self::kind) and the reason.
    pub fn to_call_error(&self) -> CallError {
        CallError::new(self.kind(), self.to_string())
    }
}

/// Most method names an [`Refusal::UnknownMethod`] lists: an ABI may come
/// from a peer, and the message goes back to the caller.
const MAX_LISTED: usize = 64;

/// Whether `kind` may call `method` of `abi`, and in which mode it runs:
/// views always in [`CallMode::View`] (any write fails the call), others in
/// [`CallMode::Mutate`].
///
/// ```
/// use mero_abi::abi::{AppAbi, MethodAbi, Mutability};
/// use mero_engine::CallMode;
/// use mero_engine::policy::{CallKind, Refusal, decide};
///
/// let m = |name: &str, mutability, init, private| MethodAbi {
///     name: name.into(),
///     mutability,
///     init,
///     params: vec![],
///     returns: "()".into(),
///     fallible: false,
///     private,
///     xcall: false,
///     error: None,
/// };
/// let abi = AppAbi {
///     methods: vec![
///         m("get", Mutability::View, false, false),
///         m("init", Mutability::Mutating, true, false),
///         m("set", Mutability::Mutating, false, false),
///         m("tidy", Mutability::Mutating, false, true),
///     ],
///     ..AppAbi::default()
/// };
/// assert_eq!(decide(&abi, "get", CallKind::Execute), Ok(CallMode::View));
/// assert_eq!(decide(&abi, "set", CallKind::Execute), Ok(CallMode::Mutate));
/// assert!(matches!(decide(&abi, "set", CallKind::Query), Err(Refusal::QueryOfMutating { .. })));
/// assert!(matches!(decide(&abi, "init", CallKind::Execute), Err(Refusal::Init { .. })));
/// assert_eq!(decide(&abi, "init", CallKind::Init), Ok(CallMode::Mutate));
/// assert!(matches!(decide(&abi, "tidy", CallKind::Execute), Err(Refusal::Private { .. })));
/// assert_eq!(decide(&abi, "tidy", CallKind::Internal), Ok(CallMode::Mutate));
/// ```
pub fn decide(abi: &AppAbi, method: &str, kind: CallKind) -> Result<CallMode, Refusal> {
    let Some(m) = abi.method(method) else {
        return Err(Refusal::UnknownMethod {
            method: method.to_owned(),
            available: available(abi, kind),
        });
    };
    let owned = || method.to_owned();
    match (abi.kind(m), kind) {
        (MethodKind::Init, CallKind::Init) => return Ok(CallMode::Mutate),
        (MethodKind::Init, _) => return Err(Refusal::Init { method: owned() }),
        (_, CallKind::Init) => return Err(Refusal::NotInit { method: owned() }),
        (MethodKind::Handler, CallKind::Execute | CallKind::Query) => {
            let event = abi
                .handled_event(method)
                .map(|e| e.name.clone())
                .unwrap_or_default();
            return Err(Refusal::Handler {
                method: owned(),
                event,
            });
        }
        (_, CallKind::Handler) if abi.handled_event(method).is_none() => {
            return Err(Refusal::NotAHandler { method: owned() });
        }
        (MethodKind::Private, CallKind::Execute | CallKind::Query) => {
            return Err(Refusal::Private { method: owned() });
        }
        (_, CallKind::CrossQuery | CallKind::CrossExecute) if !m.xcall => {
            return Err(Refusal::NotXCallable { method: owned() });
        }
        _ => {}
    }
    match (m.mutability, kind) {
        (Mutability::View, _) => Ok(CallMode::View),
        (Mutability::Mutating, CallKind::Query | CallKind::CrossQuery) => {
            Err(Refusal::QueryOfMutating { method: owned() })
        }
        (Mutability::Mutating, _) => Ok(CallMode::Mutate),
    }
}

/// The methods `kind` may call, for a refusal's message (every unknown
/// name a client sends costs one pass over the ABI, no more).
fn available(abi: &AppAbi, kind: CallKind) -> String {
    let names: Vec<&str> = abi
        .kinds()
        .filter(|(_, k)| match kind {
            CallKind::Init => *k == MethodKind::Init,
            CallKind::Handler => *k == MethodKind::Handler,
            CallKind::Internal => *k != MethodKind::Init,
            CallKind::Execute => matches!(k, MethodKind::View | MethodKind::Mutating),
            CallKind::Query => *k == MethodKind::View,
            CallKind::CrossQuery | CallKind::CrossExecute => *k != MethodKind::Init,
        })
        .filter(|(m, _)| !matches!(kind, CallKind::CrossQuery | CallKind::CrossExecute) || m.xcall)
        .map(|(m, _)| m.name.as_str())
        .collect();
    if names.is_empty() {
        return "none".into();
    }
    let mut list = names
        .iter()
        .take(MAX_LISTED)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX_LISTED {
        list.push_str(&format!(" and {} more", names.len() - MAX_LISTED));
    }
    list
}

/// Checks that a call's arguments are one JSON object (or empty, which
/// the SDK reads as `{}`). Whether its fields fit the method's parameters
/// the app decides (unknown fields are refused there, as
/// [`CallErrorKind::InvalidArgs`]). A handler's arguments are its event's
/// payload, whose shape the app chose (a tuple variant's is no object), so
/// they are left to the app alone.
///
/// ```
/// use mero_engine::policy::{CallKind, check_args};
/// assert!(check_args(CallKind::Execute, br#"{"key": "a"}"#).is_ok());
/// assert!(check_args(CallKind::Execute, b"").is_ok());
/// assert!(check_args(CallKind::Execute, br#"["a"]"#).is_err());
/// assert!(check_args(CallKind::Query, br#"{"key": "a"} trailing"#).is_err());
/// assert!(check_args(CallKind::Handler, br#""a""#).is_ok());
/// ```
pub fn check_args(kind: CallKind, args: &[u8]) -> Result<(), Refusal> {
    if kind == CallKind::Handler || args.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    serde_json::from_slice::<AnyObject>(args)
        .map(drop)
        .map_err(|e| Refusal::ArgsNotObject {
            reason: e.to_string(),
        })
}

/// A JSON object, read without keeping anything of it.
struct AnyObject;

impl<'de> serde::Deserialize<'de> for AnyObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AnyObject, A::Error> {
                use serde::de::IgnoredAny;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mero_abi::abi::{EventAbi, MethodAbi};

    fn abi() -> AppAbi {
        let m = |name: &str, mutability, init, private| MethodAbi {
            name: name.into(),
            mutability,
            init,
            params: vec![],
            returns: "()".into(),
            fallible: false,
            private,
            xcall: false,
            error: None,
        };
        let mut abi = AppAbi {
            methods: vec![
                m("init", Mutability::Mutating, true, false),
                m("get", Mutability::View, false, false),
                m("set", Mutability::Mutating, false, false),
                m("audit", Mutability::View, false, true),
                m("tidy", Mutability::Mutating, false, true),
                m("on_posted", Mutability::Mutating, false, false),
                m("on_secret", Mutability::Mutating, false, true),
            ],
            events: vec![
                EventAbi {
                    name: "Posted".into(),
                    fields: vec![],
                    handler: Some("on_posted".into()),
                },
                EventAbi {
                    name: "Secret".into(),
                    fields: vec![],
                    handler: Some("on_secret".into()),
                },
            ],
            ..AppAbi::default()
        };
        abi.methods.sort_by(|a, b| a.name.cmp(&b.name));
        abi
    }

    /// Every method against every kind of caller: the whole table.
    #[test]
    fn every_method_kind_against_every_caller() {
        use CallKind::*;
        let abi = abi();
        let v = || Ok(CallMode::View);
        let w = || Ok(CallMode::Mutate);
        type Expect = Result<CallMode, &'static str>;
        let table: &[(&str, [Expect; 5])] = &[
            // Execute, Query, Handler, Internal, Init
            (
                "init",
                [Err("Init"), Err("Init"), Err("Init"), Err("Init"), w()],
            ),
            ("get", [v(), v(), Err("NotAHandler"), v(), Err("NotInit")]),
            (
                "set",
                [
                    w(),
                    Err("QueryOfMutating"),
                    Err("NotAHandler"),
                    w(),
                    Err("NotInit"),
                ],
            ),
            (
                "audit",
                [
                    Err("Private"),
                    Err("Private"),
                    Err("NotAHandler"),
                    v(),
                    Err("NotInit"),
                ],
            ),
            (
                "tidy",
                [
                    Err("Private"),
                    Err("Private"),
                    Err("NotAHandler"),
                    w(),
                    Err("NotInit"),
                ],
            ),
            (
                "on_posted",
                [Err("Handler"), Err("Handler"), w(), w(), Err("NotInit")],
            ),
            (
                "on_secret",
                [Err("Handler"), Err("Handler"), w(), w(), Err("NotInit")],
            ),
            (
                "nope",
                [
                    Err("UnknownMethod"),
                    Err("UnknownMethod"),
                    Err("UnknownMethod"),
                    Err("UnknownMethod"),
                    Err("UnknownMethod"),
                ],
            ),
        ];
        for (method, expected) in table {
            for (kind, want) in [Execute, Query, Handler, Internal, Init]
                .iter()
                .zip(expected)
            {
                let got = decide(&abi, method, *kind).map_err(|r| {
                    let dbg = format!("{r:?}");
                    dbg.split([' ', '{']).next().unwrap().to_owned()
                });
                assert_eq!(got, want.map_err(str::to_owned), "{method} as {kind:?}");
            }
        }
    }

    /// Other contexts reach only what the callee marks `#[app::xcall]`,
    /// views as views, and never the constructor.
    #[test]
    fn cross_context_calls_reach_only_xcall_methods() {
        use CallKind::{CrossExecute, CrossQuery};
        let mut abi = abi();
        for m in &mut abi.methods {
            m.xcall = matches!(m.name.as_str(), "get" | "set" | "tidy");
        }
        assert_eq!(decide(&abi, "get", CrossQuery), Ok(CallMode::View));
        assert_eq!(decide(&abi, "get", CrossExecute), Ok(CallMode::View));
        assert_eq!(decide(&abi, "set", CrossExecute), Ok(CallMode::Mutate));
        assert!(matches!(
            decide(&abi, "set", CrossQuery),
            Err(Refusal::QueryOfMutating { .. })
        ));
        // Private to clients, offered to other contexts.
        assert_eq!(decide(&abi, "tidy", CrossExecute), Ok(CallMode::Mutate));
        for method in ["audit", "on_posted"] {
            let e = decide(&abi, method, CrossExecute).unwrap_err();
            assert!(matches!(e, Refusal::NotXCallable { .. }), "{method}: {e:?}");
            assert!(e.to_string().contains("#[app::xcall]"), "{e}");
        }
        assert!(matches!(
            decide(&abi, "init", CrossExecute),
            Err(Refusal::Init { .. })
        ));
        let Err(Refusal::UnknownMethod { available, .. }) = decide(&abi, "nope", CrossExecute)
        else {
            panic!("unknown method");
        };
        assert_eq!(available, "get, set, tidy");
    }

    #[test]
    fn refusals_say_what_to_do_and_map_to_call_errors() {
        let abi = abi();
        let e = decide(&abi, "nope", CallKind::Execute).unwrap_err();
        assert_eq!(e.kind(), CallErrorKind::UnknownMethod);
        // Clients hear only of what they may call.
        assert!(e.to_string().ends_with("it has: get, set"), "{e}");
        let e = decide(&abi, "nope", CallKind::Query).unwrap_err();
        assert!(e.to_string().ends_with("it has: get"), "{e}");
        let e = decide(&abi, "set", CallKind::Query).unwrap_err();
        assert_eq!(e.to_call_error().kind, CallErrorKind::Mutability);
        assert!(e.to_string().contains("execute"), "{e}");
        let e = decide(&abi, "on_posted", CallKind::Execute).unwrap_err();
        assert!(e.to_string().contains("event `Posted`"), "{e}");
        let e = decide(&abi, "tidy", CallKind::Execute).unwrap_err();
        assert!(e.to_string().contains("private"), "{e}");
        let e = check_args(CallKind::Execute, b"[1]").unwrap_err();
        assert_eq!(e.kind(), CallErrorKind::InvalidArgs);
        assert!(check_args(CallKind::Internal, b"null").is_err());
        assert!(check_args(CallKind::Init, b"{").is_err());
        assert!(check_args(CallKind::Init, br#" {"a": [1, {"b": null}]} "#).is_ok());
    }

    #[test]
    fn a_long_method_list_is_cut() {
        let mut abi = abi();
        abi.methods = (0..200)
            .map(|i| MethodAbi {
                name: format!("m{i:03}"),
                mutability: Mutability::View,
                init: false,
                params: vec![],
                returns: "()".into(),
                fallible: false,
                private: false,
                xcall: false,
                error: None,
            })
            .collect();
        let e = decide(&abi, "nope", CallKind::Query).unwrap_err();
        assert!(e.to_string().ends_with("and 136 more"), "{e}");
    }
}
