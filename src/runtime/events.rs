//! Events (`events.k8s.io/v1`), written straight to the API server.
//!
//! kube-runtime's `Recorder` keeps every Event it wrote for six minutes, to count repeats as a
//! series, and scans that cache on each write: at 10,000 objects synced in a minute that is 10,000
//! cached Events and a quadratic scan. The controllers already write each distinct failure once
//! (`skeleton::warn_once`) and each new version once, so repeats are rare and a repeat is simply a
//! new Event.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::EventType;

/// Who writes the Events: the operator, and this replica.
pub struct EventWriter {
    client: Client,
    controller: String,
    instance: String,
}

/// What one Event says.
pub struct Note<'a> {
    pub type_: EventType,
    pub reason: &'a str,
    pub action: &'a str,
    pub note: String,
}

impl EventWriter {
    /// Events reported by `controller`, from `instance` (the pod name; else the controller).
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self { client, controller: controller.to_owned(), instance: instance.unwrap_or_else(|| controller.to_owned()) }
    }

    /// Creates an Event about `regarding` in its namespace.
    pub async fn write(&self, regarding: ObjectReference, note: Note<'_>) -> Result<(), kube::Error> {
        let event = build(&self.controller, &self.instance, regarding, note, jiff::Timestamp::now());
        let namespace = event.metadata.namespace.clone().unwrap_or_else(|| "default".to_owned());
        let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        events.create(&PostParams::default(), &event).await.map(drop)
    }
}

/// The Event (pure): named after the object and the time, as kube-runtime and client-go do.
fn build(controller: &str, instance: &str, regarding: ObjectReference, note: Note<'_>, now: jiff::Timestamp) -> Event {
    let name = format!("{}.{:x}", regarding.name.as_deref().unwrap_or(controller), now.as_nanosecond());
    Event {
        metadata: ObjectMeta { name: Some(name), namespace: regarding.namespace.clone(), ..ObjectMeta::default() },
        action: Some(note.action.to_owned()),
        reason: Some(note.reason.to_owned()),
        note: Some(note.note),
        type_: Some(match note.type_ {
            EventType::Normal => "Normal".to_owned(),
            EventType::Warning => "Warning".to_owned(),
        }),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding),
        reporting_controller: Some(controller.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        ..Event::default()
    }
}

#[cfg(test)]
mod tests {
    use super::{Note, build};
    use k8s_openapi::api::core::v1::ObjectReference;
    use kube::runtime::events::EventType;

    #[test]
    fn an_event_names_its_object_reporter_and_time() {
        let regarding = ObjectReference {
            kind: Some("SecretRef".into()),
            name: Some("db".into()),
            namespace: Some("team-a".into()),
            ..ObjectReference::default()
        };
        let note = Note { type_: EventType::Warning, reason: "SecretNotFound", action: "Sync", note: "gone".into() };
        let now = jiff::Timestamp::from_second(1_700_000_000).unwrap_or_else(|e| panic!("{e}"));
        let event = build("secure-api-operator", "pod-1", regarding, note, now);
        assert_eq!(event.metadata.name.as_deref(), Some("db.17979cfe362a0000"));
        assert_eq!(event.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(event.regarding.and_then(|r| r.kind).as_deref(), Some("SecretRef"));
    }
}
