//! The JSON of the REST API: request bodies in, resources out (camelCase, bytes as base64, empty
//! fields left out as proto3 JSON does, answers shaped like Google's emulator's).

use super::names::TopicName;
use super::rest::{decode_bytes, timestamp_millis};
use super::rpc::{Code, RpcError};
use super::store::{NewMessage, Received, Subscription, Topic};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// How long Google's emulator says a subscription keeps messages (nothing expires here).
const RETENTION: &str = "604800s";

/// What a subscription whose topic was deleted names as its topic.
const DELETED_TOPIC: &str = "_deleted-topic_";

/// An integer field: proto3 JSON accepts a number or a string.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Int {
    Number(i64),
    Text(String),
}

impl Int {
    fn value(&self, field: &str) -> Result<i64, RpcError> {
        match self {
            Self::Number(number) => Ok(*number),
            Self::Text(text) => text.trim().parse().map_err(|_| {
                RpcError::invalid_argument(format!("Invalid value at '{field}' (TYPE_INT32), \"{text}\""))
            }),
        }
    }
}

fn int_or_zero(value: Option<&Int>, field: &str) -> Result<i64, RpcError> {
    value.map_or(Ok(0), |value| value.value(field))
}

/// A Topic as sent to create. Output-only and storage fields are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicBody {
    #[serde(rename = "name")]
    _name: Option<IgnoredAny>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "messageStoragePolicy")]
    _message_storage_policy: Option<IgnoredAny>,
    #[serde(rename = "kmsKeyName")]
    _kms_key_name: Option<IgnoredAny>,
    #[serde(rename = "messageRetentionDuration")]
    _message_retention_duration: Option<IgnoredAny>,
    #[serde(rename = "satisfiesPzs")]
    _satisfies_pzs: Option<IgnoredAny>,
    #[serde(rename = "state")]
    _state: Option<IgnoredAny>,
    schema_settings: Option<Value>,
    ingestion_data_source_settings: Option<Value>,
    message_transforms: Option<Value>,
}

impl TopicBody {
    /// Refuses what would change delivery in ways the emulator does not emulate.
    pub fn check_supported(&self) -> Result<(), RpcError> {
        unsupported("Topic.schema_settings", is_set(self.schema_settings.as_ref()))?;
        unsupported("Topic.ingestion_data_source_settings", is_set(self.ingestion_data_source_settings.as_ref()))?;
        unsupported("Topic.message_transforms", is_set(self.message_transforms.as_ref()))
    }
}

/// A Subscription as sent to create.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionBody {
    #[serde(rename = "name")]
    _name: Option<IgnoredAny>,
    #[serde(default)]
    pub topic: String,
    pub ack_deadline_seconds: Option<Int>,
    pub labels: Option<BTreeMap<String, String>>,
    push_config: Option<Value>,
    bigquery_config: Option<Value>,
    cloud_storage_config: Option<Value>,
    filter: Option<String>,
    dead_letter_policy: Option<Value>,
    enable_message_ordering: Option<bool>,
    enable_exactly_once_delivery: Option<bool>,
    message_transforms: Option<Value>,
    // Accepted and ignored: nothing expires, and redelivery after a nack is immediate.
    #[serde(rename = "retainAckedMessages")]
    _retain_acked_messages: Option<IgnoredAny>,
    #[serde(rename = "messageRetentionDuration")]
    _message_retention_duration: Option<IgnoredAny>,
    #[serde(rename = "expirationPolicy")]
    _expiration_policy: Option<IgnoredAny>,
    #[serde(rename = "retryPolicy")]
    _retry_policy: Option<IgnoredAny>,
    #[serde(rename = "detached")]
    _detached: Option<IgnoredAny>,
    #[serde(rename = "topicMessageRetentionDuration")]
    _topic_message_retention_duration: Option<IgnoredAny>,
    #[serde(rename = "state")]
    _state: Option<IgnoredAny>,
    #[serde(rename = "analyticsHubSubscriptionInfo")]
    _analytics_hub_subscription_info: Option<IgnoredAny>,
}

impl SubscriptionBody {
    /// The topic it subscribes to: a full name with a valid id.
    pub fn topic_name(&self) -> Result<TopicName, RpcError> {
        let invalid = || RpcError::invalid_argument(format!("Invalid [topics] name: (name={})", self.topic));
        let name = TopicName::parse(&self.topic).ok_or_else(invalid)?;
        name.validate()?;
        Ok(name)
    }

    pub fn ack_deadline_seconds(&self) -> Result<i64, RpcError> {
        int_or_zero(self.ack_deadline_seconds.as_ref(), "ack_deadline_seconds")
    }

    /// Refuses what the emulator does not emulate (push, exports, filters, dead letters,
    /// ordered or exactly-once delivery) rather than silently delivering differently.
    pub fn check_supported(&self) -> Result<(), RpcError> {
        let push = self.push_config.as_ref().and_then(|config| config.get("pushEndpoint"));
        unsupported("push subscriptions (Subscription.push_config.push_endpoint)", is_set(push))?;
        unsupported("Subscription.bigquery_config", is_set(self.bigquery_config.as_ref()))?;
        unsupported("Subscription.cloud_storage_config", is_set(self.cloud_storage_config.as_ref()))?;
        unsupported("Subscription.filter", self.filter.as_deref().is_some_and(|f| !f.trim().is_empty()))?;
        unsupported("Subscription.dead_letter_policy", is_set(self.dead_letter_policy.as_ref()))?;
        unsupported("Subscription.enable_message_ordering", self.enable_message_ordering == Some(true))?;
        unsupported("Subscription.enable_exactly_once_delivery", self.enable_exactly_once_delivery == Some(true))?;
        unsupported("Subscription.message_transforms", is_set(self.message_transforms.as_ref()))
    }
}

/// Whether a JSON field holds anything (`null`, `""`, `{}` and `[]` do not).
fn is_set(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(text)) => !text.is_empty(),
        Some(Value::Object(object)) => !object.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    }
}

fn unsupported(what: &str, set: bool) -> Result<(), RpcError> {
    if set {
        Err(RpcError::new(Code::Unimplemented, format!("The emulator does not implement {what}.")))
    } else {
        Ok(())
    }
}

/// The body of `:publish`; no `Debug`, like its messages.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishBody {
    #[serde(default)]
    messages: Vec<MessageBody>,
}

/// No `Debug`: it holds whatever the client publishes.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MessageBody {
    data: Option<String>,
    attributes: Option<BTreeMap<String, String>>,
    ordering_key: Option<String>,
    #[serde(rename = "messageId")]
    _message_id: Option<IgnoredAny>,
    #[serde(rename = "publishTime")]
    _publish_time: Option<IgnoredAny>,
}

impl PublishBody {
    /// The messages, their data decoded from base64.
    pub fn into_messages(self) -> Result<Vec<NewMessage>, RpcError> {
        self.messages
            .into_iter()
            .enumerate()
            .map(|(index, message)| {
                let field = format!("messages[{index}].data");
                Ok(NewMessage {
                    data: decode_bytes(message.data.as_deref().unwrap_or_default(), &field)?,
                    attributes: message.attributes.unwrap_or_default(),
                    ordering_key: message.ordering_key.unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// The body of `:pull`. Pulls never wait, so `returnImmediately` changes nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullBody {
    max_messages: Option<Int>,
    #[serde(rename = "returnImmediately")]
    _return_immediately: Option<bool>,
}

impl PullBody {
    /// `maxMessages`; 0 when missing (which the store refuses).
    pub fn max_messages(&self) -> Result<usize, RpcError> {
        let max = int_or_zero(self.max_messages.as_ref(), "max_messages")?;
        Ok(usize::try_from(max).unwrap_or(0))
    }
}

/// The body of `:acknowledge` and `:modifyAckDeadline`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AckBody {
    #[serde(default)]
    pub ack_ids: Vec<String>,
    ack_deadline_seconds: Option<Int>,
}

impl AckBody {
    /// `ackDeadlineSeconds`, 0 when missing.
    pub fn ack_deadline_seconds(&self) -> Result<i64, RpcError> {
        int_or_zero(self.ack_deadline_seconds.as_ref(), "ack_deadline_seconds")
    }
}

/// A Topic resource.
pub fn topic_json(topic: &Topic) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), json!(topic.name.to_string()));
    insert_labels(&mut object, &topic.labels);
    Value::Object(object)
}

/// A Subscription resource, with the fields Google's emulator writes.
pub fn subscription_json(subscription: &Subscription) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), json!(subscription.name.to_string()));
    let topic = subscription.topic.as_ref().map_or_else(|| DELETED_TOPIC.to_owned(), TopicName::to_string);
    object.insert("topic".into(), json!(topic));
    object.insert("pushConfig".into(), json!({}));
    // Sub-second deadlines (seeded by tests) are written rounded up.
    let deadline = subscription.ack_deadline.as_secs_f64().ceil();
    object.insert("ackDeadlineSeconds".into(), json!(deadline as u64));
    object.insert("messageRetentionDuration".into(), json!(RETENTION));
    insert_labels(&mut object, &subscription.labels);
    Value::Object(object)
}

fn insert_labels(object: &mut Map<String, Value>, labels: &BTreeMap<String, String>) {
    if !labels.is_empty() {
        object.insert("labels".into(), json!(labels));
    }
}

/// The answer of `:publish`.
pub fn publish_json(ids: &[String]) -> Value {
    json!({ "messageIds": ids })
}

/// The answer of `:pull`: `{}` when nothing was delivered. No `deliveryAttempt`: it is only set
/// under a dead-letter policy, which the emulator does not take.
pub fn pull_json(batch: &[Received]) -> Value {
    if batch.is_empty() {
        return json!({});
    }
    let received: Vec<Value> = batch.iter().map(received_json).collect();
    json!({ "receivedMessages": received })
}

fn received_json(received: &Received) -> Value {
    let message = &received.message;
    let mut object = Map::new();
    if !message.data.is_empty() {
        object.insert("data".into(), json!(STANDARD.encode(&message.data)));
    }
    if !message.attributes.is_empty() {
        object.insert("attributes".into(), json!(message.attributes));
    }
    object.insert("messageId".into(), json!(message.id));
    object.insert("publishTime".into(), json!(timestamp_millis(message.publish_time)));
    if !message.ordering_key.is_empty() {
        object.insert("orderingKey".into(), json!(message.ordering_key));
    }
    json!({ "ackId": received.ack_id, "message": Value::Object(object) })
}

#[cfg(test)]
mod tests {
    use super::super::rest::parse_body;
    use super::*;

    #[test]
    fn a_subscription_body_names_a_valid_topic() {
        let body: Result<SubscriptionBody, _> =
            parse_body(br#"{"topic":"projects/p/topics/events","ackDeadlineSeconds":2}"#);
        let Ok(body) = body else { panic!("{body:?}") };
        assert_eq!(body.topic_name(), Ok(TopicName::new("p", "events")));
        assert_eq!(body.ack_deadline_seconds(), Ok(2));
        let empty: SubscriptionBody = parse_body(b"{}").unwrap_or_default();
        assert_eq!(empty.topic_name().err().map(|e| e.message), Some("Invalid [topics] name: (name=)".into()));
    }

    #[test]
    fn features_the_emulator_lacks_are_refused_as_unimplemented() {
        for body in [
            r#"{"topic":"projects/p/topics/events","pushConfig":{"pushEndpoint":"https://x"}}"#,
            r#"{"topic":"projects/p/topics/events","filter":"attributes.k = \"v\""}"#,
            r#"{"topic":"projects/p/topics/events","deadLetterPolicy":{"deadLetterTopic":"projects/p/topics/dlq"}}"#,
            r#"{"topic":"projects/p/topics/events","enableMessageOrdering":true}"#,
            r#"{"topic":"projects/p/topics/events","enableExactlyOnceDelivery":true}"#,
        ] {
            let parsed: SubscriptionBody = parse_body(body.as_bytes()).unwrap_or_default();
            assert_eq!(parsed.check_supported().map_err(|e| e.http_status), Err(501), "{body}");
        }
        let plain = r#"{"topic":"projects/p/topics/events","pushConfig":{},"retainAckedMessages":false}"#;
        let parsed: SubscriptionBody = parse_body(plain.as_bytes()).unwrap_or_default();
        assert_eq!(parsed.check_supported(), Ok(()));
    }

    #[test]
    fn published_data_is_base64_and_unknown_fields_are_refused() {
        let body: PublishBody =
            parse_body(br#"{"messages":[{"data":"aGk=","attributes":{"k":"v"}}]}"#).unwrap_or_default();
        let messages = body.into_messages().unwrap_or_default();
        assert_eq!(messages.first().map(|m| m.data.as_slice()), Some(b"hi".as_slice()));
        let bad: PublishBody = parse_body(br#"{"messages":[{"data":"!!"}]}"#).unwrap_or_default();
        assert!(bad.into_messages().is_err());
        assert!(parse_body::<PublishBody>(br#"{"messages":[{"bogus":1}]}"#).is_err());
    }

    #[test]
    fn max_messages_and_deadlines_take_numbers_or_strings() {
        let pull: PullBody = parse_body(br#"{"maxMessages":"5","returnImmediately":true}"#).unwrap_or_default();
        assert_eq!(pull.max_messages(), Ok(5));
        let modack: AckBody = parse_body(br#"{"ackIds":["a"]}"#).unwrap_or_default();
        assert_eq!(modack.ack_deadline_seconds(), Ok(0));
    }
}
