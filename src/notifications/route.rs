//! Which SecretRefs a notification concerns, and what each must do (pure). A notification is
//! only a hint: the reconcile it queues reads the current state, so duplicates, redeliveries and
//! reordering cannot move a SecretRef backwards.

use super::event::{EventType, Notification};
use crate::api::SecretRef;
use crate::gcp::SecretName;
use std::collections::HashMap;

/// What a concerned SecretRef does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// Read the store now (the reconcile is queued with a forced read).
    Reread,
    /// Record a Normal Event `RotationDue`: the secret's owner rotates, the operator observes.
    AnnounceRotation,
    /// Check this version (one access) in the next reconcile: it was disabled or destroyed, and
    /// the SecretRef synced it or could have; or it was enabled, and the SecretRef lists it.
    Check(u64),
}

/// The SecretRefs of the cache by the secret they read: `(project, location, secret)`, ids
/// resolved with `projectId` or the operator's `--gcp-project`. Built once per pulled batch.
pub struct Index<'r> {
    by_secret: HashMap<(String, Option<String>, String), Vec<&'r SecretRef>>,
}

impl<'r> Index<'r> {
    pub fn build(refs: impl IntoIterator<Item = &'r SecretRef>, default_project: Option<&str>) -> Self {
        let mut by_secret: HashMap<_, Vec<&'r SecretRef>> = HashMap::new();
        for secret_ref in refs {
            let project = secret_ref.spec.project_id.as_deref().or(default_project);
            if let Ok(name) = SecretName::parse(&secret_ref.spec.secret, project) {
                by_secret.entry((name.project, name.location, name.secret)).or_default().push(secret_ref);
            }
        }
        Self { by_secret }
    }

    /// The SecretRefs reading the notification's secret. Secret Manager names projects by number
    /// in notifications; a number stands for the subscription's project.
    fn reading(&self, notification: &Notification, subscription_project: &str) -> &[&'r SecretRef] {
        let numbered = notification.project.bytes().all(|b| b.is_ascii_digit());
        let project = if numbered { subscription_project } else { notification.project.as_str() };
        let key = (project.to_owned(), notification.location.clone(), notification.secret.clone());
        self.by_secret.get(&key).map(Vec::as_slice).unwrap_or_default()
    }
}

/// The SecretRefs `notification` (pulled from a subscription of `subscription_project`)
/// concerns, with what each does.
pub fn respond<'r>(
    notification: &Notification,
    subscription_project: &str,
    index: &Index<'r>,
) -> Vec<(&'r SecretRef, Response)> {
    index
        .reading(notification, subscription_project)
        .iter()
        .flat_map(|secret_ref| {
            let check = check(notification, secret_ref).map(Response::Check);
            response(notification, secret_ref).into_iter().chain(check).map(|r| (*secret_ref, r))
        })
        .collect()
}

/// The version `secret_ref` checks for `notification`: a disabled, destroyed or enabled one up to
/// the synced number (a workload may still run it), or an enabled one its status lists. Enabled
/// ones up to the synced number too: the cached status may not show the entry its check just
/// wrote.
fn check(notification: &Notification, secret_ref: &SecretRef) -> Option<u64> {
    let version: u64 = notification.version.as_deref()?.parse().ok()?;
    let status = secret_ref.status.as_ref()?;
    let listed = || status.unusable(&version.to_string()).is_some();
    let synced_since = || status.synced_version.as_deref().and_then(|v| v.parse::<u64>().ok()) >= Some(version);
    let check = match notification.event {
        // A scheduled destruction disables the version at once.
        EventType::VersionDisable | EventType::VersionDestroy | EventType::VersionDestroyScheduled => synced_since(),
        EventType::VersionEnable => listed() || synced_since(),
        _ => false,
    };
    check.then_some(version)
}

fn response(notification: &Notification, secret_ref: &SecretRef) -> Option<Response> {
    let pinned = secret_ref.spec.version.bytes().all(|b| b.is_ascii_digit());
    let synced = secret_ref.status.as_ref().and_then(|s| s.synced_version.as_deref());
    let version = notification.version.as_deref();
    // A pinned SecretRef reads again only for its own version, named (never for a message
    // without one: notifications are hints anyone who may publish can send).
    let its_own = || version == Some(secret_ref.spec.version.as_str());
    let reread = match notification.event {
        // New or moved versions (an alias moves with SECRET_UPDATE): floating ones follow.
        EventType::VersionAdd | EventType::SecretUpdate | EventType::SecretCreate => !pinned,
        // An enabled version may be the one a pinned SecretRef waits for.
        EventType::VersionEnable => !pinned || its_own(),
        // Only those synced from that version re-check; their Secret stays as it is.
        EventType::VersionDisable | EventType::VersionDestroy | EventType::VersionDestroyScheduled => match pinned {
            true => its_own(),
            false => version.is_none() || version == synced,
        },
        EventType::SecretDelete => !pinned,
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

    /// What `notification` does to the sample SecretRefs, pulled from a subscription of p1.
    fn answer(notification: &Notification) -> Vec<(String, Response)> {
        let refs = refs();
        let index = Index::build(&refs, Some("p1"));
        names(&respond(notification, "p1", &index))
    }

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
        assert_eq!(answer(&added), [("latest".to_owned(), Response::Reread)]);
        // Secret Manager names the project by number: the subscription's project.
        let numbered = notification(EventType::VersionAdd, "123456789012", "db", Some("3"));
        assert_eq!(answer(&numbered), [("latest".to_owned(), Response::Reread)]);
    }

    #[test]
    fn a_disabled_version_rechecks_the_secret_refs_synced_from_it() {
        let disabled = notification(EventType::VersionDisable, "p1", "db", Some("2"));
        assert_eq!(
            answer(&disabled),
            [
                ("latest".to_owned(), Response::Reread),
                ("latest".to_owned(), Response::Check(2)),
                ("pinned".to_owned(), Response::Reread),
                ("pinned".to_owned(), Response::Check(2)),
            ]
        );
        let enabled = notification(EventType::VersionEnable, "p1", "db", Some("1"));
        assert_eq!(
            answer(&enabled),
            [
                ("latest".to_owned(), Response::Reread),
                ("latest".to_owned(), Response::Check(1)),
                ("pinned".to_owned(), Response::Check(1)),
                ("old-pin".to_owned(), Response::Reread),
                ("old-pin".to_owned(), Response::Check(1)),
            ]
        );
    }

    #[test]
    fn a_refused_version_is_checked_by_each_secret_ref_synced_at_or_past_it() {
        for event in [EventType::VersionDisable, EventType::VersionDestroy, EventType::VersionDestroyScheduled] {
            let checks: Vec<(String, Response)> = answer(&notification(event, "p1", "db", Some("1")))
                .into_iter()
                .filter(|(_, response)| matches!(response, Response::Check(_)))
                .collect();
            let expected = ["latest", "pinned", "old-pin"].map(|name| (name.to_owned(), Response::Check(1)));
            assert_eq!(checks, expected, "{event:?}");
            let newer = answer(&notification(event, "p1", "db", Some("3")));
            assert!(newer.iter().all(|(_, response)| !matches!(response, Response::Check(_))), "{newer:?}");
        }
        let unnamed = answer(&notification(EventType::VersionDisable, "p1", "db", None));
        assert!(unnamed.iter().all(|(_, response)| !matches!(response, Response::Check(_))), "{unnamed:?}");
    }

    #[test]
    fn an_enabled_version_is_checked_by_the_secret_refs_that_list_it_or_synced_past_it() {
        let mut refs = refs();
        let listed = crate::api::UnusableVersion { version: "2".into(), state: crate::api::UnusableState::Disabled };
        // `old-pin` synced 1 and lists 2 (it was pinned to 2 before).
        if let Some(status) = refs[2].status.as_mut() {
            status.unusable_versions = vec![listed];
        }
        let index = Index::build(&refs, Some("p1"));
        let enabled = notification(EventType::VersionEnable, "p1", "db", Some("2"));
        assert_eq!(
            names(&respond(&enabled, "p1", &index)),
            [
                ("latest".to_owned(), Response::Reread),
                ("latest".to_owned(), Response::Check(2)),
                ("pinned".to_owned(), Response::Reread),
                ("pinned".to_owned(), Response::Check(2)),
                ("old-pin".to_owned(), Response::Check(2)),
            ]
        );
        let newer = notification(EventType::VersionEnable, "p1", "db", Some("3"));
        let checks = names(&respond(&newer, "p1", &index));
        assert!(checks.iter().all(|(_, response)| !matches!(response, Response::Check(_))), "{checks:?}");
    }

    #[test]
    fn deletion_rereads_the_floating_ones_rotation_is_announced_and_the_rest_is_ignored() {
        let deleted = notification(EventType::SecretDelete, "p1", "db", None);
        assert_eq!(answer(&deleted), [("latest".to_owned(), Response::Reread)], "pinned ones keep their version");
        let rotate = notification(EventType::SecretRotate, "p1", "db", None);
        assert!(answer(&rotate).iter().all(|(_, r)| *r == Response::AnnounceRotation));
        for event in [EventType::TopicConfigured, EventType::Unknown] {
            assert!(answer(&notification(event, "p1", "db", None)).is_empty());
        }
        assert!(answer(&notification(EventType::VersionAdd, "p1", "nobody", None)).is_empty());
    }

    #[test]
    fn a_pinned_secret_ref_reads_again_only_for_its_own_version_named() {
        for event in [EventType::VersionEnable, EventType::VersionDisable, EventType::VersionDestroy] {
            let unnamed = answer(&notification(event, "p1", "db", None));
            assert!(!unnamed.iter().any(|(name, _)| name.contains("pin")), "{event:?} without a version: {unnamed:?}");
            let other = answer(&notification(event, "p1", "db", Some("7")));
            assert!(!other.iter().any(|(name, _)| name.contains("pin")), "{event:?} of version 7: {other:?}");
        }
        for event in [EventType::VersionAdd, EventType::SecretUpdate, EventType::SecretCreate, EventType::SecretDelete]
        {
            let named = answer(&notification(event, "p1", "db", Some("2")));
            assert!(!named.iter().any(|(name, _)| name.contains("pin")), "{event:?}: {named:?}");
        }
    }

    #[test]
    fn the_subscriptions_project_is_read_from_its_name() {
        assert_eq!(subscription_project("projects/p1/subscriptions/secret-events"), "p1");
    }
}
