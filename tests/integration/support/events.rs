//! The Events the operator wrote (events.k8s.io/v1) in a test's namespace.

use super::cluster::TestCluster;
use super::wait::{DEADLINE, wait_for};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};

/// `type reason kind/name: note`, one line per Event, for assertion messages.
pub fn describe(events: &[Event]) -> String {
    let line = |e: &Event| {
        let regarding = e.regarding.as_ref();
        format!(
            "{} {} {}/{}: {}",
            e.type_.as_deref().unwrap_or("-"),
            e.reason.as_deref().unwrap_or("-"),
            regarding.and_then(|r| r.kind.as_deref()).unwrap_or("-"),
            regarding.and_then(|r| r.name.as_deref()).unwrap_or("-"),
            e.note.as_deref().unwrap_or("")
        )
    };
    events.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// Every Event of `type_` (`Normal`, `Warning`) in the test's namespace.
pub async fn of_type(cluster: &TestCluster, type_: &str) -> Vec<Event> {
    let events: Api<Event> = cluster.api();
    let list = events.list(&ListParams::default()).await.unwrap_or_else(|e| panic!("listing Events: {e}"));
    list.items.into_iter().filter(|e| e.type_.as_deref() == Some(type_)).collect()
}

/// The Normal Events with `reason` about object `name`.
pub async fn normal(cluster: &TestCluster, name: &str, reason: &str) -> Vec<Event> {
    let about = |e: &Event| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name);
    of_type(cluster, "Normal").await.into_iter().filter(|e| e.reason.as_deref() == Some(reason) && about(e)).collect()
}

/// Waits for a Normal Event with `reason` about `name` whose note contains `note`; returns it.
pub async fn wait_normal(cluster: &TestCluster, name: &str, reason: &str, note: &str) -> Event {
    wait_for(&format!("a Normal {reason} Event about {name} saying {note:?}"), DEADLINE, || async {
        let found = normal(cluster, name, reason).await;
        found.into_iter().find(|e| e.note.as_deref().is_some_and(|n| n.contains(note)))
    })
    .await
}
