//! Google's Service Usage API v1 over REST: a project's services enabled and disabled through
//! long-running operations (`operations/…`), read one by one or listed by state. Any service
//! name that looks like a DNS name exists (disabled until enabled), as a gateway's managed
//! service `…apigateway.P.cloud.goog` does. Names keep the project as the caller wrote it
//! (Google writes the project number).

mod store;
#[cfg(test)]
mod tests;

use super::GcpEmulator;
use super::clock::Now;
use super::hooks::lock;
use super::iam::Requirement;
use super::rest::{Query, list_page, split_verb};
use super::rpc::RpcError;
use hyper::Method;
use serde_json::Value;
use std::time::Duration;

pub(super) use store::Store;
use store::{Action, service_json};

/// One Service Usage method and what it is called on (full names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `projects/P/services/S`.
    Enable(String),
    Disable(String),
    Get(String),
    /// `projects/P`.
    List(String),
    GetOperation(String),
}

impl Call {
    /// Parses a path after `/v1/`; `None` when it names no method.
    pub fn parse(method: &Method, path: &str) -> Option<Self> {
        let (resource, verb) = split_verb(path);
        let segments: Vec<&str> = resource.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        let name = resource.to_owned();
        match (method.as_str(), segments.as_slice(), verb) {
            ("GET", ["operations", ..], None) => Some(Self::GetOperation(name)),
            ("GET", ["projects", _, "services"], None) => Some(Self::List(segments[..2].join("/"))),
            ("GET", ["projects", _, "services", _], None) => Some(Self::Get(name)),
            ("POST", ["projects", _, "services", _], Some("enable")) => Some(Self::Enable(name)),
            ("POST", ["projects", _, "services", _], Some("disable")) => Some(Self::Disable(name)),
            _ => None,
        }
    }

    /// The id counters and faults know the method by: its IAM permission.
    pub fn method_id(&self) -> &'static str {
        match self {
            Self::Enable(_) => "serviceusage.services.enable",
            Self::Disable(_) => "serviceusage.services.disable",
            Self::Get(_) => "serviceusage.services.get",
            Self::List(_) => "serviceusage.services.list",
            Self::GetOperation(_) => "serviceusage.operations.get",
        }
    }

    pub fn resource(&self) -> String {
        match self {
            Self::Enable(name) | Self::Disable(name) | Self::Get(name) | Self::GetOperation(name) => name.clone(),
            Self::List(parent) => format!("{parent}/services"),
        }
    }

    pub fn starts_operation(&self) -> bool {
        matches!(self, Self::Enable(_) | Self::Disable(_))
    }

    /// The permission on the project; none to read an operation.
    pub fn requirement(&self) -> Option<Requirement> {
        match self {
            Self::GetOperation(_) => None,
            _ => {
                let project = self.resource().split('/').take(2).collect::<Vec<_>>().join("/");
                Some(Requirement::on(self.method_id(), project))
            }
        }
    }
}

/// Serves one call at `now`; `fail_operation` makes the operation it starts fail with
/// `INTERNAL` and that message, leaving the service as it was.
pub(super) fn handle(
    store: &mut Store,
    call: &Call,
    query: &Query,
    fail_operation: Option<&str>,
    now: Now,
) -> Result<Value, RpcError> {
    store.settle(now);
    let fault = fail_operation.map(RpcError::internal);
    match call {
        Call::Enable(name) => store.start(Action::Enable, checked(name)?, fault, now),
        Call::Disable(name) => store.start(Action::Disable, checked(name)?, fault, now),
        Call::Get(name) => Ok(service_json(checked(name)?, store.is_enabled(name))),
        Call::List(parent) => {
            let wanted = state_filter(query.get("filter"))?;
            let services =
                store.services(parent).into_iter().filter(|(_, enabled)| wanted.is_none_or(|w| w == *enabled));
            let items = services.map(|(name, enabled)| service_json(&name, enabled)).collect();
            list_page("services", items, query)
        }
        Call::GetOperation(name) => store.operation(name),
    }
}

/// A service name Google would know: `projects/P/services/` and a DNS-like name. Unknown ones
/// are refused as Google refuses them, without telling "missing" from "forbidden".
fn checked(name: &str) -> Result<&str, RpcError> {
    let service = name.rsplit('/').next().unwrap_or_default();
    let dns_like = service.contains('.')
        && service.split('.').all(|label| !label.is_empty())
        && service.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if dns_like {
        Ok(name)
    } else {
        Err(RpcError::new(
            super::rpc::Code::PermissionDenied,
            format!("Not found or permission denied for service(s): {service}."),
        ))
    }
}

/// `state:ENABLED` or `state:DISABLED` (the filters gcloud sends); `None` for no filter.
fn state_filter(filter: Option<&str>) -> Result<Option<bool>, RpcError> {
    match filter.map(str::trim).filter(|f| !f.is_empty()) {
        None => Ok(None),
        Some("state:ENABLED") => Ok(Some(true)),
        Some("state:DISABLED") => Ok(Some(false)),
        Some(other) => {
            Err(RpcError::invalid_argument(format!("Invalid filter '{other}': only state:ENABLED or state:DISABLED.")))
        }
    }
}

pub(super) fn set_operation_delay(store: &mut Store, delay: Duration) {
    store.set_delay(delay);
}

impl GcpEmulator {
    /// The services enabled in `project`, by name (e.g. `orders-x.apigateway.p.cloud.goog`).
    pub fn enabled_services(&self, project: &str) -> Vec<String> {
        let mut store = lock(&self.inner.service_usage);
        store.settle(self.inner.clock.now());
        let services = store.services(&format!("projects/{project}"));
        services
            .into_iter()
            .filter(|(_, enabled)| *enabled)
            .filter_map(|(name, _)| name.rsplit('/').next().map(str::to_owned))
            .collect()
    }

    /// Enables `service` in `project` at once, without an operation or a counted call.
    pub fn enable_service(&self, project: &str, service: &str) {
        lock(&self.inner.service_usage).seed(&format!("projects/{project}/services/{service}"));
    }
}
