//! Request bodies and the answers that are not a key or an operation.

use super::model::Restrictions;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// A `Key` as a create or patch sends it. Output-only fields (`name`, `uid`, times, `etag`,
/// `keyString`) and unsupported ones (`serviceAccountEmail`) are accepted and ignored.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyBody {
    pub display_name: Option<String>,
    pub restrictions: Option<Restrictions>,
    pub annotations: Option<Map<String, Value>>,
}

/// `{"keys":[...],"nextPageToken":"..."}`; an empty list is `{}`.
pub fn list_json(keys: Vec<Value>, next: Option<String>) -> Value {
    let mut object = Map::new();
    if !keys.is_empty() {
        object.insert("keys".into(), Value::Array(keys));
    }
    if let Some(token) = next {
        object.insert("nextPageToken".into(), json!(token));
    }
    Value::Object(object)
}

/// `lookupKey`'s answer: the key's project location and name.
pub fn lookup_json(name: &str) -> Value {
    let parent = name.split('/').take(4).collect::<Vec<_>>().join("/");
    json!({ "parent": parent, "name": name })
}

/// `getKeyString`'s answer, the one place a key string is written.
pub fn key_string_json(key_string: &str) -> Value {
    json!({ "keyString": key_string })
}
