//! Google Cloud Pub/Sub v1 over REST, what a pull subscriber needs: topics, subscriptions,
//! publish, pull, acknowledge and `modifyAckDeadline`, with at-least-once delivery (a message
//! pulled and not acknowledged is offered again after its ack deadline) and delivery faults; and
//! the IAM policies of topics and subscriptions (`getIamPolicy`, `setIamPolicy`), which grant
//! publishing and consuming as the project's policy does.
//!
//! - [`names`]: resource names and which REST method a request calls;
//! - [`store`]: topics, subscriptions and their backlogs, the rules of delivery;
//! - [`faults`]: duplicated, delayed, reordered deliveries and dropped acknowledgements;
//! - [`wire`]: the JSON of requests and resources; [`routes`]: one handler per method.
//!
//! Pulls never wait: with nothing to deliver the answer is `{}` at once, whatever
//! `returnImmediately` says. Left out: ordered delivery (ordering keys are kept and echoed),
//! filters, dead letters, push and export subscriptions, exactly-once delivery, seek,
//! snapshots, schemas, retention, streaming pull (gRPC).

mod faults;
mod names;
mod routes;
mod store;
mod wire;

use super::clock::Now;
use super::rest::{self, Query};
use super::rpc::{self, RpcError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub use faults::DeliveryFaults;
pub(super) use names::Call;
pub(super) use store::Store;

use names::{SubscriptionName, TopicName};
use store::NewMessage;

/// Serves one call on the store.
pub(super) fn handle(store: &mut Store, call: &Call, query: &Query, body: &[u8], now: Now) -> Result<Value, RpcError> {
    routes::handle(store, call, query, body, now)
}

/// Creates `projects/{project}/topics/{topic}` when missing; no id checks.
pub(super) fn create_topic(store: &mut Store, project: &str, topic: &str) {
    store.seed_topic(TopicName::new(project, topic));
}

/// Creates a subscription of `topic` (an id in `project` or a full name), and the topic, when
/// missing; no id checks, any deadline.
pub(super) fn create_subscription(
    store: &mut Store,
    project: &str,
    subscription: &str,
    topic: &str,
    ack_deadline: Duration,
) {
    let topic = TopicName::parse(topic).unwrap_or_else(|| TopicName::new(project, topic));
    store.seed_subscription(SubscriptionName::new(project, subscription), topic, ack_deadline);
}

/// Publishes one message to the topic named `topic` (`projects/P/topics/T`), as `:publish`
/// would; answers its message id.
pub(super) fn publish(
    store: &mut Store,
    topic: &str,
    data: Vec<u8>,
    attributes: BTreeMap<String, String>,
    now: Now,
) -> Result<String, RpcError> {
    let name = TopicName::parse(topic).ok_or_else(|| RpcError::not_found("Topic not found"))?;
    let ids = store.publish(&name, vec![NewMessage { data, attributes, ordering_key: String::new() }], now)?;
    ids.into_iter().next().ok_or_else(|| RpcError::internal("publish answered no message id"))
}

/// Whether the policy of the topic or subscription `name` grants `permission` to `principal`.
pub(super) fn policy_allows(store: &Store, name: &str, principal: &str, permission: &str) -> bool {
    store.policy_allows(name, principal, permission)
}

/// Sets the delivery faults, replacing the ones before.
pub(super) fn set_delivery_faults(store: &mut Store, faults: DeliveryFaults) {
    store.faults = faults;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_resources_take_a_topic_id_or_name_and_publishing_reaches_them() {
        let mut store = Store::default();
        create_subscription(&mut store, "p", "by-id", "events", Duration::from_millis(300));
        create_subscription(&mut store, "p", "by-name", "projects/other/topics/events", Duration::from_secs(1));
        let now = Now::with_offset(Duration::ZERO);
        assert_eq!(
            publish(&mut store, "projects/p/topics/events", b"x".to_vec(), BTreeMap::new(), now),
            Ok("1".into())
        );
        let pulled = store.pull(&SubscriptionName::new("p", "by-id"), 10, now.instant).map(|b| b.len());
        assert_eq!(pulled, Ok(1));
        let missing = publish(&mut store, "projects/p/topics/nope", b"x".to_vec(), BTreeMap::new(), now);
        assert_eq!(missing.map_err(|e| e.http_status), Err(404));
        assert!(store.topic(&TopicName::new("other", "events")).is_ok());
    }
}
