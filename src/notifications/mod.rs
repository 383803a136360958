//! Event-driven rotation: Secret Manager's Pub/Sub notifications queue exactly the SecretRefs
//! they concern, with a forced read, so a rotation is synced in well under a second and a steady
//! cluster makes no access calls between `refreshInterval`s.
//!
//! One loop per `--pubsub-subscription` (leader only, with the controllers): pull → read the
//! attributes ([`event`]) → pick the SecretRefs ([`route`]) → queue them, with a forced read or
//! versions to check ([`hints`]) → acknowledge. Pub/Sub
//! trouble never stops anything else: polling on `refreshInterval` carries on, the loop backs off
//! and logs one Warning per outage.

pub mod event;
pub mod hints;
pub mod route;

use crate::api::SecretRef;
use crate::api::conditions::reasons;
use crate::gcp::{ReceivedMessage, Subscriber};
use crate::runtime::{Runtime, object_key, timing};
use event::EventType;
use hints::{Admitted, Hints};
use kube::runtime::events::EventType as KubeEventType;
use kube::runtime::reflector::{ObjectRef, Store};
use route::{Index, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Messages asked for per pull.
const MAX_MESSAGES: u32 = 100;
/// Pause after an empty pull (emulators answer at once; Google's servers wait for messages).
const IDLE: Duration = Duration::from_millis(50);
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// The subscriber, the subscriptions it follows (full names), and what their messages asked of
/// each SecretRef.
pub struct Notifications {
    pub subscriber: Subscriber,
    pub subscriptions: Vec<String>,
    /// What notifications asked of each SecretRef, and what reads covered.
    pub hints: Hints,
}

impl Notifications {
    pub fn new(subscriber: Subscriber, subscriptions: Vec<String>) -> Self {
        Self { subscriber, subscriptions, hints: Hints::default() }
    }
}

/// Where queued SecretRefs go: the SecretRef controller's `reconcile_on` stream.
pub type Queue = mpsc::Sender<ObjectRef<SecretRef>>;

/// Follows every subscription until `shutdown`.
pub async fn run(
    ctx: Arc<Runtime>,
    notifications: Arc<Notifications>,
    refs: Store<SecretRef>,
    queue: Queue,
    shutdown: CancellationToken,
) {
    let follows = notifications
        .subscriptions
        .iter()
        .map(|subscription| follow(&ctx, &notifications, subscription, &refs, &queue, &shutdown));
    futures::future::join_all(follows).await;
}

/// Pulls one subscription until `shutdown`, backing off while it fails.
async fn follow(
    ctx: &Runtime,
    notifications: &Arc<Notifications>,
    subscription: &str,
    refs: &Store<SecretRef>,
    queue: &Queue,
    shutdown: &CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let pulled = tokio::select! {
            () = shutdown.cancelled() => return,
            pulled = notifications.subscriber.pull(subscription, MAX_MESSAGES) => pulled,
        };
        let pause = match pulled {
            Ok(messages) => {
                if failures > 0 {
                    info!(subscription, "notifications resumed");
                    failures = 0;
                }
                let idle = messages.is_empty();
                let Some(handled) = handle(ctx, notifications, subscription, refs, queue, messages, shutdown).await
                else {
                    return;
                };
                // Unacknowledged messages come back after their deadline: harmless, just later.
                if let Err(error) = notifications.subscriber.acknowledge(subscription, &handled).await {
                    warn!(subscription, error = %error, "cannot acknowledge notifications; they will be delivered again");
                }
                if idle { IDLE } else { Duration::ZERO }
            }
            Err(error) => {
                ctx.metrics.pubsub_pull_failed();
                failures += 1;
                if failures == 1 {
                    warn!(subscription, error = %error, "cannot pull notifications; SecretRefs are still checked every refreshInterval");
                }
                timing::backoff(failures, FIRST_RETRY, MAX_RETRY)
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// Acts on each message; returns the ack ids of those handled (`None`: the controller is gone).
async fn handle(
    ctx: &Runtime,
    notifications: &Arc<Notifications>,
    subscription: &str,
    refs: &Store<SecretRef>,
    queue: &Queue,
    messages: Vec<ReceivedMessage>,
    shutdown: &CancellationToken,
) -> Option<Vec<String>> {
    // Most pulls are empty: the cache is not indexed for them.
    if messages.is_empty() {
        return Some(Vec::new());
    }
    let subscription_project = route::subscription_project(subscription);
    let mut handled = Vec::with_capacity(messages.len());
    let state = refs.state();
    // Only this shard's SecretRefs: each shard pulls a subscription of its own.
    let shard = ctx.settings.shard;
    let owned = state.iter().map(AsRef::as_ref).filter(|secret_ref| shard.owns(*secret_ref));
    let index = Index::build(owned, ctx.settings.gcp_project.as_deref());
    for message in messages {
        let event_type = EventType::parse(message.attributes.get("eventType").map(String::as_str).unwrap_or_default());
        let outcome = match event::parse(&message.attributes) {
            None if matches!(event_type, EventType::TopicConfigured | EventType::Unknown) => "ignored",
            None => "malformed",
            Some(notification) => {
                let responses = route::respond(&notification, subscription_project, &index);
                for (secret_ref, response) in &responses {
                    match response {
                        Response::Reread => {
                            let key = object_key(*secret_ref);
                            // A new version is compared with what was synced and looked for.
                            let added = (notification.event == EventType::VersionAdd)
                                .then_some(notification.version.as_deref())
                                .flatten();
                            let announced = added.and_then(|version| version.parse().ok());
                            match notifications.hints.admit(&key, announced, synced_number(secret_ref), Instant::now())
                            {
                                Admitted::No => continue,
                                Admitted::Now => queue.send(ObjectRef::from_obj(*secret_ref)).await.ok()?,
                                Admitted::Later(wait) => {
                                    queue_later(notifications, queue, secret_ref, wait, Later::Read, shutdown)
                                }
                            }
                            if let Some(version) = added {
                                ctx.metrics.rotation_notified(&key, secret_ref, version);
                            }
                        }
                        Response::Check(version) => {
                            let key = object_key(*secret_ref);
                            match notifications.hints.admit_check(&key, *version, Instant::now()) {
                                Admitted::No => {}
                                Admitted::Now => queue.send(ObjectRef::from_obj(*secret_ref)).await.ok()?,
                                Admitted::Later(wait) => {
                                    queue_later(notifications, queue, secret_ref, wait, Later::Check, shutdown)
                                }
                            }
                        }
                        Response::AnnounceRotation => announce_rotation(ctx, secret_ref).await,
                    }
                }
                match (responses.is_empty(), event_type) {
                    (false, _) => "queued",
                    (true, EventType::TopicConfigured | EventType::Unknown) => "ignored",
                    // No SecretRef reads that secret, or none needs to act (a pinned one on a new version).
                    (true, _) => "no_action",
                }
            }
        };
        ctx.metrics.pubsub_message(event_type.label(), outcome);
        if let Some(lag) = message.publish_time.as_deref().and_then(lag_since) {
            ctx.metrics.pubsub_delivery_lag(lag);
        }
        handled.push(message.ack_id);
    }
    Some(handled)
}

/// The version number `secret_ref` has synced, if any.
fn synced_number(secret_ref: &SecretRef) -> Option<u64> {
    secret_ref.status.as_ref()?.synced_version.as_deref()?.parse().ok()
}

/// What a reconcile queued later is for.
#[derive(Clone, Copy)]
enum Later {
    /// A forced read (marked due when queued).
    Read,
    /// The checks waiting in the hints (they stay there until taken).
    Check,
}

/// Queues `secret_ref` once `wait` has passed (unless the operator stops).
fn queue_later(
    notifications: &Arc<Notifications>,
    queue: &Queue,
    secret_ref: &SecretRef,
    wait: Duration,
    what: Later,
    shutdown: &CancellationToken,
) {
    let (notifications, queue, shutdown) = (notifications.clone(), queue.clone(), shutdown.clone());
    let (key, object) = (object_key(secret_ref), ObjectRef::from_obj(secret_ref));
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(wait) => {
                if let Later::Read = what {
                    notifications.hints.trailing_due(&key);
                }
                let _ = queue.send(object).await;
            }
        }
    });
}

async fn announce_rotation(ctx: &Runtime, secret_ref: &SecretRef) {
    let note = format!(
        "Secret Manager's rotation schedule of {} is due: its owner adds the new version, which is then synced",
        secret_ref.spec.secret
    );
    ctx.publish(secret_ref, KubeEventType::Normal, reasons::ROTATION_DUE, "Observe", note).await;
}

/// Time since an RFC 3339 `publishTime`.
fn lag_since(publish_time: &str) -> Option<Duration> {
    let published = publish_time.parse::<jiff::Timestamp>().ok()?;
    Duration::try_from(jiff::Timestamp::now().duration_since(published)).ok()
}
