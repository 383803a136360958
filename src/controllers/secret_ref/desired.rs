//! The target Secret a SecretRef wants (pure: no I/O), its content hash, and whether a live
//! Secret already is what we want.

use super::error::Error;
use super::mapping::map_payload;
use crate::api::secret_ref::CreationPolicy;
use crate::api::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, SecretRef, owner_label_key};
use crate::hash_key::HashKey;
use crate::provider::FetchedVersion;
use crate::secret_data::{SecretData, live_data};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

/// Annotation on the target Secret: the Secret Manager version number it holds.
pub const VERSION_ANNOTATION: &str = "secureapi.dev/version";

/// Label that ties a Secret to its SecretRef: `secureapi.dev/secretref: <name>`.
pub fn secretref_label() -> String {
    owner_label_key("SecretRef")
}

/// Name of the Secret a SecretRef writes (its own name unless `target.name` says otherwise).
pub fn target_name(secret_ref: &SecretRef) -> String {
    secret_ref.spec.target.name.clone().unwrap_or_else(|| secret_ref.name_any())
}

/// The checked payload, rendered: the Secret to apply and the hash of its data.
pub struct Built {
    pub secret: Secret,
    pub hash: String,
}

/// Verifies the payload's CRC32C, maps it to Secret keys as the spec says and builds the target
/// Secret (pure). Nothing is built from a payload that fails either check. The hash is the one in
/// status while the content is the same (an upgrade alone renames nothing), else `key`'s.
pub fn build(secret_ref: &SecretRef, fetched: &FetchedVersion, key: &HashKey) -> Result<Built, Error> {
    if fetched.crc32c.is_some_and(|sum| sum != crc32c::crc32c(fetched.data.expose())) {
        return Err(Error::ChecksumMismatch { version: fetched.version.clone() });
    }
    let data = map_payload(fetched.data.expose(), secret_ref.spec.format, &secret_ref.spec.keys)
        .map_err(|source| Error::InvalidPayload { version: fetched.version.clone(), source })?;
    let recorded = secret_ref.status.as_ref().and_then(|s| s.content_hash.as_deref());
    let hash = key.keep_or_hash(&data, recorded);
    Ok(Built { hash, secret: desired_secret(secret_ref, &data, &fetched.version) })
}

/// The Secret to apply: our labels over the user's, the version annotation, the owner reference
/// when `creationPolicy: Owner`, the type, and the data.
pub fn desired_secret(secret_ref: &SecretRef, data: &SecretData, version: &str) -> Secret {
    let target = &secret_ref.spec.target;
    let mut labels = target.labels.clone();
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
    labels.insert(secretref_label(), secret_ref.name_any());
    let mut annotations = target.annotations.clone();
    annotations.insert(VERSION_ANNOTATION.into(), version.into());
    let owner = match target.creation_policy {
        CreationPolicy::Owner => secret_ref.controller_owner_ref(&()).map(|r| vec![r]),
        CreationPolicy::Orphan => None,
    };
    Secret {
        metadata: ObjectMeta {
            name: Some(target_name(secret_ref)),
            namespace: secret_ref.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: owner,
            ..ObjectMeta::default()
        },
        type_: Some(target.type_.clone().unwrap_or_else(|| "Opaque".into())),
        data: Some(data.iter().map(|(k, v)| (k.clone(), ByteString(v.clone()))).collect()),
        ..Secret::default()
    }
}

/// Whether a live Secret carries our labels for this SecretRef.
pub fn has_our_labels(live: &Secret, secret_ref_name: &str) -> bool {
    let labels = live.labels();
    labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE)
        && labels.get(&secretref_label()).map(String::as_str) == Some(secret_ref_name)
}

/// Whether a live Secret belongs to this SecretRef: our labels, or our owner reference (labels
/// someone removed are restored, not taken as a reason to let go). Anyone else's is never touched.
pub fn is_ours(live: &Secret, secret_ref: &SecretRef) -> bool {
    let owned = secret_ref.uid().is_some_and(|uid| live.owner_references().iter().any(|o| o.uid == uid));
    owned || has_our_labels(live, &secret_ref.name_any())
}

fn contains_all(live: &BTreeMap<String, String>, wanted: Option<&BTreeMap<String, String>>) -> bool {
    wanted.into_iter().flatten().all(|(k, v)| live.get(k) == Some(v))
}

/// Whether applying `desired` would change nothing that matters: same data and type, our labels,
/// annotations and owner reference present.
pub fn live_matches(live: &Secret, desired: &Secret) -> bool {
    let same_data = live_data(live) == desired.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
    let same_type = live.type_.as_deref().unwrap_or("Opaque") == desired.type_.as_deref().unwrap_or("Opaque");
    let live_owners = live.metadata.owner_references.clone().unwrap_or_default();
    let desired_owners = desired.metadata.owner_references.clone().unwrap_or_default();
    let owners_match = desired_owners.iter().all(|o| live_owners.iter().any(|l| l.uid == o.uid))
        && (!desired_owners.is_empty()
            || !live_owners.iter().any(|l| l.controller == Some(true) && l.kind == "SecretRef"));
    same_data
        && same_type
        && owners_match
        && contains_all(live.labels(), desired.metadata.labels.as_ref())
        && contains_all(live.annotations(), desired.metadata.annotations.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret_ref(target: serde_json::Value) -> SecretRef {
        serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": "db", "namespace": "prod", "uid": "u-1" },
            "spec": { "secret": "api-config-db", "target": target },
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn data() -> SecretData {
        BTreeMap::from([("password".to_string(), b"pw".to_vec())])
    }

    #[test]
    fn the_desired_secret_is_owned_labelled_and_typed() {
        let secret = desired_secret(&secret_ref(json!({ "labels": { "team": "api" } })), &data(), "7");
        assert_eq!(secret.metadata.name.as_deref(), Some("db"));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("prod"));
        let labels = secret.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("team").map(String::as_str), Some("api"));
        assert_eq!(labels.get("secureapi.dev/secretref").map(String::as_str), Some("db"));
        assert_eq!(secret.metadata.owner_references.as_ref().map(Vec::len), Some(1));
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        assert!(has_our_labels(&secret, "db"));
        assert!(!has_our_labels(&secret, "other"));
        assert!(is_ours(&secret, &secret_ref(json!({}))));
    }

    #[test]
    fn orphan_secrets_carry_no_owner_reference_and_a_custom_name() {
        let secret =
            desired_secret(&secret_ref(json!({ "name": "db-creds", "creationPolicy": "Orphan" })), &data(), "1");
        assert_eq!(secret.metadata.name.as_deref(), Some("db-creds"));
        assert!(secret.metadata.owner_references.is_none());
    }

    #[test]
    fn a_live_secret_with_extra_labels_still_matches_but_changed_data_does_not() {
        let desired = desired_secret(&secret_ref(json!({})), &data(), "7");
        let mut live = desired.clone();
        live.metadata.labels.get_or_insert_default().insert("added-by".into(), "someone".into());
        assert!(live_matches(&live, &desired));
        live.data = Some(BTreeMap::from([("password".to_string(), ByteString(b"edited".to_vec()))]));
        assert!(!live_matches(&live, &desired));
    }

    fn fetched(payload: &[u8], crc32c: Option<u32>) -> FetchedVersion {
        FetchedVersion {
            version: "7".into(),
            data: std::sync::Arc::new(crate::gcp::SecretBytes::new(payload.to_vec())),
            crc32c,
        }
    }

    fn json_ref(status: serde_json::Value) -> SecretRef {
        serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": "db", "namespace": "prod", "uid": "u-1" },
            "spec": { "secret": "api-config-db", "format": "json" },
            "status": status,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_payload_that_fails_its_checksum_builds_nothing() {
        let payload = br#"{"password":"pw"}"#;
        let key = crate::hash_key::tests::test_key();
        let corrupted = build(&json_ref(json!({})), &fetched(payload, Some(crc32c::crc32c(payload) ^ 1)), &key);
        assert!(
            matches!(&corrupted, Err(Error::ChecksumMismatch { version }) if version == "7"),
            "{:?}",
            corrupted.err()
        );
        let intact = build(&json_ref(json!({})), &fetched(payload, Some(crc32c::crc32c(payload))), &key);
        assert!(intact.is_ok(), "{:?}", intact.err());
        assert!(
            build(&json_ref(json!({})), &fetched(payload, None), &key).is_ok(),
            "no checksum sent: nothing to verify"
        );
    }

    #[test]
    fn a_payload_the_mapping_refuses_builds_nothing_and_names_the_version_not_the_data() {
        let key = crate::hash_key::tests::test_key();
        let refused = build(&json_ref(json!({})), &fetched(b"password=SENTINEL", None), &key).err();
        let message = refused.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(matches!(refused, Some(Error::InvalidPayload { .. })), "{message}");
        assert!(message.starts_with("version 7: the payload is not valid JSON"), "{message}");
        assert!(!message.contains("SENTINEL"), "{message}");
    }

    #[test]
    fn the_recorded_hash_is_kept_while_the_content_is_the_same_and_replaced_when_it_changes() {
        let key = crate::hash_key::tests::test_key();
        let payload = br#"{"password":"pw"}"#;
        let first = build(&json_ref(json!({})), &fetched(payload, None), &key).unwrap_or_else(|e| panic!("{e}"));
        let recorded = json_ref(json!({ "contentHash": first.hash }));
        let again = build(&recorded, &fetched(payload, None), &key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.hash, first.hash);
        let rotated =
            build(&recorded, &fetched(br#"{"password":"pw2"}"#, None), &key).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(rotated.hash, first.hash);
        assert_eq!(rotated.secret.data.and_then(|d| d.get("password").cloned()), Some(ByteString(b"pw2".to_vec())));
    }

    #[test]
    fn the_version_written_is_annotated_and_the_type_comes_from_the_spec() {
        let tls = secret_ref(json!({ "type": "kubernetes.io/tls", "annotations": { "team": "api" } }));
        let secret = desired_secret(&tls, &data(), "12");
        let annotations = secret.metadata.annotations.unwrap_or_default();
        assert_eq!(annotations.get(VERSION_ANNOTATION).map(String::as_str), Some("12"));
        assert_eq!(annotations.get("team").map(String::as_str), Some("api"));
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    }
}
