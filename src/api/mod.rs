//! The three custom resources of `secureapi.dev/v1alpha1`, their condition vocabulary and the
//! schema pieces they share.
//!
//! This module holds types only (serde + schemars + kube derive). It imports nothing else from
//! the crate, so the CRDs can be generated and read without pulling in controller code.

pub mod conditions;
pub mod gateway_config;
mod policy;
mod rollout;
mod schema;
pub mod secret_ref;
pub mod secure_api_service;
mod traffic;

pub use conditions::{Condition, ConditionStatus};
pub use gateway_config::{GatewayConfig, GatewayConfigSpec, GatewayConfigStatus};
pub use policy::DeletionPolicy;
pub use secret_ref::{SecretRef, SecretRefSpec, SecretRefStatus, UnusableState, UnusableVersion};
pub use secure_api_service::{SecureApiService, SecureApiServiceSpec, SecureApiServiceStatus};

/// API group of every kind this operator defines.
pub const GROUP: &str = "secureapi.dev";
/// API version of every kind this operator defines.
pub const VERSION: &str = "v1alpha1";
/// Category under which `kubectl get secureapi` lists all three kinds.
pub const CATEGORY: &str = "secureapi";
/// Finalizer the controllers put on objects whose deletion needs clean-up.
pub const FINALIZER: &str = "secureapi.dev/cleanup";
/// ServiceAccount annotation naming the Google service account it acts as (GKE Workload
/// Identity; the operator impersonates it for objects that name the ServiceAccount).
pub const GCP_SERVICE_ACCOUNT_ANNOTATION: &str = "iam.gke.io/gcp-service-account";
/// ServiceAccount annotation that opts it in: a comma-separated list of the kinds whose
/// `spec.serviceAccountName` it serves (`SecretRef`, `GatewayConfig`, `*` for all). Set by whoever
/// administers ServiceAccounts, so a tenant cannot borrow one that was never meant for our objects.
pub const USABLE_BY_ANNOTATION: &str = "secureapi.dev/usable-by";
/// Label set on everything the operator creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The longest label value (and DNS label) Kubernetes accepts: the most a name may have where it
/// is written into labels of the objects made for it.
pub const MAX_LABEL_VALUE: usize = 63;
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "secure-api-operator";
/// Annotation whose change (to any new value) asks for an immediate re-check of a SecretRef.
pub const REFRESH_ANNOTATION: &str = "secureapi.dev/refresh";
/// Pod-template annotation written on a SecretRef's rollout targets: `<secretref>=<version>`.
pub const SECRET_VERSION_ANNOTATION: &str = "secureapi.dev/secret-version";
/// Pod-template annotation of a SecureApiService revision: `<ref>=<version>,...`.
pub const SECRET_VERSIONS_ANNOTATION: &str = "secureapi.dev/secret-versions";

/// A CEL rule on the whole object (`self` is the object; of its metadata only `name` and
/// `generateName` are visible). The schema cannot constrain `metadata.name` any other way.
/// No `fieldPath`: kube-apiserver accepts one only for paths its schema declares, and a CRD's
/// schema cannot declare `metadata.name`.
#[derive(Clone, Copy, Debug)]
pub struct ObjectRule {
    pub rule: &'static str,
    pub message: &'static str,
}

/// `metadata.name` fits a label value: for kinds whose name labels the objects made for them.
pub const NAME_FITS_A_LABEL: ObjectRule = ObjectRule {
    rule: "size(self.metadata.name) <= 63",
    message: "metadata.name must be at most 63 characters: it is written as a label value on the objects made for it",
};

/// Label key `secureapi.dev/<kind>` that names the owning object on everything created for it.
pub fn owner_label_key(kind: &str) -> String {
    format!("{GROUP}/{}", kind.to_ascii_lowercase())
}

/// Server-side apply field manager of one controller: `secure-api-operator/<controller>`.
pub fn field_manager(controller: &str) -> String {
    format!("{MANAGED_BY_VALUE}/{controller}")
}

#[cfg(test)]
mod example_tests {
    //! The durations of the kinds are `kube::core::Duration`s: every example object must read the
    //! same before and after, and through the operator's own serialization.
    use super::{GatewayConfig, SecretRef, SecureApiService};
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::Value;
    use std::time::Duration;

    const EXAMPLES: [(&str, &str); 3] = [
        ("secretrefs.yaml", include_str!("../../deploy/examples/secretrefs.yaml")),
        ("secure-api.yaml", include_str!("../../deploy/examples/secure-api.yaml")),
        ("gateway.yaml", include_str!("../../deploy/examples/gateway.yaml")),
    ];

    /// The documents of an example file, as JSON.
    fn documents(text: &str) -> Vec<Value> {
        text.split("\n---")
            .filter_map(|document| serde_saphyr::from_str::<Value>(document).ok())
            .filter(|value| value.is_object())
            .collect()
    }

    /// `value` read as `K`, written back and read again: both reads equal, and the written form
    /// holds every field the example had.
    fn round_trip<K: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(file: &str, value: &Value) -> K {
        let read: K = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let written = serde_json::to_value(&read).unwrap_or_else(|e| panic!("{file}: {e}"));
        let again: K = serde_json::from_value(written.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(read, again, "{file}: the object reads differently after a round trip");
        assert_eq!(
            value["spec"].as_object().map(|s| s.len() <= written["spec"].as_object().map_or(0, |w| w.len())),
            Some(true),
            "{file}: fields lost"
        );
        read
    }

    #[test]
    fn every_example_reads_back_unchanged_with_typed_durations() {
        let mut kinds = Vec::new();
        for (file, text) in EXAMPLES {
            for document in documents(text) {
                let kind = document["kind"].as_str().unwrap_or_default().to_owned();
                match kind.as_str() {
                    "SecretRef" => {
                        let secret_ref: SecretRef = round_trip(file, &document);
                        let written = document["spec"]["refreshInterval"].as_str();
                        let expected = written.map_or(Duration::from_secs(3600), |text| match text {
                            "1h" => Duration::from_secs(3600),
                            other => panic!("{file}: refreshInterval {other} is new to this test"),
                        });
                        assert_eq!(Duration::from(secret_ref.spec.refresh_interval), expected, "{file}");
                    }
                    "SecureApiService" => drop(round_trip::<SecureApiService>(file, &document)),
                    "GatewayConfig" => {
                        let gateway: GatewayConfig = round_trip(file, &document);
                        for key in &gateway.spec.api_keys {
                            let written = document["spec"]["apiKeys"]
                                .as_array()
                                .and_then(|keys| keys.iter().find(|k| k["name"] == key.name.as_str()))
                                .and_then(|k| k["overlap"].as_str());
                            assert_eq!(written, None, "{file}: an overlap is new to this test");
                            assert_eq!(Duration::from(key.overlap), Duration::from_secs(24 * 3600), "{file}");
                        }
                    }
                    _ => continue,
                }
                kinds.push(kind);
            }
        }
        for kind in ["SecretRef", "SecureApiService", "GatewayConfig"] {
            assert!(kinds.iter().any(|k| k == kind), "no {kind} among the examples: {kinds:?}");
        }
    }
}
