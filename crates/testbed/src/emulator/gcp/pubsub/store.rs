//! The resource model: topics, subscriptions and each subscription's backlog, with at-least-once
//! delivery. A pulled message is leased until its ack deadline and offered again afterwards
//! unless it was acknowledged; only the ack id of its latest delivery counts. Time is passed in,
//! so every rule is plain data.

use super::faults::DeliveryFaults;
use super::names::{SubscriptionName, TopicName};
use crate::emulator::gcp::clock::Now;
use crate::emulator::gcp::iam::Policy;
use crate::emulator::gcp::rpc::RpcError;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The ack deadline of a subscription created without one.
pub const DEFAULT_ACK_DEADLINE: Duration = Duration::from_secs(10);

/// The longest ack deadline a subscription or `modifyAckDeadline` may set.
pub const MAX_ACK_DEADLINE_SECONDS: i64 = 600;

/// The most messages one `publish` may carry.
pub const MAX_MESSAGES_PER_PUBLISH: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    pub name: TopicName,
    pub labels: BTreeMap<String, String>,
}

/// A published message, shared by the backlogs of every subscription it reached.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Decimal, unique in the emulator.
    pub id: String,
    pub data: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
    /// Empty when none was given.
    pub ordering_key: String,
    pub publish_time: jiff::Timestamp,
}

/// The data of a message may be anything a client sent, so `Debug` shows only its length.
impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("attributes", &self.attributes)
            .field("ordering_key", &self.ordering_key)
            .finish_non_exhaustive()
    }
}

/// A message as a publisher sends it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewMessage {
    pub data: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
    pub ordering_key: String,
}

/// One delivery of a message into a subscription, until it is acknowledged.
#[derive(Clone, Debug)]
struct Pending {
    message: Arc<Message>,
    /// Pulls before this instant do not see it (leased, nacked for later, or delayed).
    visible_at: Instant,
    /// The number of the ack id of its latest delivery.
    ack: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Subscription {
    pub name: SubscriptionName,
    /// `None` once its topic was deleted.
    pub topic: Option<TopicName>,
    pub ack_deadline: Duration,
    pub labels: BTreeMap<String, String>,
    /// By arrival, oldest first.
    backlog: BTreeMap<u64, Pending>,
    /// Each current ack id (its number) and the backlog entry it leases.
    leases: HashMap<u64, u64>,
}

/// A message handed out by a pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub ack_id: String,
    pub message: Arc<Message>,
}

#[derive(Debug, Default)]
pub struct Store {
    topics: BTreeMap<TopicName, Topic>,
    subscriptions: BTreeMap<SubscriptionName, Subscription>,
    /// The IAM policies set on topics and subscriptions, by full name; gone with the resource.
    policies: BTreeMap<String, Policy>,
    /// Counters behind message ids, backlog positions and ack ids; never reused.
    last_message: u64,
    last_delivery: u64,
    last_ack: u64,
    pub faults: DeliveryFaults,
}

impl Store {
    /// Creates a topic, checking its id and that it is new.
    pub fn create_topic(&mut self, name: TopicName, labels: BTreeMap<String, String>) -> Result<&Topic, RpcError> {
        name.validate()?;
        if self.topics.contains_key(&name) {
            return Err(RpcError::already_exists("Topic already exists"));
        }
        Ok(self.topics.entry(name.clone()).or_insert(Topic { name, labels }))
    }

    /// Creates a topic when missing, without checks (the direct helpers seed state with it).
    pub fn seed_topic(&mut self, name: TopicName) {
        self.topics.entry(name.clone()).or_insert(Topic { name, labels: BTreeMap::new() });
    }

    pub fn topic(&self, name: &TopicName) -> Result<&Topic, RpcError> {
        self.topics.get(name).ok_or_else(topic_not_found)
    }

    /// The topics of `project`, by name.
    pub fn topics(&self, project: &str) -> Vec<&Topic> {
        self.topics.values().filter(|topic| topic.name.project == project).collect()
    }

    /// Deletes a topic. Its subscriptions stay, detached from any topic, with their backlogs.
    pub fn delete_topic(&mut self, name: &TopicName) -> Result<(), RpcError> {
        self.topics.remove(name).ok_or_else(topic_not_found)?;
        self.policies.remove(&name.to_string());
        for subscription in self.subscriptions.values_mut().filter(|s| s.topic.as_ref() == Some(name)) {
            subscription.topic = None;
        }
        Ok(())
    }

    /// Publishes to every subscription the topic has now (later ones never see these messages)
    /// and answers the message ids in order.
    pub fn publish(&mut self, topic: &TopicName, messages: Vec<NewMessage>, now: Now) -> Result<Vec<String>, RpcError> {
        self.topic(topic)?;
        if messages.is_empty() {
            return Err(RpcError::invalid_argument("No messages to publish"));
        }
        if messages.len() > MAX_MESSAGES_PER_PUBLISH {
            return Err(RpcError::invalid_argument(format!(
                "A publish request may carry at most {MAX_MESSAGES_PER_PUBLISH} messages."
            )));
        }
        if messages.iter().any(|m| m.data.is_empty() && m.attributes.is_empty()) {
            return Err(RpcError::invalid_argument("Some messages are empty"));
        }
        let delay = self.faults.delay.unwrap_or_default();
        let visible_at = now.instant.checked_add(delay).unwrap_or(now.instant);
        let copies = self.faults.duplicate.saturating_add(1);
        let mut ids = Vec::with_capacity(messages.len());
        for new in messages {
            self.last_message += 1;
            let message = Arc::new(Message {
                id: self.last_message.to_string(),
                data: new.data,
                attributes: new.attributes,
                ordering_key: new.ordering_key,
                publish_time: now.wall,
            });
            ids.push(message.id.clone());
            if self.faults.lose_one() {
                continue;
            }
            let reached = self.subscriptions.values_mut().filter(|s| s.topic.as_ref() == Some(topic));
            for subscription in reached {
                for _ in 0..copies {
                    self.last_delivery += 1;
                    let pending = Pending { message: Arc::clone(&message), visible_at, ack: None };
                    subscription.backlog.insert(self.last_delivery, pending);
                }
            }
        }
        Ok(ids)
    }

    /// Creates a subscription of an existing topic, checking its id and that it is new.
    pub fn create_subscription(
        &mut self,
        name: SubscriptionName,
        topic: TopicName,
        ack_deadline: Duration,
        labels: BTreeMap<String, String>,
    ) -> Result<&Subscription, RpcError> {
        name.validate()?;
        if self.subscriptions.contains_key(&name) {
            return Err(RpcError::already_exists("Subscription already exists"));
        }
        if !self.topics.contains_key(&topic) {
            return Err(RpcError::not_found("Subscription topic does not exist"));
        }
        Ok(self.insert_subscription(name, topic, ack_deadline, labels))
    }

    /// Creates a subscription (and its topic) when missing, without checks (the direct helpers
    /// seed state with it). Any deadline goes, sub-second ones included.
    pub fn seed_subscription(&mut self, name: SubscriptionName, topic: TopicName, ack_deadline: Duration) {
        self.seed_topic(topic.clone());
        if !self.subscriptions.contains_key(&name) {
            self.insert_subscription(name, topic, ack_deadline, BTreeMap::new());
        }
    }

    fn insert_subscription(
        &mut self,
        name: SubscriptionName,
        topic: TopicName,
        ack_deadline: Duration,
        labels: BTreeMap<String, String>,
    ) -> &Subscription {
        let subscription = Subscription {
            name: name.clone(),
            topic: Some(topic),
            ack_deadline,
            labels,
            backlog: BTreeMap::new(),
            leases: HashMap::new(),
        };
        self.subscriptions.entry(name).or_insert(subscription)
    }

    pub fn subscription(&self, name: &SubscriptionName) -> Result<&Subscription, RpcError> {
        self.subscriptions.get(name).ok_or_else(subscription_not_found)
    }

    /// The subscriptions of `project`, by name.
    pub fn subscriptions(&self, project: &str) -> Vec<&Subscription> {
        self.subscriptions.values().filter(|s| s.name.project == project).collect()
    }

    /// Deletes a subscription and its backlog.
    pub fn delete_subscription(&mut self, name: &SubscriptionName) -> Result<(), RpcError> {
        self.subscriptions.remove(name).ok_or_else(subscription_not_found)?;
        self.policies.remove(&name.to_string());
        Ok(())
    }

    /// The IAM policy of an existing topic, as `getIamPolicy` answers it (empty until set).
    pub fn topic_policy(&self, name: &TopicName) -> Result<Value, RpcError> {
        self.topic(name)?;
        Ok(self.policy_json(&name.to_string()))
    }

    /// The IAM policy of an existing topic, for `setIamPolicy`.
    pub fn topic_policy_mut(&mut self, name: &TopicName) -> Result<&mut Policy, RpcError> {
        self.topic(name)?;
        Ok(self.policies.entry(name.to_string()).or_default())
    }

    /// The IAM policy of an existing subscription, as `getIamPolicy` answers it.
    pub fn subscription_policy(&self, name: &SubscriptionName) -> Result<Value, RpcError> {
        self.subscription(name)?;
        Ok(self.policy_json(&name.to_string()))
    }

    /// The IAM policy of an existing subscription, for `setIamPolicy`.
    pub fn subscription_policy_mut(&mut self, name: &SubscriptionName) -> Result<&mut Policy, RpcError> {
        self.subscription(name)?;
        Ok(self.policies.entry(name.to_string()).or_default())
    }

    fn policy_json(&self, name: &str) -> Value {
        self.policies.get(name).map_or_else(|| Policy::default().to_json(), Policy::to_json)
    }

    /// Whether the policy set on the topic or subscription `name` grants `permission` to
    /// `principal` (false for any other name).
    pub fn policy_allows(&self, name: &str, principal: &str, permission: &str) -> bool {
        self.policies.get(name).is_some_and(|policy| policy.allows(principal, permission))
    }

    /// Leases up to `max` visible messages, oldest first (reversed under the `reorder` fault),
    /// each with a new ack id, until the subscription's ack deadline. Nothing visible is an
    /// empty batch at once: pulls never wait.
    pub fn pull(&mut self, name: &SubscriptionName, max: usize, now: Instant) -> Result<Vec<Received>, RpcError> {
        if max == 0 {
            return Err(RpcError::invalid_argument("No max_messages specified"));
        }
        let subscription = self.subscriptions.get_mut(name).ok_or_else(subscription_not_found)?;
        let visible: Vec<u64> =
            subscription.backlog.iter().filter(|(_, p)| p.visible_at <= now).map(|(key, _)| *key).take(max).collect();
        let lease_until = now.checked_add(subscription.ack_deadline).unwrap_or(now);
        let mut batch = Vec::with_capacity(visible.len());
        for key in visible {
            let Some(pending) = subscription.backlog.get_mut(&key) else { continue };
            self.last_ack += 1;
            if let Some(previous) = pending.ack.replace(self.last_ack) {
                subscription.leases.remove(&previous);
            }
            subscription.leases.insert(self.last_ack, key);
            pending.visible_at = lease_until;
            batch.push(Received { ack_id: ack_id(name, self.last_ack), message: Arc::clone(&pending.message) });
        }
        if self.faults.reorder {
            batch.reverse();
        }
        Ok(batch)
    }

    /// Removes the messages the ack ids lease (ids of earlier deliveries are ignored, as are the
    /// acknowledgements the `drop_acks` fault swallows). Every id must be one of this
    /// subscription's, or nothing is acknowledged.
    pub fn acknowledge(&mut self, name: &SubscriptionName, ack_ids: &[String]) -> Result<(), RpcError> {
        let subscription = self.subscriptions.get_mut(name).ok_or_else(subscription_not_found)?;
        for ack in parse_ack_ids(name, ack_ids)? {
            let Some(&key) = subscription.leases.get(&ack) else { continue };
            if self.faults.drop_ack() {
                continue;
            }
            subscription.leases.remove(&ack);
            subscription.backlog.remove(&key);
        }
        Ok(())
    }

    /// Moves the deadline of the leased messages to `seconds` from now; 0 offers them again at
    /// once (a nack).
    pub fn modify_ack_deadline(
        &mut self,
        name: &SubscriptionName,
        ack_ids: &[String],
        seconds: i64,
        now: Instant,
    ) -> Result<(), RpcError> {
        let subscription = self.subscriptions.get_mut(name).ok_or_else(subscription_not_found)?;
        let acks = parse_ack_ids(name, ack_ids)?;
        let seconds = match u64::try_from(seconds) {
            Err(_) => return Err(RpcError::invalid_argument("Ack deadline cannot be negative")),
            Ok(s) if s > MAX_ACK_DEADLINE_SECONDS.unsigned_abs() => {
                return Err(RpcError::invalid_argument(format!(
                    "Invalid ack deadline given: {s}s; it must be at most {MAX_ACK_DEADLINE_SECONDS}s."
                )));
            }
            Ok(s) => s,
        };
        let until = now.checked_add(Duration::from_secs(seconds)).unwrap_or(now);
        for ack in acks {
            let Some(key) = subscription.leases.get(&ack) else { continue };
            if let Some(pending) = subscription.backlog.get_mut(key) {
                pending.visible_at = until;
            }
        }
        Ok(())
    }
}

/// The deadline a subscription asks for in seconds: 0 is the default, the rest must be positive
/// and at most 600. Google's emulator also takes deadlines under the real service's 10 s minimum,
/// which tests need.
pub fn ack_deadline(seconds: i64) -> Result<Duration, RpcError> {
    match u64::try_from(seconds) {
        Ok(0) => Ok(DEFAULT_ACK_DEADLINE),
        Ok(s) if s <= MAX_ACK_DEADLINE_SECONDS.unsigned_abs() => Ok(Duration::from_secs(s)),
        _ => Err(RpcError::invalid_argument("ack_deadline_secs out of bounds")),
    }
}

/// Ack ids name their subscription, as Google's emulator's do: `projects/P/subscriptions/S:N`.
fn ack_id(subscription: &SubscriptionName, number: u64) -> String {
    format!("{subscription}:{number}")
}

/// The numbers of ack ids meant for `subscription`; `INVALID_ARGUMENT` for none, a malformed
/// one, or one of another subscription.
fn parse_ack_ids(subscription: &SubscriptionName, ack_ids: &[String]) -> Result<Vec<u64>, RpcError> {
    if ack_ids.is_empty() {
        return Err(RpcError::invalid_argument("No ack ids specified"));
    }
    let own = subscription.to_string();
    ack_ids
        .iter()
        .map(|id| {
            let (meant_for, number) = id
                .rsplit_once(':')
                .and_then(|(name, number)| Some((name, number.parse::<u64>().ok()?)))
                .ok_or_else(|| RpcError::invalid_argument(format!("Invalid ack id (ack_id={id})")))?;
            if meant_for != own {
                return Err(RpcError::invalid_argument(format!(
                    "Subscription {own} received an invalid ackID {id}, meant for subscription: {meant_for}"
                )));
            }
            Ok(number)
        })
        .collect()
}

fn topic_not_found() -> RpcError {
    RpcError::not_found("Topic not found")
}

fn subscription_not_found() -> RpcError {
    RpcError::not_found("Subscription does not exist")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::gcp::rpc::Code;

    const SECOND: Duration = Duration::from_secs(1);

    fn topic() -> TopicName {
        TopicName::new("p", "events")
    }

    fn sub() -> SubscriptionName {
        SubscriptionName::new("p", "sub")
    }

    fn text(data: &str) -> NewMessage {
        NewMessage { data: data.as_bytes().to_vec(), ..NewMessage::default() }
    }

    /// A topic with one subscription whose deadline is 10 s.
    fn store() -> Store {
        let mut store = Store::default();
        store.seed_subscription(sub(), topic(), 10 * SECOND);
        store
    }

    fn pulled(store: &mut Store, max: usize, now: Instant) -> Vec<(String, String)> {
        let batch = store.pull(&sub(), max, now).unwrap_or_else(|e| panic!("pull: {e}"));
        batch.into_iter().map(|r| (String::from_utf8_lossy(&r.message.data).into_owned(), r.ack_id)).collect()
    }

    fn data(batch: &[(String, String)]) -> Vec<&str> {
        batch.iter().map(|(data, _)| data.as_str()).collect()
    }

    #[test]
    fn a_pulled_message_is_hidden_until_its_deadline_and_then_offered_again() {
        let mut store = store();
        let now = Now::with_offset(Duration::ZERO);
        assert_eq!(store.publish(&topic(), vec![text("a"), text("b")], now), Ok(vec!["1".into(), "2".into()]));
        let first = pulled(&mut store, 10, now.instant);
        assert_eq!(data(&first), ["a", "b"]);
        assert!(pulled(&mut store, 10, now.instant + 9 * SECOND).is_empty());
        let again = pulled(&mut store, 1, now.instant + 10 * SECOND);
        assert_eq!(data(&again), ["a"]);
        assert_ne!(again[0].1, first[0].1, "a redelivery has a new ack id");
    }

    #[test]
    fn an_acknowledged_message_is_gone_and_a_stale_ack_id_acknowledges_nothing() {
        let mut store = store();
        let now = Now::with_offset(Duration::ZERO);
        assert!(store.publish(&topic(), vec![text("a")], now).is_ok());
        let first = pulled(&mut store, 10, now.instant);
        assert_eq!(data(&pulled(&mut store, 10, now.instant + 11 * SECOND)), ["a"]);
        assert_eq!(store.acknowledge(&sub(), &[first[0].1.clone()]), Ok(()));
        assert!(pulled(&mut store, 10, now.instant + 12 * SECOND).is_empty(), "still leased");
        let latest = pulled(&mut store, 10, now.instant + 21 * SECOND);
        assert_eq!(data(&latest), ["a"], "the stale ack was ignored");
        assert_eq!(store.acknowledge(&sub(), &[latest[0].1.clone()]), Ok(()));
        assert!(pulled(&mut store, 10, now.instant + 600 * SECOND).is_empty());
    }

    #[test]
    fn a_zero_deadline_offers_the_message_again_at_once() {
        let mut store = store();
        let now = Now::with_offset(Duration::ZERO);
        assert!(store.publish(&topic(), vec![text("a")], now).is_ok());
        let first = pulled(&mut store, 10, now.instant);
        assert_eq!(store.modify_ack_deadline(&sub(), &[first[0].1.clone()], 0, now.instant), Ok(()));
        assert_eq!(data(&pulled(&mut store, 10, now.instant)), ["a"]);
        let bad = store.modify_ack_deadline(&sub(), &[first[0].1.clone()], -1, now.instant);
        assert_eq!(bad.map_err(|e| e.code), Err(Code::InvalidArgument));
    }

    #[test]
    fn messages_published_before_a_subscription_exists_never_reach_it() {
        let mut store = store();
        let now = Now::with_offset(Duration::ZERO);
        assert!(store.publish(&topic(), vec![text("early")], now).is_ok());
        let late = SubscriptionName::new("p", "late");
        assert!(store.create_subscription(late.clone(), topic(), SECOND, BTreeMap::new()).is_ok());
        assert_eq!(store.pull(&late, 10, now.instant).map(|b| b.len()), Ok(0));
        assert!(store.publish(&topic(), vec![text("later")], now).is_ok());
        assert_eq!(store.pull(&late, 10, now.instant).map(|b| b.len()), Ok(1));
    }

    #[test]
    fn missing_resources_are_not_found_with_the_emulators_messages() {
        let mut store = Store::default();
        let now = Now::with_offset(Duration::ZERO);
        let missing = store.pull(&sub(), 1, now.instant).err().map(|e| (e.http_status, e.message));
        assert_eq!(missing, Some((404, "Subscription does not exist".into())));
        let publish = store.publish(&topic(), vec![text("a")], now).err().map(|e| e.http_status);
        assert_eq!(publish, Some(404));
        let orphan = store.create_subscription(sub(), topic(), SECOND, BTreeMap::new()).err();
        assert_eq!(orphan.map(|e| e.message), Some("Subscription topic does not exist".into()));
    }

    #[test]
    fn publish_refuses_nothing_and_empty_messages() {
        let mut store = store();
        let now = Now::with_offset(Duration::ZERO);
        let none = store.publish(&topic(), vec![], now).err().map(|e| e.message);
        assert_eq!(none.as_deref(), Some("No messages to publish"));
        let empty = store.publish(&topic(), vec![NewMessage::default()], now).err().map(|e| e.message);
        assert_eq!(empty.as_deref(), Some("Some messages are empty"));
        let attributes_only =
            NewMessage { attributes: BTreeMap::from([("k".into(), "v".into())]), ..NewMessage::default() };
        assert!(store.publish(&topic(), vec![attributes_only], now).is_ok());
    }

    #[test]
    fn ack_ids_must_be_well_formed_and_meant_for_the_subscription() {
        let mut store = store();
        let empty = store.acknowledge(&sub(), &[]).err().map(|e| e.message);
        assert_eq!(empty.as_deref(), Some("No ack ids specified"));
        let bogus = store.acknowledge(&sub(), &["bogus".into()]).err().map(|e| e.message);
        assert_eq!(bogus.as_deref(), Some("Invalid ack id (ack_id=bogus)"));
        let other = store.acknowledge(&sub(), &["projects/p/subscriptions/other:1".into()]).err();
        assert!(other.is_some_and(|e| e.message.contains("meant for subscription: projects/p/subscriptions/other")));
        assert_eq!(store.acknowledge(&sub(), &["projects/p/subscriptions/sub:99".into()]), Ok(()));
    }

    #[test]
    fn a_deleted_topic_leaves_its_subscriptions_and_their_backlog() {
        let mut store = store();
        let now = Now::with_offset(Duration::ZERO);
        assert!(store.publish(&topic(), vec![text("a")], now).is_ok());
        assert_eq!(store.delete_topic(&topic()), Ok(()));
        assert_eq!(store.subscription(&sub()).map(|s| s.topic.clone()), Ok(None));
        assert_eq!(data(&pulled(&mut store, 10, now.instant)), ["a"]);
        assert_eq!(store.delete_topic(&topic()).map_err(|e| e.code), Err(Code::NotFound));
    }

    #[test]
    fn duplicates_are_deliveries_of_their_own_with_the_same_message_id() {
        let mut store = store();
        store.faults.duplicate = 1;
        let now = Now::with_offset(Duration::ZERO);
        assert!(store.publish(&topic(), vec![text("a")], now).is_ok());
        let batch = store.pull(&sub(), 10, now.instant).unwrap_or_default();
        let ids: Vec<&str> = batch.iter().map(|r| r.message.id.as_str()).collect();
        assert_eq!(ids, ["1", "1"]);
        assert_ne!(batch[0].ack_id, batch[1].ack_id);
        assert_eq!(store.acknowledge(&sub(), &[batch[0].ack_id.clone()]), Ok(()));
        assert_eq!(data(&pulled(&mut store, 10, now.instant + 10 * SECOND)), ["a"], "the other copy is still owed");
    }

    #[test]
    fn delayed_reordered_and_dropped_acks_faults() {
        let mut store = store();
        store.faults = DeliveryFaults { delay: Some(5 * SECOND), reorder: true, drop_acks: 1, ..Default::default() };
        let now = Now::with_offset(Duration::ZERO);
        assert!(store.publish(&topic(), vec![text("a"), text("b")], now).is_ok());
        assert!(pulled(&mut store, 10, now.instant + 4 * SECOND).is_empty(), "delayed");
        let batch = pulled(&mut store, 10, now.instant + 5 * SECOND);
        assert_eq!(data(&batch), ["b", "a"], "reversed");
        let acks: Vec<String> = batch.iter().map(|(_, ack)| ack.clone()).collect();
        assert_eq!(store.acknowledge(&sub(), &acks), Ok(()));
        assert_eq!(data(&pulled(&mut store, 10, now.instant + 15 * SECOND)).len(), 1, "one ack was dropped");
        assert_eq!(store.faults.drop_acks, 0);
    }

    #[test]
    fn a_lost_message_gets_its_id_and_reaches_no_subscription() {
        let mut store = store();
        store.faults.lose = 1;
        let now = Now::with_offset(Duration::ZERO);
        let ids = store.publish(&topic(), vec![text("a"), text("b")], now).unwrap_or_default();
        assert_eq!(ids, ["1", "2"]);
        assert_eq!(data(&pulled(&mut store, 10, now.instant)), ["b"]);
    }

    #[test]
    fn subscription_deadlines_default_to_ten_seconds_and_stop_at_600() {
        assert_eq!(ack_deadline(0), Ok(DEFAULT_ACK_DEADLINE));
        assert_eq!(ack_deadline(2), Ok(2 * SECOND));
        assert_eq!(ack_deadline(600), Ok(600 * SECOND));
        assert!(ack_deadline(601).is_err() && ack_deadline(-1).is_err());
    }

    #[test]
    fn message_debug_hides_the_data() {
        let message = Message {
            id: "1".into(),
            data: b"hunter2".to_vec(),
            attributes: BTreeMap::new(),
            ordering_key: String::new(),
            publish_time: jiff::Timestamp::UNIX_EPOCH,
        };
        let text = format!("{message:?}");
        assert!(!text.contains("hunter2") && text.contains("7 bytes"), "{text}");
    }
}
