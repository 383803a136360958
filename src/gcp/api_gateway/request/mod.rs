//! Request building for API Gateway v1 (pure): resource names, paths with query, JSON bodies.
//! Every id is checked before it becomes part of a URL, so no input can reach another path.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Serialize;

use super::super::error::{Code, Detail, GcpError};
use super::super::http::{Request, Verb};

pub(super) const GET_API: &str = "apigateway.apis.get";
pub(super) const CREATE_API: &str = "apigateway.apis.create";
pub(super) const DELETE_API: &str = "apigateway.apis.delete";
pub(super) const GET_CONFIG: &str = "apigateway.apiConfigs.get";
pub(super) const LIST_CONFIGS: &str = "apigateway.apiConfigs.list";
pub(super) const CREATE_CONFIG: &str = "apigateway.apiConfigs.create";
pub(super) const DELETE_CONFIG: &str = "apigateway.apiConfigs.delete";
pub(super) const GET_GATEWAY: &str = "apigateway.gateways.get";
pub(super) const CREATE_GATEWAY: &str = "apigateway.gateways.create";
pub(super) const PATCH_GATEWAY: &str = "apigateway.gateways.patch";
pub(super) const DELETE_GATEWAY: &str = "apigateway.gateways.delete";
pub(super) const GET_OPERATION: &str = "apigateway.operations.get";

/// Configs asked for per page of `list_configs`.
pub(super) const PAGE_SIZE: &str = "100";

/// Longest accepted path segment (Google ids are at most 63 characters; project ids 30).
const MAX_SEGMENT: usize = 128;

const API_CONFIG_PATTERN: [&str; 8] = ["projects", "*", "locations", "*", "apis", "*", "configs", "*"];
const OPERATION_PATTERN: [&str; 6] = ["projects", "*", "locations", "*", "operations", "*"];

/// One call ready to send: its method id, the resource name for errors, the path below the
/// endpoint (`/v1/...`, with query) and what to send.
#[derive(Debug)]
pub(super) struct Planned {
    pub(super) method: &'static str,
    pub(super) resource: String,
    pub(super) path: String,
    pub(super) request: Request,
}

impl Planned {
    fn get(method: &'static str, resource: String, path: String) -> Self {
        Self { method, resource, path, request: Request::GET }
    }

    fn delete(method: &'static str, resource: String) -> Self {
        let path = format!("/v1/{resource}");
        Self { method, resource, path, request: Request { verb: Verb::Delete, json: None, form: false } }
    }

    fn write(
        method: &'static str,
        resource: String,
        path: String,
        verb: Verb,
        body: &impl Serialize,
    ) -> Result<Self, GcpError> {
        let json = serde_json::to_vec(body)
            .map_err(|_| GcpError::new(method, resource.as_str(), Code::Internal, Some(Detail::InvalidRequest)))?;
        Ok(Self { method, resource, path, request: Request::json(verb, Bytes::from(json)) })
    }
}

/// Whether `value` is a safe path segment: 1–128 of `A-Z a-z 0-9 . _ : -`, not `.` or `..`.
fn is_segment(value: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
    (1..=MAX_SEGMENT).contains(&value.len()) && value.bytes().all(allowed) && value != "." && value != ".."
}

/// The error of an input rejected before sending; the resource is the input, escaped to one line.
fn invalid(method: &'static str, input: &str) -> GcpError {
    GcpError::new(method, input.escape_default().to_string(), Code::InvalidArgument, Some(Detail::InvalidRequest))
}

/// Checks every id that goes into a path.
fn check(method: &'static str, ids: &[&str]) -> Result<(), GcpError> {
    match ids.iter().find(|id| !is_segment(id)) {
        Some(bad) => Err(invalid(method, bad)),
        None => Ok(()),
    }
}

/// Checks a full resource name against a pattern whose `*` stand for one safe segment.
fn check_name(method: &'static str, name: &str, pattern: &[&str]) -> Result<(), GcpError> {
    let segments: Vec<&str> = name.split('/').collect();
    let matches = segments.len() == pattern.len()
        && segments.iter().zip(pattern).all(|(segment, want)| is_segment(segment) && (*want == "*" || segment == want));
    if matches { Ok(()) } else { Err(invalid(method, name)) }
}

/// `projects/{project}/locations/global`: the parent of APIs.
fn global(project: &str) -> String {
    format!("projects/{project}/locations/global")
}

/// `projects/{project}/locations/global/apis/{api_id}`.
pub(super) fn api_name(project: &str, api_id: &str) -> String {
    format!("{}/apis/{api_id}", global(project))
}

/// `projects/{project}/locations/global/apis/{api_id}/configs/{config_id}`.
fn config_name(project: &str, api_id: &str, config_id: &str) -> String {
    format!("{}/configs/{config_id}", api_name(project, api_id))
}

/// `projects/{project}/locations/{location}/gateways/{gateway_id}`.
fn gateway_name(project: &str, location: &str, gateway_id: &str) -> String {
    format!("projects/{project}/locations/{location}/gateways/{gateway_id}")
}

/// `/v1/{name}?k=v&…` with form-encoded values.
fn path_with_query(name: &str, query: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    serializer.extend_pairs(query);
    format!("/v1/{name}?{}", serializer.finish())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewApi<'a> {
    display_name: &'a str,
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway_service_account: Option<&'a str>,
    labels: &'a BTreeMap<String, String>,
    openapi_documents: [OpenApiDocument<'a>; 1],
}

#[derive(Serialize)]
struct OpenApiDocument<'a> {
    document: File<'a>,
}

#[derive(Serialize)]
struct File<'a> {
    path: &'a str,
    /// Proto3 JSON bytes: standard base64 with padding.
    contents: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewGateway<'a> {
    api_config: &'a str,
    display_name: &'a str,
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GatewayConfigUpdate<'a> {
    api_config: &'a str,
}

/// `GET v1/projects/{p}/locations/global/apis/{api}`.
pub(super) fn get_api(project: &str, api_id: &str) -> Result<Planned, GcpError> {
    check(GET_API, &[project, api_id])?;
    let name = api_name(project, api_id);
    Ok(Planned::get(GET_API, name.clone(), format!("/v1/{name}")))
}

/// `POST v1/projects/{p}/locations/global/apis?apiId={api}` with `{displayName, labels}`.
pub(super) fn create_api(
    project: &str,
    api_id: &str,
    display_name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Planned, GcpError> {
    check(CREATE_API, &[project, api_id])?;
    let path = path_with_query(&format!("{}/apis", global(project)), &[("apiId", api_id)]);
    Planned::write(CREATE_API, api_name(project, api_id), path, Verb::Post, &NewApi { display_name, labels })
}

/// `DELETE v1/projects/{p}/locations/global/apis/{api}`.
pub(super) fn delete_api(project: &str, api_id: &str) -> Result<Planned, GcpError> {
    check(DELETE_API, &[project, api_id])?;
    Ok(Planned::delete(DELETE_API, api_name(project, api_id)))
}

/// `GET v1/projects/{p}/locations/global/apis/{api}/configs/{config}`.
pub(super) fn get_config(project: &str, api_id: &str, config_id: &str) -> Result<Planned, GcpError> {
    check(GET_CONFIG, &[project, api_id, config_id])?;
    let name = config_name(project, api_id, config_id);
    Ok(Planned::get(GET_CONFIG, name.clone(), format!("/v1/{name}")))
}

/// `GET v1/projects/{p}/locations/global/apis/{api}/configs?pageSize=100[&pageToken=…]`.
pub(super) fn list_configs(project: &str, api_id: &str, page_token: &str) -> Result<Planned, GcpError> {
    check(LIST_CONFIGS, &[project, api_id])?;
    let parent = api_name(project, api_id);
    let collection = format!("{parent}/configs");
    let path = match page_token {
        "" => path_with_query(&collection, &[("pageSize", PAGE_SIZE)]),
        token => path_with_query(&collection, &[("pageSize", PAGE_SIZE), ("pageToken", token)]),
    };
    Ok(Planned::get(LIST_CONFIGS, parent, path))
}

/// The document and settings of a new API config.
pub(super) struct ConfigSpec<'a> {
    pub(super) document_path: &'a str,
    pub(super) document: &'a [u8],
    pub(super) gateway_service_account: Option<&'a str>,
    pub(super) labels: &'a BTreeMap<String, String>,
}

/// `POST v1/projects/{p}/locations/global/apis/{api}/configs?apiConfigId={config}` with one
/// OpenAPI document whose contents are base64.
pub(super) fn create_config(
    project: &str,
    api_id: &str,
    config_id: &str,
    spec: &ConfigSpec<'_>,
) -> Result<Planned, GcpError> {
    check(CREATE_CONFIG, &[project, api_id, config_id])?;
    let path = path_with_query(&format!("{}/configs", api_name(project, api_id)), &[("apiConfigId", config_id)]);
    let document = File { path: spec.document_path, contents: STANDARD.encode(spec.document) };
    let body = NewConfig {
        gateway_service_account: spec.gateway_service_account,
        labels: spec.labels,
        openapi_documents: [OpenApiDocument { document }],
    };
    Planned::write(CREATE_CONFIG, config_name(project, api_id, config_id), path, Verb::Post, &body)
}

/// `DELETE v1/projects/{p}/locations/global/apis/{api}/configs/{config}`.
pub(super) fn delete_config(project: &str, api_id: &str, config_id: &str) -> Result<Planned, GcpError> {
    check(DELETE_CONFIG, &[project, api_id, config_id])?;
    Ok(Planned::delete(DELETE_CONFIG, config_name(project, api_id, config_id)))
}

/// `GET v1/projects/{p}/locations/{location}/gateways/{gateway}`.
pub(super) fn get_gateway(project: &str, location: &str, gateway_id: &str) -> Result<Planned, GcpError> {
    check(GET_GATEWAY, &[project, location, gateway_id])?;
    let name = gateway_name(project, location, gateway_id);
    Ok(Planned::get(GET_GATEWAY, name.clone(), format!("/v1/{name}")))
}

/// `POST v1/projects/{p}/locations/{location}/gateways?gatewayId={gateway}` with
/// `{apiConfig, displayName, labels}`; `api_config` is a full config name.
pub(super) fn create_gateway(
    project: &str,
    location: &str,
    gateway_id: &str,
    api_config: &str,
    display_name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Planned, GcpError> {
    check(CREATE_GATEWAY, &[project, location, gateway_id])?;
    check_name(CREATE_GATEWAY, api_config, &API_CONFIG_PATTERN)?;
    let parent = format!("projects/{project}/locations/{location}/gateways");
    let path = path_with_query(&parent, &[("gatewayId", gateway_id)]);
    let body = NewGateway { api_config, display_name, labels };
    Planned::write(CREATE_GATEWAY, gateway_name(project, location, gateway_id), path, Verb::Post, &body)
}

/// `PATCH v1/projects/{p}/locations/{location}/gateways/{gateway}?updateMask=apiConfig` with `{apiConfig}`.
pub(super) fn update_gateway_config(
    project: &str,
    location: &str,
    gateway_id: &str,
    api_config: &str,
) -> Result<Planned, GcpError> {
    check(PATCH_GATEWAY, &[project, location, gateway_id])?;
    check_name(PATCH_GATEWAY, api_config, &API_CONFIG_PATTERN)?;
    let name = gateway_name(project, location, gateway_id);
    let path = path_with_query(&name, &[("updateMask", "apiConfig")]);
    Planned::write(PATCH_GATEWAY, name, path, Verb::Patch, &GatewayConfigUpdate { api_config })
}

/// `DELETE v1/projects/{p}/locations/{location}/gateways/{gateway}`.
pub(super) fn delete_gateway(project: &str, location: &str, gateway_id: &str) -> Result<Planned, GcpError> {
    check(DELETE_GATEWAY, &[project, location, gateway_id])?;
    Ok(Planned::delete(DELETE_GATEWAY, gateway_name(project, location, gateway_id)))
}

/// `GET v1/projects/{p}/locations/{location}/operations/{id}`; `name` is checked against that shape.
pub(super) fn get_operation(name: &str) -> Result<Planned, GcpError> {
    check_name(GET_OPERATION, name, &OPERATION_PATTERN)?;
    Ok(Planned::get(GET_OPERATION, name.to_owned(), format!("/v1/{name}")))
}

#[cfg(test)]
mod tests;
