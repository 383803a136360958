//! Google's Service Usage API v1 over REST: a project's services enabled and disabled through
//! long-running operations (`operations/…`), one at a time or several at once
//! (`services:batchEnable`, all or none), read one by one or listed by state; and v1beta1's
//! `generateServiceIdentity`, a service's service agent. Any service name that looks like a DNS
//! name exists (disabled until enabled), as a gateway's managed service
//! `…apigateway.P.cloud.goog` does. Names keep the project as the caller wrote it (Google writes
//! the project number).

mod store;
#[cfg(test)]
mod tests;

use super::GcpEmulator;
use super::clock::Now;
use super::hooks::lock;
use super::iam::{Requirement, project_number, unique_id};
use super::rest::{Query, list_page, parse_body, split_verb};
use super::rpc::RpcError;
use hyper::Method;
use serde::Deserialize;
use serde_json::{Value, json};
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
    /// `projects/P`: the services are in the body.
    BatchEnable(String),
    GetOperation(String),
    /// `projects/P/services/S`, under `/v1beta1/` only.
    GenerateServiceIdentity(String),
}

/// The API versions served: v1, and v1beta1 for what gcloud calls there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V1Beta1,
}

/// `services:batchEnable`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchEnableBody {
    #[serde(default)]
    service_ids: Vec<String>,
}

/// The most services one `batchEnable` takes.
const MAX_BATCH: usize = 20;

impl Call {
    /// Parses a path after `/v1/` or `/v1beta1/`; `None` when it names no method of that
    /// version.
    pub fn parse(version: Version, method: &Method, path: &str) -> Option<Self> {
        let (resource, verb) = split_verb(path);
        let segments: Vec<&str> = resource.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        let name = resource.to_owned();
        match (version, method.as_str(), segments.as_slice(), verb) {
            (Version::V1, "GET", ["operations", ..], None) => Some(Self::GetOperation(name)),
            (Version::V1, "GET", ["projects", _, "services"], None) => Some(Self::List(segments[..2].join("/"))),
            (Version::V1, "POST", ["projects", _, "services"], Some("batchEnable")) => {
                Some(Self::BatchEnable(segments[..2].join("/")))
            }
            (Version::V1, "GET", ["projects", _, "services", _], None) => Some(Self::Get(name)),
            (Version::V1, "POST", ["projects", _, "services", _], Some("enable")) => Some(Self::Enable(name)),
            (Version::V1, "POST", ["projects", _, "services", _], Some("disable")) => Some(Self::Disable(name)),
            (Version::V1Beta1, "POST", ["projects", _, "services", _], Some("generateServiceIdentity")) => {
                Some(Self::GenerateServiceIdentity(name))
            }
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
            // Google's method id; batchEnable needs `serviceusage.services.enable`.
            Self::BatchEnable(_) => "serviceusage.services.batchEnable",
            Self::GetOperation(_) => "serviceusage.operations.get",
            Self::GenerateServiceIdentity(_) => "serviceusage.services.generateServiceIdentity",
        }
    }

    pub fn resource(&self) -> String {
        match self {
            Self::Enable(name)
            | Self::Disable(name)
            | Self::Get(name)
            | Self::GetOperation(name)
            | Self::GenerateServiceIdentity(name) => name.clone(),
            Self::List(parent) | Self::BatchEnable(parent) => format!("{parent}/services"),
        }
    }

    pub fn starts_operation(&self) -> bool {
        matches!(self, Self::Enable(_) | Self::Disable(_) | Self::BatchEnable(_))
    }

    /// The permission on the project; none to read an operation, nor to have a service agent
    /// created (Google asks for no permission to trigger it).
    pub fn requirement(&self) -> Option<Requirement> {
        match self {
            Self::GetOperation(_) | Self::GenerateServiceIdentity(_) => None,
            Self::BatchEnable(parent) => Some(Requirement::on("serviceusage.services.enable", parent.clone())),
            _ => {
                let project = self.resource().split('/').take(2).collect::<Vec<_>>().join("/");
                Some(Requirement::on(self.method_id(), project))
            }
        }
    }
}

/// Serves one call at `now`; `fail_operation` makes the operation it starts fail with
/// `INTERNAL` and that message, leaving the services as they were.
pub(super) fn handle(
    store: &mut Store,
    call: &Call,
    query: &Query,
    body: &[u8],
    fail_operation: Option<&str>,
    now: Now,
) -> Result<Value, RpcError> {
    store.settle(now);
    let fault = fail_operation.map(RpcError::internal);
    match call {
        Call::Enable(name) => store.start(Action::Enable, &[checked(name)?], fault, now),
        Call::Disable(name) => store.start(Action::Disable, &[checked(name)?], fault, now),
        Call::BatchEnable(parent) => {
            let names = batch(parent, body)?;
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            store.start(Action::BatchEnable, &names, fault, now)
        }
        Call::GenerateServiceIdentity(name) => service_identity(checked(name)?),
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
    if dns_like { Ok(name) } else { Err(unknown_services(service)) }
}

fn unknown_services(services: &str) -> RpcError {
    RpcError::new(
        super::rpc::Code::PermissionDenied,
        format!("Not found or permission denied for service(s): {services}."),
    )
}

/// The full names of a `batchEnable`'s services: 1 to 20 ids, each one Google would know (the
/// unknown ones are refused together, and nothing is enabled).
fn batch(parent: &str, body: &[u8]) -> Result<Vec<String>, RpcError> {
    let body: BatchEnableBody = parse_body(body)?;
    if body.service_ids.is_empty() {
        return Err(RpcError::invalid_argument("No services specified: serviceIds must name at least one service."));
    }
    if body.service_ids.len() > MAX_BATCH {
        return Err(RpcError::invalid_argument(format!(
            "Too many services: a batch enables at most {MAX_BATCH} services, not {}.",
            body.service_ids.len()
        )));
    }
    let names: Vec<String> = body.service_ids.iter().map(|id| format!("{parent}/services/{id}")).collect();
    let unknown: Vec<&str> = body
        .service_ids
        .iter()
        .zip(&names)
        .filter(|(_, name)| checked(name).is_err())
        .map(|(id, _)| id.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(unknown_services(&unknown.join(", ")));
    }
    Ok(names)
}

/// A service's (primary) service agent, as the done operation Google answers at once:
/// `service-NUMBER@gcp-sa-SERVICE.iam.gserviceaccount.com`, `SERVICE` the first label of the
/// service's name, `NUMBER` the project's. The emulator keeps no state for it: its IAM takes any
/// well-formed member.
fn service_identity(name: &str) -> Result<Value, RpcError> {
    let mut segments = name.split('/');
    let project = segments.nth(1).unwrap_or_default();
    let service = segments.nth(1).unwrap_or_default();
    let number = if !project.is_empty() && project.bytes().all(|b| b.is_ascii_digit()) {
        project.to_owned()
    } else {
        project_number(project).to_string()
    };
    let label = service.split('.').next().unwrap_or_default();
    let email = format!("service-{number}@gcp-sa-{label}.iam.gserviceaccount.com");
    let response = json!({
        "@type": "type.googleapis.com/google.api.serviceusage.v1beta1.ServiceIdentity",
        "email": email,
        "uniqueId": unique_id(&email),
    });
    Ok(json!({ "name": "operations/finished.DONE_OPERATION", "done": true, "response": response }))
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
