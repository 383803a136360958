//! Which services each project has enabled, and the operations that change it. Pure: the time
//! is passed in. A change applies when its operation completes, so a failed one changes nothing.

use super::Now;
use super::RpcError;
use crate::emulator::gcp::rpc;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const METADATA_TYPE: &str = "type.googleapis.com/google.api.serviceusage.v1.OperationMetadata";
/// Google's name for an operation that had nothing to do (enabling an enabled service).
const NOOP: &str = "operations/noop.DONE_OPERATION";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Enable,
    Disable,
    /// `services:batchEnable`: several services at once, all or none.
    BatchEnable,
}

impl Action {
    fn enables(self) -> bool {
        matches!(self, Self::Enable | Self::BatchEnable)
    }

    fn response_type(self) -> &'static str {
        match self {
            Self::Enable => "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse",
            Self::Disable => "type.googleapis.com/google.api.serviceusage.v1.DisableServiceResponse",
            Self::BatchEnable => "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Operation {
    name: String,
    /// Full names; one but for a batch.
    services: Vec<String>,
    action: Action,
    due: Instant,
    failure: Option<RpcError>,
    result: Option<Result<Value, RpcError>>,
}

impl Operation {
    fn to_json(&self) -> Value {
        let metadata = json!({ "@type": METADATA_TYPE, "resourceNames": self.services });
        rpc::operation_json(&self.name, Some(metadata), self.result.as_ref())
    }
}

/// Services by full name (`projects/P/services/S`), `true` when enabled; a service never
/// enabled is not in the map.
#[derive(Debug)]
pub struct Store {
    services: BTreeMap<String, bool>,
    operations: Vec<Operation>,
    delay: Duration,
}

impl Default for Store {
    fn default() -> Self {
        Self { services: BTreeMap::new(), operations: Vec::new(), delay: Duration::from_millis(100) }
    }
}

impl Store {
    pub fn set_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }

    /// Enables a service at once (test seeding).
    pub fn seed(&mut self, name: &str) {
        self.services.insert(name.to_owned(), true);
    }

    /// Completes the operations due at `now`, in start order.
    pub fn settle(&mut self, now: Now) {
        for op in self.operations.iter_mut().filter(|op| op.result.is_none() && op.due <= now.instant) {
            op.result = Some(match op.failure.clone() {
                Some(failure) => Err(failure),
                None => {
                    for service in &op.services {
                        self.services.insert(service.clone(), op.action.enables());
                    }
                    Ok(response(op.action, &op.services))
                }
            });
        }
    }

    pub fn is_enabled(&self, name: &str) -> bool {
        self.services.get(name).copied().unwrap_or(false)
    }

    /// The services of project `parent` (`projects/P`) ever enabled, with their state.
    pub fn services(&self, parent: &str) -> Vec<(String, bool)> {
        let prefix = format!("{parent}/services/");
        let services = self.services.range(prefix.clone()..).take_while(|(name, _)| name.starts_with(&prefix));
        services.map(|(name, enabled)| (name.clone(), *enabled)).collect()
    }

    /// Starts enabling or disabling `services` (one, or several for a batch enable). Nothing to
    /// do answers Google's done no-op operation (unless a failure is injected).
    pub fn start(
        &mut self,
        action: Action,
        services: &[&str],
        failure: Option<RpcError>,
        now: Now,
    ) -> Result<Value, RpcError> {
        let services: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
        if failure.is_none() && services.iter().all(|service| self.is_enabled(service) == action.enables()) {
            return Ok(json!({ "name": NOOP, "done": true, "response": response(action, &services) }));
        }
        let name = format!("operations/acf.p2-{}-{}", self.operations.len() + 1, now.wall.as_millisecond());
        let due = now.instant + self.delay;
        let operation = Operation { name, services, action, due, failure, result: None };
        self.operations.push(operation);
        self.settle(now);
        Ok(self.operations.last().map(Operation::to_json).unwrap_or_default())
    }

    pub fn operation(&self, name: &str) -> Result<Value, RpcError> {
        if name == NOOP {
            return Ok(json!({ "name": NOOP, "done": true }));
        }
        let found = self.operations.iter().find(|op| op.name == name).map(Operation::to_json);
        found.ok_or_else(|| RpcError::not_found(format!("Operation '{name}' not found.")))
    }
}

/// The `response` of a finished enable or disable (`service`), or batch enable (`services`,
/// and no `failures`: a batch succeeds or fails as a whole).
fn response(action: Action, services: &[String]) -> Value {
    let enabled = action.enables();
    match (action, services) {
        (Action::Enable | Action::Disable, [service]) => {
            json!({ "@type": action.response_type(), "service": service_json(service, enabled) })
        }
        _ => {
            let services: Vec<Value> = services.iter().map(|service| service_json(service, enabled)).collect();
            json!({ "@type": action.response_type(), "services": services })
        }
    }
}

/// A Service resource: `{name, parent, config: {name}, state}`.
pub fn service_json(name: &str, enabled: bool) -> Value {
    let parent = name.split('/').take(2).collect::<Vec<_>>().join("/");
    let service = name.rsplit('/').next().unwrap_or_default();
    let state = if enabled { "ENABLED" } else { "DISABLED" };
    json!({ "name": name, "parent": parent, "config": { "name": service }, "state": state })
}
