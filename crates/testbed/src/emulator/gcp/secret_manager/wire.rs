//! The JSON of the REST API: request bodies in, resources out (camelCase, int64 as strings, bytes
//! as base64, empty fields left out as proto3 JSON does).

use super::rest::{decode_bytes, parse_body};
use super::rotation::RotationBody;
use super::rpc::RpcError;
use super::store::{MAX_PAYLOAD_BYTES, Payload, Replication, Secret, SecretFields, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// An int64 field: proto3 JSON writes it as a string and accepts a number too.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Int64 {
    Text(String),
    Number(i64),
}

impl Int64 {
    /// The number, `None` when the text is not one.
    pub fn value(&self) -> Option<i64> {
        match self {
            Self::Text(text) => text.trim().parse().ok(),
            Self::Number(number) => Some(*number),
        }
    }
}

/// A Secret as sent to create and patch. Output-only fields are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretBody {
    #[serde(rename = "name")]
    _name: Option<IgnoredAny>,
    pub replication: Option<Replication>,
    #[serde(rename = "createTime")]
    _create_time: Option<IgnoredAny>,
    pub labels: Option<BTreeMap<String, String>>,
    pub topics: Option<Vec<Topic>>,
    pub etag: Option<String>,
    pub version_aliases: Option<BTreeMap<String, Int64>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub rotation: Option<RotationBody>,
    pub expire_time: Option<Value>,
    pub ttl: Option<String>,
    pub version_destroy_ttl: Option<Value>,
    pub customer_managed_encryption: Option<Value>,
    /// Input only: tags bind at creation and are not part of the resource.
    #[serde(rename = "tags")]
    _tags: Option<IgnoredAny>,
}

/// A Pub/Sub topic of a secret.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Topic {
    #[serde(default)]
    pub name: String,
}

impl SecretBody {
    /// The fields of a new secret.
    pub fn into_fields(self) -> Result<SecretFields, RpcError> {
        let mut echoed = Map::new();
        let expire_time = match &self.ttl {
            Some(ttl) => Some(Value::String(expire_time_after(ttl)?)),
            None => self.expire_time.clone(),
        };
        let optional = [
            ("expireTime", expire_time),
            ("versionDestroyTtl", self.version_destroy_ttl.clone()),
            ("customerManagedEncryption", self.customer_managed_encryption.clone()),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                echoed.insert(field.to_owned(), value);
            }
        }
        Ok(SecretFields {
            version_aliases: self.aliases()?,
            rotation: self.rotation.as_ref().map(RotationBody::rotation).transpose()?.flatten(),
            topics: self.topic_names(),
            labels: self.labels.unwrap_or_default(),
            annotations: self.annotations.unwrap_or_default(),
            echoed,
        })
    }

    /// The names of the topics, `projects/P/topics/T`.
    pub fn topic_names(&self) -> Vec<String> {
        self.topics.iter().flatten().map(|topic| topic.name.clone()).collect()
    }

    /// The aliases with their version numbers, which must be positive.
    pub fn aliases(&self) -> Result<BTreeMap<String, u64>, RpcError> {
        let mut aliases = BTreeMap::new();
        for (alias, version) in self.version_aliases.iter().flatten() {
            let number = version.value().and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0);
            let number = number.ok_or_else(|| {
                RpcError::invalid_argument(format!("Invalid value at 'secret.version_aliases[{alias}]' (TYPE_INT64)."))
            })?;
            aliases.insert(alias.clone(), number);
        }
        Ok(aliases)
    }
}

/// `now + ttl`, for a ttl written as a proto Duration (`"86400s"`, `"1.5s"`).
pub fn expire_time_after(ttl: &str) -> Result<String, RpcError> {
    let invalid = || {
        RpcError::invalid_argument(format!(
            "Invalid value at 'secret.ttl' (type.googleapis.com/google.protobuf.Duration), {ttl}"
        ))
    };
    let seconds: f64 =
        ttl.strip_suffix('s').and_then(|s| s.parse().ok()).filter(|s: &f64| *s >= 0.0).ok_or_else(invalid)?;
    let duration = jiff::SignedDuration::try_from_secs_f64(seconds).map_err(|_| invalid())?;
    let expire = jiff::Timestamp::now().checked_add(duration).map_err(|_| invalid())?;
    Ok(format!("{expire:.6}"))
}

/// The body of `:addVersion`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddVersionBody {
    #[serde(rename = "parent")]
    _parent: Option<IgnoredAny>,
    payload: Option<PayloadBody>,
}

/// No `Debug`: it holds the secret data.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PayloadBody {
    data: Option<String>,
    data_crc32c: Option<Int64>,
}

/// The body of `:enable`, `:disable` and `:destroy`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeVersionBody {
    #[serde(rename = "name")]
    _name: Option<IgnoredAny>,
    pub etag: Option<String>,
}

/// The payload of an `:addVersion` body, and whether the client sent a checksum. The data must
/// be base64, at most 64 KiB, and match `dataCrc32c` when one is given.
pub fn parse_add_version(body: &[u8]) -> Result<(Payload, bool), RpcError> {
    let request: AddVersionBody = parse_body(body)?;
    let payload = request.payload.ok_or_else(|| RpcError::invalid_argument("Secret Payload is required."))?;
    let data = decode_bytes(payload.data.as_deref().unwrap_or_default(), "payload.data")?;
    if data.len() > MAX_PAYLOAD_BYTES {
        return Err(RpcError::invalid_argument(format!(
            "Secret Payload cannot be larger than {MAX_PAYLOAD_BYTES} bytes; it has {} bytes.",
            data.len()
        )));
    }
    let Some(claimed) = payload.data_crc32c else { return Ok((Payload::new(data), false)) };
    if claimed.value() != Some(i64::from(crc32c::crc32c(&data))) {
        return Err(RpcError::invalid_argument(
            "Checksum mismatch: the CRC32C of payload.data does not match payload.data_crc32c.",
        ));
    }
    Ok((Payload::new(data), true))
}

/// The CRC32C (Castagnoli) of `data` as the API writes it: a decimal int64 in a string.
pub fn crc32c_decimal(data: &[u8]) -> String {
    crc32c::crc32c(data).to_string()
}

/// A Secret resource.
pub fn secret_json(secret: &Secret) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), json!(secret.name.to_string()));
    if let Some(replication) = &secret.replication {
        object.insert("replication".into(), json!(replication));
    }
    object.insert("createTime".into(), json!(secret.create_time));
    object.insert("etag".into(), json!(secret.etag));
    let fields = &secret.fields;
    insert_map(&mut object, "labels", &fields.labels);
    insert_map(&mut object, "annotations", &fields.annotations);
    let aliases: BTreeMap<&String, String> = fields.version_aliases.iter().map(|(a, n)| (a, n.to_string())).collect();
    insert_map(&mut object, "versionAliases", &aliases);
    if !fields.topics.is_empty() {
        let topics: Vec<Value> = fields.topics.iter().map(|name| json!({ "name": name })).collect();
        object.insert("topics".into(), Value::Array(topics));
    }
    if let Some(rotation) = fields.rotation {
        object.insert("rotation".into(), rotation.to_json());
    }
    object.extend(fields.echoed.clone());
    Value::Object(object)
}

fn insert_map<K: serde::Serialize, V: serde::Serialize>(
    object: &mut Map<String, Value>,
    key: &str,
    map: &BTreeMap<K, V>,
) {
    if !map.is_empty() {
        object.insert(key.into(), json!(map));
    }
}

/// A SecretVersion resource (never its payload).
pub fn version_json(version: &Version) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), json!(version.name));
    object.insert("createTime".into(), json!(version.create_time));
    if let Some(destroy_time) = &version.destroy_time {
        object.insert("destroyTime".into(), json!(destroy_time));
    }
    object.insert("state".into(), json!(version.state.as_str()));
    if let Some(replication) = &version.replication {
        object.insert("replicationStatus".into(), replication_status(replication));
    }
    object.insert("etag".into(), json!(version.etag));
    if version.client_checksum {
        object.insert("clientSpecifiedPayloadChecksum".into(), json!(true));
    }
    Value::Object(object)
}

/// Where a version is stored: all of Google (`automatic`) or the listed locations.
fn replication_status(replication: &Replication) -> Value {
    match &replication.user_managed {
        Some(managed) => {
            let replicas: Vec<Value> = managed.replicas.iter().map(|r| json!({ "location": r.location })).collect();
            json!({ "userManaged": { "replicas": replicas } })
        }
        None => json!({ "automatic": {} }),
    }
}

/// The answer of `:access`: the resolved version name and the payload with its CRC32C.
pub fn access_json(version: &Version, payload: &Payload) -> Value {
    json!({
        "name": version.name,
        "payload": { "data": STANDARD.encode(payload.data()), "dataCrc32c": crc32c_decimal(payload.data()) },
    })
}

/// Makes an `:access` answer's `dataCrc32c` wrong (for the `wrong_checksum` fault).
pub fn corrupt_checksum(access: &mut Value) {
    if let Some(checksum) = access.pointer_mut("/payload/dataCrc32c") {
        let right = checksum.as_str().and_then(|text| text.parse::<u32>().ok()).unwrap_or_default();
        *checksum = json!((right ^ 1).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::super::names::SecretName;
    use super::super::store::{Store, VersionState};
    use super::*;

    fn add_version_body(data: &[u8], crc: Option<Value>) -> Vec<u8> {
        let mut payload = json!({ "data": STANDARD.encode(data) });
        if let Some(crc) = crc {
            payload["dataCrc32c"] = crc;
        }
        json!({ "payload": payload }).to_string().into_bytes()
    }

    fn accessed(data: &[u8]) -> Value {
        let mut store = Store::default();
        let name = SecretName::global("p", "s");
        store.insert_secret(name.clone(), Some(Replication::automatic()), SecretFields::default());
        let number = store.add_version(&name, Payload::new(data.to_vec()), false).map(|v| v.number);
        assert_eq!(number, Ok(1));
        match store.access(&name.version("latest")) {
            Ok((version, payload)) => access_json(version, payload),
            Err(error) => panic!("access: {error}"),
        }
    }

    #[test]
    fn crc32c_is_written_as_a_decimal_int64_string() {
        // The CRC32C check value of "123456789" is 0xE3069283.
        assert_eq!(crc32c_decimal(b"123456789"), "3808858755");
        assert_eq!(crc32c_decimal(b""), "0");
    }

    #[test]
    fn access_answers_base64_data_with_its_crc32c_and_the_number_name() {
        let value = accessed(b"hello");
        assert_eq!(
            value,
            json!({"name": "projects/p/secrets/s/versions/1", "payload": {"data": "aGVsbG8=", "dataCrc32c": crc32c_decimal(b"hello")}})
        );
    }

    #[test]
    fn a_corrupted_checksum_no_longer_matches_the_data() {
        let mut value = accessed(b"hello");
        corrupt_checksum(&mut value);
        assert_ne!(value["payload"]["dataCrc32c"], json!(crc32c_decimal(b"hello")));
        assert!(value["payload"]["dataCrc32c"].as_str().is_some_and(|t| t.parse::<u32>().is_ok()));
    }

    #[test]
    fn a_payload_with_a_matching_checksum_as_string_or_number_is_accepted() {
        let crc = crc32c::crc32c(b"pw");
        let as_string = parse_add_version(&add_version_body(b"pw", Some(json!(crc.to_string()))));
        assert!(matches!(as_string, Ok((ref p, true)) if p.data() == b"pw"));
        let as_number = parse_add_version(&add_version_body(b"pw", Some(json!(crc))));
        assert!(matches!(as_number, Ok((_, true))));
        assert!(matches!(parse_add_version(&add_version_body(b"pw", None)), Ok((_, false))));
    }

    #[test]
    fn a_checksum_mismatch_is_invalid_argument() {
        let error = parse_add_version(&add_version_body(b"pw", Some(json!("12345")))).err();
        assert!(matches!(error, Some(ref e) if e.message.starts_with("Checksum mismatch") && e.http_status == 400));
    }

    #[test]
    fn a_payload_over_64_kib_is_invalid_argument() {
        assert!(parse_add_version(&add_version_body(&vec![b'a'; MAX_PAYLOAD_BYTES], None)).is_ok());
        let error = parse_add_version(&add_version_body(&vec![b'a'; MAX_PAYLOAD_BYTES + 1], None)).err();
        assert_eq!(error.map(|e| e.code.name()), Some("INVALID_ARGUMENT"));
    }

    #[test]
    fn bad_base64_is_rejected_without_echoing_the_data() {
        let body = json!({ "payload": { "data": "s3cr3t!!" } }).to_string();
        let error = parse_add_version(body.as_bytes()).err();
        assert!(matches!(error, Some(ref e) if !e.message.contains("s3cr3t")), "{error:?}");
    }

    #[test]
    fn url_safe_and_unpadded_base64_is_accepted() {
        let body = json!({ "payload": { "data": "-_8" } }).to_string();
        assert!(matches!(parse_add_version(body.as_bytes()), Ok((ref p, false)) if p.data() == [0xfb, 0xff]));
    }

    #[test]
    fn unknown_body_fields_are_invalid_argument() {
        let error = parse_body::<SecretBody>(br#"{"replication":{"automatic":{}},"secret_id":"x"}"#).err();
        assert!(matches!(error, Some(ref e) if e.message.contains("secret_id")), "{error:?}");
    }

    #[test]
    fn an_empty_body_reads_as_an_empty_object() {
        assert!(matches!(parse_body::<ChangeVersionBody>(b""), Ok(ChangeVersionBody { etag: None, .. })));
    }

    #[test]
    fn a_secret_leaves_out_empty_fields_and_writes_aliases_as_strings() {
        let mut store = Store::default();
        let name = SecretName::global("p", "s");
        let fields = SecretFields { labels: BTreeMap::from([("team".into(), "a".into())]), ..Default::default() };
        store.insert_secret(name.clone(), Some(Replication::automatic()), fields);
        assert!(store.add_version(&name, Payload::new(b"x".to_vec()), false).is_ok());
        assert_eq!(store.set_alias(&name, "current", 1), Ok(()));
        let value = store.secret(&name).map(secret_json).unwrap_or_default();
        assert_eq!(value["replication"], json!({"automatic": {}}));
        assert_eq!(value["labels"], json!({"team": "a"}));
        assert_eq!(value["versionAliases"], json!({"current": "1"}));
        assert!(value.get("topics").is_none() && value.get("annotations").is_none());
    }

    #[test]
    fn a_version_carries_state_replication_status_and_its_checksum_flag() {
        let mut store = Store::default();
        let name = SecretName::global("p", "s");
        store.insert_secret(name.clone(), Some(Replication::automatic()), SecretFields::default());
        let value = store.add_version(&name, Payload::new(b"x".to_vec()), true).map(version_json).unwrap_or_default();
        assert_eq!(value["state"], VersionState::Enabled.as_str());
        assert_eq!(value["replicationStatus"], json!({"automatic": {}}));
        assert_eq!(value["clientSpecifiedPayloadChecksum"], json!(true));
        assert!(value.get("payload").is_none() && value.get("destroyTime").is_none());
    }

    #[test]
    fn ttl_becomes_an_expire_time_in_the_future() {
        let expire =
            expire_time_after("3600s").map(|t| t.parse::<jiff::Timestamp>().map(|t| t > jiff::Timestamp::now()));
        assert!(matches!(expire, Ok(Ok(true))));
        assert!(expire_time_after("one hour").is_err());
    }
}
