//! Typed TypeScript bindings generated from an app's ABI.
//!
//! `cargo mero build` writes `target/mero/<name>.ts` beside the module and
//! its `.abi.json`: the app hash, one class with a typed method per method
//! a client may call (views through `query`, the rest through `execute`),
//! the app's events as a discriminated union, and each `#[app::error]` enum
//! as the union of the `{kind, code, data}` errors a failed call carries.
//! The file imports nothing: it declares the [`MeroCaller`](self) shape it
//! needs, which `MeroClient` of `@mero/client` has.
//!
//! Generation is pure text from the ABI: no IO here.

pub mod types;

use std::fmt::Write;

use mero_abi::AppAbi;
use mero_abi::abi::{ErrorAbi, FieldAbi, MethodAbi, MethodKind, Mutability};

use types::{Mapper, Ts, property_name};

/// Names the file itself declares; an app type of the same name gets a
/// suffix.
const RESERVED: &[&str] = &["MeroCaller", "APP_HASH", "APP_NAME"];

/// The TypeScript names of an app's own types.
struct Names {
    class: String,
    event: String,
    /// `#[app::error]` enum → its TypeScript union.
    errors: Vec<(String, String)>,
}

fn unique(name: &str, taken: &mut Vec<String>) -> String {
    let mut n = name.to_owned();
    while taken.contains(&n) || RESERVED.contains(&n.as_str()) {
        n.push('_');
    }
    taken.push(n.clone());
    n
}

impl Names {
    fn of(abi: &AppAbi) -> Self {
        let mut taken = Vec::new();
        let state = if abi.state.name.is_empty() {
            "App"
        } else {
            &abi.state.name
        };
        let class = unique(state, &mut taken);
        let event = unique(&format!("{class}Event"), &mut taken);
        let errors = abi
            .errors
            .iter()
            .map(|e| (e.name.clone(), unique(&e.name, &mut taken)))
            .collect();
        Names {
            class,
            event,
            errors,
        }
    }

    fn error<'a>(&'a self, rust: &'a str) -> &'a str {
        self.errors
            .iter()
            .find(|(r, _)| r == rust)
            .map(|(_, ts)| ts.as_str())
            .unwrap_or(rust)
    }
}

/// The JSON form of a variant's fields: an object for named fields, the
/// value for one unnamed field, an array for several, `null` for none
/// (serde's adjacently tagged `data`).
fn data_type(mapper: &Mapper, fields: &[FieldAbi]) -> Ts {
    let tuple = fields.iter().all(|f| f.name.parse::<usize>().is_ok());
    match fields {
        [] => Ts::Prim("null"),
        [one] if tuple => mapper.map_text(&one.ty),
        _ if tuple => Ts::Tuple(fields.iter().map(|f| mapper.map_text(&f.ty)).collect()),
        _ => Ts::Object(
            fields
                .iter()
                .map(|f| (f.name.clone(), mapper.map_text(&f.ty), false))
                .collect(),
        ),
    }
}

/// An error enum as a value (`{kind, data}`, serde's form, without the
/// code the node adds to a failed call's error).
fn error_value(mapper: &Mapper, e: &ErrorAbi) -> Ts {
    if e.variants.is_empty() {
        return Ts::Prim("never");
    }
    Ts::Union(
        e.variants
            .iter()
            .map(|v| {
                Ts::Object(vec![
                    ("kind".into(), Ts::Literal(v.name.clone()), false),
                    ("data".into(), data_type(mapper, &v.fields), false),
                ])
            })
            .collect(),
    )
}

/// The mapper for an app: its event enum and error enums are known types.
fn mapper(abi: &AppAbi, names: &Names) -> Mapper {
    let mut m = Mapper::default();
    if let Some(emits) = &abi.state.emits {
        let last = emits.rsplit("::").next().unwrap_or(emits);
        m.named
            .push((last.to_owned(), Ts::Named(names.event.clone())));
    }
    // Error enums refer to no other app types, so one pass suffices.
    let values: Vec<(String, Ts)> = abi
        .errors
        .iter()
        .map(|e| (e.name.clone(), error_value(&m, e)))
        .collect();
    m.named.extend(values);
    m
}

fn method_name(rust: &str) -> String {
    let name = rust.trim_start_matches("r#");
    // A method called `constructor` would be the class's constructor.
    if name == "constructor" {
        "constructor_".into()
    } else {
        name.to_owned()
    }
}

fn doc(out: &mut String, indent: &str, lines: &[String]) {
    let _ = writeln!(out, "{indent}/**");
    for l in lines {
        if l.is_empty() {
            let _ = writeln!(out, "{indent} *");
        } else {
            let _ = writeln!(out, "{indent} * {}", l.replace("*/", "* /"));
        }
    }
    let _ = writeln!(out, "{indent} */");
}

fn rust_signature(m: &MethodAbi) -> String {
    let params: Vec<String> = m
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, p.ty))
        .collect();
    let receiver = match m.mutability {
        Mutability::View => "&self",
        Mutability::Mutating => "&mut self",
    };
    let mut all = vec![receiver.to_owned()];
    all.extend(params);
    let ret = match (&m.error, m.fallible) {
        (Some(e), _) => format!("Result<{}, {e}>", m.returns),
        (None, true) => format!("app::Result<{}>", m.returns),
        (None, false) => m.returns.clone(),
    };
    format!("fn {}({}) -> {ret}", m.name, all.join(", "))
}

fn write_method(out: &mut String, abi: &AppAbi, names: &Names, mapper: &Mapper, m: &MethodAbi) {
    let view = m.mutability == Mutability::View;
    let mut lines = vec![if view {
        "View: reads the state and never changes it; runs with `query`.".to_owned()
    } else {
        "Mutating: runs with `execute`; its change replicates to every member.".to_owned()
    }];
    if m.xcall {
        lines.push("Other contexts on a member's node may call it too (`#[app::xcall]`).".into());
    }
    let mut wide: Vec<String> = Vec::new();
    for t in m
        .params
        .iter()
        .map(|p| p.ty.as_str())
        .chain([m.returns.as_str()])
    {
        let t = format!("`{t}`");
        if Mapper::is_wide(&t[1..t.len() - 1]) && !wide.contains(&t) {
            wide.push(t);
        }
    }
    if !wide.is_empty() {
        lines.push(format!(
            "Wide integers (in {}) travel as JSON numbers: exact only within ±2^53.",
            wide.join(", ")
        ));
    }
    lines.push(String::new());
    lines.push(format!("Rust: `{}`", rust_signature(m)));
    match abi.error_of(m) {
        Some(e) => {
            let ts = names.error(&e.name);
            let kinds: Vec<String> = e
                .variants
                .iter()
                .map(|v| format!("`{}` ({})", v.name, v.code))
                .collect();
            lines.push(format!(
                "@throws A `MeroError` that is a {{@link {ts}}} (check with `is{ts}`): {}.",
                kinds.join(", ")
            ));
        }
        None if m.fallible => lines.push(
            "@throws A `MeroError` with kind `\"app\"` and code 0 when the app refuses the call."
                .to_owned(),
        ),
        None => {}
    }
    doc(out, "  ", &lines);

    let ret = match m.returns.trim() {
        "()" => Ts::Prim("void"),
        t => mapper.map_text(t),
    }
    .render();
    let call = if view { "query" } else { "execute" };
    let name = method_name(&m.name);
    let wire = serde_json::to_string(&m.name).expect("strings serialize");
    if m.params.is_empty() {
        let _ = writeln!(
            out,
            "  {name}(): Promise<{ret}> {{\n    return this.#client.{call}<{ret}>({wire}, {{}});\n  }}\n"
        );
        return;
    }
    // `Option` parameters may be left out: serde reads a missing field as
    // `None`.
    let fields: Vec<(String, Ts, bool)> = m
        .params
        .iter()
        .map(|p| {
            let optional = types::parse(&p.ty).is_ok_and(|t| {
                let t = match t {
                    types::RustType::Ref(inner) => *inner,
                    t => t,
                };
                t.name() == Some("Option")
            });
            (p.name.clone(), mapper.map_text(&p.ty), optional)
        })
        .collect();
    let all_optional = fields.iter().all(|f| f.2);
    let args = Ts::Object(fields).render();
    let default = if all_optional { " = {}" } else { "" };
    let _ = writeln!(
        out,
        "  {name}(args: {args}{default}): Promise<{ret}> {{\n    return this.#client.{call}<{ret}>({wire}, args);\n  }}\n"
    );
}

fn write_events(out: &mut String, abi: &AppAbi, names: &Names, mapper: &Mapper) {
    let ev = &names.event;
    let mut lines = vec![format!(
        "The events of `{}`, as subscribers receive them: `kind` and `data` of each event item.",
        abi.state.name
    )];
    for e in abi.events.iter().filter(|e| e.handler.is_some()) {
        lines.push(format!(
            "`{}`: every receiving node runs `{}`.",
            e.name,
            e.handler.as_deref().unwrap_or_default()
        ));
    }
    doc(out, "", &lines);
    if abi.events.is_empty() {
        let _ = writeln!(out, "export type {ev} = never;\n");
    } else {
        let _ = writeln!(out, "export type {ev} =");
        for e in &abi.events {
            let data = data_type(mapper, &e.fields).render();
            let kind = serde_json::to_string(&e.name).expect("strings serialize");
            let _ = writeln!(out, "  | {{ kind: {kind}; data: {data} }}");
        }
        out.pop();
        out.push_str(";\n\n");
    }
    let kinds: Vec<String> = abi
        .events
        .iter()
        .map(|e| serde_json::to_string(&e.name).expect("strings serialize"))
        .collect();
    doc(out, "", &[format!("Every `kind` of {{@link {ev}}}.")]);
    let _ = writeln!(
        out,
        "export const {ev}Kinds = [{}] as const;\n",
        kinds.join(", ")
    );
    doc(
        out,
        "",
        &[
            format!(
                "`e` (an event item, e.g. what `MeroClient.subscribe`'s `onEvent` gets) as a {{@link {ev}}}:"
            ),
            "narrowed when its kind is one of this app's events, else `null`.".into(),
        ],
    );
    let _ = writeln!(
        out,
        "export function as{ev}<E extends {{ kind: string; data: unknown }}>(e: E): (Omit<E, \"kind\" | \"data\"> & {ev}) | null {{\n  return ({ev}Kinds as readonly string[]).includes(e.kind)\n    ? (e as unknown as Omit<E, \"kind\" | \"data\"> & {ev})\n    : null;\n}}\n"
    );
}

fn write_error(out: &mut String, names: &Names, mapper: &Mapper, e: &ErrorAbi) {
    let ts = names.error(&e.name);
    doc(
        out,
        "",
        &[
            format!(
                "The errors of `{}` (an `#[app::error]` enum) as a failed call carries them:",
                e.name
            ),
            "`kind` is the variant, `code` its stable number, `data` its fields.".into(),
        ],
    );
    if e.variants.is_empty() {
        let _ = writeln!(out, "export type {ts} = never;\n");
    } else {
        let _ = writeln!(out, "export type {ts} =");
        for v in &e.variants {
            let kind = serde_json::to_string(&v.name).expect("strings serialize");
            let data = data_type(mapper, &v.fields).render();
            let _ = writeln!(
                out,
                "  | {{ kind: {kind}; code: {}; data: {data} }}",
                v.code
            );
        }
        out.pop();
        out.push_str(";\n\n");
    }
    doc(
        out,
        "",
        &[format!("The code of each kind of {{@link {ts}}}.")],
    );
    let codes: Vec<String> = e
        .variants
        .iter()
        .map(|v| format!("{}: {}", property_name(&v.name), v.code))
        .collect();
    let _ = writeln!(
        out,
        "export const {ts}Codes = {{ {} }} as const;\n",
        codes.join(", ")
    );
    doc(
        out,
        "",
        &[
            format!(
                "Whether `e` (e.g. a caught `MeroError`) is a {{@link {ts}}}: its kind and code match one"
            ),
            "of the enum's variants. Narrows `e`, so `e.data` is typed by `e.kind`.".into(),
        ],
    );
    let _ = writeln!(
        out,
        "export function is{ts}(e: unknown): e is {ts} {{\n  if (typeof e !== \"object\" || e === null) return false;\n  const {{ kind, code }} = e as {{ kind?: unknown; code?: unknown }};\n  return (\n    typeof kind === \"string\" &&\n    typeof code === \"number\" &&\n    Object.prototype.hasOwnProperty.call({ts}Codes, kind) &&\n    ({ts}Codes as Record<string, number>)[kind] === code\n  );\n}}\n"
    );
}

/// The TypeScript bindings of `abi`, built as `package` with app hash
/// `hash`.
///
/// ```
/// use mero_abi::abi::{AppAbi, MethodAbi, Mutability, ParamAbi, StateAbi};
/// let method = |name: &str, mutability, init| MethodAbi {
///     name: name.into(),
///     mutability,
///     init,
///     params: vec![ParamAbi { name: "key".into(), ty: "&str".into() }],
///     returns: "Option<String>".into(),
///     fallible: false,
///     private: false,
///     xcall: false,
///     error: None,
/// };
/// let abi = AppAbi {
///     state: StateAbi { name: "Kv".into(), ..Default::default() },
///     methods: vec![method("get", Mutability::View, false), method("init", Mutability::Mutating, true)],
///     ..Default::default()
/// };
/// let ts = cargo_mero::bindings::generate(&abi, "kv", "42e3");
/// assert!(ts.contains("export const APP_HASH = \"42e3\";"));
/// assert!(ts.contains("get(args: { key: string }): Promise<string | null>"));
/// assert!(ts.contains("this.#client.query<string | null>(\"get\", args)"));
/// assert!(!ts.contains("init("));
/// ```
pub fn generate(abi: &AppAbi, package: &str, hash: &str) -> String {
    let names = Names::of(abi);
    let mapper = mapper(abi, &names);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// {package}: TypeScript bindings of the app, generated by `cargo mero build` from its ABI.\n\
         // Do not edit: every build rewrites this file. Arguments and results are the methods'\n\
         // JSON forms; integers are JSON numbers, exact in JavaScript only within ±2^53.\n"
    );
    let hash_lit = serde_json::to_string(hash).expect("strings serialize");
    let name_lit = serde_json::to_string(package).expect("strings serialize");
    doc(
        &mut out,
        "",
        &["The hash of the module these bindings describe, as the node shows the app.".into()],
    );
    let _ = writeln!(out, "export const APP_HASH = {hash_lit};\n");
    doc(&mut out, "", &["The app's package name.".into()]);
    let _ = writeln!(out, "export const APP_NAME = {name_lit};\n");
    doc(
        &mut out,
        "",
        &["What the bindings need from a client; `MeroClient` of `@mero/client` has it.".into()],
    );
    out.push_str(
        "export interface MeroCaller {\n  execute<T>(method: string, args?: Record<string, unknown>): Promise<T>;\n  query<T>(method: string, args?: Record<string, unknown>): Promise<T>;\n}\n\n",
    );

    let class = &names.class;
    doc(
        &mut out,
        "",
        &[
            format!(
                "`{}`: one method per method a client may call (not `init`, event handlers",
                abi.state.name
            ),
            "or `#[app::private]` methods). Arguments are one object keyed by parameter name."
                .into(),
        ],
    );
    let _ = writeln!(
        out,
        "export class {class} {{\n  readonly #client: MeroCaller;\n\n  constructor(client: MeroCaller) {{\n    this.#client = client;\n  }}\n"
    );
    for (m, kind) in abi.kinds() {
        if matches!(kind, MethodKind::View | MethodKind::Mutating) {
            write_method(&mut out, abi, &names, &mapper, m);
        }
    }
    out.pop();
    out.push_str("}\n\n");

    write_events(&mut out, abi, &names, &mapper);
    for e in &abi.errors {
        write_error(&mut out, &names, &mapper, e);
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mero_abi::abi::{ErrorVariantAbi, EventAbi, ParamAbi, StateAbi};

    fn method(name: &str, mutability: Mutability, params: &[(&str, &str)], ret: &str) -> MethodAbi {
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
            returns: ret.into(),
            fallible: false,
            private: false,
            xcall: false,
            error: None,
        }
    }

    fn field(name: &str, ty: &str) -> FieldAbi {
        FieldAbi {
            name: name.into(),
            ty: ty.into(),
        }
    }

    fn ledger() -> AppAbi {
        let mut init = method("init", Mutability::Mutating, &[], "()");
        init.init = true;
        let mut deposit = method(
            "deposit",
            Mutability::Mutating,
            &[("account", "String"), ("amount", "i64")],
            "i64",
        );
        deposit.fallible = true;
        deposit.error = Some("LedgerError".into());
        let mut refuse = method("refuse", Mutability::Mutating, &[], "()");
        refuse.fallible = true;
        let mut secret = method("secret", Mutability::Mutating, &[], "()");
        secret.private = true;
        AppAbi {
            state: StateAbi {
                name: "Ledger".into(),
                emits: Some("Event".into()),
                ..Default::default()
            },
            methods: vec![
                method(
                    "balance",
                    Mutability::View,
                    &[("account", "&str")],
                    "Option<i64>",
                ),
                deposit,
                method(
                    "entries",
                    Mutability::View,
                    &[("prefix", "Option<String>")],
                    "Vec<(String, i64)>",
                ),
                method("history", Mutability::View, &[], "Vec<Event>"),
                init,
                method(
                    "on_deposited",
                    Mutability::Mutating,
                    &[("account", "String")],
                    "()",
                ),
                refuse,
                secret,
            ],
            events: vec![
                EventAbi {
                    name: "Deposited".into(),
                    fields: vec![field("account", "String"), field("amount", "i64")],
                    handler: Some("on_deposited".into()),
                },
                EventAbi {
                    name: "Reset".into(),
                    fields: vec![],
                    handler: None,
                },
            ],
            errors: vec![ErrorAbi {
                name: "LedgerError".into(),
                variants: vec![
                    ErrorVariantAbi {
                        name: "Insufficient".into(),
                        code: 1001,
                        fields: vec![field("balance", "i64"), field("wanted", "i64")],
                    },
                    ErrorVariantAbi {
                        name: "NoAccount".into(),
                        code: 7,
                        fields: vec![field("0", "String")],
                    },
                    ErrorVariantAbi {
                        name: "Pair".into(),
                        code: 8,
                        fields: vec![field("0", "u8"), field("1", "bool")],
                    },
                    ErrorVariantAbi {
                        name: "Frozen".into(),
                        code: 9,
                        fields: vec![],
                    },
                ],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn methods_clients_may_call_become_typed_methods() {
        let ts = generate(&ledger(), "ledger", "abc");
        assert!(ts.contains("export class Ledger {"), "{ts}");
        assert!(ts.contains(
            "  balance(args: { account: string }): Promise<number | null> {\n    return this.#client.query<number | null>(\"balance\", args);"
        ), "{ts}");
        assert!(ts.contains(
            "  deposit(args: { account: string; amount: number }): Promise<number> {\n    return this.#client.execute<number>(\"deposit\", args);"
        ), "{ts}");
        // All-optional arguments may be left out.
        assert!(
            ts.contains(
                "entries(args: { prefix?: string | null } = {}): Promise<[string, number][]>"
            ),
            "{ts}"
        );
        assert!(ts.contains("history(): Promise<LedgerEvent[]>"), "{ts}");
        assert!(
            ts.contains(
                "refuse(): Promise<void> {\n    return this.#client.execute<void>(\"refuse\", {});"
            ),
            "{ts}"
        );
        // Not for clients: init, a handler, a private method.
        for hidden in ["init(", "on_deposited(", "secret("] {
            assert!(!ts.contains(hidden), "{hidden} in {ts}");
        }
        assert!(ts.contains("@throws A `MeroError` that is a {@link LedgerError}"));
        assert!(ts.contains("`Insufficient` (1001), `NoAccount` (7)"));
        assert!(ts.contains("kind `\"app\"` and code 0"));
        assert!(ts.contains("Rust: `fn deposit(&mut self, account: String, amount: i64) -> Result<i64, LedgerError>`"));
        assert!(
            ts.contains("Wide integers (in `i64`) travel as JSON numbers"),
            "{ts}"
        );
    }

    #[test]
    fn events_and_errors_are_discriminated_unions() {
        let ts = generate(&ledger(), "ledger", "abc");
        assert!(ts.contains(
            "export type LedgerEvent =\n  | { kind: \"Deposited\"; data: { account: string; amount: number } }\n  | { kind: \"Reset\"; data: null };"
        ), "{ts}");
        assert!(ts.contains("`Deposited`: every receiving node runs `on_deposited`."));
        assert!(
            ts.contains("export const LedgerEventKinds = [\"Deposited\", \"Reset\"] as const;")
        );
        assert!(ts.contains(
            "export type LedgerError =\n  | { kind: \"Insufficient\"; code: 1001; data: { balance: number; wanted: number } }\n  | { kind: \"NoAccount\"; code: 7; data: string }\n  | { kind: \"Pair\"; code: 8; data: [number, boolean] }\n  | { kind: \"Frozen\"; code: 9; data: null };"
        ), "{ts}");
        assert!(ts.contains(
            "export const LedgerErrorCodes = { Insufficient: 1001, NoAccount: 7, Pair: 8, Frozen: 9 } as const;"
        ));
        assert!(ts.contains("export function isLedgerError(e: unknown): e is LedgerError {"));
        assert!(ts.ends_with("}\n"), "{ts}");
    }

    #[test]
    fn a_changed_signature_changes_the_types() {
        let before = generate(&ledger(), "ledger", "abc");
        let mut abi = ledger();
        let deposit = abi
            .methods
            .iter_mut()
            .find(|m| m.name == "deposit")
            .unwrap();
        deposit.params[1].ty = "String".into();
        deposit.params.push(ParamAbi {
            name: "memo".into(),
            ty: "Option<String>".into(),
        });
        deposit.returns = "(i64, u32)".into();
        let after = generate(&abi, "ledger", "abd");
        assert_ne!(before, after);
        assert!(after.contains(
            "deposit(args: { account: string; amount: string; memo?: string | null }): Promise<[number, number]>"
        ), "{after}");
        assert!(after.contains("APP_HASH = \"abd\""));
        // Only what changed differs.
        let changed: Vec<_> = before
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 5, "{changed:#?}");
    }

    #[test]
    fn app_names_that_clash_get_a_suffix() {
        let mut abi = ledger();
        abi.state.name = "MeroCaller".into();
        abi.errors[0].name = "MeroCallerEvent".into();
        abi.methods[1].error = Some("MeroCallerEvent".into());
        abi.methods
            .push(method("constructor", Mutability::View, &[], "u8"));
        abi.methods.sort_by(|a, b| a.name.cmp(&b.name));
        let ts = generate(&abi, "x", "h");
        assert!(ts.contains("export class MeroCaller_ {"), "{ts}");
        assert!(ts.contains("export type MeroCaller_Event ="), "{ts}");
        assert!(ts.contains("export type MeroCallerEvent ="), "{ts}");
        assert!(ts.contains("constructor_(): Promise<number>"), "{ts}");
        assert!(ts.contains("query<number>(\"constructor\", {})"), "{ts}");
        let empty = AppAbi::default();
        let ts = generate(&empty, "x", "h");
        assert!(ts.contains("export type AppEvent = never;"), "{ts}");
    }
}
