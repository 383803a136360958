//! Which SecretRefs a notification concerns, and what each must do (pure). A notification is
//! only a hint: the reconcile it queues reads the current state, so duplicates, redeliveries and
//! reordering cannot move a SecretRef backwards.

use super::event::{EventType, Notification};
use crate::api::SecretRef;
use crate::gcp::SecretName;

/// What a concerned SecretRef does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// Read the store now (the reconcile is queued with a forced read).
    Reread,
    /// Record a Normal Event `RotationDue`: the secret's owner rotates, the operator observes.
    AnnounceRotation,
}

/// Where a notification came from: its subscription's project reads project numbers in names.
pub struct Origin<'a> {
    pub subscription_project: &'a str,
    pub default_project: Option<&'a str>,
}

/// The SecretRefs `notification` concerns among `refs`, with what each does.
pub fn respond<'r>(
    notification: &Notification,
    origin: &Origin<'_>,
    refs: impl IntoIterator<Item = &'r SecretRef>,
) -> Vec<(&'r SecretRef, Response)> {
    refs.into_iter()
        .filter(|secret_ref| points_at(secret_ref, notification, origin))
        .filter_map(|secret_ref| response(notification, secret_ref).map(|r| (secret_ref, r)))
        .collect()
}

/// Whether the SecretRef reads the notification's secret. Secret Manager names projects by
/// number in notifications; a number stands for the subscription's project.
fn points_at(secret_ref: &SecretRef, notification: &Notification, origin: &Origin<'_>) -> bool {
    let project = secret_ref.spec.project_id.as_deref().or(origin.default_project);
    let Ok(name) = SecretName::parse(&secret_ref.spec.secret, project) else { return false };
    let numbered = notification.project.bytes().all(|b| b.is_ascii_digit());
    let same_project =
        name.project == notification.project || (numbered && name.project == origin.subscription_project);
    same_project && name.secret == notification.secret && name.location == notification.location
}

fn response(notification: &Notification, secret_ref: &SecretRef) -> Option<Response> {
    let pinned = secret_ref.spec.version.bytes().all(|b| b.is_ascii_digit());
    let synced = secret_ref.status.as_ref().and_then(|s| s.synced_version.as_deref());
    let version = notification.version.as_deref();
    let names_its_version =
        || version.is_none() || version == synced || version == Some(secret_ref.spec.version.as_str());
    let reread = match notification.event {
        // New or moved versions (an alias moves with SECRET_UPDATE): floating ones follow.
        EventType::VersionAdd | EventType::SecretUpdate | EventType::SecretCreate => !pinned,
        // An enabled version may be the one a pinned SecretRef waits for.
        EventType::VersionEnable => !pinned || names_its_version(),
        // Only those synced from that version re-check; their Secret stays as it is.
        EventType::VersionDisable | EventType::VersionDestroy | EventType::VersionDestroyScheduled => {
            names_its_version()
        }
        EventType::SecretDelete => true,
        EventType::SecretRotate => return Some(Response::AnnounceRotation),
        EventType::TopicConfigured | EventType::Unknown => false,
    };
    reread.then_some(Response::Reread)
}

/// `projects/P/subscriptions/S` → P.
pub fn subscription_project(subscription: &str) -> &str {
    subscription.strip_prefix("projects/").and_then(|rest| rest.split('/').next()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;
    use serde_json::json;

    fn secret_ref(name: &str, spec: serde_json::Value, synced: Option<&str>) -> SecretRef {
        let mut object: SecretRef = serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef",
            "metadata": { "name": name, "namespace": "team-a" }, "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        object.status =
            synced.map(|v| crate::api::SecretRefStatus { synced_version: Some(v.into()), ..Default::default() });
        object
    }

    fn notification(event: EventType, project: &str, secret: &str, version: Option<&str>) -> Notification {
        Notification {
            event,
            project: project.into(),
            location: None,
            secret: secret.into(),
            version: version.map(Into::into),
        }
    }

    const ORIGIN: Origin<'static> = Origin { subscription_project: "p1", default_project: Some("p1") };

    fn names(responses: &[(&SecretRef, Response)]) -> Vec<(String, Response)> {
        responses.iter().map(|(r, what)| (r.name_any(), *what)).collect()
    }

    fn refs() -> Vec<SecretRef> {
        vec![
            secret_ref("latest", json!({ "secret": "db" }), Some("2")),
            secret_ref("pinned", json!({ "secret": "db", "version": "2" }), Some("2")),
            secret_ref("old-pin", json!({ "secret": "db", "version": "1" }), Some("1")),
            secret_ref("other-project", json!({ "secret": "projects/p2/secrets/db" }), Some("2")),
            secret_ref("other-secret", json!({ "secret": "keys" }), Some("1")),
        ]
    }

    #[test]
    fn a_new_version_rereads_only_the_floating_secret_refs_of_that_secret() {
        let added = notification(EventType::VersionAdd, "p1", "db", Some("3"));
        assert_eq!(names(&respond(&added, &ORIGIN, &refs())), [("latest".to_owned(), Response::Reread)]);
        // Secret Manager names the project by number: the subscription's project.
        let numbered = notification(EventType::VersionAdd, "123456789012", "db", Some("3"));
        assert_eq!(names(&respond(&numbered, &ORIGIN, &refs())), [("latest".to_owned(), Response::Reread)]);
    }

    #[test]
    fn a_disabled_version_rechecks_the_secret_refs_synced_from_it() {
        let disabled = notification(EventType::VersionDisable, "p1", "db", Some("2"));
        assert_eq!(
            names(&respond(&disabled, &ORIGIN, &refs())),
            [("latest".to_owned(), Response::Reread), ("pinned".to_owned(), Response::Reread)]
        );
        let enabled = notification(EventType::VersionEnable, "p1", "db", Some("1"));
        assert_eq!(
            names(&respond(&enabled, &ORIGIN, &refs())),
            [("latest".to_owned(), Response::Reread), ("old-pin".to_owned(), Response::Reread)]
        );
    }

    #[test]
    fn deletion_rereads_all_rotation_is_announced_and_the_rest_is_ignored() {
        let deleted = notification(EventType::SecretDelete, "p1", "db", None);
        assert_eq!(respond(&deleted, &ORIGIN, &refs()).len(), 3);
        let rotate = notification(EventType::SecretRotate, "p1", "db", None);
        assert!(respond(&rotate, &ORIGIN, &refs()).iter().all(|(_, r)| *r == Response::AnnounceRotation));
        for event in [EventType::TopicConfigured, EventType::Unknown] {
            assert!(respond(&notification(event, "p1", "db", None), &ORIGIN, &refs()).is_empty());
        }
        assert!(respond(&notification(EventType::VersionAdd, "p1", "nobody", None), &ORIGIN, &refs()).is_empty());
    }

    #[test]
    fn the_subscriptions_project_is_read_from_its_name() {
        assert_eq!(subscription_project("projects/p1/subscriptions/secret-events"), "p1");
    }
}
