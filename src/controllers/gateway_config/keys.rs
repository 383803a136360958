//! The API keys a GatewayConfig wants (pure): one deterministic key id per key and rotation, the
//! Secret each string goes into, and how status changes when a key is replaced or retired.
//!
//! The id is `<gateway>-<name>-<hash>` of everything that asks for a new key (namespace, object,
//! key name, `rotation`, the rotate annotation, `methods`), 128 bits of it: no other object finds
//! its id by chance or by trying. Creating it twice is ALREADY_EXISTS, so a crash between creating
//! a key and recording it can never leave two new keys. Each key carries its owner in its
//! annotations; a key under our id that does not is someone else's and is neither used nor
//! deleted.

use crate::api::gateway_config::{
    API_KEY_ID_ANNOTATION, ApiKeyStatus, DEFAULT_KEY_OVERLAP, GatewayApiKey, ROTATE_API_KEYS_ANNOTATION, RetiredApiKey,
};
use crate::api::{GatewayConfig, GatewayConfigStatus, MANAGED_BY_LABEL, MANAGED_BY_VALUE, owner_label_key};
use crate::runtime::error::InvalidField;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::{Resource, ResourceExt};
use ring::digest::{SHA256, digest};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest API key id Google accepts.
const MAX_KEY_ID: usize = 63;
/// Hex digits of the hash in a key id: 128 bits.
const HASH_LEN: usize = 32;
/// Hex digits of the hash in ids made before they carried 128 bits: such a key, recorded in
/// status, keeps its id until it rotates.
const LEGACY_HASH_LEN: usize = 10;
/// Annotations on an API key naming the GatewayConfig it was made for.
const OWNER_NAMESPACE_ANNOTATION: &str = "secureapi.dev/namespace";
const OWNER_NAME_ANNOTATION: &str = "secureapi.dev/gatewayconfig";

/// One key of the spec with the id it should have now.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired<'a> {
    pub spec: &'a GatewayApiKey,
    pub key_id: String,
    pub display_name: String,
    pub overlap: Duration,
    /// With `rotationPeriod`: when the id changes next.
    pub next_rotation: Option<Time>,
}

/// Which period of `rotationPeriod` `now` is in, counted from the GatewayConfig's creation, and
/// when the next one starts. Part of the key id: a new period is a new key, made once whatever
/// crashes, as a `rotation` bump is.
fn period_of(gateway: &GatewayConfig, period: Duration, now: &Time) -> (u64, Time) {
    let anchor = gateway.metadata.creation_timestamp.as_ref().map_or(jiff::Timestamp::UNIX_EPOCH, |t| t.0);
    let period_secs = period.as_secs().max(1);
    let elapsed = u64::try_from(now.0.as_second().saturating_sub(anchor.as_second())).unwrap_or(0);
    let index = elapsed / period_secs;
    let next_secs = i64::try_from((index + 1).saturating_mul(period_secs)).unwrap_or(i64::MAX);
    let next = anchor.checked_add(jiff::SignedDuration::from_secs(next_secs)).unwrap_or(jiff::Timestamp::MAX);
    (index, Time(next))
}

/// The keys of the spec at `now`; a negative overlap is an invalid spec.
pub fn desired<'a>(gateway: &'a GatewayConfig, gateway_id: &str, now: &Time) -> Result<Vec<Desired<'a>>, InvalidField> {
    let annotation = gateway.annotations().get(ROTATE_API_KEYS_ANNOTATION).map(String::as_str).unwrap_or_default();
    let namespace = gateway.namespace().unwrap_or_default();
    gateway
        .spec
        .api_keys
        .iter()
        .map(|spec| {
            if spec.overlap.is_negative() {
                let field = format!("spec.apiKeys[{}].overlap", spec.name);
                return Err(InvalidField::new(field, format!("{} is negative", spec.overlap)));
            }
            let overlap = Duration::from(spec.overlap);
            let display = format!("{namespace}/{}/{}", gateway.name_any(), spec.name);
            let period = spec.rotation_period.filter(|p| !p.is_negative()).map(|p| period_of(gateway, p.into(), now));
            // Keys without a period keep the ids they had before periods existed.
            let epoch = period.as_ref().map(|(index, _)| format!("{annotation}\nperiod {index}"));
            let annotation = epoch.as_deref().unwrap_or(annotation);
            let id = |hash_len| key_id(gateway_id, &namespace, &gateway.name_any(), spec, annotation, hash_len);
            let legacy = id(LEGACY_HASH_LEN);
            let recorded = gateway.status.iter().flat_map(|s| &s.api_keys);
            let key_id = match recorded.into_iter().any(|k| k.name == spec.name && k.key_id == legacy) {
                true => legacy,
                false => id(HASH_LEN),
            };
            let next_rotation = period.map(|(_, next)| next);
            Ok(Desired { spec, key_id, display_name: display.chars().take(63).collect(), overlap, next_rotation })
        })
        .collect()
}

/// `<gateway id, shortened>-<name>-<hash>`: at most 63 characters of `[a-z0-9-]`, starting with
/// the gateway id's letter.
fn key_id(
    gateway_id: &str,
    namespace: &str,
    object: &str,
    spec: &GatewayApiKey,
    annotation: &str,
    hash_len: usize,
) -> String {
    let mut methods = spec.methods.clone();
    methods.sort();
    let input = [namespace, object, &spec.name, spec.rotation.as_deref().unwrap_or_default(), annotation]
        .into_iter()
        .map(str::to_owned)
        .chain(methods)
        .collect::<Vec<_>>()
        .join("\n");
    let hash: String = digest(&SHA256, input.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect();
    // `name` has at most 20 characters: at least 9 are left for the prefix, a letter first.
    let room = MAX_KEY_ID.saturating_sub(spec.name.len() + hash_len + 2);
    let prefix: String = gateway_id.chars().take(room).collect();
    format!("{}-{}-{}", prefix.trim_end_matches('-'), spec.name, &hash[..hash_len])
}

/// The annotations that say a key is `gateway`'s: its namespace and name.
pub fn owner_annotations(gateway: &GatewayConfig) -> BTreeMap<String, String> {
    BTreeMap::from([
        (OWNER_NAMESPACE_ANNOTATION.to_owned(), gateway.namespace().unwrap_or_default()),
        (OWNER_NAME_ANNOTATION.to_owned(), gateway.name_any()),
    ])
}

/// Whether an API key found under one of our ids is `gateway`'s: its annotations say so, or —
/// made before keys carried them — it has none and `gateway`'s status records it.
pub fn key_is_ours(annotations: &BTreeMap<String, String>, gateway: &GatewayConfig, recorded: bool) -> bool {
    let owner = owner_annotations(gateway);
    match owner.iter().all(|(k, v)| annotations.get(k) == Some(v)) {
        true => true,
        false => recorded && !annotations.contains_key(OWNER_NAMESPACE_ANNOTATION),
    }
}

/// Whether `status` records key `key_id` (current or retired).
pub fn recorded(status: &GatewayConfigStatus, key_id: &str) -> bool {
    status.api_keys.iter().any(|k| k.key_id == key_id) || status.retired_api_keys.iter().any(|k| k.key_id == key_id)
}

/// The Secret holding a key's string: owned by the GatewayConfig, labelled, annotated with the id.
pub fn secret(gateway: &GatewayConfig, desired: &Desired<'_>, key_string: &SecretString) -> Secret {
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (owner_label_key("GatewayConfig"), gateway.name_any()),
    ]);
    let annotations = BTreeMap::from([(API_KEY_ID_ANNOTATION.to_owned(), desired.key_id.clone())]);
    let data =
        BTreeMap::from([(desired.spec.secret_key.clone(), ByteString(key_string.expose_secret().as_bytes().to_vec()))]);
    Secret {
        metadata: ObjectMeta {
            name: Some(desired.spec.secret_name.clone()),
            namespace: gateway.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: gateway.controller_owner_ref(&()).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    }
}

/// Whether a live Secret was made for this GatewayConfig's keys (never someone else's Secret,
/// nor one of ours made for a SecretRef or another GatewayConfig).
pub fn is_ours(live: &Secret, gateway: &GatewayConfig) -> bool {
    let labels = live.labels();
    labels.get(MANAGED_BY_LABEL).is_some_and(|v| v == MANAGED_BY_VALUE)
        && labels.get(&owner_label_key("GatewayConfig")).is_some_and(|owner| *owner == gateway.name_any())
}

/// Whether a live Secret is the operator's and holds key `key_id` (ids are unique to their object).
pub fn holds(live: &Secret, key_id: &str) -> bool {
    let ours = live.labels().get(MANAGED_BY_LABEL).is_some_and(|v| v == MANAGED_BY_VALUE);
    ours && live.annotations().get(API_KEY_ID_ANNOTATION).is_some_and(|id| id == key_id)
}

/// Records that `desired`'s key is now in its Secret: a different key it replaces is retired
/// until `now + overlap`.
pub fn record(status: &mut GatewayConfigStatus, desired: &Desired<'_>, now: &Time) {
    let entry = ApiKeyStatus {
        name: desired.spec.name.clone(),
        key_id: desired.key_id.clone(),
        secret_name: desired.spec.secret_name.clone(),
        next_rotation_time: desired.next_rotation.clone(),
    };
    match status.api_keys.iter_mut().find(|k| k.name == entry.name) {
        Some(current) if current.key_id == entry.key_id => *current = entry,
        Some(current) => {
            let replaced = std::mem::replace(current, entry);
            retire(status, replaced.key_id, desired.overlap, None, now);
        }
        None => status.api_keys.push(entry),
    }
}

/// Keys whose name left the spec are retired with their Secret, after the default overlap.
pub fn retire_removed(status: &mut GatewayConfigStatus, gateway: &GatewayConfig, now: &Time) {
    let overlap = DEFAULT_KEY_OVERLAP;
    let (kept, removed): (Vec<_>, Vec<_>) = std::mem::take(&mut status.api_keys)
        .into_iter()
        .partition(|k| gateway.spec.api_keys.iter().any(|s| s.name == k.name));
    status.api_keys = kept;
    for key in removed {
        retire(status, key.key_id, overlap, Some(key.secret_name), now);
    }
}

fn retire(status: &mut GatewayConfigStatus, key_id: String, overlap: Duration, secret: Option<String>, now: &Time) {
    let overlap = jiff::SignedDuration::try_from(overlap).unwrap_or(jiff::SignedDuration::MAX);
    let delete_after = Time(now.0.checked_add(overlap).unwrap_or(jiff::Timestamp::MAX));
    status.retired_api_keys.push(RetiredApiKey { key_id, delete_after, secret_name: secret });
}

/// The retired keys due for deletion at `now`.
pub fn due<'s>(status: &'s GatewayConfigStatus, now: &Time) -> Vec<&'s RetiredApiKey> {
    status.retired_api_keys.iter().filter(|k| k.delete_after.0 <= now.0).collect()
}

/// How long until the next retired key is due or the next key rotates on its period, if any.
pub fn next_change(status: &GatewayConfigStatus, desired: &[Desired<'_>], now: &Time) -> Option<Duration> {
    let deletions = status.retired_api_keys.iter().map(|k| k.delete_after.0);
    let rotations = desired.iter().filter_map(|d| d.next_rotation.as_ref().map(|t| t.0));
    let next = deletions.chain(rotations).min()?;
    Some(Duration::try_from(next.duration_since(now.0)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::GatewayConfigSpec;

    fn gateway(keys: serde_json::Value) -> GatewayConfig {
        let spec: GatewayConfigSpec = serde_json::from_value(serde_json::json!({
            "routes": [{"path": "/health", "backend": {"address": "http://127.0.0.1:1"}}],
            "apiKeys": keys,
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut gateway = GatewayConfig::new("secure-api", spec);
        gateway.metadata.namespace = Some("team-a".into());
        gateway.metadata.uid = Some("u-1".into());
        gateway
    }

    fn at(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000 + seconds).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn key_ids_are_stable_valid_and_change_with_what_asks_for_a_new_key() {
        let first = gateway(serde_json::json!([{"name": "client", "secretName": "client-key"}]));
        let all = desired(&first, "secure-api", &at(0)).unwrap_or_default();
        let [one] = &all[..] else { panic!("one key") };
        assert_eq!(one.key_id, desired(&first, "secure-api", &at(0)).unwrap_or_default()[0].key_id);
        assert!(one.key_id.starts_with("secure-api-client-") && one.key_id.len() <= 63, "{}", one.key_id);
        let rotated = gateway(serde_json::json!([{"name": "client", "secretName": "client-key", "rotation": "2"}]));
        assert_ne!(desired(&rotated, "secure-api", &at(0)).unwrap_or_default()[0].key_id, one.key_id);
        let mut annotated = first.clone();
        annotated.annotations_mut().insert(ROTATE_API_KEYS_ANNOTATION.into(), "now".into());
        assert_ne!(desired(&annotated, "secure-api", &at(0)).unwrap_or_default()[0].key_id, one.key_id);
        let long = desired(&first, &"g".repeat(50), &at(0)).unwrap_or_default()[0].key_id.clone();
        assert!(long.len() <= 63 && long.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        assert_eq!(one.overlap, Duration::from_secs(86_400));
    }

    #[test]
    fn a_rotation_period_changes_the_id_once_a_period_from_the_objects_creation() {
        let keys = serde_json::json!([{"name": "client", "secretName": "client-key", "rotationPeriod": "10s", "overlap": "5s"}]);
        let mut periodic = gateway(keys);
        periodic.metadata.creation_timestamp = Some(at(0));
        let id_at = |seconds| desired(&periodic, "secure-api", &at(seconds)).unwrap_or_default()[0].clone();
        assert_eq!(id_at(0).key_id, id_at(9).key_id, "one key for the whole period");
        assert_ne!(id_at(9).key_id, id_at(10).key_id, "a new key when the next period starts");
        assert_eq!(id_at(10).key_id, id_at(19).key_id);
        assert_eq!(id_at(3).next_rotation, Some(at(10)));
        assert_eq!(id_at(10).next_rotation, Some(at(20)));
        assert_eq!(next_change(&GatewayConfigStatus::default(), &[id_at(3)], &at(3)), Some(Duration::from_secs(7)));
        // Without a period the id stays what it was before periods existed.
        let plain = gateway(serde_json::json!([{"name": "client", "secretName": "client-key"}]));
        assert_eq!(desired(&plain, "secure-api", &at(0)).unwrap_or_default()[0].next_rotation, None);
    }

    #[test]
    fn key_ids_carry_128_bits_and_a_recorded_shorter_id_is_kept_until_it_rotates() {
        let spec = gateway(serde_json::json!([{"name": "client", "secretName": "client-key"}]));
        let id = desired(&spec, "secure-api", &at(0)).unwrap_or_default()[0].key_id.clone();
        let hash = id.rsplit('-').next().unwrap_or_default();
        assert_eq!(hash.len(), 32, "{id}");
        let legacy = format!("secure-api-client-{}", &hash[..LEGACY_HASH_LEN]);
        let mut before = spec.clone();
        before.status = Some(GatewayConfigStatus {
            api_keys: vec![ApiKeyStatus {
                name: "client".into(),
                key_id: legacy.clone(),
                secret_name: "client-key".into(),
                next_rotation_time: None,
            }],
            ..GatewayConfigStatus::default()
        });
        assert_eq!(desired(&before, "secure-api", &at(0)).unwrap_or_default()[0].key_id, legacy);
        let mut other = before.clone();
        if let Some(status) = other.status.as_mut() {
            status.api_keys[0].key_id = "secure-api-client-0000000000".into();
        }
        assert_eq!(
            desired(&other, "secure-api", &at(0)).unwrap_or_default()[0].key_id,
            id,
            "only our own legacy id is kept"
        );
    }

    #[test]
    fn a_key_is_ours_by_its_annotations_or_by_record_when_it_has_none() {
        let spec = gateway(serde_json::json!([{"name": "c", "secretName": "s"}]));
        let ours = owner_annotations(&spec);
        assert!(key_is_ours(&ours, &spec, false));
        let mut another = spec.clone();
        another.metadata.namespace = Some("team-b".into());
        assert!(!key_is_ours(&owner_annotations(&another), &spec, false));
        assert!(!key_is_ours(&owner_annotations(&another), &spec, true), "a record never overrides an owner");
        assert!(!key_is_ours(&BTreeMap::new(), &spec, false), "made by someone else under our id");
        assert!(key_is_ours(&BTreeMap::new(), &spec, true), "made and recorded before keys carried owners");
    }

    #[test]
    fn a_bad_overlap_is_an_invalid_spec() {
        // Not a duration at all: the kind refuses it before any controller sees it.
        let spec = serde_json::json!({
            "routes": [{"path": "/health", "backend": {"address": "http://127.0.0.1:1"}}],
            "apiKeys": [{"name": "c", "secretName": "s", "overlap": "soon"}],
        });
        assert!(serde_json::from_value::<GatewayConfigSpec>(spec).is_err());
    }

    /// The CRD's pattern refuses a negative overlap; one written under an older CRD is named.
    #[test]
    fn a_negative_overlap_is_an_invalid_spec_that_names_the_key() {
        let bad = gateway(serde_json::json!([{"name": "c", "secretName": "s", "overlap": "-1h"}]));
        let refused = desired(&bad, "g", &at(0)).err().map(|e| e.to_string());
        assert_eq!(refused.as_deref(), Some("invalid spec: spec.apiKeys[c].overlap: -3600s is negative"));
    }

    #[test]
    fn a_replaced_key_is_retired_for_the_overlap_and_a_removed_one_with_its_secret() {
        let spec = gateway(serde_json::json!([{"name": "c", "secretName": "s", "overlap": "1h"}]));
        let mut status = GatewayConfigStatus::default();
        let first = desired(&spec, "g", &at(0)).unwrap_or_default()[0].clone();
        record(&mut status, &first, &at(0));
        record(&mut status, &first, &at(5));
        assert!(status.retired_api_keys.is_empty(), "recording the same key twice retires nothing");
        let second = Desired { key_id: "g-c-other".into(), ..first.clone() };
        record(&mut status, &second, &at(10));
        assert_eq!(status.api_keys[0].key_id, "g-c-other");
        assert_eq!(status.retired_api_keys[0].key_id, first.key_id);
        assert_eq!(status.retired_api_keys[0].delete_after, at(3610));
        assert!(due(&status, &at(3609)).is_empty());
        assert_eq!(due(&status, &at(3610)).len(), 1);
        assert_eq!(next_change(&status, &[], &at(10)), Some(Duration::from_secs(3600)));
        retire_removed(&mut status, &gateway(serde_json::json!([])), &at(20));
        assert!(status.api_keys.is_empty());
        assert_eq!(status.retired_api_keys[1].secret_name.as_deref(), Some("s"));
    }

    #[test]
    fn the_secret_is_owned_labelled_and_names_the_key() {
        let spec = gateway(serde_json::json!([{"name": "c", "secretName": "s"}]));
        let key = desired(&spec, "g", &at(0)).unwrap_or_default()[0].clone();
        let secret = secret(&spec, &key, &SecretString::from("k-1"));
        assert!(holds(&secret, &key.key_id));
        assert!(!holds(&secret, "other"));
        assert!(is_ours(&secret, &spec));
        let mut another = spec.clone();
        another.metadata.name = Some("another".into());
        assert!(!is_ours(&secret, &another), "a Secret of another GatewayConfig is not this one's");
        assert_eq!(secret.metadata.owner_references.map(|o| o.len()), Some(1));
        assert_eq!(secret.data.and_then(|d| d.get("api-key").cloned()), Some(ByteString(b"k-1".to_vec())));
    }

    #[test]
    fn the_order_of_methods_does_not_make_a_new_key_and_another_method_does() {
        let key = |methods: serde_json::Value| {
            let spec = gateway(serde_json::json!([{"name": "c", "secretName": "s", "methods": methods}]));
            desired(&spec, "g", &at(0)).unwrap_or_default()[0].key_id.clone()
        };
        assert_eq!(key(serde_json::json!(["getData", "listItems"])), key(serde_json::json!(["listItems", "getData"])));
        assert_ne!(key(serde_json::json!(["getData"])), key(serde_json::json!(["getData", "listItems"])));
    }

    #[test]
    fn nothing_retired_means_no_deletion_is_due() {
        let status = GatewayConfigStatus::default();
        assert_eq!(next_change(&status, &[], &at(0)), None);
        assert!(due(&status, &at(0)).is_empty());
        assert!(!recorded(&status, "g-c-1"));
    }
}
