//! A Secret Manager notification, read from its Pub/Sub attributes only (pure). The message data
//! (the Secret or SecretVersion resource) is never needed: a reconcile reads the current state.

use std::collections::BTreeMap;

/// The event types Secret Manager publishes, and what the operator does with each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    SecretCreate,
    SecretUpdate,
    SecretDelete,
    VersionAdd,
    VersionEnable,
    VersionDisable,
    VersionDestroy,
    VersionDestroyScheduled,
    SecretRotate,
    TopicConfigured,
    Unknown,
}

impl EventType {
    pub fn parse(text: &str) -> Self {
        match text {
            "SECRET_CREATE" => Self::SecretCreate,
            "SECRET_UPDATE" => Self::SecretUpdate,
            "SECRET_DELETE" => Self::SecretDelete,
            "SECRET_VERSION_ADD" => Self::VersionAdd,
            "SECRET_VERSION_ENABLE" => Self::VersionEnable,
            "SECRET_VERSION_DISABLE" => Self::VersionDisable,
            "SECRET_VERSION_DESTROY" => Self::VersionDestroy,
            "SECRET_VERSION_DESTROY_SCHEDULED" => Self::VersionDestroyScheduled,
            "SECRET_ROTATE" => Self::SecretRotate,
            "TOPIC_CONFIGURED" => Self::TopicConfigured,
            _ => Self::Unknown,
        }
    }

    /// The metric label: Google's name, or `unknown` (a fixed set).
    pub fn label(self) -> &'static str {
        match self {
            Self::SecretCreate => "SECRET_CREATE",
            Self::SecretUpdate => "SECRET_UPDATE",
            Self::SecretDelete => "SECRET_DELETE",
            Self::VersionAdd => "SECRET_VERSION_ADD",
            Self::VersionEnable => "SECRET_VERSION_ENABLE",
            Self::VersionDisable => "SECRET_VERSION_DISABLE",
            Self::VersionDestroy => "SECRET_VERSION_DESTROY",
            Self::VersionDestroyScheduled => "SECRET_VERSION_DESTROY_SCHEDULED",
            Self::SecretRotate => "SECRET_ROTATE",
            Self::TopicConfigured => "TOPIC_CONFIGURED",
            Self::Unknown => "unknown",
        }
    }
}

/// One notification: the event, the secret (`projects/P[/locations/L]/secrets/S`, P an id or a
/// number) and, for version events, the version number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub event: EventType,
    pub project: String,
    pub location: Option<String>,
    pub secret: String,
    pub version: Option<String>,
}

/// Reads the attributes; `None` when they name no secret (TOPIC_CONFIGURED, or a foreign message).
pub fn parse(attributes: &BTreeMap<String, String>) -> Option<Notification> {
    let event = EventType::parse(attributes.get("eventType").map(String::as_str).unwrap_or_default());
    let name = attributes.get("secretId")?;
    let (project, location, secret) = split_secret(name)?;
    // `versionId` is the version's resource name (`…/versions/N`) or its number.
    let version = attributes.get("versionId").map(|v| v.rsplit('/').next().unwrap_or(v).to_owned());
    let version = version.filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    Some(Notification { event, project, location, secret, version })
}

/// `projects/P/secrets/S` or `projects/P/locations/L/secrets/S` into its parts.
fn split_secret(name: &str) -> Option<(String, Option<String>, String)> {
    let segments: Vec<&str> = name.split('/').collect();
    let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    match segments.as_slice() {
        ["projects", p, "secrets", s] if valid(p) && valid(s) => Some(((*p).into(), None, (*s).into())),
        ["projects", p, "locations", l, "secrets", s] if valid(p) && valid(l) && valid(s) => {
            Some(((*p).into(), Some((*l).into()), (*s).into()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn version_events_name_the_secret_and_the_version_number() {
        let parsed = parse(&attributes(&[
            ("eventType", "SECRET_VERSION_ADD"),
            ("secretId", "projects/demo-project/secrets/api-config-db"),
            ("versionId", "projects/demo-project/secrets/api-config-db/versions/7"),
            ("dataFormat", "JSON_API_V1"),
        ]));
        let expected = Notification {
            event: EventType::VersionAdd,
            project: "demo-project".into(),
            location: None,
            secret: "api-config-db".into(),
            version: Some("7".into()),
        };
        assert_eq!(parsed, Some(expected));
    }

    #[test]
    fn regional_names_numbers_and_unknown_types_are_read_too() {
        let parsed = parse(&attributes(&[
            ("eventType", "SOMETHING_NEW"),
            ("secretId", "projects/123456789012/locations/europe-west1/secrets/db"),
            ("versionId", "3"),
        ]))
        .unwrap_or_else(|| panic!("parsed"));
        assert_eq!(parsed.event, EventType::Unknown);
        assert_eq!(parsed.event.label(), "unknown");
        assert_eq!((parsed.project.as_str(), parsed.location.as_deref()), ("123456789012", Some("europe-west1")));
        assert_eq!(parsed.version.as_deref(), Some("3"));
    }

    #[test]
    fn messages_without_a_secret_are_not_notifications() {
        assert_eq!(parse(&attributes(&[("eventType", "TOPIC_CONFIGURED")])), None);
        assert_eq!(parse(&attributes(&[("eventType", "SECRET_UPDATE"), ("secretId", "projects/p/../x")])), None);
    }
}
