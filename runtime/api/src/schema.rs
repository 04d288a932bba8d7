//! JSON Schemas of the API's types: the `components.schemas` of the node's
//! OpenAPI 3.1 document (`runtime/node/openapi.json`), and the input of the
//! TypeScript emitter ([`crate::typescript`]).
//!
//! Answers are described as the node serializes them, request bodies as it
//! deserializes them (a field with a default is optional in a request; a
//! field the node always sends is required in an answer).
//!
//! ```
//! let schemas = mero_api::schema::components();
//! assert!(schemas["ContextInfo"]["required"].as_array().unwrap().contains(&"id".into()));
//! // References point into the OpenAPI document's components.
//! assert_eq!(schemas["AppInfo"]["properties"]["hash"]["$ref"], "#/components/schemas/Id");
//! ```

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value};

use crate::*;

/// Where schemas refer to each other: the OpenAPI document's components.
pub const REF_PREFIX: &str = "#/components/schemas/";

fn generator(settings: SchemaSettings) -> SchemaGenerator {
    settings
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator()
}

/// Every named schema of the API, by name.
///
/// Panics if a type is described differently as an answer and as a
/// request under one name (a test catches it: give one of them its own
/// type).
pub fn components() -> Map<String, Value> {
    let mut answers = generator(SchemaSettings::draft2020_12().for_serialize());
    macro_rules! add {
        ($g:ident: $($t:ty),* $(,)?) => { $( $g.subschema_for::<$t>(); )* };
    }
    add!(answers:
        Health, AppInfo, AbiDocument, ContextInfo, SyncStatus, Member, Invitation, ReceiveReport,
        DeltaPage, DagPage, Removed, Deleted, Left, NodeStatus, Peer, NetStatus, BlobUploaded, SyncSummary, PeerSync, Faults,
        Tokens, TokenRevoked, ErrorBody, RpcResponse, AppErrorData, CallFailure,
        StreamItem<'static>, Gap, SubscribeResult,
    );
    let mut requests = generator(SchemaSettings::draft2020_12().for_deserialize());
    add!(requests:
        CreateContextRequest, CreateInvitationRequest, JoinRequest, UpgradeRequest,
        SetRoleRequest, IssueTokenRequest, RefreshRequest, RpcRequest, SubscribeParams, SetFaults,
    );
    let mut all = answers.take_definitions(true);
    for schema in all.values_mut() {
        never_null_when_optional(schema);
    }
    for (name, schema) in requests.take_definitions(true) {
        match all.get(&name) {
            Some(existing) if *existing != schema => panic!(
                "`{name}` has one schema as an answer and another as a request; give one of them its own type"
            ),
            _ => {
                all.insert(name, schema);
            }
        }
    }
    all
}

/// In an answer, a property that may be absent is one the node skips when
/// it has no value (`skip_serializing_if`): when present it is never `null`.
/// schemars describes the field's type as nullable all the same.
fn never_null_when_optional(schema: &mut Value) {
    let Value::Object(obj) = schema else {
        if let Value::Array(items) = schema {
            items.iter_mut().for_each(never_null_when_optional);
        }
        return;
    };
    let required: Vec<Value> = obj
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            if !required.contains(&Value::String(name.clone())) {
                drop_null(prop);
            }
        }
    }
    for v in obj.values_mut() {
        never_null_when_optional(v);
    }
}

fn drop_null(prop: &mut Value) {
    let Value::Object(p) = prop else { return };
    let null = serde_json::json!({"type": "null"});
    if let Some(Value::Array(alts)) = p.get_mut("anyOf") {
        alts.retain(|a| *a != null);
        if alts.len() == 1 {
            let only = alts.pop().expect("one alternative");
            p.remove("anyOf");
            if let Value::Object(o) = only {
                p.extend(o);
            }
        }
    } else if let Some(Value::Array(types)) = p.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.pop().expect("one type");
            p.insert("type".into(), only);
        }
    }
}

/// Puts [`components`] into an OpenAPI document's `components.schemas`,
/// keeping everything else (paths, security schemes) as it is.
pub fn with_components(mut doc: Value) -> Value {
    if !doc["components"].is_object() {
        doc["components"] = Value::Object(Map::new());
    }
    doc["components"]["schemas"] = Value::Object(components());
    doc
}

/// The `$ref`s of `doc` that name no schema of its `components.schemas`.
///
/// ```
/// let doc = serde_json::json!({"paths": {"/x": {"$ref": "#/components/schemas/Nope"}}});
/// assert_eq!(mero_api::schema::dangling_refs(&mero_api::schema::with_components(doc)), ["Nope"]);
/// ```
pub fn dangling_refs(doc: &Value) -> Vec<String> {
    fn walk(v: &Value, schemas: &Map<String, Value>, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref"
                        && let Some(name) = v.as_str().and_then(|r| r.strip_prefix(REF_PREFIX))
                        && !schemas.contains_key(name)
                    {
                        out.push(name.to_owned());
                    }
                    walk(v, schemas, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, schemas, out)),
            _ => {}
        }
    }
    let empty = Map::new();
    let schemas = doc["components"]["schemas"].as_object().unwrap_or(&empty);
    let mut out = Vec::new();
    walk(doc, schemas, &mut out);
    out.sort();
    out.dedup();
    out
}
