//! Google Cloud Pub/Sub v1 over REST, what a pull subscriber needs: topics, subscriptions,
//! publish, pull, acknowledge and `modifyAckDeadline`, with at-least-once delivery (a message
//! pulled and not acknowledged is offered again after its ack deadline) and delivery faults.
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
use std::time::Duration;

pub use faults::DeliveryFaults;
pub(super) use names::Call;
pub(super) use store::Store;

use names::{SubscriptionName, TopicName};

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

/// Sets the delivery faults, replacing the ones before.
pub(super) fn set_delivery_faults(store: &mut Store, faults: DeliveryFaults) {
    store.faults = faults;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_subscriptions_take_a_topic_id_or_name() {
        let mut store = Store::default();
        create_subscription(&mut store, "p", "by-id", "events", Duration::from_millis(300));
        create_subscription(&mut store, "p", "by-name", "projects/other/topics/events", Duration::from_secs(1));
        let by_id = store.subscription(&SubscriptionName::new("p", "by-id")).map(|s| s.topic.clone());
        assert_eq!(by_id, Ok(Some(TopicName::new("p", "events"))));
        assert!(store.topic(&TopicName::new("other", "events")).is_ok());
    }
}
