//! What the Deployment remembers about revisions (pure): its own revision and, once it replaced
//! another, that one's name and pod template — what a rollback restores — and which snapshot
//! Secrets those templates still use.

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

/// The Secrets the live template and the remembered previous template use: never pruned.
pub fn secrets_in_use(live: &Deployment) -> Vec<String> {
    let mut used: Vec<String> = live.spec.iter().flat_map(|s| secrets_used_by(&s.template)).collect();
    used.extend(previous_template(live).iter().flat_map(secrets_used_by));
    used
}
