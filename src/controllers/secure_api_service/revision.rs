//! What the Deployment remembers about revisions (pure): its own revision and, once it replaced
//! another, that one's name and pod template — what a rollback restores — and which snapshot
//! Secrets those templates still use.

use crate::api::SECRET_VERSIONS_ANNOTATION;
use crate::api::secure_api_service::RevisionRecord;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::ResourceExt;

/// Deployment annotations that remember the revision and the one before it (for rollback).
pub const REVISION_ANNOTATION: &str = "secureapi.dev/revision";
const PREVIOUS_REVISION_ANNOTATION: &str = "secureapi.dev/previous-revision";
const PREVIOUS_TEMPLATE_ANNOTATION: &str = "secureapi.dev/previous-template";

fn annotation(deployment: &Deployment, key: &str) -> Option<String> {
    deployment.annotations().get(key).cloned()
}

/// The revision a Deployment runs, by its annotation.
pub fn revision_of(deployment: &Deployment) -> Option<String> {
    annotation(deployment, REVISION_ANNOTATION)
}

/// Stamps the Deployment with its revision and, when it replaces another revision, that one's
/// name and pod template (what a rollback restores).
pub fn remember_previous(deployment: &mut Deployment, live: Option<&Deployment>, revision: &str) {
    let annotations = deployment.annotations_mut();
    annotations.insert(REVISION_ANNOTATION.into(), revision.into());
    let Some(live) = live else { return };
    let live_revision = revision_of(live);
    let (previous, template) = if live_revision.as_deref() == Some(revision) {
        (annotation(live, PREVIOUS_REVISION_ANNOTATION), annotation(live, PREVIOUS_TEMPLATE_ANNOTATION))
    } else {
        let template = live.spec.as_ref().and_then(|s| serde_json::to_string(&s.template).ok());
        (live_revision, template)
    };
    if let (Some(previous), Some(template)) = (previous, template) {
        annotations.insert(PREVIOUS_REVISION_ANNOTATION.into(), previous);
        annotations.insert(PREVIOUS_TEMPLATE_ANNOTATION.into(), template);
    }
}

fn previous_template(deployment: &Deployment) -> Option<PodTemplateSpec> {
    serde_json::from_str(&annotation(deployment, PREVIOUS_TEMPLATE_ANNOTATION)?).ok()
}

/// The previous revision and the merge patch that puts its pod template back, or `None` when
/// the Deployment remembers no previous revision.
pub fn rollback(live: &Deployment) -> Option<(String, serde_json::Value)> {
    let previous = annotation(live, PREVIOUS_REVISION_ANNOTATION)?;
    let template = previous_template(live)?;
    let patch = serde_json::json!({
        "metadata": { "annotations": { REVISION_ANNOTATION: previous } },
        "spec": { "template": template },
    });
    Some((previous, patch))
}

/// Secret names a pod template mounts or reads env from.
fn secrets_used_by(template: &PodTemplateSpec) -> Vec<String> {
    let Some(pod) = &template.spec else { return vec![] };
    let volumes = pod.volumes.iter().flatten().filter_map(|v| v.secret.as_ref()?.secret_name.clone());
    let env = pod
        .containers
        .iter()
        .flat_map(|c| c.env.iter().flatten())
        .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref().map(|r| r.name.clone()));
    volumes.chain(env).collect()
}

/// The revision a Deployment runs, read back from it: its name, the secret versions its template
/// is stamped with (`db=7,keys=3`) and the snapshot Secrets it uses. For a revision that went
/// live without its status being written (a crash, a failed status write).
pub fn record_of(deployment: &Deployment) -> Option<RevisionRecord> {
    Some(record(revision_of(deployment)?, &deployment.spec.as_ref()?.template))
}

/// The same for the revision the Deployment remembers as the one before (what a rollback restores).
pub fn previous_record_of(deployment: &Deployment) -> Option<RevisionRecord> {
    Some(record(annotation(deployment, PREVIOUS_REVISION_ANNOTATION)?, &previous_template(deployment)?))
}

fn record(revision: String, template: &PodTemplateSpec) -> RevisionRecord {
    let stamped = template.metadata.as_ref().and_then(|m| m.annotations.as_ref()?.get(SECRET_VERSIONS_ANNOTATION));
    let secret_versions = stamped
        .into_iter()
        .flat_map(|line| line.split(','))
        .filter_map(|pair| pair.split_once('='))
        .map(|(secret_ref, version)| (secret_ref.to_owned(), version.to_owned()))
        .collect();
    let mut snapshots = secrets_used_by(template);
    snapshots.sort();
    snapshots.dedup();
    RevisionRecord { revision, secret_versions, snapshots }
}

/// The Secrets the live template and the remembered previous template use: never pruned.
pub fn secrets_in_use(live: &Deployment) -> Vec<String> {
    let mut used: Vec<String> = live.spec.iter().flat_map(|s| secrets_used_by(&s.template)).collect();
    used.extend(previous_template(live).iter().flat_map(secrets_used_by));
    used
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_live_revision_reads_back_with_its_versions_and_snapshots() {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": { "name": "api", "annotations": { REVISION_ANNOTATION: "api-5d6f" } },
            "spec": { "selector": {}, "template": {
                "metadata": { "annotations": { SECRET_VERSIONS_ANNOTATION: "db=7,keys=3" } },
                "spec": {
                    "containers": [{ "name": "api", "env": [
                        { "name": "DB_HOST", "valueFrom": { "secretKeyRef": { "name": "api-db-1a", "key": "host" } } },
                        { "name": "DB_PASSWORD", "valueFrom": { "secretKeyRef": { "name": "api-db-1a", "key": "password" } } },
                    ] }],
                    "volumes": [{ "name": "keys", "secret": { "secretName": "api-keys-2b" } }],
                },
            } },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let record = record_of(&deployment).unwrap_or_else(|| panic!("no record"));
        assert_eq!(record.revision, "api-5d6f");
        assert_eq!(record.secret_versions.get("db").map(String::as_str), Some("7"));
        assert_eq!(record.secret_versions.get("keys").map(String::as_str), Some("3"));
        assert_eq!(record.snapshots, ["api-db-1a", "api-keys-2b"]);
        let unstamped = Deployment::default();
        assert_eq!(record_of(&unstamped), None);
    }
}
