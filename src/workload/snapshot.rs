//! Immutable snapshot Secrets: one per (service, SecretRef, content), named after the content
//! hash, so each Deployment revision stays pinned to the exact data it was built with and a
//! rollback brings the old values back.

use super::{Inputs, child_metadata, fit_name, service_label, service_name};
use crate::api::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, SecureApiServiceSpec, owner_label_key};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use std::collections::{BTreeMap, BTreeSet};

/// Annotation on a snapshot: the Secret Manager version its data came from.
pub const VERSION_ANNOTATION: &str = "secureapi.dev/version";
/// Annotation on a snapshot: the full content hash of its data.
pub const CONTENT_HASH_ANNOTATION: &str = "secureapi.dev/content-hash";

/// Longest Secret name (a DNS subdomain).
const MAX_NAME_LEN: usize = 253;
/// Hex characters of the content hash kept in a snapshot's name.
const SHORT_HASH_LEN: usize = 10;

/// Label key naming the SecretRef a snapshot copies: `secureapi.dev/secretref`.
pub fn secretref_label() -> String {
    owner_label_key("SecretRef")
}

/// `<service>-<secretref>-<first 10 hex of the content hash>`, at most 253 characters.
///
/// When `<service>-<secretref>` is too long it is cut and followed by 8 hex of its own SHA-256
/// (so two long pairs never share a name); the content hash always stays last.
pub fn snapshot_name(service: &str, secret_ref: &str, content_hash: &str) -> String {
    let short: String = content_hash.chars().take(SHORT_HASH_LEN).collect();
    let readable = format!("{service}-{secret_ref}");
    let room = MAX_NAME_LEN - 1 - short.len();
    format!("{}-{short}", fit_name(&readable, room))
}

/// Every SecretRef name used by `secretEnv` and `secretFiles`.
pub fn referenced_secret_refs(spec: &SecureApiServiceSpec) -> BTreeSet<String> {
    let from_env = spec.secret_env.iter().map(|e| e.secret_ref.clone());
    let from_files = spec.secret_files.iter().map(|f| f.secret_ref.clone());
    from_env.chain(from_files).collect()
}

/// The immutable snapshot of one SecretRef's resolved data, or `None` when `secret_ref` is not
/// in [`Inputs::secrets`].
pub fn snapshot_secret(inputs: &Inputs<'_>, secret_ref: &str) -> Option<Secret> {
    let resolved = inputs.secrets.get(secret_ref)?;
    let service = service_name(inputs);
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
        (service_label(), service.clone()),
        (secretref_label(), secret_ref.to_string()),
    ]);
    let mut metadata = child_metadata(inputs, snapshot_name(&service, secret_ref, &resolved.content_hash), labels);
    metadata.annotations = Some(BTreeMap::from([
        (VERSION_ANNOTATION.to_string(), resolved.version.clone()),
        (CONTENT_HASH_ANNOTATION.to_string(), resolved.content_hash.clone()),
    ]));
    Some(Secret {
        metadata,
        immutable: Some(true),
        type_: Some("Opaque".into()),
        data: Some(resolved.data.iter().map(|(k, v)| (k.clone(), ByteString(v.clone()))).collect()),
        ..Secret::default()
    })
}

/// The snapshots of every SecretRef the spec references, sorted by SecretRef name.
///
/// # Errors
/// [`MissingSecret`] with the first (by name) referenced SecretRef absent from the inputs.
pub fn snapshot_secrets(inputs: &Inputs<'_>) -> Vec<Secret> {
    referenced_secret_refs(&inputs.service.spec).into_iter().filter_map(|name| snapshot_secret(inputs, &name)).collect()
}

/// Snapshot name of every referenced SecretRef, by SecretRef name.
pub(super) fn snapshot_names(inputs: &Inputs<'_>) -> BTreeMap<String, String> {
    let service = service_name(inputs);
    referenced_secret_refs(&inputs.service.spec)
        .into_iter()
        .filter_map(|name| {
            let resolved = inputs.secrets.get(&name)?;
            Some((name.clone(), snapshot_name(&service, &name, &resolved.content_hash)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::MissingSecret;
    use super::super::fixtures::{DNS_SUBDOMAIN, inputs, seed_secrets, seed_service, service_with, valid};
    use super::*;
    use serde_json::json;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_snapshot_is_named_after_service_secretref_and_short_content_hash() {
        assert_eq!(snapshot_name("secure-api", "db", HASH), "secure-api-db-0123456789");
    }

    #[test]
    fn snapshot_names_stay_valid_distinct_and_stable_for_long_names() {
        let service = format!("{}.api", "s".repeat(200));
        let name = snapshot_name(&service, &"r".repeat(200), HASH);
        assert!(valid(&name, DNS_SUBDOMAIN, 253), "{name}");
        assert!(name.ends_with("-0123456789"), "the content hash stays: {name}");
        assert_eq!(name, snapshot_name(&service, &"r".repeat(200), HASH));
        assert_ne!(name, snapshot_name(&service, &"q".repeat(200), HASH));
        let just_fits = snapshot_name(&"a".repeat(120), &"b".repeat(121), HASH);
        assert_eq!(just_fits.len(), 253);
        assert!(just_fits.starts_with(&format!("{}-{}-", "a".repeat(120), "b".repeat(121))));
    }

    #[test]
    fn the_snapshot_is_an_immutable_owned_labelled_copy_of_the_data() {
        let (service, secrets) = (seed_service(), seed_secrets());
        let Some(secret) = snapshot_secret(&inputs(&service, &secrets), "db") else {
            panic!("db is resolved");
        };
        let db = &secrets["db"];
        assert_eq!(secret.metadata.name, Some(snapshot_name("secure-api", "db", &db.content_hash)));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("demo"));
        assert_eq!(secret.immutable, Some(true));
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        let data: BTreeMap<String, Vec<u8>> =
            secret.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
        assert_eq!(data, db.data);
        let labels = secret.metadata.labels.unwrap_or_default();
        assert_eq!(labels.get("app.kubernetes.io/managed-by").map(String::as_str), Some("secure-api-operator"));
        assert_eq!(labels.get("secureapi.dev/secureapiservice").map(String::as_str), Some("secure-api"));
        assert_eq!(labels.get("secureapi.dev/secretref").map(String::as_str), Some("db"));
        let annotations = secret.metadata.annotations.unwrap_or_default();
        assert_eq!(annotations.get("secureapi.dev/version"), Some(&db.version));
        assert_eq!(annotations.get("secureapi.dev/content-hash"), Some(&db.content_hash));
        let owners = secret.metadata.owner_references.unwrap_or_default();
        assert!(matches!(owners.as_slice(), [o] if o.controller == Some(true) && o.name == "secure-api"));
    }

    #[test]
    fn an_unresolved_secretref_has_no_snapshot() {
        let (service, secrets) = (seed_service(), seed_secrets());
        assert!(snapshot_secret(&inputs(&service, &secrets), "nope").is_none());
    }

    #[test]
    fn referenced_secretrefs_come_from_secret_env_and_secret_files() {
        let refs: Vec<String> = referenced_secret_refs(&seed_service().spec).into_iter().collect();
        assert_eq!(refs, ["config", "db", "keys"]);
        let plain = service_with("plain", json!({ "image": "example.com/plain:1" }));
        assert!(referenced_secret_refs(&plain.spec).is_empty());
    }

    #[test]
    fn all_snapshots_are_built_or_the_missing_secretref_is_named() {
        let (service, mut secrets) = (seed_service(), seed_secrets());
        let all = snapshot_secrets(&inputs(&service, &secrets));
        assert_eq!(all.len(), 3);
        secrets.remove("keys");
        assert_eq!(Inputs::new(&service, &secrets).map(|_| ()), Err(MissingSecret("keys".into())));
    }
}
