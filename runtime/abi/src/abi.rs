//! The app ABI document.
//!
//! The SDK macros describe the app piece by piece (each macro sees one item),
//! writing [`Fragment`]s into the [`ABI_FRAGMENT_SECTION`](crate::ABI_FRAGMENT_SECTION)
//! custom section. [`AppAbi::from_fragments`] assembles them; `cargo mero build`
//! stores the result in [`ABI_SECTION`](crate::ABI_SECTION), and the node reads it
//! to learn which exports are views, which method is `init`, and what events exist.

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
}

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
            }
        }
        if !saw_state {
            return Err(AbiError(
                "no #[app::state] found: an app needs exactly one state struct".into(),
            ));
        }
        abi.sort()?;
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
