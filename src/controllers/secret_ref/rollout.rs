//! Rolling the workloads that use a SecretRef: their pod template gets the annotation
//! `secureapi.dev/secret-version: <secretref>=<version>` (several SecretRefs on one workload share
//! it as a sorted, comma-separated list). The value is stable per version — no timestamps — so a
//! new version is exactly one template change and an unchanged one is none.

use crate::api::SECRET_VERSION_ANNOTATION;
use crate::api::secret_ref::{RolloutTarget, WorkloadKind};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;

/// The annotation value with `secret_ref=version` set, or `None` when it already says so.
pub fn updated_annotation(current: Option<&str>, secret_ref: &str, version: &str) -> Option<String> {
    let mut entries: BTreeMap<&str, &str> = current
        .unwrap_or_default()
        .split(',')
        .filter_map(|entry| entry.split_once('='))
        .map(|(name, version)| (name.trim(), version.trim()))
        .filter(|(name, _)| !name.is_empty())
        .collect();
    if entries.get(secret_ref) == Some(&version) {
        return None;
    }
    entries.insert(secret_ref, version);
    Some(entries.iter().map(|(name, version)| format!("{name}={version}")).collect::<Vec<_>>().join(","))
}

fn resource(kind: WorkloadKind) -> ApiResource {
    match kind {
        WorkloadKind::Deployment => ApiResource::erase::<Deployment>(&()),
        WorkloadKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        WorkloadKind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
    }
}

/// What happened to one rollout target.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Rolled,
    AlreadyCurrent,
    Missing,
}

/// Points one workload's pod template at `version`. The write carries the resourceVersion it
/// read, so a concurrent change makes it fail (and the reconcile retry) instead of overwriting.
pub async fn roll(
    client: &kube::Client,
    namespace: &str,
    target: &RolloutTarget,
    secret_ref: &str,
    version: &str,
    field_manager: &str,
) -> Result<Outcome, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource(target.kind));
    let Some(workload) = api.get_opt(&target.name).await? else { return Ok(Outcome::Missing) };
    let current = workload.data["spec"]["template"]["metadata"]["annotations"][SECRET_VERSION_ANNOTATION].as_str();
    let Some(value) = updated_annotation(current, secret_ref, version) else { return Ok(Outcome::AlreadyCurrent) };
    let patch = json!({
        "metadata": { "resourceVersion": workload.metadata.resource_version },
        "spec": { "template": { "metadata": { "annotations": { SECRET_VERSION_ANNOTATION: value } } } },
    });
    let params = PatchParams { field_manager: Some(field_manager.to_owned()), ..PatchParams::default() };
    api.patch(&target.name, &params, &Patch::Merge(patch)).await?;
    Ok(Outcome::Rolled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_version_creates_the_entry() {
        assert_eq!(updated_annotation(None, "db", "7").as_deref(), Some("db=7"));
    }

    #[test]
    fn the_same_version_changes_nothing() {
        assert_eq!(updated_annotation(Some("db=7"), "db", "7"), None);
        assert_eq!(updated_annotation(Some("api-keys=3,db=7"), "db", "7"), None);
    }

    #[test]
    fn other_secretrefs_entries_are_kept_in_order() {
        assert_eq!(updated_annotation(Some("keys=3,db=7"), "db", "8").as_deref(), Some("db=8,keys=3"));
    }
}
