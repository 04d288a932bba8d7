//! What changed between two versions of an app's ABI.
//!
//! `cargo mero dev` prints this after each hot reload so a developer sees, at
//! a glance, which methods a client may now call and which calls will break.

use std::fmt;

use crate::abi::{AppAbi, ErrorVariantAbi, EventAbi, FieldAbi, MethodAbi, Mutability};

/// The difference between an old and a new ABI.
///
/// ```
/// use mero_abi::abi::{AppAbi, MethodAbi, Mutability};
/// use mero_abi::diff::AbiDiff;
///
/// let method = |name: &str| MethodAbi {
///     name: name.into(),
///     mutability: Mutability::View,
///     init: false,
///     params: vec![],
///     returns: "()".into(),
///     fallible: false,
///     private: false,
///     xcall: false,
///     error: None,
/// };
/// let old = AppAbi { methods: vec![method("get")], ..AppAbi::default() };
/// let new = AppAbi { methods: vec![method("get"), method("len")], ..AppAbi::default() };
/// let diff = AbiDiff::between(&old, &new);
/// assert_eq!(diff.to_string(), "+ len(&self) -> ()");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbiDiff {
    /// Methods only the new ABI has.
    pub added: Vec<MethodAbi>,
    /// Methods only the old ABI had.
    pub removed: Vec<MethodAbi>,
    /// Methods whose signature changed: (old, new).
    pub changed: Vec<(MethodAbi, MethodAbi)>,
    /// Event names added, removed or whose payload changed.
    pub events: Vec<String>,
    /// The new state fields, when they changed.
    pub state_changed: Option<Vec<FieldAbi>>,
    /// `#[app::error]` variants added (`+`), removed (`-`) or whose code or
    /// fields changed (`~`), one line each.
    pub errors: Vec<String>,
}

impl AbiDiff {
    /// Compares `old` with `new`.
    pub fn between(old: &AppAbi, new: &AppAbi) -> Self {
        let mut diff = AbiDiff::default();
        for m in &new.methods {
            match old.method(&m.name) {
                None => diff.added.push(m.clone()),
                Some(o) if o != m => diff.changed.push((o.clone(), m.clone())),
                Some(_) => {}
            }
        }
        diff.removed = old
            .methods
            .iter()
            .filter(|m| new.method(&m.name).is_none())
            .cloned()
            .collect();
        let find = |abi: &AppAbi, name: &str| -> Option<EventAbi> {
            abi.events.iter().find(|e| e.name == name).cloned()
        };
        for e in &new.events {
            match find(old, &e.name) {
                None => diff.events.push(format!("+ event {}", e.name)),
                Some(o) if o != *e => diff.events.push(format!("~ event {}", e.name)),
                Some(_) => {}
            }
        }
        for e in &old.events {
            if find(new, &e.name).is_none() {
                diff.events.push(format!("- event {}", e.name));
            }
        }
        diff.state_changed =
            (old.state.fields != new.state.fields).then(|| new.state.fields.clone());
        diff.errors = error_changes(old, new);
        diff
    }

    /// Whether nothing a client sees changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.events.is_empty()
            && self.state_changed.is_none()
            && self.errors.is_empty()
    }
}

/// Every error variant of `abi`, as `Enum::Variant`, with its code and fields.
fn error_variants(abi: &AppAbi) -> Vec<(String, &ErrorVariantAbi)> {
    abi.errors
        .iter()
        .flat_map(|e| {
            e.variants
                .iter()
                .map(move |v| (format!("{}::{}", e.name, v.name), v))
        })
        .collect()
}

fn error_changes(old: &AppAbi, new: &AppAbi) -> Vec<String> {
    let show = |name: &str, v: &ErrorVariantAbi| {
        let mut s = format!("{name} = {}", v.code);
        if !v.fields.is_empty() {
            s.push_str(&format!(" {{ {} }}", fields(&v.fields)));
        }
        s
    };
    let (old, new) = (error_variants(old), error_variants(new));
    fn find<'a>(list: &[(String, &'a ErrorVariantAbi)], name: &str) -> Option<&'a ErrorVariantAbi> {
        list.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
    let mut lines = Vec::new();
    for (name, v) in &new {
        match find(&old, name) {
            None => lines.push(format!("+ error {}", show(name, v))),
            Some(o) if o != *v => lines.push(format!(
                "~ error {}  (was {})",
                show(name, v),
                show(name, o)
            )),
            Some(_) => {}
        }
    }
    for (name, v) in &old {
        if find(&new, name).is_none() {
            lines.push(format!("- error {}", show(name, v)));
        }
    }
    lines
}

/// `name(&self, a: T) -> R`, the way the method reads in Rust; a private
/// method is prefixed `#[private]`, a typed error shows as `Result<R, E>`.
pub fn signature(m: &MethodAbi) -> String {
    let receiver = match m.mutability {
        Mutability::View => "&self",
        Mutability::Mutating => "&mut self",
    };
    let params: Vec<String> = std::iter::once(receiver.to_owned())
        .filter(|_| !m.init)
        .chain(m.params.iter().map(|p| format!("{}: {}", p.name, p.ty)))
        .collect();
    let returns = match (&m.error, m.fallible) {
        (Some(e), _) => format!("Result<{}, {e}>", m.returns),
        (None, true) => format!("app::Result<{}>", m.returns),
        (None, false) => m.returns.clone(),
    };
    let private = if m.private { "#[private] " } else { "" };
    format!("{private}{}({}) -> {returns}", m.name, params.join(", "))
}

fn fields(f: &[FieldAbi]) -> String {
    f.iter()
        .map(|f| format!("{}: {}", f.name, f.ty))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per change: `+` added, `-` removed, `~` changed (old → new).
impl fmt::Display for AbiDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = Vec::new();
        lines.extend(self.added.iter().map(|m| format!("+ {}", signature(m))));
        lines.extend(self.removed.iter().map(|m| format!("- {}", signature(m))));
        lines.extend(
            self.changed
                .iter()
                .map(|(o, n)| format!("~ {}  (was {})", signature(n), signature(o))),
        );
        lines.extend(self.events.iter().cloned());
        lines.extend(self.errors.iter().cloned());
        if let Some(f) = &self.state_changed {
            lines.push(format!("~ state {{ {} }}", fields(f)));
        }
        write!(f, "{}", lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::ParamAbi;

    fn m(name: &str, mutability: Mutability, params: &[(&str, &str)]) -> MethodAbi {
        MethodAbi {
            name: name.into(),
            mutability,
            init: false,
            params: params
                .iter()
                .map(|(n, t)| ParamAbi {
                    name: (*n).into(),
                    ty: (*t).into(),
                })
                .collect(),
            returns: "()".into(),
            fallible: false,
            private: false,
            xcall: false,
            error: None,
        }
    }

    #[test]
    fn reports_added_removed_and_changed_methods() {
        let old = AppAbi {
            methods: vec![
                m("get", Mutability::View, &[("key", "&str")]),
                m("gone", Mutability::View, &[]),
                m("set", Mutability::Mutating, &[("key", "String")]),
            ],
            ..AppAbi::default()
        };
        let new = AppAbi {
            methods: vec![
                m("get", Mutability::View, &[("key", "&str")]),
                m("len", Mutability::View, &[]),
                m(
                    "set",
                    Mutability::Mutating,
                    &[("key", "String"), ("value", "String")],
                ),
            ],
            ..AppAbi::default()
        };
        let d = AbiDiff::between(&old, &new);
        assert_eq!(
            d.to_string(),
            "+ len(&self) -> ()\n- gone(&self) -> ()\n\
             ~ set(&mut self, key: String, value: String) -> ()  (was set(&mut self, key: String) -> ())"
        );
        assert!(!d.is_empty());
        assert!(AbiDiff::between(&new, &new).is_empty());
    }

    #[test]
    fn reports_private_methods_typed_errors_and_their_codes() {
        use crate::abi::{ErrorAbi, ErrorVariantAbi};
        let variant = |name: &str, code: u32, fields: &[(&str, &str)]| ErrorVariantAbi {
            name: name.into(),
            code,
            fields: fields
                .iter()
                .map(|(n, t)| FieldAbi {
                    name: (*n).into(),
                    ty: (*t).into(),
                })
                .collect(),
        };
        let old = AppAbi {
            methods: vec![m("tidy", Mutability::Mutating, &[])],
            errors: vec![ErrorAbi {
                name: "KvError".into(),
                variants: vec![
                    variant("NotFound", 1001, &[("key", "String")]),
                    variant("Gone", 7, &[]),
                ],
            }],
            ..AppAbi::default()
        };
        let mut tidy = m("tidy", Mutability::Mutating, &[]);
        tidy.private = true;
        tidy.fallible = true;
        tidy.error = Some("KvError".into());
        let new = AppAbi {
            methods: vec![tidy],
            errors: vec![ErrorAbi {
                name: "KvError".into(),
                variants: vec![
                    variant("NotFound", 1002, &[("key", "String")]),
                    variant("Full", 9, &[]),
                ],
            }],
            ..AppAbi::default()
        };
        let d = AbiDiff::between(&old, &new);
        assert_eq!(
            d.to_string(),
            "~ #[private] tidy(&mut self) -> Result<(), KvError>  (was tidy(&mut self) -> ())\n\
             ~ error KvError::NotFound = 1002 { key: String }  (was KvError::NotFound = 1001 { key: String })\n\
             + error KvError::Full = 9\n\
             - error KvError::Gone = 7"
        );
        assert!(AbiDiff::between(&new, &new).is_empty());
    }
}
