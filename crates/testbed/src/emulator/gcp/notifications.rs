//! Secret Manager's notifications on their way to Pub/Sub: into the emulator's own Pub/Sub, or,
//! after [`GcpEmulator::publish_to`], over REST into another one (Google's emulator); the log
//! tests assert on; and the timer that fires due rotations. Delivery is best effort, as Google's
//! is: a notification that cannot be published is logged and never fails the Secret Manager call.

use super::clock::Now;
use super::hooks::lock;
use super::secret_manager::{self, Notification};
use super::{GcpEmulator, pubsub};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long one publish to an external Pub/Sub may take.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the timer started by `listen` looks for due rotations.
const ROTATION_TICK: Duration = Duration::from_secs(1);

/// How many published notifications [`GcpEmulator::published`] keeps.
pub const PUBLISHED_KEPT: usize = 50_000;

/// A message Secret Manager published, wherever it went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedMessage {
    /// `projects/P/topics/T`.
    pub topic: String,
    /// The `eventType` attribute, e.g. `SECRET_VERSION_ADD`.
    pub event_type: String,
    pub attributes: BTreeMap<String, String>,
    /// The Secret or SecretVersion as JSON; empty for `TOPIC_CONFIGURED`.
    pub data: Vec<u8>,
}

impl From<&Notification> for PublishedMessage {
    fn from(notification: &Notification) -> Self {
        Self {
            topic: notification.topic.clone(),
            event_type: notification.attributes.get("eventType").cloned().unwrap_or_default(),
            attributes: notification.attributes.clone(),
            data: notification.data.clone(),
        }
    }
}

/// Where notifications go once `publish_to` named another Pub/Sub: a queue its forwarder drains
/// in order.
pub(super) type External = mpsc::UnboundedSender<Notification>;

impl GcpEmulator {
    /// Publishes Secret Manager's notifications to the Pub/Sub REST API at `endpoint`
    /// (`http://127.0.0.1:8085`, e.g. Google's emulator: `POST {endpoint}/v1/{topic}:publish`,
    /// HTTP/1.1, no credentials) instead of the emulator's own Pub/Sub, in order, in the
    /// background. A publish that fails is logged at `warn`. Needs a Tokio runtime; without one
    /// the call is logged and notifications stay in the emulator.
    pub fn publish_to(&self, endpoint: String) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(%endpoint, "GCP emulator: publish_to needs a Tokio runtime; notifications stay in the emulator");
            return;
        };
        let (sender, queue) = mpsc::unbounded_channel();
        runtime.spawn(forward(endpoint, queue));
        // The previous forwarder, if any, ends once its queue is empty.
        *lock(&self.inner.external) = Some(sender);
    }

    /// The notifications Secret Manager published, oldest first, wherever they went: all of
    /// them, up to the last [`PUBLISHED_KEPT`] (a long-running emulator stays bounded).
    pub fn published(&self) -> Vec<PublishedMessage> {
        lock(&self.inner.published).iter().cloned().collect()
    }

    /// Sends `SECRET_ROTATE` for every secret whose `rotation.nextRotationTime` has come (on the
    /// emulator's clock) and moves its schedule on by `rotationPeriod`, or ends it; answers how
    /// many secrets rotated. The timer `listen` starts does this every second.
    pub fn fire_due_rotations(&self) -> usize {
        self.with_secret_manager(secret_manager::fire_due_rotations)
    }

    /// Runs `work` on the Secret Manager store at the emulator's time, then delivers the
    /// notifications its changes owe, once the store is unlocked.
    pub(super) fn with_secret_manager<T>(
        &self,
        work: impl FnOnce(&mut secret_manager::Store, jiff::Timestamp) -> T,
    ) -> T {
        let now = self.inner.clock.now();
        let (value, notifications) = {
            let mut store = lock(&self.inner.secret_manager);
            let value = work(&mut store, now.wall);
            (value, secret_manager::take_notifications(&mut store, now.wall))
        };
        self.deliver(notifications, now);
        value
    }

    fn deliver(&self, notifications: Vec<Notification>, now: Now) {
        if notifications.is_empty() {
            return;
        }
        {
            let mut published = lock(&self.inner.published);
            published.extend(notifications.iter().map(PublishedMessage::from));
            while published.len() > PUBLISHED_KEPT {
                published.pop_front();
            }
        }
        let external = lock(&self.inner.external).clone();
        for notification in notifications {
            match &external {
                Some(queue) => {
                    if let Err(lost) = queue.send(notification) {
                        warn_lost(&lost.0, "the forwarder to the external Pub/Sub has stopped");
                    }
                }
                None => {
                    let Notification { topic, attributes, data } = notification;
                    let mut pubsub = lock(&self.inner.pubsub);
                    if let Err(error) = pubsub::publish(&mut pubsub, &topic, data, attributes.clone(), now) {
                        let event_type = attributes.get("eventType").map_or("", String::as_str);
                        tracing::warn!(%topic, event_type, %error, "GCP emulator: a Secret Manager notification was not published");
                    }
                }
            }
        }
    }

    /// Starts, once, the timer that fires due rotations. It holds the emulator weakly, so it
    /// ends when the last clone is dropped.
    pub(super) fn start_rotation_timer(&self) {
        if self.inner.rotation_timer.swap(true, Ordering::SeqCst) {
            return;
        }
        let emulator = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(ROTATION_TICK);
            loop {
                ticks.tick().await;
                let Some(inner) = emulator.upgrade() else { break };
                GcpEmulator { inner }.fire_due_rotations();
            }
        });
    }
}

/// Publishes each queued notification to the Pub/Sub at `endpoint`, one after the other.
async fn forward(endpoint: String, mut queue: mpsc::UnboundedReceiver<Notification>) {
    let client = match reqwest::Client::builder().timeout(PUBLISH_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%endpoint, %error, "GCP emulator: no HTTP client to publish notifications");
            return;
        }
    };
    let base = endpoint.trim_end_matches('/');
    while let Some(notification) = queue.recv().await {
        let url = format!("{base}/v1/{}:publish", notification.topic);
        let body = json!({ "messages": [message_json(&notification)] });
        let outcome = match client.post(&url).json(&body).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            // Pub/Sub's error bodies name resources, never message data.
            Ok(response) => Err(format!("{}: {}", response.status(), response.text().await.unwrap_or_default())),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = outcome {
            warn_lost(&notification, &error);
        }
    }
}

fn warn_lost(notification: &Notification, error: &str) {
    let topic = &notification.topic;
    let event_type = notification.attributes.get("eventType").map_or("", String::as_str);
    tracing::warn!(%topic, event_type, %error, "GCP emulator: a Secret Manager notification was not published");
}

/// A `PubsubMessage` for `:publish`: base64 data (left out when empty) and the attributes.
fn message_json(notification: &Notification) -> Value {
    let mut message = json!({ "attributes": notification.attributes });
    if !notification.data.is_empty() {
        message["data"] = json!(STANDARD.encode(&notification.data));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_message_is_published_without_data() {
        let notification = Notification {
            topic: "projects/p/topics/events".into(),
            attributes: BTreeMap::from([("eventType".into(), "TOPIC_CONFIGURED".into())]),
            data: Vec::new(),
        };
        assert_eq!(message_json(&notification), json!({"attributes": {"eventType": "TOPIC_CONFIGURED"}}));
        let published = PublishedMessage::from(&notification);
        assert_eq!((published.event_type.as_str(), published.data.len()), ("TOPIC_CONFIGURED", 0));
    }
}
