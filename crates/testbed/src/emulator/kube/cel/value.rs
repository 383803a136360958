//! The validated object as CEL sees it: JSON values become `cel::Value`s.

use std::sync::Arc;

use kube_cel::cel::Value as CelValue;
use kube_cel::cel::objects::{Key, Map};
use serde_json::Value;

/// JSON numbers become ints when whole and in range (uints above `i64::MAX`), as integer-typed
/// schema fields do in CEL; objects become maps with string keys.
pub fn to_cel(value: &Value) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => CelValue::Int(i),
            (None, Some(u)) => CelValue::UInt(u),
            _ => CelValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(items) => CelValue::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(fields) => {
            let entries = fields.iter().map(|(key, value)| (Key::String(Arc::new(key.clone())), to_cel(value)));
            CelValue::Map(Map { map: Arc::new(entries.collect()) })
        }
    }
}
