//! SecretRef status, derived from what was applied (pure). Timestamps move only when something
//! changed: `lastSyncTime` with the content, `lastTransitionTime` with the condition's status.

use super::unusable::{self, Answer};
use crate::api::conditions::{Condition, ConditionStatus, reasons, set_condition, types};
use crate::api::{REFRESH_ANNOTATION, SecretRef, SecretRefStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

/// What a successful sync produced.
pub struct Synced<'a> {
    pub version: &'a str,
    pub content_hash: &'a str,
    pub target: &'a str,
}

pub fn refresh_value(secret_ref: &SecretRef) -> Option<String> {
    secret_ref.annotations().get(REFRESH_ANNOTATION).cloned()
}

/// Whether the user asked for a re-check that has not been acted on yet.
pub fn refresh_requested(secret_ref: &SecretRef) -> bool {
    let current = secret_ref.status.as_ref().and_then(|s| s.observed_refresh.clone());
    refresh_value(secret_ref).is_some() && refresh_value(secret_ref) != current
}

/// Status after a successful sync.
/// The Ready message names rollout targets that do not exist (`missing`, as `Kind/name`).
pub fn synced(secret_ref: &SecretRef, synced: &Synced<'_>, missing: &[String], now: Time) -> SecretRefStatus {
    let mut status = secret_ref.status.clone().unwrap_or_default();
    let generation = secret_ref.metadata.generation;
    if status.content_hash.as_deref() != Some(synced.content_hash) || status.last_sync_time.is_none() {
        status.last_sync_time = Some(now.clone());
    }
    status.synced_version = Some(synced.version.to_owned());
    status.content_hash = Some(synced.content_hash.to_owned());
    status.target_name = Some(synced.target.to_owned());
    status.observed_generation = generation;
    status.observed_refresh = refresh_value(secret_ref);
    let mut message = format!("Secret {} holds version {}", synced.target, synced.version);
    if !missing.is_empty() {
        message.push_str(&format!("; rollout targets not found: {}", missing.join(", ")));
    }
    let ready = Condition::new(types::READY, ConditionStatus::True, reasons::SYNCED, message, generation, now);
    set_condition(&mut status.conditions, ready);
    status
}

/// The status with `unusableVersions` after Secret Manager's `answers`; nothing else changes.
pub fn checked(secret_ref: &SecretRef, answers: &[Answer]) -> SecretRefStatus {
    let mut status = secret_ref.status.clone().unwrap_or_default();
    status.unusable_versions = unusable::update(&status.unusable_versions, answers);
    status
}

/// Status after a failure: the last good sync stays recorded; Ready turns False with `reason`.
pub fn failed(secret_ref: &SecretRef, reason: &str, message: &str, now: Time) -> SecretRefStatus {
    let mut status = secret_ref.status.clone().unwrap_or_default();
    let generation = secret_ref.metadata.generation;
    status.observed_generation = generation;
    let ready = Condition::new(types::READY, ConditionStatus::False, reason, message, generation, now);
    set_condition(&mut status.conditions, ready);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret_ref(status: serde_json::Value) -> SecretRef {
        serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": "db", "generation": 2, "annotations": { "secureapi.dev/refresh": "r1" } },
            "spec": { "secret": "api-config-db" },
            "status": status,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(second: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(second).unwrap_or_default())
    }

    #[test]
    fn an_unchanged_sync_keeps_every_timestamp() {
        let first =
            synced(&secret_ref(json!({})), &Synced { version: "7", content_hash: "h", target: "db" }, &[], at(10));
        let again_ref = secret_ref(serde_json::to_value(&first).unwrap_or_default());
        let again = synced(&again_ref, &Synced { version: "7", content_hash: "h", target: "db" }, &[], at(20));
        assert_eq!(first, again, "re-syncing the same content writes nothing new");
        assert_eq!(again.observed_refresh.as_deref(), Some("r1"));
    }

    #[test]
    fn new_content_moves_last_sync_time() {
        let first =
            synced(&secret_ref(json!({})), &Synced { version: "7", content_hash: "h", target: "db" }, &[], at(10));
        let next_ref = secret_ref(serde_json::to_value(&first).unwrap_or_default());
        let next = synced(&next_ref, &Synced { version: "8", content_hash: "h2", target: "db" }, &[], at(20));
        assert_eq!(next.last_sync_time, Some(at(20)));
        assert_eq!(next.synced_version.as_deref(), Some("8"));
    }

    #[test]
    fn a_failure_keeps_the_last_good_sync() {
        let good =
            synced(&secret_ref(json!({})), &Synced { version: "7", content_hash: "h", target: "db" }, &[], at(10));
        let failing_ref = secret_ref(serde_json::to_value(&good).unwrap_or_default());
        let failed = failed(&failing_ref, reasons::VERSION_DISABLED, "version 8 is disabled", at(20));
        assert_eq!(failed.synced_version.as_deref(), Some("7"));
        assert_eq!(failed.conditions[0].reason, reasons::VERSION_DISABLED);
        assert_eq!(failed.conditions[0].status, ConditionStatus::False);
    }

    #[test]
    fn only_an_answer_that_changes_the_unusable_versions_changes_the_status() {
        let good =
            synced(&secret_ref(json!({})), &Synced { version: "2", content_hash: "h", target: "db" }, &[], at(10));
        let steady = secret_ref(serde_json::to_value(&good).unwrap_or_default());
        assert_eq!(checked(&steady, &[]), good, "no answers: nothing to write");
        assert_eq!(checked(&steady, &[Answer::served(1)]), good, "served and never listed");
        let disabled = checked(&steady, &[Answer::refused(1, crate::api::UnusableState::Disabled)]);
        assert_eq!(disabled.unusable("1"), Some(crate::api::UnusableState::Disabled));
        assert_eq!(disabled.conditions, good.conditions, "Ready stays as it was");
        let listed = secret_ref(serde_json::to_value(&disabled).unwrap_or_default());
        assert_eq!(checked(&listed, &[Answer::served(1)]), good, "enabled again: the entry goes");
    }

    #[test]
    fn a_new_refresh_annotation_is_a_request() {
        assert!(refresh_requested(&secret_ref(json!({}))));
        assert!(!refresh_requested(&secret_ref(json!({ "observedRefresh": "r1" }))));
    }

    #[test]
    fn missing_rollout_targets_are_named_in_the_ready_message_and_the_sync_still_counts() {
        let missing = ["Deployment/api".to_string(), "StatefulSet/worker".to_string()];
        let status =
            synced(&secret_ref(json!({})), &Synced { version: "7", content_hash: "h", target: "db" }, &missing, at(10));
        let ready = &status.conditions[0];
        assert_eq!((ready.status, ready.reason.as_str()), (ConditionStatus::True, reasons::SYNCED));
        assert_eq!(
            ready.message,
            "Secret db holds version 7; rollout targets not found: Deployment/api, StatefulSet/worker"
        );
    }

    #[test]
    fn a_failure_observes_the_generation_it_failed_on() {
        let good =
            synced(&secret_ref(json!({})), &Synced { version: "7", content_hash: "h", target: "db" }, &[], at(10));
        let mut edited = secret_ref(serde_json::to_value(&good).unwrap_or_default());
        edited.metadata.generation = Some(3);
        let failed =
            failed(&edited, reasons::INVALID_SPEC, "invalid spec: spec.refreshInterval: must be at least 1s", at(20));
        assert_eq!(failed.observed_generation, Some(3), "kubectl wait sees the failure is about this spec");
        assert_eq!(failed.conditions[0].observed_generation, Some(3));
        assert_eq!(failed.content_hash.as_deref(), Some("h"), "the last good content stays recorded");
    }
}
