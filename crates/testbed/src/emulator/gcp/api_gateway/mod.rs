//! Google Cloud API Gateway v1 over REST: APIs, API configs (Swagger 2.0 documents, immutable)
//! and regional gateways, each created, updated and deleted through long-running operations.
//!
//! - [`names`]: resource names and which REST method a request calls;
//! - [`model`]: the resources, their states and their JSON;
//! - [`operations`]: operations and the clock that completes them;
//! - [`openapi`]: the checks on uploaded OpenAPI documents;
//! - [`store`]: the rules that tie resources and operations together;
//! - [`wire`]: request bodies;
//! - [`routes`]: one handler per method;
//! - [`serving`]: the data plane, each gateway's `defaultHostname` enforcing its config.
//!
//! Operations complete after a delay (100 ms unless set otherwise), evaluated lazily: every
//! request first completes what is due, so there is no background task to run or stop.

mod model;
mod names;
mod openapi;
mod operations;
mod routes;
mod serving;
mod store;
mod wire;

#[cfg(test)]
mod tests;

use super::rest::{self, Query};
use super::rpc::{self, RpcError};
use serde_json::Value;
use std::time::Duration;

pub(super) use names::Call;
pub(super) use serving::Serving;
pub(super) use store::Store;

use names::{Child, GatewayName, Location};
use operations::Now;

/// Serves one call on the store at the current time. `fail_operation` is the message of an
/// injected fault: the operation the call starts completes with `INTERNAL` and that message.
pub(super) fn handle(
    store: &mut Store,
    call: &Call,
    query: &Query,
    body: &[u8],
    fail_operation: Option<&str>,
) -> Result<Value, RpcError> {
    let now = Now::current();
    store.settle(now);
    routes::handle(store, call, query, body, fail_operation.map(RpcError::internal), now)
}

/// How long operations started from now on take to complete.
pub(super) fn set_operation_delay(store: &mut Store, delay: Duration) {
    store.set_delay(delay);
}

/// The ids of a project's APIs, in any state.
pub(super) fn apis(store: &mut Store, project: &str) -> Vec<String> {
    store.settle(Now::current());
    store.apis(&Location::new(project, "global").prefix()).iter().map(|api| id_of(&api.meta.name)).collect()
}

/// The id and state of each config of an API.
pub(super) fn configs(store: &mut Store, project: &str, api: &str) -> Vec<(String, String)> {
    store.settle(Now::current());
    let api = Child { parent: Location::new(project, "global"), id: api.to_owned() };
    let configs = store.configs(&format!("{api}/configs/"));
    configs.iter().map(|config| (id_of(&config.meta.name), config.meta.state.as_str().to_owned())).collect()
}

/// A gateway's config name, state and default hostname.
pub(super) fn gateway(store: &mut Store, project: &str, region: &str, id: &str) -> Option<(String, String, String)> {
    store.settle(Now::current());
    let name = GatewayName(Child { parent: Location::new(project, region), id: id.to_owned() });
    let gateway = store.gateway(&name.to_string()).ok()?;
    Some((gateway.api_config.clone(), gateway.meta.state.as_str().to_owned(), gateway.default_hostname.clone()))
}

/// The names of deleted resources, in the order their delete operations completed.
pub(super) fn deletions(store: &mut Store) -> Vec<String> {
    store.settle(Now::current());
    store.deletions().to_vec()
}

/// The last segment of a resource name.
fn id_of(name: &str) -> String {
    name.rsplit('/').next().unwrap_or_default().to_owned()
}
