//! The handlers: one REST call, its query and body, checked and applied to the store. Problems
//! with the request itself are answered at once (400, 404, 409); problems the real service only
//! finds while it works (an invalid OpenAPI document, a config that is not ACTIVE) fail the
//! operation instead.

use super::model::{
    Api, ApiConfig, Gateway, Meta, Patch, State, View, api_json, config_json, default_hostname, gateway_json,
    managed_service,
};
use super::names::{ApiName, Call, Child, ConfigName, GatewayName, Location, is_valid_id};
use super::openapi;
use super::operations::{Now, Operation, Target};
use super::rest::{Query, page, parse_body};
use super::rpc::RpcError;
use super::store::{Resource, Store};
use super::wire::{ApiBody, Common, ConfigBody, GatewayBody, list_json, patch_common};
use serde_json::Value;

/// Serves one call. `fault` is the error an injected `fail_operation` makes the call's
/// operation complete with.
pub fn handle(
    store: &mut Store,
    call: &Call,
    query: &Query,
    body: &[u8],
    fault: Option<RpcError>,
    now: Now,
) -> Result<Value, RpcError> {
    match call {
        Call::CreateApi(parent, id) => create_api(store, parent, id.as_deref(), body, fault, now),
        Call::ListApis(parent) => list(query, "apis", store.apis(&parent.prefix()), api_json),
        Call::GetApi(name) => store.api(&name.to_string()).map(api_json),
        Call::PatchApi(name) => patch_api(store, name, query, body, fault, now),
        Call::DeleteApi(name) => store.delete(Target::Api(name.to_string()), fault, now),
        Call::CreateConfig(api, id) => create_config(store, api, id.as_deref(), body, fault, now),
        Call::ListConfigs(api) => {
            // `apis/-/configs` lists the configs of every API, as gcloud asks without `--api`.
            let prefix = if api.id == "-" { format!("{}/apis/", api.parent) } else { format!("{api}/configs/") };
            list(query, "apiConfigs", store.configs(&prefix), |config| config_json(config, View::Basic))
        }
        Call::GetConfig(name) => {
            let view = View::parse(query.get("view")).ok_or_else(|| {
                RpcError::invalid_argument(format!("Invalid value for view: {}", query.get("view").unwrap_or_default()))
            })?;
            store.config(&name.to_string()).map(|config| config_json(config, view))
        }
        Call::PatchConfig(name) => patch_config(store, name, query, body, fault, now),
        Call::DeleteConfig(name) => store.delete(Target::Config(name.to_string()), fault, now),
        Call::CreateGateway(parent, id) => create_gateway(store, parent, id.as_deref(), body, fault, now),
        Call::ListGateways(parent) => list(query, "gateways", store.gateways(&parent.prefix()), gateway_json),
        Call::GetGateway(name) => store.gateway(&name.to_string()).map(gateway_json),
        Call::PatchGateway(name) => patch_gateway(store, name, query, body, fault, now),
        Call::DeleteGateway(name) => store.delete(Target::Gateway(name.to_string()), fault, now),
        Call::ListOperations(parent) => {
            list(query, "operations", store.operations(&parent.prefix()), Operation::to_json)
        }
        Call::GetOperation(name) => store.operation(&name.to_string()).map(Operation::to_json),
    }
}

fn create_api(
    store: &mut Store,
    parent: &Location,
    id: Option<&str>,
    body: &[u8],
    fault: Option<RpcError>,
    now: Now,
) -> Result<Value, RpcError> {
    let id = checked_id(id, "api_id")?;
    if parent.location != "global" {
        return Err(RpcError::invalid_argument(format!("APIs live in location 'global', not '{}'.", parent.location)));
    }
    let body: ApiBody = parse_body(body)?;
    let name = Child { parent: parent.clone(), id: id.to_owned() }.to_string();
    let managed_service = match body.managed_service.as_deref().filter(|s| !s.is_empty()) {
        Some(service) => service.to_owned(),
        None => managed_service(&parent.project, id, &name),
    };
    let api = Api { meta: meta(name, &body, now), managed_service };
    store.create(Resource::Api(api), fault, now)
}

fn create_config(
    store: &mut Store,
    api: &ApiName,
    id: Option<&str>,
    body: &[u8],
    fault: Option<RpcError>,
    now: Now,
) -> Result<Value, RpcError> {
    let id = checked_id(id, "api_config_id")?;
    let parent = store.api(&api.to_string())?;
    if parent.meta.state == State::Deleting {
        return Err(RpcError::failed_precondition(format!("Resource '{api}' is DELETING.")));
    }
    let body: ConfigBody = parse_body(body)?;
    if body.has_grpc() {
        return Err(RpcError::invalid_argument("gRPC API configs are not supported by this emulator."));
    }
    let documents = body.documents()?;
    if documents.is_empty() {
        return Err(RpcError::invalid_argument("api_config.openapi_documents or grpc_services is required."));
    }
    // The real service reads the documents while it builds the service config, so a bad one
    // fails the operation (INVALID_ARGUMENT) and leaves the config FAILED.
    let invalid = documents.iter().find_map(|d| openapi::validate(&d.path, &d.contents).err());
    let name = Child { parent: api.clone(), id: id.to_owned() }.to_string();
    let config = ApiConfig {
        meta: meta(name, &body, now),
        gateway_service_account: body.gateway_service_account.clone().filter(|a| !a.is_empty()),
        documents,
        service_config_id: format!("{id}-0"),
    };
    store.create(Resource::Config(config), fault.or(invalid.map(RpcError::invalid_argument)), now)
}

fn create_gateway(
    store: &mut Store,
    parent: &Location,
    id: Option<&str>,
    body: &[u8],
    fault: Option<RpcError>,
    now: Now,
) -> Result<Value, RpcError> {
    let id = checked_id(id, "gateway_id")?;
    if matches!(parent.location.as_str(), "global" | "-") {
        return Err(RpcError::invalid_argument(format!(
            "Gateways are regional: '{}' is not a region.",
            parent.location
        )));
    }
    let body: GatewayBody = parse_body(body)?;
    let api_config = config_reference(body.api_config.as_deref())?;
    let unusable = usable(store, &api_config).err();
    let name = GatewayName(Child { parent: parent.clone(), id: id.to_owned() }).to_string();
    let default_hostname = default_hostname(id, &parent.location, &name);
    let gateway = Gateway { meta: meta(name, &body, now), api_config, default_hostname };
    store.create(Resource::Gateway(gateway), fault.or(unusable), now)
}

fn patch_api(
    store: &mut Store,
    name: &ApiName,
    query: &Query,
    body: &[u8],
    fault: Option<RpcError>,
    now: Now,
) -> Result<Value, RpcError> {
    let body: ApiBody = parse_body(body)?;
    let mut patch = Patch::default();
    for path in mask_or(query, &["displayName", "labels"]) {
        if !patch_common(&mut patch, &path, &body) {
            return Err(not_updatable(&path, "managedService"));
        }
    }
    store.update(Target::Api(name.to_string()), patch, fault, now)
}

/// Only `displayName` and `labels` of a config change: its documents and service account are
/// immutable, so a new version of an API is a new config.
fn patch_config(
    store: &mut Store,
    name: &ConfigName,
    query: &Query,
    body: &[u8],
    fault: Option<RpcError>,
    now: Now,
) -> Result<Value, RpcError> {
    let body: ConfigBody = parse_body(body)?;
    let mask = query.update_mask();
    if mask.is_empty() {
        // Without a mask every field is written: immutable ones may only be sent unchanged.
        let config = store.config(&name.to_string())?;
        let documents = body.documents()?;
        let account = body.gateway_service_account.as_ref();
        if (!documents.is_empty() && documents != config.documents)
            || account.is_some_and(|a| Some(a) != config.gateway_service_account.as_ref())
            || body.has_grpc()
        {
            return Err(RpcError::invalid_argument(
                "An API config's documents and gateway service account are immutable: create a new API config.",
            ));
        }
    }
    let mut patch = Patch::default();
    for path in mask_or(query, &["displayName", "labels"]) {
        if !patch_common(&mut patch, &path, &body) {
            let immutable = "openapiDocuments gatewayServiceAccount grpcServices managedServiceConfigs";
            return Err(not_updatable(&path, immutable));
        }
    }
    store.update(Target::Config(name.to_string()), patch, fault, now)
}

fn patch_gateway(
    store: &mut Store,
    name: &GatewayName,
    query: &Query,
    body: &[u8],
    fault: Option<RpcError>,
    now: Now,
) -> Result<Value, RpcError> {
    let body: GatewayBody = parse_body(body)?;
    let all: &[&str] =
        if body.api_config.is_some() { &["displayName", "labels", "apiConfig"] } else { &["displayName", "labels"] };
    let mut patch = Patch::default();
    let mut unusable = None;
    for path in mask_or(query, all) {
        if patch_common(&mut patch, &path, &body) {
            continue;
        }
        if path != "apiConfig" {
            return Err(not_updatable(&path, ""));
        }
        let api_config = config_reference(body.api_config.as_deref())?;
        // Checked now, failed with the operation: the gateway keeps serving its old config.
        unusable = usable(store, &api_config).err();
        patch.api_config = Some(api_config);
    }
    store.update(Target::Gateway(name.to_string()), patch, fault.or(unusable), now)
}

/// The common part of a new resource.
fn meta(name: String, body: &impl Common, now: Now) -> Meta {
    let mut meta = Meta::new(name, now.wall);
    meta.display_name = body.display_name().cloned();
    meta.labels = body.labels().cloned().unwrap_or_default();
    meta
}

/// The id of a create, which must be present and well formed.
fn checked_id<'a>(id: Option<&'a str>, field: &str) -> Result<&'a str, RpcError> {
    match id.filter(|id| !id.is_empty()) {
        None => Err(RpcError::invalid_argument(format!("{field} is required."))),
        Some(id) if is_valid_id(id) => Ok(id),
        Some(id) => {
            Err(RpcError::invalid_argument(format!("Invalid {field} '{id}': it must match [a-z][a-z0-9-]{{0,62}}.")))
        }
    }
}

/// A gateway's `apiConfig`: a full config name.
fn config_reference(api_config: Option<&str>) -> Result<String, RpcError> {
    let api_config = api_config.filter(|c| !c.is_empty());
    let api_config = api_config.ok_or_else(|| RpcError::invalid_argument("gateway.api_config is required."))?;
    match ConfigName::parse(api_config) {
        Some(name) => Ok(name.to_string()),
        None => Err(RpcError::invalid_argument(format!(
            "Invalid api_config '{api_config}': expected projects/*/locations/global/apis/*/configs/*."
        ))),
    }
}

/// A gateway can only serve an existing, ACTIVE config.
fn usable(store: &Store, api_config: &str) -> Result<(), RpcError> {
    let config = store
        .config(api_config)
        .map_err(|_| RpcError::failed_precondition(format!("API config '{api_config}' does not exist.")))?;
    match config.meta.state {
        State::Active => Ok(()),
        state => Err(RpcError::failed_precondition(format!(
            "API config '{api_config}' is {}; a gateway needs an ACTIVE config.",
            state.as_str()
        ))),
    }
}

/// The update mask's paths, or `all` without one (the real API then writes every field).
fn mask_or(query: &Query, all: &[&str]) -> Vec<String> {
    let mask = query.update_mask();
    if mask.is_empty() { all.iter().map(|path| (*path).to_owned()).collect() } else { mask }
}

fn not_updatable(path: &str, immutable: &str) -> RpcError {
    if immutable.split_whitespace().any(|field| field == path) {
        RpcError::invalid_argument(format!("Field '{path}' is immutable: create a new resource to change it."))
    } else {
        RpcError::invalid_argument(format!("Invalid update_mask path: '{path}'."))
    }
}

/// One page of a list, filter and orderBy accepted and not applied (items are in name order).
fn list<T>(query: &Query, field: &str, items: Vec<T>, render: impl Fn(T) -> Value) -> Result<Value, RpcError> {
    let (page, next) = page(items, query.get("pageSize"), query.get("pageToken"))?;
    Ok(list_json(field, page.into_iter().map(render).collect(), next))
}
