//! Watches: opened under the store lock (so no change slips between the starting point and the
//! live feed), then streamed as one JSON event per line, with selector transitions
//! (an object that stops matching is reported DELETED), bookmarks and a timeout. An event's
//! object is encoded once and the bytes shared by every watch that sends it.

use super::request::{Query, ResourcePath};
use super::resources::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::served::{selected, selectors, view, view_ref};
use super::status::ApiError;
use super::store::{Event, EventType, State, WatchScope};
use super::table::IncludeObject;
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Default watch length when the client sets no `timeoutSeconds` (the apiserver picks 30–60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// A watch that is open in the store and ready to stream.
pub struct WatchPlan {
    rt: Arc<ResourceType>,
    /// `rt`'s apiVersion, which decides the served shape of every object.
    api_version: String,
    /// Objects reported ADDED first (the current state, when the watch starts from "now").
    initial: Vec<Arc<Value>>,
    /// After `initial`, a bookmark marking the end of the initial events (`sendInitialEvents`).
    initial_end_bookmark: bool,
    replay: Vec<Arc<Event>>,
    live: mpsc::Receiver<Arc<Event>>,
    labels: LabelSelector,
    fields: FieldSelector,
    bookmarks: bool,
    timeout: Duration,
    last_rv: u64,
    table: Option<IncludeObject>,
}

/// Opens a watch according to the request's resourceVersion, selectors and options.
pub fn open_watch(
    state: &mut State,
    rt: Arc<ResourceType>,
    path: &ResourcePath,
    query: &Query,
    wants_table: bool,
) -> Result<WatchPlan, ApiError> {
    let (labels, fields) = selectors(&rt, query)?;
    let send_initial = query.flag("sendInitialEvents");
    let since = match query.get("resourceVersion") {
        None | Some("0") => None,
        Some(_) if send_initial => None,
        Some(rv) => {
            Some(rv.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid resourceVersion: {rv}")))?)
        }
    };
    // Shared objects only: they are converted and encoded by the stream, without the lock.
    let initial: Vec<Arc<Value>> = if since.is_none() {
        state
            .scan(&rt.storage_key(), path.namespace.as_deref(), None)
            .map(|(_, object)| object)
            .filter(|o| selected(&rt, o, &labels, &fields))
            .cloned()
            .collect()
    } else {
        vec![]
    };
    let last_rv = since.unwrap_or_else(|| state.resource_version());
    let scope = WatchScope { key: rt.storage_key(), namespace: path.namespace.clone() };
    let (replay, live) = state.watch(scope, since)?;
    let timeout = query.number("timeoutSeconds")?.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let table =
        wants_table.then(|| IncludeObject::parse(query.get("includeObject")).unwrap_or(IncludeObject::Metadata));
    Ok(WatchPlan {
        api_version: rt.api_version(),
        rt,
        initial,
        initial_end_bookmark: send_initial,
        replay,
        live,
        labels,
        fields,
        bookmarks: query.flag("allowWatchBookmarks"),
        timeout,
        last_rv,
        table,
    })
}

impl WatchPlan {
    /// Streams the watch into `out` until the timeout, the client leaving, or the store closing
    /// the watch. `bookmark_every` paces bookmarks when the client allows them.
    pub async fn stream(mut self, out: mpsc::Sender<Bytes>, bookmark_every: Duration) {
        let deadline = tokio::time::Instant::now() + self.timeout;
        for object in std::mem::take(&mut self.initial) {
            if !self.send(&out, "ADDED", &object, || self.encode(&object)).await {
                return;
            }
        }
        if self.initial_end_bookmark && !self.bookmark(&out, true).await {
            return;
        }
        for event in std::mem::take(&mut self.replay) {
            if !self.deliver(&out, &event).await {
                return;
            }
        }
        let mut ticker = tokio::time::interval(bookmark_every);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = ticker.tick(), if self.bookmarks => {
                    if !self.bookmark(&out, false).await { return; }
                }
                event = self.live.recv() => match event {
                    Some(event) => if !self.deliver(&out, &event).await { return; },
                    None => return,
                },
                _ = out.closed() => return,
            }
        }
    }

    async fn deliver(&mut self, out: &mpsc::Sender<Bytes>, event: &Event) -> bool {
        self.last_rv = event.rv;
        match self.translate(event) {
            Some(type_) => {
                let encoded = || event.encoded(&self.api_version, || self.encode(&event.object));
                self.send(out, type_, &event.object, encoded).await
            }
            None => true,
        }
    }

    /// The type this watch reports the event as, given its selectors; `None` to skip it.
    fn translate(&self, event: &Event) -> Option<&'static str> {
        let now_matches = selected(&self.rt, &event.object, &self.labels, &self.fields);
        let was_matching = event.old.as_ref().is_some_and(|o| selected(&self.rt, o, &self.labels, &self.fields));
        let type_ = match (event.type_, was_matching, now_matches) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Deleted, _, true) => "DELETED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, false) => "DELETED",
            _ => return None,
        };
        Some(type_)
    }

    /// A stored object as this watch serves it, encoded as JSON.
    fn encode(&self, stored: &Value) -> Bytes {
        // Encoding a `Value` into memory cannot fail.
        Bytes::from(serde_json::to_vec(&*view_ref(&self.rt, stored)).unwrap_or_default())
    }

    async fn bookmark(&self, out: &mpsc::Sender<Bytes>, initial_end: bool) -> bool {
        let mut metadata = json!({ "resourceVersion": self.last_rv.to_string() });
        if initial_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let object = json!({ "kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata });
        line(out, "BOOKMARK", object).await
    }

    /// Sends one event: as a Table row when the client asked for tables, else as the object's
    /// JSON from `encoded` (which may be shared with other watches).
    async fn send(
        &self,
        out: &mpsc::Sender<Bytes>,
        type_: &str,
        stored: &Value,
        encoded: impl FnOnce() -> Bytes,
    ) -> bool {
        let Some(include) = self.table else {
            return out.send(event_line(type_, &encoded())).await.is_ok();
        };
        let table = self.rt.table(&[view(&self.rt, stored)], include, json!({}), jiff::Timestamp::now());
        line(out, type_, table).await
    }
}

/// `{"type":…,"object":…}` and a newline, around an object already encoded.
fn event_line(type_: &str, object: &[u8]) -> Bytes {
    let mut bytes = Vec::with_capacity(object.len() + type_.len() + 24);
    bytes.extend_from_slice(b"{\"type\":\"");
    bytes.extend_from_slice(type_.as_bytes());
    bytes.extend_from_slice(b"\",\"object\":");
    bytes.extend_from_slice(object);
    bytes.extend_from_slice(b"}\n");
    Bytes::from(bytes)
}

async fn line(out: &mpsc::Sender<Bytes>, type_: &str, object: Value) -> bool {
    let mut event = serde_json::Map::new();
    event.insert("type".into(), Value::String(type_.into()));
    event.insert("object".into(), object);
    let mut bytes = serde_json::to_vec(&event).unwrap_or_default();
    bytes.push(b'\n');
    out.send(Bytes::from(bytes)).await.is_ok()
}

/// A watch that cannot start (e.g. 410 Gone) is reported in-stream, as kube-apiserver does.
pub fn error_line(error: &ApiError) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({ "type": "ERROR", "object": error.to_status() })).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}
