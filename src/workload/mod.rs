//! Pure builders of what a SecureApiService runs on: immutable secret snapshots, the hardened
//! Deployment, its ServiceAccount, Service, HorizontalPodAutoscaler and PodDisruptionBudget.
//!
//! Pure means no I/O, no async, no clock and no randomness: the same [`Inputs`] always give the
//! same objects, names and hashes, so the controller can compare desired with live objects and a
//! steady cluster sees no writes.
//!
//! Every object built here lives in the service's namespace, carries a controller owner reference
//! to the SecureApiService and the labels `app.kubernetes.io/managed-by: secure-api-operator` and
//! `secureapi.dev/secureapiservice: <service>`.

pub mod canary;
pub mod deployment;
pub mod http_route;
pub mod names;
pub mod quantity;
pub mod service;
pub mod snapshot;

use crate::api::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, SecureApiService, owner_label_key};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use ring::digest::{SHA256, digest};
use std::collections::BTreeMap;
use std::fmt::{self, Write};

/// Kubernetes' recommended label naming the application; part of the pod selector.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// Name of the container port, used by probes and the Service's `targetPort`.
pub const PORT_NAME: &str = "http";

/// One SecretRef's synced data, as resolved by the controller.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedSecret {
    /// Secret Manager version the data was synced from (a number, never `latest`).
    pub version: String,
    /// The SecretRef's recorded content hash (64 lowercase hex: HMAC-SHA256 under the operator's
    /// key, or the plain SHA-256 of an earlier version); its first 10 name the snapshot.
    pub content_hash: String,
    /// The synced data, key by key.
    pub data: BTreeMap<String, Vec<u8>>,
}

// Secret values must never reach logs: Debug shows the version, hash and key names only.
impl fmt::Debug for ResolvedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedSecret")
            .field("version", &self.version)
            .field("content_hash", &self.content_hash)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Everything the builders need besides the spec, checked: every SecretRef the spec references
/// is resolved, so building cannot fail. Made only by [`Inputs::new`].
///
/// Precondition: `service.metadata` has `name`, `namespace` and `uid` set (true for any object
/// read from the API server). Without a uid the owner reference is left out; without a namespace
/// the objects carry none.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The SecureApiService being built.
    service: &'a SecureApiService,
    /// Resolved data of SecretRefs, by SecretRef name. Entries the spec does not reference are
    /// ignored.
    secrets: &'a BTreeMap<String, ResolvedSecret>,
    defaults: PodDefaults,
}

/// The pod-template defaults a build uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodDefaults {
    /// As revisions were built before `automountServiceAccountToken: false`,
    /// `enableServiceLinks: false` and the `/tmp` size limit: built only to recognise a running
    /// revision of those days, so that an operator upgrade alone rolls nothing.
    Original,
    /// Today's.
    #[default]
    Hardened,
}

impl<'a> Inputs<'a> {
    /// Checks that every SecretRef the spec uses (in `secretEnv` or `secretFiles`) is in
    /// `secrets`; otherwise [`MissingSecret`] names the first missing one (by name).
    pub fn new(
        service: &'a SecureApiService,
        secrets: &'a BTreeMap<String, ResolvedSecret>,
    ) -> Result<Self, MissingSecret> {
        match snapshot::referenced_secret_refs(&service.spec).into_iter().find(|name| !secrets.contains_key(name)) {
            Some(missing) => Err(MissingSecret(missing)),
            None => Ok(Self { service, secrets, defaults: PodDefaults::Hardened }),
        }
    }

    /// The same inputs built with the [`PodDefaults::Original`] pod, when the spec sets nothing
    /// that only the hardened pod has (a spec that does must not be built without it).
    pub fn original(self) -> Option<Self> {
        let spec = &self.service.spec;
        let automount = spec.service_account.as_ref().is_some_and(|sa| sa.automount_token);
        (!automount && spec.tmp_size_limit.is_none()).then_some(Self { defaults: PodDefaults::Original, ..self })
    }

    pub fn service(&self) -> &'a SecureApiService {
        self.service
    }

    pub fn secrets(&self) -> &'a BTreeMap<String, ResolvedSecret> {
        self.secrets
    }
}

/// A SecretRef the spec references (in `secretEnv` or `secretFiles`) is missing from the
/// resolved secrets; the controller must resolve it before building.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("SecretRef {0:?} is referenced by the spec but was not resolved")]
pub struct MissingSecret(pub String);

/// Value of [`crate::api::SECRET_VERSIONS_ANNOTATION`]: `db=7,keys=3`, sorted by SecretRef name.
pub fn secret_versions_annotation(secrets: &BTreeMap<String, ResolvedSecret>) -> String {
    versions_line(secrets.iter())
}

/// `name=version` pairs joined by commas, in the iterator's order.
fn versions_line<'a>(secrets: impl Iterator<Item = (&'a String, &'a ResolvedSecret)>) -> String {
    let pairs: Vec<String> = secrets.map(|(name, secret)| format!("{name}={}", secret.version)).collect();
    pairs.join(",")
}

/// Label key naming the owning SecureApiService: `secureapi.dev/secureapiservice`.
pub fn service_label() -> String {
    owner_label_key("SecureApiService")
}

/// Labels of the pods, and the Deployment's selector: `app.kubernetes.io/name` and
/// `secureapi.dev/secureapiservice`, both the service's name.
pub fn selector_labels(service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(NAME_LABEL.to_string(), service.to_string()), (service_label(), service.to_string())])
}

/// Labels of the Deployment, Service, ServiceAccount, HPA and PDB: the selector labels plus
/// `app.kubernetes.io/managed-by: secure-api-operator`.
pub fn object_labels(service: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(service);
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
    labels
}

/// Name of the pods' ServiceAccount: `spec.serviceAccount.name`, or the service's name.
pub fn service_account_name(service: &SecureApiService) -> String {
    let configured = service.spec.service_account.as_ref().and_then(|sa| sa.name.clone());
    configured.unwrap_or_else(|| service.name_any())
}

/// The service's name (`metadata.name`).
fn service_name(inputs: &Inputs<'_>) -> String {
    inputs.service.name_any()
}

/// Controller owner reference to the SecureApiService. `blockOwnerDeletion` keeps foreground
/// deletion of the service waiting for its children.
fn owner_references(service: &SecureApiService) -> Option<Vec<OwnerReference>> {
    let owner = service.controller_owner_ref(&())?;
    Some(vec![OwnerReference { block_owner_deletion: Some(true), ..owner }])
}

/// Metadata of a child object: name, the service's namespace, labels and owner reference.
fn child_metadata(inputs: &Inputs<'_>, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    metadata_of_child(inputs.service, name, labels)
}

fn metadata_of_child(service: &SecureApiService, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: service.namespace(),
        labels: Some(labels),
        owner_references: owner_references(service),
        ..ObjectMeta::default()
    }
}

/// The spec's int-or-string (a count or a percentage) as Kubernetes' own type. The spec's type
/// lives in a private module of `crate::api`, so it is taken through its `Display`, which is the
/// value as written; counts that do not fit an `i32` go through as text for the server to reject.
fn int_or_string(value: &impl fmt::Display) -> IntOrString {
    let text = value.to_string();
    text.parse().map_or(IntOrString::String(text), IntOrString::Int)
}

/// The first `len` lowercase hex characters of the SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8], len: usize) -> String {
    let mut hex = String::with_capacity(64);
    for byte in digest(&SHA256, bytes).as_ref() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex.truncate(len);
    hex
}

/// `readable` when it fits in `max` characters; otherwise its start, a dash and 8 hex of the
/// SHA-256 of `readable`, so distinct long inputs keep distinct, stable names.
fn fit_name(readable: &str, max: usize) -> String {
    if readable.len() <= max { readable.to_string() } else { hashed_name(readable, readable, max) }
}

/// `shown` cut to leave room for `-<8 hex of key's SHA-256>` within `max` characters. The cut
/// never ends in `-` or `.`, which DNS names forbid before a separator.
fn hashed_name(shown: &str, key: &str, max: usize) -> String {
    let keep = max.saturating_sub(9);
    let cut: String = shown.chars().take(keep).collect();
    format!("{}-{}", cut.trim_end_matches(['-', '.']), sha256_hex(key.as_bytes(), 8))
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! The seed scenario shared by the builders' tests.

    use super::{Inputs, ResolvedSecret, sha256_hex};
    use crate::api::SecureApiService;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// A DNS-1123 subdomain (object names).
    pub const DNS_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
    /// A DNS-1123 label (volume and port names).
    pub const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

    /// Whether `name` matches `pattern` and is at most `max` long.
    pub fn valid(name: &str, pattern: &str, max: usize) -> bool {
        let re = regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{e}"));
        name.len() <= max && re.is_match(name)
    }

    /// `secure-api` in `demo`: 2 replicas, 1 CPU, 512Mi, port 8080, `/health`, DB_* from `db`,
    /// files from `keys`, FEATURE_FLAGS from `config`, Workload Identity.
    pub fn seed_spec() -> serde_json::Value {
        json!({
            "image": "example.com/secure-api:1.0",
            "port": 8080,
            "replicas": 2,
            "resources": {
                "requests": { "cpu": 1, "memory": "512Mi" },
                "limits": { "cpu": 1, "memory": "512Mi" },
            },
            "env": [{ "name": "LOG_LEVEL", "value": "info" }],
            "secretEnv": [
                { "name": "DB_HOST", "secretRef": "db", "key": "host" },
                { "name": "DB_PORT", "secretRef": "db", "key": "port" },
                { "name": "DB_USER", "secretRef": "db", "key": "username" },
                { "name": "DB_PASSWORD", "secretRef": "db", "key": "password" },
                { "name": "FEATURE_FLAGS", "secretRef": "config", "key": "flags" },
            ],
            "secretFiles": [{ "secretRef": "keys", "mountPath": "/secrets/keys" }],
            "serviceAccount": { "gcpServiceAccount": "secure-api-sa@demo-project.iam.gserviceaccount.com" },
            "healthCheck": { "path": "/health", "initialDelaySeconds": 5 },
        })
    }

    /// A SecureApiService named `name` in `demo` with `spec`.
    pub fn service_with(name: &str, spec: serde_json::Value) -> SecureApiService {
        serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService",
            "metadata": { "name": name, "namespace": "demo", "uid": "uid-1" },
            "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The seed SecureApiService.
    pub fn seed_service() -> SecureApiService {
        service_with("secure-api", seed_spec())
    }

    /// The seed spec with `patch`'s top-level fields replaced (`null` removes one).
    pub fn seed_service_patched(patch: serde_json::Value) -> SecureApiService {
        let mut spec = seed_spec();
        if let (Some(spec), Some(patch)) = (spec.as_object_mut(), patch.as_object()) {
            for (key, value) in patch {
                if value.is_null() {
                    spec.remove(key);
                } else {
                    spec.insert(key.clone(), value.clone());
                }
            }
        }
        service_with("secure-api", spec)
    }

    /// A resolved secret whose content hash is the SHA-256 of its (key, value) pairs.
    pub fn resolved(version: &str, pairs: &[(&str, &str)]) -> ResolvedSecret {
        let data: BTreeMap<String, Vec<u8>> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
        let mut bytes = vec![];
        for (key, value) in &data {
            bytes.extend_from_slice(format!("{key}={}\n", String::from_utf8_lossy(value)).as_bytes());
        }
        ResolvedSecret { version: version.into(), content_hash: sha256_hex(&bytes, 64), data }
    }

    /// The seed's `db` secret at `version` with `password`.
    pub fn db(version: &str, password: &str) -> ResolvedSecret {
        resolved(version, &[("host", "db.example.com"), ("port", "5432"), ("username", "api"), ("password", password)])
    }

    /// Resolved `db` (version 7), `keys` (version 3) and `config` (version 1).
    pub fn seed_secrets() -> BTreeMap<String, ResolvedSecret> {
        BTreeMap::from([
            ("db".to_string(), db("7", "pw1")),
            ("keys".to_string(), resolved("3", &[("signing.pem", "-----BEGIN KEY-----")])),
            ("config".to_string(), resolved("1", &[("flags", "beta=on")])),
        ])
    }

    /// Inputs over borrowed fixtures (every referenced SecretRef resolved).
    pub fn inputs<'a>(service: &'a SecureApiService, secrets: &'a BTreeMap<String, ResolvedSecret>) -> Inputs<'a> {
        Inputs::new(service, secrets).unwrap_or_else(|e| panic!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{DNS_LABEL, DNS_SUBDOMAIN, resolved, seed_secrets, seed_service, valid};
    use super::*;

    #[test]
    fn the_versions_annotation_lists_every_secret_sorted_by_name() {
        assert_eq!(secret_versions_annotation(&seed_secrets()), "config=1,db=7,keys=3");
        assert_eq!(secret_versions_annotation(&BTreeMap::new()), "");
    }

    #[test]
    fn debug_output_of_a_resolved_secret_never_shows_values() {
        let shown = format!("{:?}", resolved("4", &[("password", "hunter2")]));
        assert!(shown.contains("password") && shown.contains('4'), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn owner_references_are_controller_and_block_owner_deletion() {
        let owners = owner_references(&seed_service()).unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "SecureApiService");
        assert_eq!(owners[0].api_version, "secureapi.dev/v1alpha1");
        assert_eq!((owners[0].controller, owners[0].block_owner_deletion), (Some(true), Some(true)));
    }

    #[test]
    fn labels_name_the_service_and_the_operator() {
        let labels = object_labels("secure-api");
        assert_eq!(labels.get("app.kubernetes.io/name").map(String::as_str), Some("secure-api"));
        assert_eq!(labels.get("app.kubernetes.io/managed-by").map(String::as_str), Some("secure-api-operator"));
        assert_eq!(labels.get("secureapi.dev/secureapiservice").map(String::as_str), Some("secure-api"));
        assert!(!selector_labels("secure-api").contains_key(MANAGED_BY_LABEL));
    }

    #[test]
    fn long_names_are_cut_with_a_stable_distinguishing_hash() {
        // The cut falls right after `.`: it must not end the readable part.
        let long = format!("{}.-{}", "a".repeat(53), "x".repeat(20));
        let fitted = fit_name(&long, 63);
        assert!(valid(&fitted, DNS_LABEL, 63), "{fitted}");
        assert!(fitted.starts_with(&format!("{}-", "a".repeat(53))), "{fitted}");
        assert_eq!(fitted, fit_name(&long, 63));
        assert_ne!(fitted, fit_name(&format!("{}.-{}", "a".repeat(53), "y".repeat(20)), 63));
        assert_eq!(fit_name("short", 63), "short");
        assert!(valid(&fit_name(&"b.".repeat(200), 253), DNS_SUBDOMAIN, 253));
    }
}
