//! The handlers: one REST call and its body, applied to the store at one reading of the clock
//! and answered as JSON.

use super::names::{Call, SubscriptionName};
use super::rest::{Query, list_page, parse_body};
use super::rpc::RpcError;
use super::store::{Store, ack_deadline};
use super::wire::{self, AckBody, PublishBody, PullBody, SubscriptionBody, TopicBody};
use crate::emulator::gcp::clock::Now;
use serde_json::{Value, json};

/// Serves one call.
pub fn handle(store: &mut Store, call: &Call, query: &Query, body: &[u8], now: Now) -> Result<Value, RpcError> {
    match call {
        Call::CreateTopic(name) => {
            let topic: TopicBody = parse_body(body)?;
            topic.check_supported()?;
            store.create_topic(name.clone(), topic.labels.unwrap_or_default()).map(wire::topic_json)
        }
        Call::GetTopic(name) => store.topic(name).map(wire::topic_json),
        Call::DeleteTopic(name) => store.delete_topic(name).map(|()| json!({})),
        Call::ListTopics(project) => {
            list_page("topics", store.topics(project).into_iter().map(wire::topic_json).collect(), query)
        }
        // `options.requestedPolicyVersion` is accepted: policies are version 1 or 3 as their
        // bindings need.
        Call::GetTopicPolicy(name) => store.topic_policy(name),
        Call::SetTopicPolicy(name) => store.topic_policy_mut(name)?.set(body),
        Call::GetSubscriptionPolicy(name) => store.subscription_policy(name),
        Call::SetSubscriptionPolicy(name) => store.subscription_policy_mut(name)?.set(body),
        Call::Publish(name) => {
            let request: PublishBody = parse_body(body)?;
            store.publish(name, request.into_messages()?, now).map(|ids| wire::publish_json(&ids))
        }
        Call::CreateSubscription(name) => create_subscription(store, name, body),
        Call::GetSubscription(name) => store.subscription(name).map(wire::subscription_json),
        Call::DeleteSubscription(name) => store.delete_subscription(name).map(|()| json!({})),
        Call::ListSubscriptions(project) => {
            let subscriptions = store.subscriptions(project).into_iter().map(wire::subscription_json).collect();
            list_page("subscriptions", subscriptions, query)
        }
        Call::Pull(name) => {
            let request: PullBody = parse_body(body)?;
            store.pull(name, request.max_messages()?, now.instant).map(|batch| wire::pull_json(&batch))
        }
        Call::Acknowledge(name) => {
            let request: AckBody = parse_body(body)?;
            store.acknowledge(name, &request.ack_ids).map(|()| json!({}))
        }
        Call::ModifyAckDeadline(name) => {
            let request: AckBody = parse_body(body)?;
            let seconds = request.ack_deadline_seconds()?;
            store.modify_ack_deadline(name, &request.ack_ids, seconds, now.instant).map(|()| json!({}))
        }
    }
}

fn create_subscription(store: &mut Store, name: &SubscriptionName, body: &[u8]) -> Result<Value, RpcError> {
    let request: SubscriptionBody = parse_body(body)?;
    name.validate()?;
    let topic = request.topic_name()?;
    request.check_supported()?;
    let deadline = ack_deadline(request.ack_deadline_seconds()?)?;
    let labels = request.labels.unwrap_or_default();
    store.create_subscription(name.clone(), topic, deadline, labels).map(wire::subscription_json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Method;
    use std::time::Duration;

    fn call(store: &mut Store, method: Method, path: &str, body: &str, now: Now) -> Result<Value, RpcError> {
        let Some(call) = Call::parse(&method, path) else { panic!("no route for {method} {path}") };
        handle(store, &call, &Query::default(), body.as_bytes(), now)
    }

    #[test]
    fn create_publish_pull_acknowledge_answer_like_googles_emulator() {
        let mut store = Store::default();
        let now = Now::with_offset(Duration::ZERO);
        let topic = call(&mut store, Method::PUT, "projects/p/topics/events", "{}", now);
        assert_eq!(topic, Ok(json!({"name": "projects/p/topics/events"})));
        let body = r#"{"topic":"projects/p/topics/events","ackDeadlineSeconds":2}"#;
        let subscription = call(&mut store, Method::PUT, "projects/p/subscriptions/sub", body, now);
        assert_eq!(
            subscription,
            Ok(json!({"name": "projects/p/subscriptions/sub", "topic": "projects/p/topics/events", "pushConfig": {},
                "ackDeadlineSeconds": 2, "messageRetentionDuration": "604800s"}))
        );
        let published = call(
            &mut store,
            Method::POST,
            "projects/p/topics/events:publish",
            r#"{"messages":[{"data":"aGk=","attributes":{"k":"v"}}]}"#,
            now,
        );
        assert_eq!(published, Ok(json!({"messageIds": ["1"]})));
        let pulled = call(&mut store, Method::POST, "projects/p/subscriptions/sub:pull", r#"{"maxMessages":5}"#, now);
        let Ok(pulled) = pulled else { panic!("{pulled:?}") };
        let message = &pulled["receivedMessages"][0]["message"];
        assert_eq!((message["data"].clone(), message["attributes"].clone()), (json!("aGk="), json!({"k": "v"})));
        assert!(message["publishTime"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(pulled["receivedMessages"][0].get("deliveryAttempt").is_none());
        let ack_id = pulled["receivedMessages"][0]["ackId"].clone();
        let ack = json!({"ackIds": [ack_id]}).to_string();
        assert_eq!(
            call(&mut store, Method::POST, "projects/p/subscriptions/sub:acknowledge", &ack, now),
            Ok(json!({}))
        );
        let empty = call(&mut store, Method::POST, "projects/p/subscriptions/sub:pull", r#"{"maxMessages":5}"#, now);
        assert_eq!(empty, Ok(json!({})));
    }

    #[test]
    fn a_subscription_id_shorter_than_three_characters_is_invalid() {
        let mut store = Store::default();
        let now = Now::with_offset(Duration::ZERO);
        assert!(call(&mut store, Method::PUT, "projects/p/topics/events", "", now).is_ok());
        let body = r#"{"topic":"projects/p/topics/events"}"#;
        let short = call(&mut store, Method::PUT, "projects/p/subscriptions/s1", body, now);
        assert_eq!(short.map_err(|e| e.code.name()), Err("INVALID_ARGUMENT"));
        let default = call(&mut store, Method::PUT, "projects/p/subscriptions/sub", body, now);
        assert_eq!(default.map(|s| s["ackDeadlineSeconds"].clone()), Ok(json!(10)));
    }

    #[test]
    fn topics_and_subscriptions_keep_their_own_policies_until_deleted() {
        let mut store = Store::default();
        let now = Now::with_offset(Duration::ZERO);
        let missing = call(&mut store, Method::GET, "projects/p/topics/events:getIamPolicy", "", now);
        assert_eq!(missing.map_err(|e| e.http_status), Err(404));
        assert!(call(&mut store, Method::PUT, "projects/p/topics/events", "", now).is_ok());
        let body = r#"{"topic":"projects/p/topics/events"}"#;
        assert!(call(&mut store, Method::PUT, "projects/p/subscriptions/sub", body, now).is_ok());
        let empty = call(&mut store, Method::GET, "projects/p/topics/events:getIamPolicy", "", now);
        assert_eq!(empty, Ok(json!({"version": 1, "etag": "ACAB"})));
        let publisher = "serviceAccount:service-1@gcp-sa-secretmanager.iam.gserviceaccount.com";
        let policy = json!({"policy": {"bindings": [{"role": "roles/pubsub.publisher", "members": [publisher]}]}});
        let set = call(&mut store, Method::POST, "projects/p/topics/events:setIamPolicy", &policy.to_string(), now);
        assert_eq!(set.map(|p| p["bindings"][0]["members"][0].clone()), Ok(json!(publisher)));
        let principal = "serviceAccount:service-1@gcp-sa-secretmanager.iam.gserviceaccount.com";
        assert!(store.policy_allows("projects/p/topics/events", principal, "pubsub.topics.publish"));
        assert!(!store.policy_allows("projects/p/subscriptions/sub", principal, "pubsub.topics.publish"));
        let subscription = call(&mut store, Method::GET, "projects/p/subscriptions/sub:getIamPolicy", "", now);
        assert_eq!(subscription.map(|p| p.get("bindings").cloned()), Ok(None), "each resource has its own");
        // A topic made again under the same name starts without the old grants.
        assert!(call(&mut store, Method::DELETE, "projects/p/topics/events", "", now).is_ok());
        assert!(call(&mut store, Method::PUT, "projects/p/topics/events", "", now).is_ok());
        assert!(!store.policy_allows("projects/p/topics/events", principal, "pubsub.topics.publish"));
        let bad = call(&mut store, Method::POST, "projects/p/subscriptions/sub:setIamPolicy", "{}", now);
        assert_eq!(bad.map_err(|e| e.code.name()), Err("INVALID_ARGUMENT"));
    }

    #[test]
    fn lists_and_deleted_topics() {
        let mut store = Store::default();
        let now = Now::with_offset(Duration::ZERO);
        assert_eq!(call(&mut store, Method::GET, "projects/p/topics", "", now), Ok(json!({})));
        assert!(call(&mut store, Method::PUT, "projects/p/topics/events", "", now).is_ok());
        let body = r#"{"topic":"projects/p/topics/events"}"#;
        assert!(call(&mut store, Method::PUT, "projects/p/subscriptions/sub", body, now).is_ok());
        assert_eq!(call(&mut store, Method::DELETE, "projects/p/topics/events", "", now), Ok(json!({})));
        let listed = call(&mut store, Method::GET, "projects/p/subscriptions", "", now);
        assert_eq!(listed.map(|l| l["subscriptions"][0]["topic"].clone()), Ok(json!("_deleted-topic_")));
    }
}
