//! The Pub/Sub subscriber client (REST v1 over HTTP/1.1, which Google's emulator serves too):
//! pull, acknowledge, modify ack deadline. Only attributes and ids are kept from a message; its
//! data (a Secret Manager resource as JSON) is never decoded or shown.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;

use super::GcpConfig;
use super::caller::Caller;
use super::error::{Code, Detail, GcpError};
use super::http::{Call, CallObserver, Executor, Request, Verb, check_endpoint};

const SERVICE: &str = "pubsub";
const METHOD_PULL: &str = "pubsub.subscriptions.pull";
const METHOD_ACK: &str = "pubsub.subscriptions.acknowledge";
const METHOD_MODIFY: &str = "pubsub.subscriptions.modifyAckDeadline";
const DEFAULT_ENDPOINT: &str = "https://pubsub.googleapis.com";

/// One pulled message: what the operator acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub ack_id: String,
    pub message_id: String,
    pub attributes: BTreeMap<String, String>,
    /// When Pub/Sub received it (RFC 3339), for the delivery-lag histogram.
    pub publish_time: Option<String>,
}

/// The subscriber. Cheap to clone.
#[derive(Clone)]
pub struct Subscriber {
    inner: Arc<Inner>,
}

struct Inner {
    executor: Executor,
    endpoint: String,
    default_project: Option<String>,
}

impl Subscriber {
    /// Builds the client with the operator's own credentials (`roles/pubsub.subscriber` on the
    /// subscriptions). `endpoint` overrides `https://pubsub.googleapis.com` (emulators).
    ///
    /// # Errors
    /// An invalid endpoint (INVALID_ARGUMENT) or no usable Google credentials (UNAUTHENTICATED).
    pub async fn new(
        config: GcpConfig,
        endpoint: Option<&str>,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Result<Self, GcpError> {
        let endpoint = match endpoint {
            Some(endpoint) => check_endpoint(endpoint, "pubsub_endpoint")?,
            None => DEFAULT_ENDPOINT.to_owned(),
        };
        let executor = Executor::from_config(&config, observer).await?;
        Ok(Self { inner: Arc::new(Inner { executor, endpoint, default_project: config.default_project }) })
    }

    /// `projects/P/subscriptions/S` for a full name or a bare id in the default project.
    ///
    /// # Errors
    /// Anything else: a bare id without a default project, or characters outside Pub/Sub's.
    pub fn subscription_name(&self, subscription: &str) -> Result<String, GcpError> {
        subscription_name(subscription, self.inner.default_project.as_deref())
    }

    /// `POST v1/{subscription}:pull`: up to `max_messages` messages (none is an empty list).
    ///
    /// # Errors
    /// The final error after retries (NOT_FOUND for a missing subscription, PERMISSION_DENIED, ...).
    pub async fn pull(&self, subscription: &str, max_messages: u32) -> Result<Vec<ReceivedMessage>, GcpError> {
        let body = serde_json::json!({ "maxMessages": max_messages });
        let answer = self.post(METHOD_PULL, subscription, "pull", body).await?;
        let pulled: PullAnswer = serde_json::from_slice(&answer).map_err(|_| malformed(METHOD_PULL, subscription))?;
        Ok(pulled.received_messages.into_iter().map(ReceivedMessage::from).collect())
    }

    /// `POST v1/{subscription}:acknowledge`.
    ///
    /// # Errors
    /// The final error after retries.
    pub async fn acknowledge(&self, subscription: &str, ack_ids: &[String]) -> Result<(), GcpError> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        self.post(METHOD_ACK, subscription, "acknowledge", serde_json::json!({ "ackIds": ack_ids })).await?;
        Ok(())
    }

    /// `POST v1/{subscription}:modifyAckDeadline`; 0 seconds hands the messages back at once.
    ///
    /// # Errors
    /// The final error after retries.
    pub async fn modify_ack_deadline(
        &self,
        subscription: &str,
        ack_ids: &[String],
        seconds: u32,
    ) -> Result<(), GcpError> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        let body = serde_json::json!({ "ackIds": ack_ids, "ackDeadlineSeconds": seconds });
        self.post(METHOD_MODIFY, subscription, "modifyAckDeadline", body).await?;
        Ok(())
    }

    /// The three calls change nothing that a repeat could break (a repeated pull only delays
    /// messages until their ack deadline), so they are retried like reads.
    async fn post(
        &self,
        method: &'static str,
        subscription: &str,
        verb: &str,
        body: serde_json::Value,
    ) -> Result<Bytes, GcpError> {
        let url = format!("{}/v1/{subscription}:{verb}", self.inner.endpoint);
        let call = Call { service: SERVICE, method, resource: subscription, url: &url, caller: &Caller::Operator };
        let request = Request::json(Verb::Post, Bytes::from(body.to_string()));
        let success = self.inner.executor.execute_idempotent(&call, &request).await?;
        Ok(Bytes::copy_from_slice(&success.body))
    }
}

fn subscription_name(subscription: &str, default_project: Option<&str>) -> Result<String, GcpError> {
    let invalid = || {
        GcpError::new(
            "config",
            subscription.escape_default().to_string(),
            Code::InvalidArgument,
            Some(Detail::InvalidRequest),
        )
    };
    let (project, id) = match subscription.strip_prefix("projects/").and_then(|rest| rest.split_once("/subscriptions/"))
    {
        Some((project, id)) => (project, id),
        None if !subscription.contains('/') => (default_project.ok_or_else(invalid)?, subscription),
        None => return Err(invalid()),
    };
    let project_ok =
        !project.is_empty() && project.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'));
    // Pub/Sub ids: 3–255 of letters, digits, `-_.~+%`, starting with a letter.
    let id_ok = (3..=255).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'%'));
    if !(project_ok && id_ok) {
        return Err(invalid());
    }
    Ok(format!("projects/{project}/subscriptions/{id}"))
}

fn malformed(method: &'static str, resource: &str) -> GcpError {
    GcpError::new(method, resource, Code::Unknown, Some(Detail::MalformedResponse))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullAnswer {
    #[serde(default)]
    received_messages: Vec<WireReceived>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireReceived {
    ack_id: String,
    message: WireMessage,
}

/// `data` is left out on purpose: it is never needed, so it is never decoded.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMessage {
    #[serde(default)]
    message_id: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    publish_time: Option<String>,
}

impl From<WireReceived> for ReceivedMessage {
    fn from(received: WireReceived) -> Self {
        let WireMessage { message_id, attributes, publish_time } = received.message;
        Self { ack_id: received.ack_id, message_id, attributes, publish_time }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_full_names_or_ids_in_the_default_project() {
        assert_eq!(
            subscription_name("secret-events", Some("p1")).ok().as_deref(),
            Some("projects/p1/subscriptions/secret-events")
        );
        assert_eq!(
            subscription_name("projects/p2/subscriptions/sub", None).ok().as_deref(),
            Some("projects/p2/subscriptions/sub")
        );
        assert!(subscription_name("secret-events", None).is_err());
        assert!(subscription_name("ab", Some("p")).is_err(), "ids have at least 3 characters");
        assert!(subscription_name("projects/p/subscriptions/a/../b", None).is_err());
        assert!(subscription_name("projects/p/topics/t", None).is_err());
    }

    #[test]
    fn a_pull_answer_keeps_attributes_and_never_the_data() {
        let body = br#"{"receivedMessages":[{"ackId":"a1","message":{"data":"eyJzZWNyZXQiOiJ4In0=","attributes":{"eventType":"SECRET_VERSION_ADD"},"messageId":"m1","publishTime":"2026-12-01T10:00:00Z"}}]}"#;
        let answer: PullAnswer = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}"));
        let messages: Vec<ReceivedMessage> = answer.received_messages.into_iter().map(Into::into).collect();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].attributes.get("eventType").map(String::as_str), Some("SECRET_VERSION_ADD"));
        assert_eq!(messages[0].publish_time.as_deref(), Some("2026-12-01T10:00:00Z"));
        let empty: PullAnswer = serde_json::from_slice(b"{}").unwrap_or_else(|e| panic!("{e}"));
        assert!(empty.received_messages.is_empty());
    }
}
