//! TypeScript declarations of the API's types, emitted from their JSON
//! Schemas ([`crate::schema::components`]): what `@mero/client` checks in
//! as `clients/js/src/api.ts`.
//!
//! The emitter knows the subset of JSON Schema that schemars produces for
//! these types: objects, arrays and tuples, `$ref`, `const`/`enum`,
//! `oneOf`/`anyOf`, `allOf`, and nullable `type` lists. Anything else is
//! `unknown`, which is what a client must treat it as anyway.
//!
//! ```
//! let ts = mero_api::typescript::declarations();
//! assert!(ts.contains("export interface ContextInfo {"));
//! assert!(ts.contains("  pendingApp?: Id;"));
//! assert!(ts.contains("export type StreamItem = EventItem | StateItem;"));
//! ```

use std::fmt::Write;

use serde_json::{Map, Value};

use crate::rpc::RPC_ERRORS;
use crate::schema::{REF_PREFIX, components};

/// What the generated file starts with.
pub const HEADER: &str =
    "// Generated from the node API's Rust types (runtime/api, crate mero-api).
// Do not edit: change the types, then run
//   MERO_BLESS=1 cargo test --release --workspace --test generated
";

/// The whole `api.ts`: one declaration per schema, sorted by name, then the
/// table of JSON-RPC error codes.
pub fn declarations() -> String {
    let mut out = String::from(HEADER);
    for (name, schema) in &components() {
        out.push('\n');
        declaration(&mut out, name, schema);
    }
    out.push('\n');
    rpc_codes(&mut out);
    out
}

fn declaration(out: &mut String, name: &str, schema: &Value) {
    doc(out, "", schema.get("description"));
    match schema.get("properties").and_then(Value::as_object) {
        Some(props) if !is_union(schema) => {
            let _ = writeln!(out, "export interface {name} {{");
            for (field, s) in props {
                doc(out, "  ", s.get("description"));
                let _ = writeln!(
                    out,
                    "  {}{}: {};",
                    key(field),
                    if required(schema, field) { "" } else { "?" },
                    ts(s)
                );
            }
            out.push_str("}\n");
        }
        _ => {
            let _ = writeln!(out, "export type {name} = {};", ts(schema));
        }
    }
}

fn rpc_codes(out: &mut String) {
    out.push_str("/** The node's JSON-RPC error codes, by name (from `mero_rpc::code`). */\n");
    out.push_str("export const RpcCode = {\n");
    for c in RPC_ERRORS {
        let _ = writeln!(out, "  {}: {},", c.name, c.code);
    }
    out.push_str("} as const;\n\n");
    out.push_str(
        "/** Per JSON-RPC error code: the `kind` a client reports when the error's `data` names none, and what it means. */\n",
    );
    out.push_str(
        "export const RPC_ERRORS: Readonly<Record<number, { readonly kind: string; readonly meaning: string }>> = {\n",
    );
    for c in RPC_ERRORS {
        let _ = writeln!(
            out,
            "  [{}]: {{ kind: {}, meaning: {} }},",
            c.code,
            literal(&c.kind.into()),
            literal(&c.meaning.into())
        );
    }
    out.push_str("};\n");
}

fn is_union(schema: &Value) -> bool {
    schema.get("oneOf").is_some() || schema.get("anyOf").is_some()
}

fn required(schema: &Value, field: &str) -> bool {
    schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|f| f == field))
}

fn key(field: &str) -> String {
    let plain = field.chars().enumerate().all(|(i, c)| {
        c == '_' || c == '$' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
    });
    if plain && !field.is_empty() {
        field.to_owned()
    } else {
        literal(&field.into())
    }
}

fn literal(v: &Value) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}

fn doc(out: &mut String, indent: &str, description: Option<&Value>) {
    let Some(text) = description.and_then(Value::as_str) else {
        return;
    };
    let text = text.replace("*/", "*\\/");
    if text.contains('\n') {
        let _ = writeln!(out, "{indent}/**");
        for line in text.lines() {
            let _ = writeln!(out, "{indent} * {line}");
        }
        let _ = writeln!(out, "{indent} */");
    } else {
        let _ = writeln!(out, "{indent}/** {text} */");
    }
}

/// The TypeScript type of a schema.
fn ts(schema: &Value) -> String {
    let obj = match schema {
        Value::Bool(true) => return "unknown".into(),
        Value::Bool(false) => return "never".into(),
        Value::Object(o) => o,
        _ => return "unknown".into(),
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        return r.strip_prefix(REF_PREFIX).unwrap_or("unknown").to_owned();
    }
    if let Some(c) = obj.get("const") {
        return literal(c);
    }
    if let Some(e) = obj.get("enum").and_then(Value::as_array) {
        return union(e.iter().map(literal));
    }
    for k in ["oneOf", "anyOf"] {
        if let Some(alts) = obj.get(k).and_then(Value::as_array) {
            return union(alts.iter().map(ts));
        }
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
        return all.iter().map(ts).collect::<Vec<_>>().join(" & ");
    }
    match obj.get("type") {
        Some(Value::String(t)) => typed(t, obj),
        Some(Value::Array(ts)) => union(ts.iter().filter_map(Value::as_str).map(|t| typed(t, obj))),
        _ => "unknown".into(),
    }
}

fn union(parts: impl Iterator<Item = String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for p in parts {
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    if seen.is_empty() {
        "never".into()
    } else {
        seen.join(" | ")
    }
}

fn typed(t: &str, obj: &Map<String, Value>) -> String {
    match t {
        "string" => "string".into(),
        "integer" | "number" => "number".into(),
        "boolean" => "boolean".into(),
        "null" => "null".into(),
        "array" => match (obj.get("prefixItems"), obj.get("items")) {
            (Some(Value::Array(items)), _) => {
                format!("[{}]", items.iter().map(ts).collect::<Vec<_>>().join(", "))
            }
            (_, Some(items)) => format!("Array<{}>", ts(items)),
            _ => "Array<unknown>".into(),
        },
        "object" => object(obj),
        _ => "unknown".into(),
    }
}

fn object(obj: &Map<String, Value>) -> String {
    let schema = Value::Object(obj.clone());
    match obj.get("properties").and_then(Value::as_object) {
        Some(props) if !props.is_empty() => {
            let fields: Vec<String> = props
                .iter()
                .map(|(f, s)| {
                    let opt = if required(&schema, f) { "" } else { "?" };
                    format!("{}{opt}: {}", key(f), ts(s))
                })
                .collect();
            format!("{{ {} }}", fields.join("; "))
        }
        _ => match obj.get("additionalProperties") {
            Some(Value::Bool(false)) => "Record<string, never>".into(),
            Some(s @ Value::Object(_)) => format!("Record<string, {}>", ts(s)),
            _ => "Record<string, unknown>".into(),
        },
    }
}
