//! What the Deployment remembers about revisions (pure): its own revision and, once it replaced
//! another, that one's name and pod template — what a rollback restores, sealed with the
//! operator's hash key so that an edited annotation is never written back — and which snapshot
//! Secrets those templates still use.

use crate::api::SECRET_VERSIONS_ANNOTATION;
use crate::api::secure_api_service::RevisionRecord;
use crate::hash_key::HashKey;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::ResourceExt;

/// Deployment annotations that remember the revision and the one before it (for rollback).
pub const REVISION_ANNOTATION: &str = "secureapi.dev/revision";
const PREVIOUS_REVISION_ANNOTATION: &str = "secureapi.dev/previous-revision";
const PREVIOUS_TEMPLATE_ANNOTATION: &str = "secureapi.dev/previous-template";
/// The operator's seal over the previous revision's name and template.
const PREVIOUS_SEAL_ANNOTATION: &str = "secureapi.dev/previous-template-seal";

fn annotation(deployment: &Deployment, key: &str) -> Option<String> {
    deployment.annotations().get(key).cloned()
}

/// The revision a Deployment runs, by its annotation.
pub fn revision_of(deployment: &Deployment) -> Option<String> {
    annotation(deployment, REVISION_ANNOTATION)
}

/// Stamps the Deployment with its revision and, when it replaces another revision, that one's
/// name and pod template (what a rollback restores), sealed with `key`. A record carried over
/// from the live Deployment keeps the seal it has (records made before seals have none).
pub fn remember_previous(deployment: &mut Deployment, live: Option<&Deployment>, revision: &str, key: &HashKey) {
    let annotations = deployment.annotations_mut();
    annotations.insert(REVISION_ANNOTATION.into(), revision.into());
    let Some(live) = live else { return };
    let live_revision = revision_of(live);
    let (previous, template, seal) = if live_revision.as_deref() == Some(revision) {
        let carried = |key| annotation(live, key);
        (
            carried(PREVIOUS_REVISION_ANNOTATION),
            carried(PREVIOUS_TEMPLATE_ANNOTATION),
            carried(PREVIOUS_SEAL_ANNOTATION),
        )
    } else {
        let template = live.spec.as_ref().and_then(|s| serde_json::to_string(&s.template).ok());
        let seal = live_revision.as_deref().zip(template.as_deref()).map(|(r, t)| key.seal(&sealed_bytes(r, t)));
        (live_revision, template, seal)
    };
    if let (Some(previous), Some(template)) = (previous, template) {
        annotations.insert(PREVIOUS_REVISION_ANNOTATION.into(), previous);
        annotations.insert(PREVIOUS_TEMPLATE_ANNOTATION.into(), template);
        if let Some(seal) = seal {
            annotations.insert(PREVIOUS_SEAL_ANNOTATION.into(), seal);
        }
    }
}

/// What the seal covers: the revision's name and its template, as the annotations hold them.
fn sealed_bytes(revision: &str, template: &str) -> Vec<u8> {
    format!("{revision}\n{template}").into_bytes()
}

fn previous_template(deployment: &Deployment) -> Option<PodTemplateSpec> {
    serde_json::from_str(&annotation(deployment, PREVIOUS_TEMPLATE_ANNOTATION)?).ok()
}

/// The Deployment remembers a previous revision whose record the operator did not seal (edited
/// by hand, or made before records were sealed): it is not restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsealed(pub String);

/// The previous revision and the merge patch that puts its pod template back; `Ok(None)` when
/// the Deployment remembers no previous revision.
pub fn rollback(live: &Deployment, key: &HashKey) -> Result<Option<(String, serde_json::Value)>, Unsealed> {
    let (Some(previous), Some(text)) =
        (annotation(live, PREVIOUS_REVISION_ANNOTATION), annotation(live, PREVIOUS_TEMPLATE_ANNOTATION))
    else {
        return Ok(None);
    };
    let sealed = annotation(live, PREVIOUS_SEAL_ANNOTATION)
        .is_some_and(|seal| key.verify(&sealed_bytes(&previous, &text), &seal));
    let template = serde_json::from_str::<PodTemplateSpec>(&text).ok().filter(|_| sealed);
    let Some(template) = template else { return Err(Unsealed(previous)) };
    let patch = serde_json::json!({
        "metadata": { "annotations": { REVISION_ANNOTATION: previous } },
        "spec": { "template": template },
    });
    Ok(Some((previous, patch)))
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

    fn running(revision: &str, image: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": { "name": "api", "annotations": { REVISION_ANNOTATION: revision } },
            "spec": { "selector": {}, "template": { "spec": { "containers": [{ "name": "api", "image": image }] } } },
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The Deployment of revision `next` built over `live`, as the API server would then hold it.
    fn replaced(live: &Deployment, next: &str, key: &HashKey) -> Deployment {
        let mut deployment = running(next, "example.com/api:2");
        remember_previous(&mut deployment, Some(live), next, key);
        deployment
    }

    #[test]
    fn a_sealed_record_restores_the_previous_template() {
        let key = crate::hash_key::tests::test_key();
        let deployment = replaced(&running("api-1", "example.com/api:1"), "api-2", &key);
        let Ok(Some((previous, patch))) = rollback(&deployment, &key) else { panic!("restorable") };
        assert_eq!(previous, "api-1");
        assert_eq!(patch["spec"]["template"]["spec"]["containers"][0]["image"], "example.com/api:1");
        // The same revision built again carries the record and its seal over.
        let again = replaced(&deployment, "api-2", &key);
        assert_eq!(rollback(&again, &key).map(|r| r.map(|(p, _)| p)), Ok(Some("api-1".into())));
    }

    #[test]
    fn an_edited_unsealed_or_foreign_record_is_not_restored() {
        let key = crate::hash_key::tests::test_key();
        let sealed = replaced(&running("api-1", "example.com/api:1"), "api-2", &key);
        let mut edited = sealed.clone();
        let template = annotation(&edited, PREVIOUS_TEMPLATE_ANNOTATION).unwrap_or_default();
        let evil = template.replace("example.com/api:1", "evil.example.com/miner:1");
        edited.annotations_mut().insert(PREVIOUS_TEMPLATE_ANNOTATION.into(), evil);
        assert_eq!(rollback(&edited, &key), Err(Unsealed("api-1".into())));
        let mut renamed = sealed.clone();
        renamed.annotations_mut().insert(PREVIOUS_REVISION_ANNOTATION.into(), "api-0".into());
        assert_eq!(rollback(&renamed, &key), Err(Unsealed("api-0".into())));
        let mut unsealed = sealed.clone();
        unsealed.annotations_mut().remove(PREVIOUS_SEAL_ANNOTATION);
        assert_eq!(rollback(&unsealed, &key), Err(Unsealed("api-1".into())));
        let other = crate::hash_key::HashKey::from_bytes(&[9; 32]).unwrap_or_else(|| panic!("a key"));
        assert_eq!(rollback(&sealed, &other), Err(Unsealed("api-1".into())));
        assert_eq!(rollback(&running("api-1", "example.com/api:1"), &key), Ok(None), "nothing to restore");
    }

    #[test]
    fn the_first_revision_remembers_nothing_before_it() {
        let key = crate::hash_key::tests::test_key();
        let mut first = running("api-1", "example.com/api:1");
        first.annotations_mut().clear();
        remember_previous(&mut first, None, "api-1", &key);
        assert_eq!(revision_of(&first).as_deref(), Some("api-1"));
        assert_eq!(previous_record_of(&first), None);
        assert_eq!(rollback(&first, &key), Ok(None));
    }

    #[test]
    fn the_replaced_revision_is_remembered_with_its_template_for_the_history() {
        let key = crate::hash_key::tests::test_key();
        let mut live = running("api-1", "example.com/api:1");
        if let Some(template) = live.spec.as_mut().map(|s| &mut s.template) {
            template.metadata = Some(
                serde_json::from_value(json!({ "annotations": { SECRET_VERSIONS_ANNOTATION: "db=7" } }))
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        let next = replaced(&live, "api-2", &key);
        let previous = previous_record_of(&next).unwrap_or_else(|| panic!("a previous revision"));
        assert_eq!(previous.revision, "api-1");
        assert_eq!(previous.secret_versions.get("db").map(String::as_str), Some("7"));
        assert_eq!(record_of(&next).map(|r| r.revision), Some("api-2".into()));
    }

    #[test]
    fn the_secrets_in_use_are_the_live_templates_and_the_remembered_ones() {
        let key = crate::hash_key::tests::test_key();
        let with_secret = |revision: &str, secret: &str| -> Deployment {
            serde_json::from_value(json!({
                "metadata": { "name": "api", "annotations": { REVISION_ANNOTATION: revision } },
                "spec": { "selector": {}, "template": { "spec": {
                    "containers": [{ "name": "api" }],
                    "volumes": [{ "name": "keys", "secret": { "secretName": secret } }],
                } } },
            }))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let live = with_secret("api-1", "api-keys-1");
        let mut next = with_secret("api-2", "api-keys-2");
        remember_previous(&mut next, Some(&live), "api-2", &key);
        let mut used = secrets_in_use(&next);
        used.sort();
        assert_eq!(used, ["api-keys-1", "api-keys-2"], "a rollback may need the older snapshot");
    }
}
