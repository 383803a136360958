//! Pub/Sub in the GCP emulator and Secret Manager's event notifications: publish, pull,
//! acknowledge, redelivery after the ack deadline, nacks, 404s and the delivery faults over
//! REST; every notification type with its attributes and data and never a payload; the real
//! gcloud creating topics, subscriptions, secrets with topics and rotation, and pulling the
//! notifications; and Google's own Pub/Sub emulator, called the same way as ours and receiving
//! Secret Manager's notifications through `publish_to` (those tests skip where it cannot start).

use crate::support::PROJECT;
use crate::support::gcloud::start as start_with_gcloud;
use crate::support::pubsub_emulator::GooglePubsubEmulator;
use crate::support::wait::{DEADLINE, wait_for};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::BodyExt;
use reqwest::Method;
use secure_api_testbed::emulator::gcp::{DeliveryFaults, GcpEmulator, GcpFault, VersionState};
use secure_api_testbed::listener::Listener;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

type TestResult = Result<(), String>;

/// A payload that must never leave Secret Manager other than through `:access`.
const SENTINEL: &[u8] = b"sentinel-payload-7f3a";

/// A REST client for one Pub/Sub or GCP emulator endpoint.
struct Rest {
    client: reqwest::Client,
    base: String,
}

impl Rest {
    fn new(base: &str) -> Result<Self, String> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(|e| e.to_string())?;
        Ok(Self { client, base: base.trim_end_matches('/').to_owned() })
    }

    /// `METHOD {base}/v1/{path}`: the status and the JSON answer.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
        let url = format!("{}/v1/{path}", self.base);
        let mut request = self.client.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| format!("{method} {url}: {e}"))?;
        let value = if text.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&text).map_err(|e| format!("{method} {url} answered no JSON ({e}): {text}"))?
        };
        Ok((status, value))
    }

    /// A call that must succeed.
    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        match self.call(method.clone(), path, body).await? {
            (200, value) => Ok(value),
            (status, value) => Err(format!("{method} {path}: {status} {value}")),
        }
    }

    /// The received messages of one pull (never waiting).
    async fn pull(&self, subscription: &str, max: u32) -> Result<Vec<Value>, String> {
        let path = format!("projects/{PROJECT}/subscriptions/{subscription}:pull");
        let answer = self.ok(Method::POST, &path, Some(json!({"maxMessages": max, "returnImmediately": true}))).await?;
        Ok(answer["receivedMessages"].as_array().cloned().unwrap_or_default())
    }

    async fn acknowledge(&self, subscription: &str, received: &[Value]) -> Result<(), String> {
        let path = format!("projects/{PROJECT}/subscriptions/{subscription}:acknowledge");
        self.ok(Method::POST, &path, Some(json!({"ackIds": ack_ids(received)}))).await.map(|_| ())
    }

    /// Pulls and acknowledges until `count` messages came (or the deadline passes).
    async fn drain(&self, subscription: &str, count: usize) -> Result<Vec<Value>, String> {
        let mut all = Vec::new();
        let give_up = std::time::Instant::now() + DEADLINE;
        while all.len() < count {
            let batch = self.pull(subscription, 100).await?;
            if !batch.is_empty() {
                self.acknowledge(subscription, &batch).await?;
            }
            all.extend(batch);
            if std::time::Instant::now() > give_up {
                return Err(format!("{} of {count} messages after {DEADLINE:?}: {all:?}", all.len()));
            }
            if all.len() < count {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(all)
    }
}

/// Our emulator on 127.0.0.1 and a REST client for it.
async fn emulator() -> Result<(GcpEmulator, Listener, Rest), String> {
    let emulator = GcpEmulator::new();
    let listener = emulator.listen(([127, 0, 0, 1], 0).into()).await.map_err(|e| format!("listen: {e}"))?;
    let rest = Rest::new(&listener.url())?;
    Ok((emulator, listener, rest))
}

/// A request to the emulator without a listener (so no rotation timer runs).
async fn direct(emulator: &GcpEmulator, method: Method, path: &str, body: Value) -> Result<(u16, Value), String> {
    let uri: hyper::Uri = format!("http://emulator{path}").parse().map_err(|e| format!("{path}: {e}"))?;
    let response = emulator.respond(&method, &uri, &hyper::HeaderMap::new(), Bytes::from(body.to_string())).await;
    let status = response.status().as_u16();
    let bytes = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let value = serde_json::from_slice(&bytes).map_err(|e| format!("{path} answered no JSON: {e}"))?;
    Ok((status, value))
}

fn ack_ids(received: &[Value]) -> Vec<Value> {
    received.iter().map(|r| r["ackId"].clone()).collect()
}

fn message_ids(received: &[Value]) -> Vec<String> {
    received.iter().filter_map(|r| r["message"]["messageId"].as_str().map(str::to_owned)).collect()
}

fn event_types(received: &[Value]) -> Vec<String> {
    received.iter().filter_map(|r| r["message"]["attributes"]["eventType"].as_str().map(str::to_owned)).collect()
}

/// The data of a received message, decoded (empty when it has none).
fn data_of(received: &Value) -> Result<Vec<u8>, String> {
    match received["message"]["data"].as_str() {
        Some(text) => STANDARD.decode(text).map_err(|e| format!("data is not base64: {e}")),
        None => Ok(Vec::new()),
    }
}

/// The data of a received notification: the Secret or SecretVersion JSON.
fn resource_of(received: &Value) -> Result<Value, String> {
    serde_json::from_slice(&data_of(received)?).map_err(|e| format!("data is not JSON: {e}: {received}"))
}

fn topic(id: &str) -> String {
    format!("projects/{PROJECT}/topics/{id}")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// Fails when the sentinel payload, raw or base64, is anywhere in `text`.
fn assert_no_sentinel(what: &str, text: &[u8]) {
    let encoded = STANDARD.encode(SENTINEL);
    assert!(
        !contains(text, SENTINEL) && !contains(text, encoded.as_bytes()),
        "{what} carries the payload: {}",
        String::from_utf8_lossy(text)
    );
}

// --- The emulator's Pub/Sub -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_publishes_pulls_and_acknowledges() -> TestResult {
    let (emulator, listener, rest) = emulator().await?;
    let topic_path = format!("projects/{PROJECT}/topics/orders");
    let created = rest.ok(Method::PUT, &topic_path, Some(json!({"labels": {"team": "a"}}))).await?;
    assert_eq!(created, json!({"name": topic("orders"), "labels": {"team": "a"}}));
    assert_eq!(rest.call(Method::PUT, &topic_path, Some(json!({}))).await?.0, 409);
    let subscription = json!({"topic": topic("orders"), "ackDeadlineSeconds": 10});
    let path = format!("projects/{PROJECT}/subscriptions/orders-sub");
    let created = rest.ok(Method::PUT, &path, Some(subscription)).await?;
    assert_eq!((created["topic"].clone(), created["ackDeadlineSeconds"].clone()), (json!(topic("orders")), json!(10)));
    assert_eq!(rest.ok(Method::GET, &path, None).await?, created);

    let messages = json!({"messages": [
        {"data": STANDARD.encode("first"), "attributes": {"kind": "a"}},
        {"attributes": {"kind": "b"}, "orderingKey": "k"},
    ]});
    let published = rest.ok(Method::POST, &format!("{topic_path}:publish"), Some(messages)).await?;
    let ids = published["messageIds"].as_array().cloned().unwrap_or_default();
    assert_eq!(ids.len(), 2, "{published}");

    let received = rest.pull("orders-sub", 10).await?;
    assert_eq!(message_ids(&received), ids.iter().filter_map(Value::as_str).collect::<Vec<_>>());
    assert_eq!(data_of(&received[0])?, b"first");
    assert_eq!(received[0]["message"]["attributes"], json!({"kind": "a"}));
    assert!(received[1]["message"].get("data").is_none(), "an attributes-only message has no data");
    assert_eq!(received[1]["message"]["orderingKey"], "k");
    assert!(received[0]["message"]["publishTime"].as_str().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()));
    assert!(received.iter().all(|r| r.get("deliveryAttempt").is_none()), "no dead-letter policy, no deliveryAttempt");
    assert!(rest.pull("orders-sub", 10).await?.is_empty(), "leased messages are not offered again");
    rest.acknowledge("orders-sub", &received).await?;
    emulator.advance_clock(Duration::from_secs(60));
    assert!(rest.pull("orders-sub", 10).await?.is_empty(), "acknowledged messages are gone");

    let counts = [
        ("pubsub.topics.create", 2),
        ("pubsub.subscriptions.create", 1),
        ("pubsub.subscriptions.get", 1),
        ("pubsub.topics.publish", 1),
        ("pubsub.subscriptions.pull", 3),
        ("pubsub.subscriptions.acknowledge", 1),
    ];
    for (method, count) in counts {
        assert_eq!(emulator.count(method), count, "{method}");
    }
    assert_eq!(emulator.count_for("pubsub.subscriptions.pull", "subscriptions/orders-sub"), 3);

    assert_eq!(rest.ok(Method::DELETE, &path, None).await?, json!({}));
    assert_eq!(rest.ok(Method::DELETE, &topic_path, None).await?, json!({}));
    assert_eq!(rest.call(Method::GET, &topic_path, None).await?.0, 404);
    assert_eq!((emulator.count("pubsub.subscriptions.delete"), emulator.count("pubsub.topics.delete")), (1, 1));
    assert_eq!(emulator.count("pubsub.topics.get"), 1);
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_redelivers_a_message_not_acknowledged_within_its_deadline() -> TestResult {
    let (emulator, listener, rest) = emulator().await?;
    // Real time, with a deadline only a seeded subscription can have.
    emulator.create_subscription(PROJECT, "fast-sub", "events", Duration::from_millis(300));
    // The emulator's clock, with the API's own 10 s default.
    let path = format!("projects/{PROJECT}/subscriptions/slow-sub");
    rest.ok(Method::PUT, &path, Some(json!({"topic": topic("events")}))).await?;
    let publish = json!({"messages": [{"data": STANDARD.encode("again")}]});
    rest.ok(Method::POST, &format!("projects/{PROJECT}/topics/events:publish"), Some(publish)).await?;

    let first = rest.pull("fast-sub", 10).await?;
    assert_eq!(first.len(), 1);
    let client = &rest;
    let again = wait_for("the redelivery after 300 ms", DEADLINE, move || async move {
        client.pull("fast-sub", 10).await.ok().filter(|batch| !batch.is_empty())
    })
    .await;
    assert_eq!(message_ids(&again), message_ids(&first), "the same message");
    assert_ne!(ack_ids(&again), ack_ids(&first), "with a new ack id");

    let leased = rest.pull("slow-sub", 10).await?;
    assert_eq!(leased.len(), 1);
    emulator.advance_clock(Duration::from_secs(9));
    assert!(rest.pull("slow-sub", 10).await?.is_empty(), "9 s into a 10 s deadline");
    emulator.advance_clock(Duration::from_secs(1));
    let redelivered = rest.pull("slow-sub", 10).await?;
    assert_eq!(message_ids(&redelivered), message_ids(&leased));
    // The ack id of the first delivery no longer counts; the latest one does.
    rest.acknowledge("slow-sub", &leased).await?;
    emulator.advance_clock(Duration::from_secs(10));
    let third = rest.pull("slow-sub", 10).await?;
    assert_eq!(message_ids(&third), message_ids(&leased), "a stale ack id acknowledges nothing");
    rest.acknowledge("slow-sub", &third).await?;
    emulator.advance_clock(Duration::from_secs(10));
    assert!(rest.pull("slow-sub", 10).await?.is_empty());
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_modify_ack_deadline_zero_redelivers_at_once() -> TestResult {
    let (emulator, listener, rest) = emulator().await?;
    emulator.create_subscription(PROJECT, "nack-sub", "events", Duration::from_secs(600));
    let publish = json!({"messages": [{"data": STANDARD.encode("a")}, {"data": STANDARD.encode("b")}]});
    rest.ok(Method::POST, &format!("projects/{PROJECT}/topics/events:publish"), Some(publish)).await?;
    let received = rest.pull("nack-sub", 10).await?;
    assert_eq!(received.len(), 2);
    let path = format!("projects/{PROJECT}/subscriptions/nack-sub:modifyAckDeadline");
    let nack = json!({"ackIds": [received[1]["ackId"]], "ackDeadlineSeconds": 0});
    assert_eq!(rest.ok(Method::POST, &path, Some(nack)).await?, json!({}));
    let again = rest.pull("nack-sub", 10).await?;
    assert_eq!(message_ids(&again), message_ids(&received[1..]), "only the nacked one, at once");
    // Extending a deadline keeps the message leased past the subscription's own deadline.
    let extend = json!({"ackIds": [again[0]["ackId"]], "ackDeadlineSeconds": 30});
    rest.ok(Method::POST, &path, Some(extend)).await?;
    emulator.advance_clock(Duration::from_secs(29));
    assert!(rest.pull("nack-sub", 10).await?.is_empty());
    let negative = json!({"ackIds": [again[0]["ackId"]], "ackDeadlineSeconds": -1});
    let (status, body) = rest.call(Method::POST, &path, Some(negative)).await?;
    assert_eq!((status, body["error"]["status"].clone()), (400, json!("INVALID_ARGUMENT")));
    assert_eq!(emulator.count("pubsub.subscriptions.modifyAckDeadline"), 3);
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_errors_are_google_rpc_statuses() -> TestResult {
    let (emulator, listener, rest) = emulator().await?;
    let pull = json!({"maxMessages": 1});
    let (status, body) =
        rest.call(Method::POST, &format!("projects/{PROJECT}/subscriptions/nope-sub:pull"), Some(pull)).await?;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"error": {"code": 404, "message": "Subscription does not exist", "status": "NOT_FOUND"}}));
    let publish = json!({"messages": [{"data": "eA=="}]});
    let (status, body) =
        rest.call(Method::POST, &format!("projects/{PROJECT}/topics/nope:publish"), Some(publish)).await?;
    assert_eq!((status, body["error"]["status"].clone()), (404, json!("NOT_FOUND")));
    emulator.create_topic(PROJECT, "events");
    let short = json!({"topic": topic("events")});
    let (status, body) = rest.call(Method::PUT, &format!("projects/{PROJECT}/subscriptions/s1"), Some(short)).await?;
    assert_eq!((status, body["error"]["status"].clone()), (400, json!("INVALID_ARGUMENT")), "{body}");
    let push = json!({"topic": topic("events"), "pushConfig": {"pushEndpoint": "https://example.com/push"}});
    let (status, body) =
        rest.call(Method::PUT, &format!("projects/{PROJECT}/subscriptions/push-sub"), Some(push)).await?;
    assert_eq!((status, body["error"]["status"].clone()), (501, json!("UNIMPLEMENTED")));
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_method_faults_fail_or_delay_the_matching_calls() -> TestResult {
    let (emulator, listener, rest) = emulator().await?;
    emulator.create_subscription(PROJECT, "faulty-sub", "events", Duration::from_secs(10));
    emulator.inject_fault(GcpFault::status("pubsub.subscriptions.pull", 503).times(1));
    emulator.inject_fault(GcpFault::delay("pubsub.topics.publish", Duration::from_millis(300)).times(1));
    let pull = json!({"maxMessages": 1});
    let path = format!("projects/{PROJECT}/subscriptions/faulty-sub:pull");
    let (status, body) = rest.call(Method::POST, &path, Some(pull.clone())).await?;
    assert_eq!((status, body["error"]["status"].clone()), (503, json!("UNAVAILABLE")));
    assert_eq!(rest.call(Method::POST, &path, Some(pull)).await?, (200, json!({})));
    let started = std::time::Instant::now();
    let publish = json!({"messages": [{"data": "eA=="}]});
    rest.ok(Method::POST, &format!("projects/{PROJECT}/topics/events:publish"), Some(publish)).await?;
    assert!(started.elapsed() >= Duration::from_millis(300), "the publish was delayed");
    assert_eq!(emulator.count("pubsub.subscriptions.pull"), 2);
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_delivery_faults_duplicate_delay_reorder_and_drop_acks() -> TestResult {
    let (emulator, listener, rest) = emulator().await?;
    emulator.create_subscription(PROJECT, "faults-sub", "events", Duration::from_secs(10));
    let publish_path = format!("projects/{PROJECT}/topics/events:publish");
    let publish = |names: &[&str]| {
        let messages: Vec<Value> = names.iter().map(|n| json!({"data": STANDARD.encode(n)})).collect();
        json!({ "messages": messages })
    };

    // duplicate: every message twice, each copy its own delivery with its own ack id.
    emulator.set_delivery_faults(DeliveryFaults { duplicate: 1, ..DeliveryFaults::default() });
    rest.ok(Method::POST, &publish_path, Some(publish(&["dup"]))).await?;
    let copies = rest.pull("faults-sub", 10).await?;
    assert_eq!(message_ids(&copies).len(), 2);
    assert_eq!(message_ids(&copies[..1]), message_ids(&copies[1..]), "the same message id");
    assert_ne!(copies[0]["ackId"], copies[1]["ackId"]);
    rest.acknowledge("faults-sub", &copies).await?;

    // delay: a published message is invisible for a while.
    emulator.set_delivery_faults(DeliveryFaults { delay: Some(Duration::from_secs(5)), ..DeliveryFaults::default() });
    rest.ok(Method::POST, &publish_path, Some(publish(&["late"]))).await?;
    assert!(rest.pull("faults-sub", 10).await?.is_empty(), "not yet");
    emulator.advance_clock(Duration::from_secs(5));
    let late = rest.pull("faults-sub", 10).await?;
    assert_eq!(data_of(&late[0])?, b"late");
    rest.acknowledge("faults-sub", &late).await?;

    // reorder: each batch comes reversed.
    emulator.set_delivery_faults(DeliveryFaults { reorder: true, ..DeliveryFaults::default() });
    rest.ok(Method::POST, &publish_path, Some(publish(&["one", "two", "three"]))).await?;
    let batch = rest.pull("faults-sub", 10).await?;
    let data: Vec<Vec<u8>> = batch.iter().map(data_of).collect::<Result<_, _>>()?;
    assert_eq!(data, [b"three".to_vec(), b"two".to_vec(), b"one".to_vec()]);

    // drop_acks: the next acknowledgement is swallowed, so that message comes back.
    emulator.set_delivery_faults(DeliveryFaults { drop_acks: 1, ..DeliveryFaults::default() });
    rest.acknowledge("faults-sub", &batch).await?;
    emulator.advance_clock(Duration::from_secs(10));
    let back = rest.pull("faults-sub", 10).await?;
    assert_eq!(message_ids(&back), message_ids(&batch[..1]), "the first acknowledgement was dropped");
    rest.acknowledge("faults-sub", &back).await?;
    emulator.advance_clock(Duration::from_secs(10));
    assert!(rest.pull("faults-sub", 10).await?.is_empty(), "only one was dropped");

    // clear_faults resets them.
    emulator.set_delivery_faults(DeliveryFaults { duplicate: 3, ..DeliveryFaults::default() });
    emulator.clear_faults();
    rest.ok(Method::POST, &publish_path, Some(publish(&["plain"]))).await?;
    assert_eq!(rest.pull("faults-sub", 10).await?.len(), 1);
    listener.shutdown().await;
    Ok(())
}

// --- Secret Manager's notifications ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_receives_every_secret_manager_event_with_its_attributes_and_never_a_payload() -> TestResult {
    let (emulator, listener, rest) = emulator().await?;
    emulator.create_subscription(PROJECT, "events-sub", "secret-events", Duration::from_secs(10));
    let secrets = format!("projects/{PROJECT}/secrets");
    let name = format!("{secrets}/db");
    let create = json!({"replication": {"automatic": {}}, "topics": [{"name": topic("secret-events")}]});
    rest.ok(Method::POST, &format!("{secrets}?secretId=db"), Some(create)).await?;
    let add = json!({"payload": {"data": STANDARD.encode(SENTINEL)}});
    rest.ok(Method::POST, &format!("{name}:addVersion"), Some(add)).await?;
    rest.ok(Method::POST, &format!("{name}/versions/1:disable"), Some(json!({}))).await?;
    rest.ok(Method::POST, &format!("{name}/versions/1:enable"), Some(json!({}))).await?;
    // Reads publish nothing.
    rest.ok(Method::GET, &format!("{name}/versions/1:access"), None).await?;
    rest.ok(Method::GET, &name, None).await?;
    rest.ok(Method::GET, &secrets, None).await?;
    rest.ok(Method::GET, &format!("{name}/versions"), None).await?;
    rest.ok(Method::GET, &format!("{name}/versions/1"), None).await?;
    // The direct seeding helpers publish like the API.
    assert_eq!(emulator.add_version(PROJECT, "db", SENTINEL), 2);
    rest.ok(Method::POST, &format!("{name}/versions/1:destroy"), Some(json!({}))).await?;
    emulator.set_version_state(PROJECT, "db", 2, VersionState::Disabled).map_err(|e| e.to_string())?;
    rest.ok(Method::PATCH, &format!("{name}?updateMask=labels"), Some(json!({"labels": {"team": "a"}}))).await?;
    emulator.set_alias(PROJECT, "db", "current", 2).map_err(|e| e.to_string())?;
    rest.ok(Method::DELETE, &name, None).await?;

    let expected = [
        ("TOPIC_CONFIGURED", None),
        ("SECRET_CREATE", None),
        ("SECRET_VERSION_ADD", Some(1)),
        ("SECRET_VERSION_DISABLE", Some(1)),
        ("SECRET_VERSION_ENABLE", Some(1)),
        ("SECRET_VERSION_ADD", Some(2)),
        ("SECRET_VERSION_DESTROY", Some(1)),
        ("SECRET_VERSION_DISABLE", Some(2)),
        ("SECRET_UPDATE", None),
        ("SECRET_UPDATE", None),
        ("SECRET_DELETE", None),
    ];
    let received = rest.drain("events-sub", expected.len()).await?;
    assert_eq!(event_types(&received), expected.map(|(event, _)| event));
    for (message, (event, version)) in received.iter().zip(expected) {
        let attributes = &message["message"]["attributes"];
        if event == "TOPIC_CONFIGURED" {
            assert_eq!(attributes, &json!({"eventType": "TOPIC_CONFIGURED"}), "a test message has only its type");
            assert!(data_of(message)?.is_empty());
            continue;
        }
        assert_eq!(attributes["dataFormat"], "JSON_API_V1", "{event}");
        assert_eq!(attributes["secretId"], name.as_str(), "{event}");
        assert!(attributes["timestamp"].as_str().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()), "{event}");
        let resource = resource_of(message)?;
        match version {
            Some(number) => {
                let version_name = format!("{name}/versions/{number}");
                assert_eq!(attributes["versionId"], version_name.as_str(), "{event}");
                assert_eq!(resource["name"], version_name.as_str(), "{event}: {resource}");
                assert!(resource["state"].is_string() && resource.get("payload").is_none(), "{event}: {resource}");
            }
            None => {
                assert!(attributes.get("versionId").is_none(), "{event}");
                assert_eq!(resource["name"], name.as_str(), "{event}");
                assert_eq!(resource["topics"], json!([{"name": topic("secret-events")}]), "{event}");
            }
        }
    }
    let states: Vec<Value> =
        received[2..8].iter().map(|m| resource_of(m).map(|r| r["state"].clone())).collect::<Result<_, _>>()?;
    assert_eq!(states, ["ENABLED", "DISABLED", "ENABLED", "ENABLED", "DESTROYED", "DISABLED"].map(|s| json!(s)));
    assert_eq!(resource_of(&received[9])?["versionAliases"], json!({"current": "2"}));

    // No payload anywhere: not in what was published, not in what was pulled.
    let published = emulator.published();
    assert_eq!(published.len(), expected.len());
    for message in &published {
        assert_no_sentinel(&message.event_type, &message.data);
        let attributes = serde_json::to_vec(&message.attributes).map_err(|e| e.to_string())?;
        assert_no_sentinel(&message.event_type, &attributes);
    }
    for message in &received {
        assert_no_sentinel("a pulled message", message.to_string().as_bytes());
        assert_no_sentinel("a pulled message's data", &data_of(message)?);
    }
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_gets_a_topic_configured_test_message_when_a_topic_is_added() -> TestResult {
    let (emulator, listener, rest) = emulator().await?;
    emulator.create_subscription(PROJECT, "first-sub", "first", Duration::from_secs(10));
    emulator.create_subscription(PROJECT, "second-sub", "second", Duration::from_secs(10));
    emulator.set_secret_topics(PROJECT, "db", &[topic("first").as_str()]).map_err(|e| e.to_string())?;
    let first = rest.drain("first-sub", 2).await?;
    assert_eq!(event_types(&first), ["TOPIC_CONFIGURED", "SECRET_UPDATE"]);

    let name = format!("projects/{PROJECT}/secrets/db");
    let both = json!({"topics": [{"name": topic("first")}, {"name": topic("second")}]});
    rest.ok(Method::PATCH, &format!("{name}?updateMask=topics"), Some(both)).await?;
    assert_eq!(event_types(&rest.drain("first-sub", 1).await?), ["SECRET_UPDATE"], "no test message for a kept topic");
    let second = rest.drain("second-sub", 2).await?;
    assert_eq!(event_types(&second), ["TOPIC_CONFIGURED", "SECRET_UPDATE"]);
    assert!(second[0]["message"].get("data").is_none());

    // The API's rules: at most 10 topics, each a topic's full name.
    let eleven: Vec<Value> = (0..11).map(|n| json!({"name": topic(&format!("t{n}"))})).collect();
    let (status, _) =
        rest.call(Method::PATCH, &format!("{name}?updateMask=topics"), Some(json!({"topics": eleven}))).await?;
    assert_eq!(status, 400);
    assert!(emulator.set_secret_topics(PROJECT, "db", &["second"]).is_err());
    listener.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn pubsub_gets_secret_rotate_when_the_next_rotation_time_passes() -> TestResult {
    // No listener, so no timer: the test fires rotations itself.
    let emulator = GcpEmulator::new();
    emulator.create_subscription(PROJECT, "rotation-sub", "rotations", Duration::from_secs(10));
    let secrets = format!("/v1/projects/{PROJECT}/secrets");
    let now = jiff::Timestamp::now();
    let at = |minutes: i64| {
        now.checked_add(jiff::SignedDuration::from_mins(minutes)).map(|t| t.to_string()).unwrap_or_default()
    };
    let topics = json!([{"name": topic("rotations")}]);
    let with_rotation =
        |rotation: Value| json!({"replication": {"automatic": {}}, "topics": topics, "rotation": rotation});

    // Google's rules.
    let refused = [
        json!({"replication": {"automatic": {}}, "rotation": {"nextRotationTime": at(60)}}),
        with_rotation(json!({"nextRotationTime": at(4)})),
        with_rotation(json!({"nextRotationTime": at(60), "rotationPeriod": "3599s"})),
        with_rotation(json!({"rotationPeriod": "3600s"})),
    ];
    for body in refused {
        let (status, answer) =
            direct(&emulator, Method::POST, &format!("{secrets}?secretId=bad"), body.clone()).await?;
        assert_eq!((status, answer["error"]["status"].clone()), (400, json!("INVALID_ARGUMENT")), "{body}");
    }

    let body = with_rotation(json!({"nextRotationTime": at(10), "rotationPeriod": "3600s"}));
    let (status, created) = direct(&emulator, Method::POST, &format!("{secrets}?secretId=db"), body).await?;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["rotation"]["rotationPeriod"], "3600s");
    assert_eq!(emulator.fire_due_rotations(), 0, "not due yet");
    emulator.advance_clock(Duration::from_secs(11 * 60));
    assert_eq!(emulator.fire_due_rotations(), 1);
    assert_eq!(emulator.fire_due_rotations(), 0, "the next one is an hour later");

    let rotated = emulator.published().into_iter().rfind(|m| m.event_type == "SECRET_ROTATE");
    let Some(rotated) = rotated else { return Err(format!("no SECRET_ROTATE in {:?}", emulator.published())) };
    assert_eq!(rotated.attributes["secretId"], format!("projects/{PROJECT}/secrets/db"));
    assert!(!rotated.attributes.contains_key("versionId"));
    let secret: Value = serde_json::from_slice(&rotated.data).map_err(|e| e.to_string())?;
    let next: jiff::Timestamp =
        secret["rotation"]["nextRotationTime"].as_str().unwrap_or_default().parse().map_err(|e| format!("{e}"))?;
    let first: jiff::Timestamp =
        created["rotation"]["nextRotationTime"].as_str().unwrap_or_default().parse().map_err(|e| format!("{e}"))?;
    assert_eq!(next.duration_since(first), jiff::SignedDuration::from_hours(1), "moved on by the period");

    // Without a period, a rotation happens once and the schedule ends.
    emulator.set_rotation(PROJECT, "db", SystemTime::now(), None).map_err(|e| e.to_string())?;
    assert_eq!(emulator.fire_due_rotations(), 1);
    let (_, described) = direct(&emulator, Method::GET, &format!("{secrets}/db"), json!({})).await?;
    assert!(described.get("rotation").is_none(), "{described}");
    let types: Vec<String> = emulator.published().into_iter().map(|m| m.event_type).collect();
    assert_eq!(types, ["TOPIC_CONFIGURED", "SECRET_CREATE", "SECRET_ROTATE", "SECRET_UPDATE", "SECRET_ROTATE"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_gets_secret_rotate_from_the_timer_of_a_listening_emulator() -> TestResult {
    let (emulator, listener, rest) = emulator().await?;
    emulator.create_subscription(PROJECT, "timer-sub", "rotations", Duration::from_secs(10));
    emulator.set_secret_topics(PROJECT, "db", &[topic("rotations").as_str()]).map_err(|e| e.to_string())?;
    let past = SystemTime::now().checked_sub(Duration::from_secs(1)).unwrap_or(SystemTime::UNIX_EPOCH);
    emulator.set_rotation(PROJECT, "db", past, Some(Duration::from_secs(3600))).map_err(|e| e.to_string())?;
    let received = rest.drain("timer-sub", 4).await?;
    assert_eq!(event_types(&received), ["TOPIC_CONFIGURED", "SECRET_UPDATE", "SECRET_UPDATE", "SECRET_ROTATE"]);
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_notifications_of_a_regional_secret_name_its_location() -> TestResult {
    let (emulator, listener, rest) = emulator().await?;
    emulator.create_subscription(PROJECT, "regional-sub", "secret-events", Duration::from_secs(10));
    let secrets = format!("projects/{PROJECT}/locations/us-east1/secrets");
    rest.ok(
        Method::POST,
        &format!("{secrets}?secretId=db"),
        Some(json!({"topics": [{"name": topic("secret-events")}]})),
    )
    .await?;
    let add = json!({"payload": {"data": STANDARD.encode(SENTINEL)}});
    rest.ok(Method::POST, &format!("{secrets}/db:addVersion"), Some(add)).await?;
    let received = rest.drain("regional-sub", 3).await?;
    let attributes = &received[2]["message"]["attributes"];
    assert_eq!(attributes["secretId"], format!("{secrets}/db"));
    assert_eq!(attributes["versionId"], format!("{secrets}/db/versions/1"));
    listener.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_down_never_fails_a_secret_manager_call() -> TestResult {
    let (emulator, listener, rest) = emulator().await?;
    // Nothing listens on port 1; and without publish_to, the topic would not exist either.
    emulator.publish_to("http://127.0.0.1:1".to_owned());
    let create = json!({"replication": {"automatic": {}}, "topics": [{"name": topic("nowhere")}]});
    rest.ok(Method::POST, &format!("projects/{PROJECT}/secrets?secretId=db"), Some(create)).await?;
    let add = json!({"payload": {"data": STANDARD.encode("x")}});
    let added = rest.ok(Method::POST, &format!("projects/{PROJECT}/secrets/db:addVersion"), Some(add)).await?;
    assert_eq!(added["state"], "ENABLED");
    let types: Vec<String> = emulator.published().into_iter().map(|m| m.event_type).collect();
    assert_eq!(types, ["TOPIC_CONFIGURED", "SECRET_CREATE", "SECRET_VERSION_ADD"], "recorded even when lost");
    listener.shutdown().await;
    Ok(())
}

// --- The real gcloud ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_pubsub_pulls_the_notifications_of_secrets_it_configures() -> TestResult {
    let (emulator, listener, gcloud) = start_with_gcloud().await?;
    for topic_id in ["secret-events", "audit-events"] {
        let created = gcloud.run(&["pubsub", "topics", "create", topic_id, "--format=json"]).await?.success()?;
        assert!(created.stdout.contains(&topic(topic_id)) || created.stderr.contains(topic_id), "{}", created.stderr);
    }
    let args = ["pubsub", "subscriptions", "create", "secret-events-sub", "--topic=secret-events", "--format=json"];
    let created = gcloud.run(&args).await?.success()?;
    assert!(created.stderr.contains("secret-events-sub") || created.stdout.contains("secret-events-sub"));
    assert_eq!(emulator.count("pubsub.subscriptions.create"), 1);

    let data_file = gcloud.file("payload.txt", std::str::from_utf8(SENTINEL).map_err(|e| e.to_string())?)?;
    let topics_arg = format!("--topics={}", topic("secret-events"));
    let data_arg = format!("--data-file={data_file}");
    gcloud.run(&["secrets", "create", "db", &topics_arg, &data_arg, "--format=json"]).await?.success()?;
    let add_topics = format!("--add-topics={}", topic("audit-events"));
    gcloud.run(&["secrets", "update", "db", &add_topics, "--format=json"]).await?.success()?;
    let next = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(1)).map_err(|e| e.to_string())?;
    let next_arg = format!("--next-rotation-time={}", next.strftime("%Y-%m-%dT%H:%M:%SZ"));
    let updated = gcloud
        .run(&["secrets", "update", "db", &next_arg, "--rotation-period=7200s", "--format=json"])
        .await?
        .success()?;
    let described = gcloud.run(&["secrets", "describe", "db", "--format=json"]).await?.success()?.json()?;
    assert_eq!(described["rotation"]["rotationPeriod"], "7200s", "{described} {}", updated.stderr);
    assert_eq!(described["topics"], json!([{"name": topic("secret-events")}, {"name": topic("audit-events")}]));

    // Two hours later the rotation is due (the listener's timer fires it).
    emulator.advance_clock(Duration::from_secs(2 * 3600));
    wait_for("SECRET_ROTATE", DEADLINE, || {
        let rotated = emulator.published().iter().any(|m| m.event_type == "SECRET_ROTATE");
        async move { rotated.then_some(()) }
    })
    .await;

    let pulled = gcloud
        .run(&["pubsub", "subscriptions", "pull", "secret-events-sub", "--auto-ack", "--limit=20", "--format=json"])
        .await?
        .success()?
        .json()?;
    let received = pulled.as_array().cloned().unwrap_or_default();
    assert_eq!(
        event_types(&received),
        ["TOPIC_CONFIGURED", "SECRET_CREATE", "SECRET_VERSION_ADD", "SECRET_UPDATE", "SECRET_UPDATE", "SECRET_ROTATE"],
        "{pulled}"
    );
    assert_eq!(received[2]["message"]["attributes"]["versionId"], format!("projects/{PROJECT}/secrets/db/versions/1"));
    for message in &received {
        assert_no_sentinel("a message gcloud pulled", message.to_string().as_bytes());
    }
    assert!(emulator.count("pubsub.subscriptions.acknowledge") >= 1, "--auto-ack acknowledged");
    emulator.advance_clock(Duration::from_secs(60));
    let again = gcloud
        .run(&["pubsub", "subscriptions", "pull", "secret-events-sub", "--format=json"])
        .await?
        .success()?
        .json()?;
    assert_eq!(again, json!([]), "everything was acknowledged");
    listener.shutdown().await;
    Ok(())
}

// --- Google's own Pub/Sub emulator ----------------------------------------------------------

/// An answer with what differs between two emulators by nature blanked out: message ids,
/// ack ids, publish times and error messages.
fn normalized(status: u16, mut value: Value) -> (u16, Value) {
    if let Some(ids) = value.get_mut("messageIds").and_then(Value::as_array_mut) {
        ids.iter_mut().for_each(|id| *id = json!("<id>"));
    }
    for received in value.get_mut("receivedMessages").and_then(Value::as_array_mut).into_iter().flatten() {
        received["ackId"] = json!("<ack>");
        received["message"]["messageId"] = json!("<id>");
        received["message"]["publishTime"] = json!("<time>");
    }
    if let Some(error) = value.get_mut("error").and_then(Value::as_object_mut) {
        error.remove("message");
    }
    (status, value)
}

/// Sends one call to both emulators and checks they answer alike; gives both answers.
async fn both(
    ours: &Rest,
    google: &Rest,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(Value, Value), String> {
    let (our_status, our_value) = ours.call(method.clone(), path, body.clone()).await?;
    let (google_status, google_value) = google.call(method.clone(), path, body).await?;
    assert_eq!(
        normalized(our_status, our_value.clone()),
        normalized(google_status, google_value.clone()),
        "{method} {path}: ours vs Google's"
    );
    Ok((our_value, google_value))
}

fn first_ack(answer: &Value) -> Value {
    answer["receivedMessages"][0]["ackId"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_answers_the_operators_calls_like_googles_emulator() -> TestResult {
    let Some(google) = GooglePubsubEmulator::start("pubsub_answers_the_operators_calls_like_googles_emulator").await
    else {
        return Ok(());
    };
    let (_emulator, listener, ours) = emulator().await?;
    let theirs = Rest::new(&google.url())?;
    let (ours, theirs) = (&ours, &theirs);
    let topic_path = format!("projects/{PROJECT}/topics/diff-topic");
    let sub = format!("projects/{PROJECT}/subscriptions/diff-sub");
    // Pulls never wait in ours; Google's waits unless told not to (and then also offers leased
    // messages again), so the calls say returnImmediately as a careful client does.
    let pull = |max: u32| Some(json!({"maxMessages": max, "returnImmediately": true}));

    both(ours, theirs, Method::PUT, &topic_path, Some(json!({}))).await?;
    both(ours, theirs, Method::PUT, &topic_path, Some(json!({}))).await?;
    both(ours, theirs, Method::GET, &topic_path, None).await?;
    let subscription = json!({"topic": topic("diff-topic"), "ackDeadlineSeconds": 3});
    both(ours, theirs, Method::PUT, &sub, Some(subscription.clone())).await?;
    both(ours, theirs, Method::PUT, &sub, Some(subscription.clone())).await?;
    both(ours, theirs, Method::PUT, &format!("projects/{PROJECT}/subscriptions/s1"), Some(subscription)).await?;
    let orphan = json!({"topic": topic("no-such-topic")});
    both(ours, theirs, Method::PUT, &format!("projects/{PROJECT}/subscriptions/orphan-sub"), Some(orphan)).await?;
    both(ours, theirs, Method::GET, &sub, None).await?;

    let messages = json!({"messages": [
        {"data": STANDARD.encode("first"), "attributes": {"eventType": "SECRET_VERSION_ADD", "secretId": "projects/p/secrets/db"}},
        {"attributes": {"eventType": "TOPIC_CONFIGURED"}},
    ]});
    let publish = format!("{topic_path}:publish");
    both(ours, theirs, Method::POST, &publish, Some(messages)).await?;
    both(ours, theirs, Method::POST, &publish, Some(json!({"messages": []}))).await?;
    both(ours, theirs, Method::POST, &publish, Some(json!({"messages": [{}]}))).await?;
    let missing_topic = format!("projects/{PROJECT}/topics/no-such-topic:publish");
    both(ours, theirs, Method::POST, &missing_topic, Some(json!({"messages": [{"data": "eA=="}]}))).await?;

    let (our_first, their_first) = both(ours, theirs, Method::POST, &format!("{sub}:pull"), pull(1)).await?;
    let (our_second, their_second) = both(ours, theirs, Method::POST, &format!("{sub}:pull"), pull(10)).await?;
    both(ours, theirs, Method::POST, &format!("{sub}:pull"), pull(10)).await?;
    both(ours, theirs, Method::POST, &format!("{sub}:pull"), Some(json!({}))).await?;

    // Acknowledge the first, nack the second: only the second comes back, at once.
    let acknowledge = format!("{sub}:acknowledge");
    ours.ok(Method::POST, &acknowledge, Some(json!({"ackIds": [first_ack(&our_first)]}))).await?;
    theirs.ok(Method::POST, &acknowledge, Some(json!({"ackIds": [first_ack(&their_first)]}))).await?;
    let modify = format!("{sub}:modifyAckDeadline");
    ours.ok(Method::POST, &modify, Some(json!({"ackIds": [first_ack(&our_second)], "ackDeadlineSeconds": 0}))).await?;
    theirs
        .ok(Method::POST, &modify, Some(json!({"ackIds": [first_ack(&their_second)], "ackDeadlineSeconds": 0})))
        .await?;
    let (our_nacked, their_nacked) = both(ours, theirs, Method::POST, &format!("{sub}:pull"), pull(10)).await?;
    assert_eq!(our_nacked["receivedMessages"].as_array().map(Vec::len), Some(1));
    both(ours, theirs, Method::POST, &format!("{sub}:pull"), pull(10)).await?;

    // Past the 3 s deadline it is offered again; acknowledged, it is gone.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (our_again, their_again) = both(ours, theirs, Method::POST, &format!("{sub}:pull"), pull(10)).await?;
    assert_eq!(our_again["receivedMessages"][0]["message"]["attributes"]["eventType"], "TOPIC_CONFIGURED");
    assert_ne!(first_ack(&our_again), first_ack(&our_nacked));
    assert_ne!(first_ack(&their_again), first_ack(&their_nacked));
    ours.ok(Method::POST, &acknowledge, Some(json!({"ackIds": [first_ack(&our_again)]}))).await?;
    theirs.ok(Method::POST, &acknowledge, Some(json!({"ackIds": [first_ack(&their_again)]}))).await?;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    both(ours, theirs, Method::POST, &format!("{sub}:pull"), pull(10)).await?;

    // Errors.
    both(ours, theirs, Method::POST, &acknowledge, Some(json!({"ackIds": []}))).await?;
    let foreign = json!({"ackIds": [format!("projects/{PROJECT}/subscriptions/other-sub:1")]});
    both(ours, theirs, Method::POST, &acknowledge, Some(foreign)).await?;
    let negative = json!({"ackIds": [first_ack(&our_again)], "ackDeadlineSeconds": -1});
    both(ours, theirs, Method::POST, &modify, Some(negative)).await?;
    let missing_sub = format!("projects/{PROJECT}/subscriptions/no-such-sub");
    both(ours, theirs, Method::POST, &format!("{missing_sub}:pull"), pull(1)).await?;
    both(ours, theirs, Method::POST, &format!("{missing_sub}:acknowledge"), Some(json!({"ackIds": ["x"]}))).await?;
    both(ours, theirs, Method::DELETE, &sub, None).await?;
    both(ours, theirs, Method::DELETE, &sub, None).await?;
    both(ours, theirs, Method::GET, &sub, None).await?;
    both(ours, theirs, Method::DELETE, &topic_path, None).await?;
    both(ours, theirs, Method::GET, &topic_path, None).await?;
    listener.shutdown().await;
    drop(google);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_of_google_receives_secret_manager_notifications_through_publish_to() -> TestResult {
    let test = "pubsub_of_google_receives_secret_manager_notifications_through_publish_to";
    let Some(google) = GooglePubsubEmulator::start(test).await else { return Ok(()) };
    let theirs = Rest::new(&google.url())?;
    theirs.ok(Method::PUT, &format!("projects/{PROJECT}/topics/secret-events"), Some(json!({}))).await?;
    let subscription = json!({"topic": topic("secret-events"), "ackDeadlineSeconds": 10});
    theirs.ok(Method::PUT, &format!("projects/{PROJECT}/subscriptions/secret-events-sub"), Some(subscription)).await?;

    let emulator = GcpEmulator::new();
    emulator.publish_to(google.url());
    emulator.set_secret_topics(PROJECT, "db", &[topic("secret-events").as_str()]).map_err(|e| e.to_string())?;
    assert_eq!(emulator.add_version(PROJECT, "db", SENTINEL), 1);

    let received = theirs.drain("secret-events-sub", 3).await?;
    assert_eq!(event_types(&received), ["TOPIC_CONFIGURED", "SECRET_UPDATE", "SECRET_VERSION_ADD"]);
    let added = &received[2]["message"];
    let attributes: BTreeMap<String, String> =
        serde_json::from_value(added["attributes"].clone()).map_err(|e| e.to_string())?;
    let keys: Vec<&str> = attributes.keys().map(String::as_str).collect();
    assert_eq!(keys, ["dataFormat", "eventType", "secretId", "timestamp", "versionId"]);
    assert_eq!(attributes["dataFormat"], "JSON_API_V1");
    assert_eq!(attributes["secretId"], format!("projects/{PROJECT}/secrets/db"));
    assert_eq!(attributes["versionId"], format!("projects/{PROJECT}/secrets/db/versions/1"));
    assert!(attributes["timestamp"].parse::<jiff::Timestamp>().is_ok());
    let version = resource_of(&received[2])?;
    assert_eq!((version["name"].clone(), version["state"].clone()), (json!(attributes["versionId"]), json!("ENABLED")));
    for message in &received {
        assert_no_sentinel("a message Google's emulator delivered", message.to_string().as_bytes());
        assert_no_sentinel("its data", &data_of(message)?);
    }
    let published: Vec<String> = emulator.published().into_iter().map(|m| m.event_type).collect();
    assert_eq!(published, ["TOPIC_CONFIGURED", "SECRET_UPDATE", "SECRET_VERSION_ADD"]);
    drop(google);
    Ok(())
}
