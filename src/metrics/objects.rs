//! `secureapi_objects{kind,ready,reason}`: the objects of each kind by their `Ready` condition,
//! counted at scrape time from the controllers' caches (like kube-state-metrics). Reading the
//! caches rather than counting in reconciles means a deleted object simply is not there any more,
//! and a relist that missed a deletion cannot leave a series behind.
//!
//! Labels stay bounded: `kind` is one of the three kinds, `ready` one of `True|False|Unknown`,
//! and `reason` one of the reason constants of [`crate::api::conditions::reasons`] — anything
//! else in a status (someone may patch it) is counted as `Other`, an object without a `Ready`
//! condition yet as `NotReported`.

use crate::api::conditions::{ConditionStatus, HasConditions, find_condition, types};
use crate::api::{GatewayConfig, SecretRef, SecureApiService};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::object::HasStatus;
use kube::runtime::reflector::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every reason of `crate::api::conditions::reasons` (a test keeps the list complete).
pub const REASONS: &[&str] = &[
    "Reconciling",
    "InvalidSpec",
    "PermissionDenied",
    "ServiceAccountNotFound",
    "ServiceAccountNotOptedIn",
    "IdentityRequired",
    "TokenExchangeFailed",
    "QuotaExceeded",
    "GcpUnavailable",
    "KubernetesError",
    "Forbidden",
    "Invalid",
    "Rejected",
    "Conflict",
    "OwnershipConflict",
    "Synced",
    "SecretNotFound",
    "VersionNotFound",
    "VersionDisabled",
    "VersionDestroyed",
    "ChecksumMismatch",
    "InvalidPayload",
    "TargetConflict",
    "RolloutTargetNotFound",
    "RotationDue",
    "SecretsReady",
    "SecretRefNotFound",
    "SecretRefNotReady",
    "SecretKeyNotFound",
    "RolloutInProgress",
    "RolloutComplete",
    "ProgressDeadlineExceeded",
    "RolledBack",
    "RolloutAborted",
    "RolloutDeferred",
    "CanaryStep",
    "RolloutStarted",
    "BackendsReady",
    "BackendNotReady",
    "ConfigCreating",
    "ConfigActive",
    "OperationFailed",
    "GatewayUpdating",
    "GatewayActive",
    "ApiKeysReady",
    "ServiceEnabling",
    "ApiKeyCreating",
    "ApiKeySecretConflict",
    "ApiKeyDeleted",
    "GatewayCreated",
    "ConfigActivated",
    "ApiKeyCreated",
    "ApiKeyRetired",
];

/// A reason that is none of [`REASONS`].
pub const OTHER_REASON: &str = "Other";
/// The object has no `Ready` condition yet (not reconciled so far).
pub const NOT_REPORTED: &str = "NotReported";

/// One series of `secureapi_objects`: (kind, ready, reason).
pub type ObjectKey = (&'static str, &'static str, &'static str);

/// The `ready` and `reason` labels of an object's status (pure).
pub fn readiness<S: HasConditions>(status: Option<&S>) -> (&'static str, &'static str) {
    let Some(ready) = status.and_then(|s| find_condition(s.conditions(), types::READY)) else {
        return ("Unknown", NOT_REPORTED);
    };
    let status = match ready.status {
        ConditionStatus::True => "True",
        ConditionStatus::False => "False",
        ConditionStatus::Unknown => "Unknown",
    };
    let reason = REASONS.iter().find(|known| **known == ready.reason).copied().unwrap_or(OTHER_REASON);
    (status, reason)
}

/// Which objects this operator reconciles (its shard's): only those are counted.
pub type Owns = Arc<dyn Fn(&ObjectMeta) -> bool + Send + Sync>;

/// Adds `objects` of `kind` that `owns` accepts to `tally` (pure). Each shard counts only its
/// own, so a `sum` over the shards counts every object once.
pub fn count<'a, K>(
    tally: &mut BTreeMap<ObjectKey, i64>,
    kind: &'static str,
    owns: &dyn Fn(&ObjectMeta) -> bool,
    objects: impl IntoIterator<Item = &'a K>,
) where
    K: Resource + HasStatus<Status: HasConditions> + 'a,
{
    for object in objects.into_iter().filter(|o| owns(o.meta())) {
        let (ready, reason) = readiness(object.status());
        *tally.entry((kind, ready, reason)).or_default() += 1;
    }
}

/// The caches the census reads, set once the controllers run (a standby reports no objects).
#[derive(Clone)]
pub struct Watched {
    pub secret_refs: Store<SecretRef>,
    pub secure_api_services: Store<SecureApiService>,
    pub gateway_configs: Store<GatewayConfig>,
    /// Only these objects are counted: the ones this operator reconciles.
    pub owns: Owns,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched").finish_non_exhaustive()
    }
}

impl Watched {
    /// The census of the three kinds now.
    pub fn tally(&self) -> BTreeMap<ObjectKey, i64> {
        let mut tally = BTreeMap::new();
        let refs = self.secret_refs.state();
        count(&mut tally, "SecretRef", self.owns.as_ref(), refs.iter().map(AsRef::as_ref));
        let services = self.secure_api_services.state();
        count(&mut tally, "SecureApiService", self.owns.as_ref(), services.iter().map(AsRef::as_ref));
        let gateways = self.gateway_configs.state();
        count(&mut tally, "GatewayConfig", self.owns.as_ref(), gateways.iter().map(AsRef::as_ref));
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SecretRefStatus;
    use crate::api::conditions::{Condition, reasons};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::collections::BTreeSet;

    fn secret_ref(name: &str, ready: Option<(ConditionStatus, &str)>) -> SecretRef {
        let mut object: SecretRef = serde_json::from_value(serde_json::json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": name, "namespace": "team-a" }, "spec": { "secret": "db" },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        object.status = ready.map(|(status, reason)| SecretRefStatus {
            conditions: vec![Condition::new(
                types::READY,
                status,
                reason,
                "",
                None,
                Time(k8s_openapi::jiff::Timestamp::now()),
            )],
            ..SecretRefStatus::default()
        });
        object
    }

    #[test]
    fn objects_are_counted_by_kind_ready_status_and_reason() {
        let refs = [
            secret_ref("a", Some((ConditionStatus::True, reasons::SYNCED))),
            secret_ref("b", Some((ConditionStatus::True, reasons::SYNCED))),
            secret_ref("c", Some((ConditionStatus::False, reasons::SECRET_NOT_FOUND))),
            secret_ref("d", None),
            secret_ref("e", Some((ConditionStatus::False, "SomethingSomeonePatchedIn"))),
        ];
        let mut tally = BTreeMap::new();
        count(&mut tally, "SecretRef", &|_| true, &refs);
        let expected: BTreeMap<ObjectKey, i64> = [
            (("SecretRef", "True", "Synced"), 2),
            (("SecretRef", "False", "SecretNotFound"), 1),
            (("SecretRef", "Unknown", NOT_REPORTED), 1),
            (("SecretRef", "False", OTHER_REASON), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(tally, expected);
    }

    #[test]
    fn each_shard_counts_only_its_own_objects() {
        let refs: Vec<SecretRef> =
            (0..20).map(|i| secret_ref(&"r".repeat(i + 1), Some((ConditionStatus::True, reasons::SYNCED)))).collect();
        let mut total = 0;
        for index in 0..3 {
            let mut tally = BTreeMap::new();
            // A split in three, as `--shard` makes one.
            let owns = |meta: &ObjectMeta| meta.name.as_deref().map_or(0, str::len) % 3 == index;
            count(&mut tally, "SecretRef", &owns, &refs);
            total += tally.values().sum::<i64>();
        }
        assert_eq!(total, 20, "the shards' counts add up to every object once");
    }

    /// The reason constants as written in `src/api/conditions.rs`, module `reasons`.
    fn declared_reasons() -> BTreeSet<String> {
        let source = include_str!("../api/conditions.rs");
        let module = source.split("pub mod reasons {").nth(1).unwrap_or_default();
        let module = module.split("\n}\n").next().unwrap_or_default();
        module
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub const ")?.split('"').nth(1).map(str::to_owned))
            .collect()
    }

    #[test]
    fn the_reason_label_knows_every_reason_constant() {
        let declared = declared_reasons();
        assert!(declared.contains("Synced") && declared.len() > 30, "parsing conditions.rs went wrong: {declared:?}");
        let listed: BTreeSet<String> = REASONS.iter().map(|r| (*r).to_owned()).collect();
        assert_eq!(listed, declared, "REASONS must list exactly the constants of conditions::reasons");
    }
}
