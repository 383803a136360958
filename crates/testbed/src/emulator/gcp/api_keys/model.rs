//! An API key, its restrictions and its JSON. The key string is kept here but never written
//! into a key's JSON (nor its `Debug`): only `getKeyString` answers it.

use super::rest::timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::fmt;

/// `@type` of a key in an operation's `response`.
pub const KEY_TYPE: &str = "type.googleapis.com/google.api.apikeys.v2.Key";

/// Google's key strings: `AIza` and 35 characters of URL-safe base64, 39 in all.
const KEY_STRING_PREFIX: &str = "AIza";
const KEY_STRING_RANDOM: usize = 35;
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// One `apiTargets` entry: a service the key may call, and which of its methods (all when
/// empty; a trailing `*` matches a prefix).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiTarget {
    pub service: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

impl ApiTarget {
    /// Whether this target lets `method` of `service` through.
    pub fn allows(&self, service: &str, method: &str) -> bool {
        self.service == service && (self.methods.is_empty() || self.methods.iter().any(|m| method_matches(m, method)))
    }

    /// Whether this target is for `service`.
    pub fn is_for(&self, service: &str) -> bool {
        self.service == service
    }
}

fn method_matches(pattern: &str, method: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => method.starts_with(prefix),
        None => pattern == method,
    }
}

/// A key's `restrictions`: `apiTargets` understood, the client restrictions (browser, server,
/// Android, iOS) kept as sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restrictions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_targets: Vec<ApiTarget>,
    #[serde(flatten)]
    pub clients: Map<String, Value>,
}

/// A random 39-character key string. Not `Display`ed anywhere but `getKeyString`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyString(pub String);

impl fmt::Debug for KeyString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyString(<redacted>)")
    }
}

impl KeyString {
    /// A fresh key string from the system's secure random source; `None` if it failed.
    pub fn generate() -> Option<Self> {
        let mut bytes = [0u8; KEY_STRING_RANDOM];
        SystemRandom::new().fill(&mut bytes).ok()?;
        // 256 is a multiple of 64, so taking each byte modulo 64 is unbiased.
        let random: String = bytes.iter().map(|b| char::from(URL_SAFE[usize::from(b % 64)])).collect();
        Some(Self(format!("{KEY_STRING_PREFIX}{random}")))
    }
}

/// A random UUID (version 4), as keys' `uid`.
pub fn new_uid() -> Option<String> {
    let mut b = [0u8; 16];
    SystemRandom::new().fill(&mut b).ok()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    Some(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

/// One API key.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    /// `projects/P/locations/global/keys/ID`.
    pub name: String,
    pub uid: String,
    pub display_name: Option<String>,
    pub key_string: KeyString,
    pub restrictions: Restrictions,
    pub annotations: Map<String, Value>,
    pub create_time: jiff::Timestamp,
    pub update_time: jiff::Timestamp,
    /// Set while the key is deleted (and can be undeleted).
    pub delete_time: Option<jiff::Timestamp>,
    /// Bumped by every change, for the etag.
    pub generation: u64,
}

impl Key {
    /// The last segment of the name.
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }

    /// `projects/P` of the key.
    pub fn project(&self) -> String {
        self.name.split('/').take(2).collect::<Vec<_>>().join("/")
    }

    /// A weak etag that changes with every update (URL-safe: clients pass it in a query).
    pub fn etag(&self) -> String {
        let seed = format!("{}/{}/{}", self.uid, self.generation, self.update_time.as_nanosecond());
        format!("W/\"{}\"", URL_SAFE_NO_PAD.encode(crc32c::crc32c(seed.as_bytes()).to_be_bytes()))
    }

    /// The Key resource as `get` answers it: no `keyString`.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("name".into(), json!(self.name));
        object.insert("uid".into(), json!(self.uid));
        if let Some(display_name) = &self.display_name {
            object.insert("displayName".into(), json!(display_name));
        }
        object.insert("createTime".into(), json!(timestamp(self.create_time)));
        object.insert("updateTime".into(), json!(timestamp(self.update_time)));
        if let Some(deleted) = self.delete_time {
            object.insert("deleteTime".into(), json!(timestamp(deleted)));
        }
        if !self.annotations.is_empty() {
            object.insert("annotations".into(), Value::Object(self.annotations.clone()));
        }
        if self.restrictions != Restrictions::default() {
            object.insert("restrictions".into(), json!(self.restrictions));
        }
        object.insert("etag".into(), json!(self.etag()));
        Value::Object(object)
    }

    /// The key as an operation's `response`: its JSON with the `@type` first.
    pub fn to_typed_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("@type".into(), json!(KEY_TYPE));
        if let Value::Object(fields) = self.to_json() {
            object.extend(fields);
        }
        Value::Object(object)
    }
}
