//! Event notifications: the Pub/Sub messages Secret Manager sends to each topic of a secret when
//! the secret or one of its versions changes (never for get, list or access), rendered from the
//! store's log of changes. Their data is the Secret or SecretVersion resource as the API writes
//! it, which never holds a payload.

use super::rest::timestamp;
use super::store::{Change, Secret, SecretChange, Store, Version, VersionChange, VersionState};
use super::wire::{secret_json, version_json};
use serde_json::Value;
use std::collections::BTreeMap;

/// The `dataFormat` attribute: the data is the resource in the REST API's JSON.
pub const DATA_FORMAT: &str = "JSON_API_V1";

/// The `eventType` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    TopicConfigured,
    SecretCreate,
    SecretUpdate,
    SecretDelete,
    SecretVersionAdd,
    SecretVersionEnable,
    SecretVersionDisable,
    SecretVersionDestroy,
    SecretRotate,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TopicConfigured => "TOPIC_CONFIGURED",
            Self::SecretCreate => "SECRET_CREATE",
            Self::SecretUpdate => "SECRET_UPDATE",
            Self::SecretDelete => "SECRET_DELETE",
            Self::SecretVersionAdd => "SECRET_VERSION_ADD",
            Self::SecretVersionEnable => "SECRET_VERSION_ENABLE",
            Self::SecretVersionDisable => "SECRET_VERSION_DISABLE",
            Self::SecretVersionDestroy => "SECRET_VERSION_DESTROY",
            Self::SecretRotate => "SECRET_ROTATE",
        }
    }

    fn of_secret(change: SecretChange) -> Self {
        match change {
            SecretChange::Created => Self::SecretCreate,
            SecretChange::Updated => Self::SecretUpdate,
            SecretChange::Deleted => Self::SecretDelete,
            SecretChange::Rotated => Self::SecretRotate,
        }
    }

    fn of_version(change: VersionChange) -> Self {
        match change {
            VersionChange::Added => Self::SecretVersionAdd,
            VersionChange::Moved(VersionState::Enabled) => Self::SecretVersionEnable,
            VersionChange::Moved(VersionState::Disabled) => Self::SecretVersionDisable,
            VersionChange::Moved(VersionState::Destroyed) => Self::SecretVersionDestroy,
        }
    }
}

/// One message for one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// `projects/P/topics/T`.
    pub topic: String,
    pub attributes: BTreeMap<String, String>,
    /// UTF-8 JSON; empty for `TOPIC_CONFIGURED`.
    pub data: Vec<u8>,
}

/// Drains the store's changes into notifications, in order, stamped `now`.
pub fn notifications(store: &mut Store, now: jiff::Timestamp) -> Vec<Notification> {
    let at = timestamp(now);
    store.take_changes().into_iter().flat_map(|change| render(change, &at)).collect()
}

fn render(change: Change, at: &str) -> Vec<Notification> {
    match change {
        // Google's test message carries nothing but its type.
        Change::TopicConfigured(topic) => {
            let attributes = BTreeMap::from([("eventType".to_owned(), EventType::TopicConfigured.as_str().to_owned())]);
            vec![Notification { topic, attributes, data: Vec::new() }]
        }
        Change::Secret(change, secret) => {
            let attributes = attributes(&secret, EventType::of_secret(change), None, at);
            to_topics(&secret, attributes, &secret_json(&secret))
        }
        Change::Version(change, secret, version) => of_version(&secret, &version, EventType::of_version(change), at),
    }
}

fn of_version(secret: &Secret, version: &Version, event: EventType, at: &str) -> Vec<Notification> {
    to_topics(secret, attributes(secret, event, Some(&version.name), at), &version_json(version))
}

/// `eventType`, `dataFormat`, `secretId` (the secret's full name), `timestamp` and, for version
/// events, `versionId` (the version's full name).
fn attributes(secret: &Secret, event: EventType, version: Option<&str>, at: &str) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::from([
        ("eventType".to_owned(), event.as_str().to_owned()),
        ("dataFormat".to_owned(), DATA_FORMAT.to_owned()),
        ("secretId".to_owned(), secret.name.to_string()),
        ("timestamp".to_owned(), at.to_owned()),
    ]);
    if let Some(version) = version {
        attributes.insert("versionId".to_owned(), version.to_owned());
    }
    attributes
}

fn to_topics(secret: &Secret, attributes: BTreeMap<String, String>, data: &Value) -> Vec<Notification> {
    let data = data.to_string().into_bytes();
    let topics = secret.fields.topics.iter();
    topics
        .map(|topic| Notification { topic: topic.clone(), attributes: attributes.clone(), data: data.clone() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::names::{SecretName, Transition};
    use super::super::store::{Payload, Replication, SecretFields, SecretUpdate};
    use super::*;

    const TOPIC: &str = "projects/p/topics/events";

    fn store_with_topics(topics: &[&str]) -> Store {
        let mut store = Store::default();
        let fields = SecretFields { topics: topics.iter().map(|t| (*t).to_owned()).collect(), ..Default::default() };
        let created = store.create_secret(name(), Some(Replication::automatic()), fields, jiff::Timestamp::now());
        assert!(created.is_ok(), "{created:?}");
        store
    }

    fn name() -> SecretName {
        SecretName::global("p", "db")
    }

    fn events(notifications: &[Notification]) -> Vec<(&str, &str)> {
        notifications.iter().map(|n| (n.topic.as_str(), n.attributes["eventType"].as_str())).collect()
    }

    #[test]
    fn a_create_tests_each_topic_then_tells_all_of_them() {
        let mut store = store_with_topics(&[TOPIC, "projects/p/topics/audit"]);
        let sent = notifications(&mut store, jiff::Timestamp::now());
        assert_eq!(
            events(&sent),
            [
                (TOPIC, "TOPIC_CONFIGURED"),
                ("projects/p/topics/audit", "TOPIC_CONFIGURED"),
                (TOPIC, "SECRET_CREATE"),
                ("projects/p/topics/audit", "SECRET_CREATE")
            ]
        );
        assert_eq!(sent[0].attributes.len(), 1, "the test message has only its type");
        assert!(sent[0].data.is_empty());
        let created: Value = serde_json::from_slice(&sent[2].data).unwrap_or_default();
        assert_eq!(created["name"], "projects/p/secrets/db");
        assert_eq!(created["topics"][0]["name"], TOPIC);
        assert_eq!(sent[2].attributes["secretId"], "projects/p/secrets/db");
        assert_eq!(sent[2].attributes["dataFormat"], "JSON_API_V1");
        assert!(sent[2].attributes["timestamp"].parse::<jiff::Timestamp>().is_ok());
        assert!(!sent[2].attributes.contains_key("versionId"));
    }

    #[test]
    fn version_events_name_the_version_and_carry_it_without_its_payload() {
        let mut store = store_with_topics(&[TOPIC]);
        notifications(&mut store, jiff::Timestamp::now());
        let added = store.add_version(&name(), Payload::new(b"s3cr3t-sentinel".to_vec()), false).map(|v| v.number);
        assert_eq!(added, Ok(1));
        for transition in [Transition::Disable, Transition::Enable, Transition::Destroy] {
            assert!(store.change_version(&name().version(1), transition, None).is_ok());
        }
        let sent = notifications(&mut store, jiff::Timestamp::now());
        let types: Vec<&str> = events(&sent).into_iter().map(|(_, event)| event).collect();
        assert_eq!(
            types,
            ["SECRET_VERSION_ADD", "SECRET_VERSION_DISABLE", "SECRET_VERSION_ENABLE", "SECRET_VERSION_DESTROY"]
        );
        for notification in &sent {
            assert_eq!(notification.attributes["versionId"], "projects/p/secrets/db/versions/1");
            let text = String::from_utf8_lossy(&notification.data);
            assert!(!text.contains("s3cr3t") && !text.contains("czNjcjN0"), "{text}");
        }
        let destroyed: Value = serde_json::from_slice(&sent[3].data).unwrap_or_default();
        assert_eq!(destroyed["state"], "DESTROYED");
    }

    #[test]
    fn an_update_tests_added_topics_and_a_delete_tells_the_topics_it_had() {
        let mut store = store_with_topics(&[TOPIC]);
        notifications(&mut store, jiff::Timestamp::now());
        let topics = vec![TOPIC.to_owned(), "projects/p/topics/audit".to_owned()];
        let update = SecretUpdate { topics: Some(topics), ..Default::default() };
        assert!(store.update_secret(&name(), update, None, jiff::Timestamp::now()).is_ok());
        assert_eq!(store.delete_secret(&name(), None), Ok(()));
        let sent = notifications(&mut store, jiff::Timestamp::now());
        assert_eq!(
            events(&sent),
            [
                ("projects/p/topics/audit", "TOPIC_CONFIGURED"),
                (TOPIC, "SECRET_UPDATE"),
                ("projects/p/topics/audit", "SECRET_UPDATE"),
                (TOPIC, "SECRET_DELETE"),
                ("projects/p/topics/audit", "SECRET_DELETE")
            ]
        );
        let deleted: Value = serde_json::from_slice(&sent[3].data).unwrap_or_default();
        assert_eq!(deleted["name"], "projects/p/secrets/db");
    }
}
