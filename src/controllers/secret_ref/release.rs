//! Letting go of a Secret a SecretRef no longer writes (pure: no I/O): the previous target after
//! `target.name` changed, and the targets of a SecretRef being deleted. `deletionPolicy` decides:
//! `Delete` removes the Secret, `Retain` keeps it and drops what ties it to the SecretRef. A
//! Secret that is not ours is never touched.
//!
//! Targets never change namespace (a SecretRef writes only in its own), so a changed name is the
//! only way a SecretRef leaves a Secret behind.

use super::desired::{is_ours, secretref_label};
use crate::api::DeletionPolicy;
use crate::api::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, SecretRef};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde_json::{Map, Value, json};

/// Why a SecretRef lets go of a Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// `target.name` changed and the new target is written; the SecretRef lives on.
    Retargeted,
    /// The SecretRef is being deleted.
    Deleted,
}

/// What to do with a Secret the SecretRef lets go of.
#[derive(Clone, Debug, PartialEq)]
pub enum Disposal {
    /// `deletionPolicy: Delete`.
    Delete,
    /// `deletionPolicy: Retain`: keep the Secret, apply this merge patch to release it.
    Release(Value),
}

impl Disposal {
    /// Reason of the Normal Event recorded when a previous target is let go of.
    pub fn event_reason(&self) -> &'static str {
        match self {
            Self::Delete => "PreviousTargetDeleted",
            Self::Release(_) => "PreviousTargetReleased",
        }
    }

    /// Note of that Event: names only, never data.
    pub fn event_note(&self, previous: &str, target: &str) -> String {
        match self {
            Self::Delete => format!("Secret {previous} deleted (deletionPolicy Delete): the target is now {target}"),
            Self::Release(_) => format!(
                "Secret {previous} kept (deletionPolicy Retain) and released from this SecretRef: the target is now {target}"
            ),
        }
    }
}

/// The Secret written before `target.name` changed to `target`, if it did change. Status
/// `targetName` names the Secret last written; it moves only after a successful sync, so a new
/// target that failed (a conflict, say) leaves it pointing at the Secret still holding the data.
pub fn previous_target(secret_ref: &SecretRef, target: &str) -> Option<String> {
    let written = secret_ref.status.as_ref()?.target_name.as_deref()?;
    (written != target).then(|| written.to_owned())
}

/// What to do with `live`, a Secret `secret_ref` lets go of; `None` leaves it alone: it is not
/// ours (a foreign Secret of that name, or one released before) or nothing ties it to us.
pub fn disposal(live: &Secret, secret_ref: &SecretRef, cause: Cause) -> Option<Disposal> {
    if !is_ours(live, secret_ref) {
        return None;
    }
    match secret_ref.spec.target.deletion_policy {
        DeletionPolicy::Delete => Some(Disposal::Delete),
        DeletionPolicy::Retain => release_patch(live, secret_ref, cause).map(Disposal::Release),
    }
}

/// Merge patch that releases `live`: our owner reference goes, so garbage collection keeps the
/// Secret. After a target change our labels go too: the SecretRef lives on and would otherwise
/// still claim the Secret (watch it, and take it back as its own). On deletion they stay, so a
/// SecretRef of the same name created again adopts the retained Secret. The resourceVersion makes
/// a concurrent change fail the patch (and the reconcile retry) rather than be overwritten.
fn release_patch(live: &Secret, secret_ref: &SecretRef, cause: Cause) -> Option<Value> {
    let uid = secret_ref.uid();
    let owned = live.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref());
    let mut metadata = Map::new();
    if owned {
        let others: Vec<_> = live.owner_references().iter().filter(|o| Some(&o.uid) != uid.as_ref()).collect();
        metadata.insert("ownerReferences".into(), json!(others));
    }
    if cause == Cause::Retargeted {
        let labels = our_labels(live, &secret_ref.name_any());
        if !labels.is_empty() {
            metadata.insert("labels".into(), Value::Object(labels));
        }
    }
    if metadata.is_empty() {
        return None;
    }
    metadata.insert("resourceVersion".into(), json!(live.resource_version()));
    Some(json!({ "metadata": metadata }))
}

/// Our labels on `live`, each set to null (a merge patch removes them). Only with our values: a
/// `managed-by` label another tool set is not ours to remove.
fn our_labels(live: &Secret, secret_ref_name: &str) -> Map<String, Value> {
    [(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE), (secretref_label(), secret_ref_name)]
        .into_iter()
        .filter(|(key, value)| live.labels().get(key).map(String::as_str) == Some(*value))
        .map(|(key, _)| (key, Value::Null))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::desired::desired_secret;
    use super::*;
    use std::collections::BTreeMap;

    fn secret_ref(target: Value, status: Value) -> SecretRef {
        serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": "db", "namespace": "prod", "uid": "u-1" },
            "spec": { "secret": "api-config-db", "target": target },
            "status": status,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The Secret `secret_ref` writes, as the API server returns it (with a resourceVersion).
    fn written(secret_ref: &SecretRef) -> Secret {
        let data = BTreeMap::from([("password".to_string(), b"pw".to_vec())]);
        let mut secret = desired_secret(secret_ref, &data, "1");
        secret.metadata.resource_version = Some("42".into());
        secret
    }

    fn foreign() -> Secret {
        serde_json::from_value(json!({ "metadata": { "name": "db", "labels": { "app": "other" } } }))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_previous_target_is_the_last_written_one_when_the_name_changed() {
        let renamed = secret_ref(json!({ "name": "db-credentials" }), json!({ "targetName": "db" }));
        assert_eq!(previous_target(&renamed, "db-credentials").as_deref(), Some("db"));
        assert_eq!(previous_target(&renamed, "db"), None, "the current target is never a previous one");
        let never_written = secret_ref(json!({ "name": "db-credentials" }), json!({}));
        assert_eq!(previous_target(&never_written, "db-credentials"), None);
    }

    #[test]
    fn delete_policy_deletes_our_secret_whatever_the_creation_policy() {
        for creation in ["Owner", "Orphan"] {
            let old = secret_ref(json!({ "creationPolicy": creation }), json!({}));
            let renamed = secret_ref(json!({ "name": "db-credentials", "creationPolicy": creation }), json!({}));
            assert_eq!(disposal(&written(&old), &renamed, Cause::Retargeted), Some(Disposal::Delete), "{creation}");
        }
    }

    #[test]
    fn a_foreign_secret_is_left_alone_whatever_the_policy() {
        for policy in ["Delete", "Retain"] {
            let renamed = secret_ref(json!({ "name": "db-credentials", "deletionPolicy": policy }), json!({}));
            assert_eq!(disposal(&foreign(), &renamed, Cause::Retargeted), None, "{policy}");
            assert_eq!(disposal(&foreign(), &renamed, Cause::Deleted), None, "{policy}");
        }
    }

    #[test]
    fn retain_after_a_target_change_drops_our_owner_reference_and_labels_only() {
        let old = secret_ref(json!({ "labels": { "team": "api" } }), json!({}));
        let mut live = written(&old);
        let other = json!({ "apiVersion": "v1", "kind": "ConfigMap", "name": "keep", "uid": "u-2" });
        live.metadata
            .owner_references
            .get_or_insert_default()
            .push(serde_json::from_value(other.clone()).unwrap_or_else(|e| panic!("{e}")));
        let renamed = secret_ref(json!({ "name": "db-credentials", "deletionPolicy": "Retain" }), json!({}));
        let Some(Disposal::Release(patch)) = disposal(&live, &renamed, Cause::Retargeted) else {
            panic!("a Retain target change releases the Secret")
        };
        assert_eq!(patch["metadata"]["ownerReferences"], json!([other]), "another owner stays");
        let labels = json!({ "app.kubernetes.io/managed-by": null, "secureapi.dev/secretref": null });
        assert_eq!(patch["metadata"]["labels"], labels, "the user's labels stay");
        assert_eq!(patch["metadata"]["resourceVersion"], json!("42"));
    }

    #[test]
    fn retain_of_an_orphan_secret_drops_only_the_labels() {
        let old = secret_ref(json!({ "creationPolicy": "Orphan" }), json!({}));
        let renamed =
            secret_ref(json!({ "name": "x", "creationPolicy": "Orphan", "deletionPolicy": "Retain" }), json!({}));
        let Some(Disposal::Release(patch)) = disposal(&written(&old), &renamed, Cause::Retargeted) else {
            panic!("a Retain target change releases the Secret")
        };
        assert!(patch["metadata"].get("ownerReferences").is_none(), "{patch}");
        assert!(patch["metadata"]["labels"].is_object(), "{patch}");
    }

    #[test]
    fn a_released_secret_is_not_released_again() {
        let renamed = secret_ref(json!({ "name": "x", "deletionPolicy": "Retain" }), json!({}));
        let mut live = written(&secret_ref(json!({}), json!({})));
        live.metadata.owner_references = None;
        live.metadata.labels = Some(BTreeMap::from([("team".to_string(), "api".to_string())]));
        assert_eq!(disposal(&live, &renamed, Cause::Retargeted), None);
    }

    #[test]
    fn retain_on_deletion_drops_the_owner_reference_and_keeps_the_labels() {
        let retain = secret_ref(json!({ "deletionPolicy": "Retain" }), json!({}));
        let Some(Disposal::Release(patch)) = disposal(&written(&retain), &retain, Cause::Deleted) else {
            panic!("an owned Secret is released on deletion")
        };
        assert_eq!(patch["metadata"]["ownerReferences"], json!([]));
        assert!(patch["metadata"].get("labels").is_none(), "{patch}");
        let orphan = secret_ref(json!({ "deletionPolicy": "Retain", "creationPolicy": "Orphan" }), json!({}));
        assert_eq!(disposal(&written(&orphan), &orphan, Cause::Deleted), None, "nothing to drop: no write");
    }

    #[test]
    fn events_name_the_secrets_and_the_policy() {
        assert_eq!(Disposal::Delete.event_reason(), "PreviousTargetDeleted");
        let note = Disposal::Release(json!({})).event_note("db", "db-credentials");
        assert!(note.contains("db ") && note.contains("Retain") && note.ends_with("db-credentials"), "{note}");
    }
}
