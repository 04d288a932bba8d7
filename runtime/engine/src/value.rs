//! Conversion between JSON (what apps send) and Loro values (what the state holds).
//!
//! Values are stored structurally, not as opaque blobs, so a context's state
//! exports as readable JSON.

use std::collections::HashMap;

use loro::LoroValue;
use serde_json::Value as Json;

use crate::error::EngineError;

/// Parses JSON text into a Loro value.
pub fn json_bytes_to_loro(bytes: &[u8]) -> Result<LoroValue, EngineError> {
    let json: Json = serde_json::from_slice(bytes)
        .map_err(|e| EngineError::invalid(format!("value is not valid JSON: {e}")))?;
    json_to_loro(json)
}

/// Converts a JSON value into a Loro value.
///
/// Integers must fit `i64`: Loro stores integers as `i64`, and silently turning
/// a large `u64` into a float would lose data.
pub fn json_to_loro(json: Json) -> Result<LoroValue, EngineError> {
    Ok(match json {
        Json::Null => LoroValue::Null,
        Json::Bool(b) => LoroValue::Bool(b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                LoroValue::I64(i)
            } else if n.is_u64() {
                return Err(EngineError::invalid(format!(
                    "integer {n} is larger than i64::MAX and cannot be stored exactly; store it as a string"
                )));
            } else {
                LoroValue::Double(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => LoroValue::from(s),
        Json::Array(items) => LoroValue::from(
            items
                .into_iter()
                .map(json_to_loro)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Json::Object(map) => {
            let mut out = HashMap::with_capacity(map.len());
            for (k, v) in map {
                out.insert(k, json_to_loro(v)?);
            }
            LoroValue::from(out)
        }
    })
}

/// Converts a Loro value into JSON. Binary becomes an array of bytes; a nested
/// container reference (only seen in shallow values) becomes its id string.
pub fn loro_to_json(value: &LoroValue) -> Json {
    match value {
        LoroValue::Null => Json::Null,
        LoroValue::Bool(b) => Json::Bool(*b),
        LoroValue::Double(d) => serde_json::Number::from_f64(*d).map_or(Json::Null, Json::Number),
        LoroValue::I64(i) => Json::from(*i),
        LoroValue::Binary(b) => Json::from(b.to_vec()),
        LoroValue::String(s) => Json::String(s.to_string()),
        LoroValue::List(items) => Json::Array(items.iter().map(loro_to_json).collect()),
        LoroValue::Map(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), loro_to_json(v)))
                .collect(),
        ),
        LoroValue::Container(id) => Json::String(id.to_string()),
    }
}

/// Serializes a Loro value as JSON text.
pub fn loro_to_json_bytes(value: &LoroValue) -> Vec<u8> {
    serde_json::to_vec(&loro_to_json(value)).expect("JSON values always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_structured_values() {
        let json = serde_json::json!({"a": [1, 2.5, "x", null, true], "b": {"c": -7}});
        let loro = json_to_loro(json.clone()).unwrap();
        assert_eq!(loro_to_json(&loro), json);
    }

    #[test]
    fn refuses_integers_beyond_i64() {
        let err = json_bytes_to_loro(b"18446744073709551615").unwrap_err();
        assert!(err.to_string().contains("i64::MAX"), "{err}");
    }
}
