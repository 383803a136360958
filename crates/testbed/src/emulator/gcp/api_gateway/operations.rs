//! Long-running operations: every create, update and delete answers one, which is done after a
//! delay. Nothing runs in the background: the store completes the operations that are due
//! whenever it is used (see `Store::settle`), so a client that polls sees them finish in time.

use super::model::{Patch, State};
use super::rest::timestamp;
use super::rpc::{self, RpcError};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

const METADATA_TYPE: &str = "type.googleapis.com/google.cloud.apigateway.v1.OperationMetadata";
const EMPTY_TYPE: &str = "type.googleapis.com/google.protobuf.Empty";

/// The time a request is served at: a monotonic instant to decide what is due, and the wall
/// clock written in timestamps. Tests move it forward instead of sleeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub instant: Instant,
    pub wall: jiff::Timestamp,
}

impl Now {
    /// The current time.
    pub fn current() -> Self {
        Self { instant: Instant::now(), wall: jiff::Timestamp::now() }
    }

    /// This time plus `delay`.
    pub fn after(self, delay: Duration) -> Self {
        let wall = jiff::SignedDuration::try_from(delay).ok().and_then(|d| self.wall.checked_add(d).ok());
        Self { instant: self.instant + delay, wall: wall.unwrap_or(self.wall) }
    }
}

/// What an operation does to its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Create,
    Update,
    Delete,
}

impl Verb {
    /// The `verb` of the metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// The resource an operation is about, by kind and full name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Api(String),
    Config(String),
    Gateway(String),
}

impl Target {
    /// The full resource name.
    pub fn name(&self) -> &str {
        match self {
            Self::Api(name) | Self::Config(name) | Self::Gateway(name) => name,
        }
    }

    /// The `@type` of the resource in an operation's `response`.
    pub fn type_url(&self) -> &'static str {
        match self {
            Self::Api(_) => "type.googleapis.com/google.cloud.apigateway.v1.Api",
            Self::Config(_) => "type.googleapis.com/google.cloud.apigateway.v1.ApiConfig",
            Self::Gateway(_) => "type.googleapis.com/google.cloud.apigateway.v1.Gateway",
        }
    }

    /// `projects/P/locations/L` of the target, where its operations are named.
    pub fn location(&self) -> String {
        self.name().split('/').take(4).collect::<Vec<_>>().join("/")
    }
}

/// What completing an operation does, decided when it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The error it completes with (the resource then ends `FAILED` after a create, or back in
    /// its previous state after an update or delete); `None` for success.
    pub failure: Option<RpcError>,
    /// The state before an update or delete started.
    pub previous: State,
    /// The fields an update changes.
    pub patch: Patch,
}

/// One operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// `projects/P/locations/L/operations/operation-N`.
    pub name: String,
    pub target: Target,
    pub verb: Verb,
    pub create_time: jiff::Timestamp,
    /// When it is done.
    pub due: Now,
    pub plan: Plan,
    /// The resource (with its `@type`) or the error, once done.
    pub result: Option<Result<Value, RpcError>>,
}

impl Operation {
    /// A running operation, done at `now + delay`.
    pub fn start(number: usize, target: Target, verb: Verb, plan: Plan, now: Now, delay: Duration) -> Self {
        let name = format!("{}/operations/operation-{number}", target.location());
        Self { name, target, verb, create_time: now.wall, due: now.after(delay), plan, result: None }
    }

    /// Whether it is due at `now` and not done yet.
    pub fn is_due(&self, now: Now) -> bool {
        self.result.is_none() && self.due.instant <= now.instant
    }

    /// The Operation resource: `done` with `response` or `error` once complete.
    pub fn to_json(&self) -> Value {
        let mut metadata = Map::new();
        metadata.insert("@type".into(), json!(METADATA_TYPE));
        metadata.insert("createTime".into(), json!(timestamp(self.create_time)));
        if self.result.is_some() {
            metadata.insert("endTime".into(), json!(timestamp(self.due.wall)));
        }
        metadata.insert("target".into(), json!(self.target.name()));
        metadata.insert("verb".into(), json!(self.verb.as_str()));
        metadata.insert("apiVersion".into(), json!("v1"));
        rpc::operation_json(&self.name, Some(Value::Object(metadata)), self.result.as_ref())
    }
}

/// An operation's `response` for a resource: its JSON with the `@type` first.
pub fn typed(target: &Target, resource: Value) -> Value {
    let mut object = Map::new();
    object.insert("@type".into(), json!(target.type_url()));
    if let Value::Object(fields) = resource {
        object.extend(fields);
    }
    Value::Object(object)
}

/// The `response` of a finished delete.
pub fn empty() -> Value {
    json!({ "@type": EMPTY_TYPE })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(target: Target) -> Operation {
        let plan = Plan { failure: None, previous: State::Active, patch: Patch::default() };
        Operation::start(7, target, Verb::Create, plan, Now::current(), Duration::from_millis(100))
    }

    #[test]
    fn an_operation_is_named_in_its_targets_location_and_starts_not_done() {
        let op = operation(Target::Gateway("projects/p/locations/us-central1/gateways/g".into()));
        let value = op.to_json();
        assert_eq!(value["name"], "projects/p/locations/us-central1/operations/operation-7");
        assert_eq!(value["done"], false);
        assert_eq!(value["metadata"]["@type"], METADATA_TYPE);
        assert_eq!(value["metadata"]["target"], "projects/p/locations/us-central1/gateways/g");
        assert_eq!(
            (value["metadata"]["verb"].clone(), value["metadata"]["apiVersion"].clone()),
            (json!("create"), json!("v1"))
        );
        assert!(value.get("response").is_none() && value.get("error").is_none());
        assert!(value["metadata"].get("endTime").is_none());
    }

    #[test]
    fn an_operation_is_due_after_its_delay_and_only_until_done() {
        let now = Now::current();
        let plan = Plan { failure: None, previous: State::Active, patch: Patch::default() };
        let target = Target::Api("projects/p/locations/global/apis/a".into());
        let mut op = Operation::start(1, target, Verb::Delete, plan, now, Duration::from_millis(100));
        assert_eq!(op.name, "projects/p/locations/global/operations/operation-1");
        assert!(!op.is_due(now.after(Duration::from_millis(99))));
        assert!(op.is_due(now.after(Duration::from_millis(100))));
        op.result = Some(Ok(empty()));
        assert!(!op.is_due(now.after(Duration::from_secs(1))));
    }

    #[test]
    fn a_done_operation_carries_its_response_or_error_and_end_time() {
        let target = Target::Config("projects/p/locations/global/apis/a/configs/c".into());
        let mut op = operation(target.clone());
        op.result = Some(Ok(typed(&target, json!({ "name": target.name() }))));
        let value = op.to_json();
        assert_eq!(value["response"]["@type"], "type.googleapis.com/google.cloud.apigateway.v1.ApiConfig");
        assert_eq!(value["response"]["name"], target.name());
        assert!(value["metadata"]["endTime"].is_string());
        op.result = Some(Err(RpcError::invalid_argument("bad document")));
        assert_eq!(op.to_json()["error"], json!({ "code": 3, "message": "bad document" }));
        assert_eq!(empty()["@type"], EMPTY_TYPE);
    }
}
